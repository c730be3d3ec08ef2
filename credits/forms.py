"""Forms of the IM credits pages: how many credits to buy, and when to warn of a low balance."""

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from credits.models import CREDITS
from credits.services.purchases import MAX_QUANTITY


class BuyForm(forms.Form):
    quantity = forms.IntegerField(
        label=_("IM credits to buy"),
        min_value=1,
        max_value=MAX_QUANTITY,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "step": "1", "autofocus": True}),
    )


class ThresholdForm(forms.Form):
    low_balance_threshold = forms.DecimalField(
        label=_("Warn when available credits fall below"),
        min_value=Decimal("0"),
        max_digits=CREDITS["max_digits"],
        decimal_places=CREDITS["decimal_places"],
        widget=forms.NumberInput(attrs={"step": "1"}),
    )

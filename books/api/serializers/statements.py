"""Customer and vendor statements (``books.selectors.Statement``)."""

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from books.api.fields import BoundedDateField
from books.choices import DocumentKind


def _amount(**kwargs: Any) -> serializers.DecimalField:
    # Running balances are sums of many documents: no digit limit, two decimals.
    return serializers.DecimalField(max_digits=None, decimal_places=2, read_only=True, **kwargs)


class StatementQuerySerializer(serializers.Serializer):
    """Query parameters of a statement. Defaults: the first of the current month to today, in the
    organization's time zone."""

    from_date = BoundedDateField(required=False, help_text=_("Default: the first day of the current month."))
    to_date = BoundedDateField(required=False, help_text=_("Default: today."))

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        today = self.context["organization"].today()
        attrs.setdefault("to_date", today)
        attrs.setdefault("from_date", min(today.replace(day=1), attrs["to_date"]))
        if attrs["to_date"] < attrs["from_date"]:
            raise serializers.ValidationError({"to_date": [_("The end date cannot be before the start date.")]})
        return attrs


class StatementContactSerializer(serializers.Serializer):
    contact_id = serializers.IntegerField(source="id", read_only=True)
    contact_name = serializers.CharField(source="display_name", read_only=True)
    contact_type = serializers.CharField(read_only=True)


class StatementEntrySerializer(serializers.Serializer):
    date = serializers.DateField(read_only=True)
    transaction_type = serializers.ChoiceField(source="document.kind", choices=DocumentKind.choices, read_only=True)
    document_id = serializers.IntegerField(source="document.id", read_only=True)
    number = serializers.CharField(source="document.number", read_only=True)
    amount = _amount(help_text=_("Raises the balance due (invoices, bills)."))
    payment = _amount(help_text=_("Lowers the balance due (payments, credit notes)."))
    balance = _amount(help_text=_("Balance due after this entry."))


class StatementSerializer(serializers.Serializer):
    contact = StatementContactSerializer(read_only=True)
    from_date = serializers.DateField(read_only=True)
    to_date = serializers.DateField(read_only=True)
    currency_code = serializers.CharField(source="currency", read_only=True)
    opening_balance = _amount()
    entries = StatementEntrySerializer(many=True, read_only=True)
    total_amount = _amount()
    total_payments = _amount()
    closing_balance = _amount()

"""Forms of Settings → Integrations → WhatsApp: connect, channels, default number, verification.

The forms only validate what the administrator typed; Meta's verdict comes from the services
(``whatsapp.services.accounts``), whose ``ValidationError`` the views put back on the form with
:func:`errors_to_form`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

from .models import PhoneNumber

_meta_id = RegexValidator(r"^\d{5,32}$", _("Meta's IDs are numbers, e.g. 102290129340398."))


def errors_to_form(form: forms.Form, error: ValidationError) -> None:
    """Show a service's ``ValidationError`` on ``form``: keyed errors on their field, the rest on top.

    Services key errors by their argument names; a key the form has no field for (or none at all)
    becomes a non-field error, so no message from Meta is ever lost.
    """
    if hasattr(error, "error_dict"):
        for key, errors in error.error_dict.items():
            form.add_error(key if key in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


class TokenForm(forms.Form):
    """A new system-user token for the connected account (the old one expired or was revoked)."""

    access_token = forms.CharField(
        label=_("New system user access token"),
        max_length=1024,
        strip=True,
        help_text=_(
            "Business settings → Users → System users → Generate new token, for the same app, with the "
            "whatsapp_business_messaging and whatsapp_business_management permissions."
        ),
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password", "spellcheck": "false"}),
    )


class ConnectForm(forms.Form):
    """The WhatsApp Business Account to connect and the system-user token that may act on it."""

    waba_id = forms.CharField(
        label=_("WhatsApp Business Account ID"),
        max_length=32,
        validators=[_meta_id],
        help_text=_("Meta Business Suite → Business settings → Accounts → WhatsApp accounts: the ID under the name."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "spellcheck": "false"}),
    )
    app_id = forms.CharField(
        label=_("Meta app ID"),
        max_length=32,
        validators=[_meta_id],
        help_text=_("developers.facebook.com → My apps: the App ID of the app that has the WhatsApp product."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "spellcheck": "false"}),
    )
    access_token = forms.CharField(
        label=_("System user access token"),
        max_length=1024,
        strip=True,
        help_text=_(
            "Business settings → Users → System users → Generate new token, for the app above, with the "
            "whatsapp_business_messaging and whatsapp_business_management permissions. It is stored encrypted "
            "and never shown again."
        ),
        # Never echoed back, not even after a failed attempt.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password", "spellcheck": "false"}),
    )


class _NumberChoiceForm(forms.Form):
    """A form whose choice fields offer the account's phone numbers and clean to the instances."""

    number_fields: tuple[str, ...] = ()

    def __init__(self, *args: Any, numbers: Iterable[PhoneNumber], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.numbers = {str(number.pk): number for number in numbers}
        choices = [(pk, str(number)) for pk, number in self.numbers.items()]
        for name in self.number_fields:
            field = self.fields[name]
            field.choices = ([] if isinstance(field.widget, forms.RadioSelect) else [("", "—")]) + choices

    def _number(self, name: str) -> PhoneNumber | None:
        value = self.cleaned_data.get(name)
        return self.numbers.get(value) if value else None


class ChannelsForm(_NumberChoiceForm):
    """Which verified number sends customer utility, customer marketing and vendor utility messages."""

    number_fields = ("customer_utility", "customer_marketing", "vendor_utility")

    customer_same_number = forms.TypedChoiceField(
        label=_("Use the same number for every category"),
        choices=[("yes", _("Yes")), ("no", _("No"))],
        coerce=lambda value: value == "yes",
        widget=forms.RadioSelect,
        help_text=_("Yes: utility and marketing messages go out from one number. No: choose a number for each."),
    )
    customer_utility = forms.ChoiceField(
        label=_("Utility"), help_text=_("Invoices, payment receipts, statements and reminders.")
    )
    customer_marketing = forms.ChoiceField(
        label=_("Marketing"),
        required=False,
        help_text=_("Offers and announcements. Used only when the categories have their own numbers."),
    )
    vendor_utility = forms.ChoiceField(label=_("Utility"), help_text=_("Vendor statements and payment advice."))

    def clean_customer_utility(self) -> PhoneNumber | None:
        return self._number("customer_utility")

    def clean_customer_marketing(self) -> PhoneNumber | None:
        return self._number("customer_marketing")

    def clean_vendor_utility(self) -> PhoneNumber | None:
        return self._number("vendor_utility")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        separate = cleaned.get("customer_same_number") is False
        if separate and not cleaned.get("customer_marketing") and "customer_marketing" not in self.errors:
            self.add_error(
                "customer_marketing", _("Choose the marketing number, or use the same number for every category.")
            )
        if cleaned.get("customer_same_number"):
            # The marketing field stays on the page (it works without JavaScript) but means nothing here.
            cleaned["customer_marketing"] = None
        return cleaned


class DefaultNumberForm(_NumberChoiceForm):
    """The number notifications go out from when no channel says otherwise."""

    number_fields = ("phone_number",)

    phone_number = forms.ChoiceField(label=_("Default WhatsApp Business number"), widget=forms.RadioSelect)

    def clean_phone_number(self) -> PhoneNumber | None:
        return self._number("phone_number")


class RequestCodeForm(forms.Form):
    code_method = forms.ChoiceField(
        label=_("Send the code by"),
        choices=[("SMS", _("SMS")), ("VOICE", _("Voice call"))],
        initial="SMS",
        widget=forms.RadioSelect,
    )


class _CodeField(forms.CharField):
    def to_python(self, value: Any) -> str:
        # People paste "123 456" or "123-456".
        return "".join(ch for ch in super().to_python(value) if ch.isdigit())


class VerifyCodeForm(forms.Form):
    code = _CodeField(
        label=_("Verification code"),
        validators=[RegexValidator(r"^\d{6}$", _("Enter the 6-digit code you received."))],
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "maxlength": "7", "size": "8"}
        ),
    )
    pin = forms.CharField(
        label=_("Two-step verification PIN"),
        help_text=_(
            "Six digits. Registering the number with WhatsApp sets this PIN the first time; if the number "
            "already has one, enter it."
        ),
        validators=[RegexValidator(r"^\d{6}$", _("The two-step verification PIN is 6 digits."))],
        widget=forms.PasswordInput(
            attrs={"inputmode": "numeric", "autocomplete": "off", "maxlength": "6", "size": "8"}
        ),
    )


class ChangeAccountForm(forms.Form):
    mode = forms.ChoiceField(
        choices=[("automatic", _("Schedule automatic deletion")), ("manual", _("Delete manually"))],
    )


class TemplateDeleteForm(forms.Form):
    name = forms.CharField(max_length=512)

"""Forms of the sandbox page and the phone simulator."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from .choices import FaultMode
from .errors import CATALOGUE, FAULT_CODES
from .models import SandboxPhoneNumber, SandboxSettings
from .services import MAX_TEXT, SETTINGS_FIELDS, wa_id_for

MAX_ATTACHMENT = 16 * 1024 * 1024


def _fault_label(code: str) -> str:
    if code == "500":
        return "500 — HTTP 500 with an HTML page"
    if code == "timeout":
        return "timeout — answer after the configured timeout (the send is still accepted)"
    return f"{code} — {CATALOGUE[int(code)].title}"


class FaultForm(forms.Form):
    code = forms.ChoiceField(label=_("Error"), choices=[(code, _fault_label(code)) for code in FAULT_CODES])
    mode = forms.ChoiceField(label=_("Comes back"), choices=FaultMode.choices, initial=FaultMode.SYNC)
    phone_number_id = forms.CharField(
        label=_("Business number id"), required=False, help_text=_("Empty: every number.")
    )
    recipient = forms.CharField(label=_("Customer number"), required=False, help_text=_("Empty: every customer."))
    remaining = forms.IntegerField(
        label=_("For the next … sends"), required=False, min_value=1, help_text=_("Empty: until removed.")
    )


class SettingsForm(forms.ModelForm):
    class Meta:
        model = SandboxSettings
        fields = list(SETTINGS_FIELDS)
        widgets = {name: forms.NumberInput(attrs={"step": "any", "min": "0"}) for name in SETTINGS_FIELDS}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Left empty, batching keeps its current value: a page opened before the field existed posts without it.
        self.fields["status_batch_ms"].required = False


class ReplyForm(forms.Form):
    """The customer's compose box: a text, a file (the text becomes its caption), or both."""

    name = forms.CharField(label=_("Your WhatsApp name"), max_length=200, required=False)
    text = forms.CharField(
        label=_("Message"), max_length=MAX_TEXT, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    file = forms.FileField(label=_("Attachment"), required=False)

    def clean_file(self) -> Any:
        upload = self.cleaned_data.get("file")
        if upload is not None and upload.size > MAX_ATTACHMENT:
            raise forms.ValidationError(_("Attachments are limited to 16 MB in the sandbox."))
        return upload

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not (data.get("text") or "").strip() and not data.get("file"):
            raise forms.ValidationError(_("Write a message or attach a file."))
        return data


class NewChatForm(forms.Form):
    """A customer writes first: opens the 24 h window and a thread."""

    phone_number = forms.ModelChoiceField(
        label=_("To business number"),
        queryset=SandboxPhoneNumber.objects.select_related("account").order_by("display_phone_number"),
        empty_label=None,
    )
    wa_id = forms.CharField(
        label=_("Customer number"), max_length=20, help_text=_("International format, e.g. +91 98765 43210")
    )
    name = forms.CharField(label=_("Customer name"), max_length=200, required=False)
    text = forms.CharField(label=_("Message"), max_length=MAX_TEXT, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_wa_id(self) -> str:
        wa_id = wa_id_for(self.cleaned_data["wa_id"])
        if wa_id is None:
            raise forms.ValidationError(_("Enter 8 to 15 digits, with the country code."))
        return wa_id

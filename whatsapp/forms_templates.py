"""Forms of Settings → Integrations → WhatsApp → Message templates.

The builder form only shapes what the administrator typed into the arguments of
:func:`templates_mgmt.services.template_create` / ``template_update``; every Meta rule is applied
by the service, whose ``ValidationError`` (keyed by builder field, ``buttons`` included) the view
puts back on the form with :func:`errors_to_form`.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from templates_mgmt.choices import AttachmentMode, ButtonType, HeaderType, Module, TemplateCategory
from templates_mgmt.fields import catalogue_fields
from templates_mgmt.languages import META_LANGUAGES
from templates_mgmt.models import MessageTemplate
from whatsapp.forms import errors_to_form

__all__ = ["BUTTON_SLOTS", "CloneForm", "ModuleToggleForm", "TemplateForm", "errors_to_form"]

#: Meta allows two call-to-action buttons; the builder always shows two slots.
BUTTON_SLOTS = (1, 2)
#: Meta's own form of a URL's dynamic suffix, as stored after validation.
SUFFIX = "{{1}}"

_CATEGORIES = [(TemplateCategory.UTILITY, TemplateCategory.UTILITY.label), (TemplateCategory.MARKETING, _("Marketing"))]


def language_choices() -> list[tuple[str, str]]:
    return sorted(META_LANGUAGES.items(), key=lambda item: item[1])


class TemplateForm(forms.Form):
    """The "Create WhatsApp template" page: what the seed's builder asks, in its order."""

    module = forms.ChoiceField(label=_("Module"), choices=Module.choices)
    name = forms.CharField(
        label=_("Template name"),
        max_length=512,
        help_text=_("Lowercase letters, digits and underscores, e.g. invoice_notification."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    category = forms.ChoiceField(
        label=_("Template category"),
        choices=_CATEGORIES,
        help_text=_("Utility: about a transaction the customer has with you. Marketing: offers and announcements."),
    )
    language = forms.ChoiceField(label=_("Language"), initial="en")
    header_type = forms.ChoiceField(
        label=_("Header"),
        choices=[
            (HeaderType.NONE, _("None")),
            (HeaderType.TEXT, _("Text")),
            (HeaderType.DOCUMENT, _("Attachment: document (PDF)")),
            (HeaderType.IMAGE, _("Attachment: image")),
        ],
        initial=HeaderType.NONE,
        widget=forms.RadioSelect,
    )
    header_text = forms.CharField(
        label=_("Header text"),
        required=False,
        max_length=255,
        help_text=_("Up to 60 characters, at most one dynamic field."),
    )
    attachment_mode = forms.ChoiceField(
        label=_("Attachment type"),
        required=False,
        choices=AttachmentMode.choices,
        widget=forms.RadioSelect,
        help_text=_(
            "Dynamic: the transaction's PDF is sent automatically. Static (Customers only): a file you upload."
        ),
    )
    attachment = forms.FileField(label=_("File to attach"), required=False)
    body = forms.CharField(
        label=_("Message"),
        widget=forms.Textarea(attrs={"rows": 8}),
        required=False,
        help_text=_("Up to 1,024 characters. Insert dynamic fields from the list; they are filled when sending."),
    )
    footer = forms.CharField(
        label=_("Footer"), required=False, max_length=255, help_text=_("One line, up to 60 characters, no emoji.")
    )
    # Not an input: where the service's "buttons" errors are shown.
    buttons = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, template: MessageTemplate | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.template = template
        self.fields["language"].choices = language_choices()
        for slot in BUTTON_SLOTS:
            self.fields[f"button{slot}_type"] = forms.ChoiceField(
                label=_("Type"),
                required=False,
                choices=[("", _("No button")), *ButtonType.choices],
            )
            self.fields[f"button{slot}_text"] = forms.CharField(label=_("Button text"), required=False, max_length=64)
            self.fields[f"button{slot}_url"] = forms.CharField(
                label=_("Website address"), required=False, max_length=2000
            )
            self.fields[f"button{slot}_suffix"] = forms.ChoiceField(
                label=_("Dynamic field added to the address"), required=False
            )
            self.fields[f"button{slot}_phone"] = forms.CharField(label=_("Phone number"), required=False, max_length=32)
        self.fields["module"].widget.attrs["data-module-switch"] = ""
        self.set_module(self._module())
        if template is not None and template.meta_id:
            # Meta identifies a submitted template by name × language: they can't change any more.
            for key in ("name", "language", "module"):
                self.fields[key].disabled = True

    def _module(self) -> str:
        if self.is_bound:
            value = self.data.get(self.add_prefix("module"))
            if value in Module.values:
                return str(value)
        if self.template is not None and self.template.module:
            return self.template.module
        return str(self.initial.get("module") or Module.CUSTOMERS)

    def set_module(self, module: str) -> None:
        self.module = module
        self.catalogue = catalogue_fields(module)
        choices = [("", _("None"))] + [(field.key, str(field.label)) for field in self.catalogue]
        for slot in BUTTON_SLOTS:
            self.fields[f"button{slot}_suffix"].choices = choices

    @classmethod
    def initial_for(cls, template: MessageTemplate) -> dict[str, Any]:
        initial: dict[str, Any] = {
            key: getattr(template, key)
            for key in (
                "module",
                "name",
                "category",
                "language",
                "header_type",
                "header_text",
                "attachment_mode",
                "body",
                "footer",
            )
        }
        for slot, button in zip(BUTTON_SLOTS, template.buttons or [], strict=False):
            url = str(button.get("url", ""))
            suffix = str(button.get("url_suffix_field", ""))
            if suffix and url.endswith(SUFFIX):
                url = url[: -len(SUFFIX)]
            initial.update(
                {
                    f"button{slot}_type": button.get("type", ""),
                    f"button{slot}_text": button.get("text", ""),
                    f"button{slot}_url": url,
                    f"button{slot}_suffix": suffix,
                    f"button{slot}_phone": button.get("phone_number", ""),
                }
            )
        return initial

    def button_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "slot": slot,
                "type": self[f"button{slot}_type"],
                "text": self[f"button{slot}_text"],
                "url": self[f"button{slot}_url"],
                "suffix": self[f"button{slot}_suffix"],
                "phone": self[f"button{slot}_phone"],
            }
            for slot in BUTTON_SLOTS
        ]

    def buttons_value(self, data: dict[str, Any]) -> list[dict[str, str]]:
        """The service's ``buttons`` argument from the two slots; an empty slot is no button."""
        buttons = []
        for slot in BUTTON_SLOTS:
            kind = str(data.get(f"button{slot}_type") or "")
            text = str(data.get(f"button{slot}_text") or "")
            if not kind and not text:
                continue
            if kind == ButtonType.PHONE_NUMBER:
                buttons.append({"type": kind, "text": text, "phone_number": str(data.get(f"button{slot}_phone") or "")})
            else:
                buttons.append(
                    {
                        "type": kind,
                        "text": text,
                        "url": str(data.get(f"button{slot}_url") or ""),
                        "url_suffix_field": str(data.get(f"button{slot}_suffix") or ""),
                    }
                )
        return buttons

    def service_arguments(self) -> dict[str, Any]:
        """What ``template_create`` / ``template_update`` take, from the cleaned data."""
        data = self.cleaned_data
        arguments: dict[str, Any] = {
            key: data.get(key) or ""
            for key in (
                "module",
                "name",
                "category",
                "language",
                "header_type",
                "header_text",
                "attachment_mode",
                "body",
                "footer",
            )
        }
        arguments["header_type"] = arguments["header_type"] or HeaderType.NONE
        arguments["buttons"] = self.buttons_value(data)
        if data.get("attachment"):
            arguments["attachment"] = data["attachment"]
        return arguments


class CloneForm(forms.Form):
    name = forms.CharField(
        label=_("New template name"),
        max_length=512,
        help_text=_("Lowercase letters, digits and underscores. The copy is sent to WhatsApp for approval."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    submit = forms.BooleanField(label=_("Submit the copy for approval now"), required=False, initial=True)


class ModuleToggleForm(forms.Form):
    module = forms.ChoiceField(choices=Module.choices)
    enabled = forms.TypedChoiceField(choices=[("1", "on"), ("0", "off")], coerce=lambda value: value == "1")

"""Forms of the settings pages: the organization's profile and its roles."""

import zoneinfo
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from books.forms.contacts import currency_choices, region_choices
from books.models import Organization, Role
from books.permissions import ALL_PERMS, Perm
from books.phone import phone_normalize

# How the role form groups permissions, with the label each one takes inside its group.
# A permission missing here still shows, under "Other".
PERMISSION_GROUPS: tuple[tuple[Any, tuple[tuple[str, Any], ...]], ...] = (
    (
        _("Customers"),
        (
            (Perm.CUSTOMERS_VIEW, _("View")),
            (Perm.CUSTOMERS_MANAGE, _("Create and edit")),
            (Perm.CUSTOMERS_COMMUNICATION, _("Communication (WhatsApp chat)")),
        ),
    ),
    (
        _("Vendors"),
        (
            (Perm.VENDORS_VIEW, _("View")),
            (Perm.VENDORS_MANAGE, _("Create and edit")),
            (Perm.VENDORS_COMMUNICATION, _("Communication (WhatsApp chat)")),
        ),
    ),
    (_("Sales"), ((Perm.SALES_VIEW, _("View")), (Perm.SALES_MANAGE, _("Create and edit")))),
    (_("Purchases"), ((Perm.PURCHASES_VIEW, _("View")), (Perm.PURCHASES_MANAGE, _("Create and edit")))),
    (_("Notifications"), ((Perm.NOTIFICATIONS_SEND, _("Send WhatsApp notifications")),)),
    (_("Reports"), ((Perm.REPORTS_VIEW, _("View")),)),
    (
        _("Settings"),
        (
            (Perm.SETTINGS_MANAGE, _("Organization, integrations and templates")),
            (Perm.USERS_MANAGE, _("Users and roles")),
            (Perm.CREDITS_MANAGE, _("Buy IM credits")),
        ),
    ),
)


def permission_groups() -> list[tuple[Any, list[tuple[str, Any]]]]:
    """PERMISSION_GROUPS plus an "Other" group for any permission it does not place."""
    groups = [(label, list(perms)) for label, perms in PERMISSION_GROUPS]
    placed = {code for _label, perms in PERMISSION_GROUPS for code, _short in perms}
    other = [(code, Perm(code).label) for code in ALL_PERMS if code not in placed]
    if other:
        groups.append((_("Other"), other))
    return groups


class OrganizationForm(forms.ModelForm):
    country = forms.ChoiceField(label=_("Country"))
    currency = forms.ChoiceField(label=_("Base currency"))
    phone_region = forms.ChoiceField(
        label=_("Default phone region"),
        help_text=_("Phone numbers typed without a country code are read as numbers of this region."),
    )

    class Meta:
        model = Organization
        fields = [
            "name",
            "country",
            "currency",
            "time_zone",
            "phone_region",
            "date_format",
            "language",
            "email",
            "phone",
            "address",
            "tax_id",
        ]
        widgets = {
            "time_zone": forms.TextInput(attrs={"list": "time-zones", "autocomplete": "off", "spellcheck": "false"}),
            "address": forms.Textarea(attrs={"rows": 3}),
        }
        help_texts = {
            "time_zone": _("IANA name, e.g. Asia/Kolkata. Due dates and reminders follow this zone."),
            "language": _("Language of documents and messages sent to contacts who have no preference."),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["country"].choices = region_choices(include=self.instance.country)
        self.fields["phone_region"].choices = region_choices(include=self.instance.phone_region)
        self.fields["currency"].choices = currency_choices(include=self.instance.currency)

    @staticmethod
    def time_zones() -> list[str]:
        return sorted(zoneinfo.available_timezones())

    def clean_time_zone(self) -> str:
        # The model's validator gives the message; this only forgives stray spaces.
        return (self.cleaned_data.get("time_zone") or "").strip()

    def clean_phone(self) -> str:
        region = self.cleaned_data.get("phone_region") or self.instance.phone_region or ""
        return phone_normalize(self.cleaned_data.get("phone", ""), region=region)


class RoleForm(forms.ModelForm):
    permissions = forms.MultipleChoiceField(
        label=_("Permissions"), choices=Perm.choices, widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = Role
        fields = ["name", "permissions"]

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.instance.organization = organization
        if self.instance.is_builtin:
            for field in self.fields.values():
                field.disabled = True

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        taken = Role.objects.filter(organization=self.organization, name__iexact=name).exclude(pk=self.instance.pk)
        if taken.exists():
            raise ValidationError(gettext("A role named “%(name)s” already exists.") % {"name": name})
        return name

    def clean_permissions(self) -> list[str]:
        chosen = set(self.cleaned_data.get("permissions") or [])
        return [code for code in ALL_PERMS if code in chosen]

    def grouped_permissions(self) -> list[dict[str, Any]]:
        """The permission checkboxes grouped for the template: [{label, items: [(checkbox, label)]}]."""
        boxes = {box.data["value"]: box for box in self["permissions"]}
        return [
            {"label": label, "items": [(boxes[code], short) for code, short in perms if code in boxes]}
            for label, perms in permission_groups()
        ]

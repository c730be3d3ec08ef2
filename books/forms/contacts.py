"""Forms of the contacts UI: a customer or vendor, its contact persons (a formset) and a statement period.

Saving goes through ``books.services.contacts`` (``contact_forms_save``) so phone numbers are stored in
E.164 read with the organization's default region, exactly as the API and the importers store them.
"""

import datetime
from typing import Any

import phonenumbers
from babel import Locale, UnknownLocaleError
from babel.numbers import list_currencies
from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from books.models import Contact, ContactPerson, Organization
from books.services.contacts import (
    CONTACT_FIELDS,
    PERSON_FIELDS,
    contact_create,
    contact_person_create,
    contact_person_delete,
    contact_person_update,
    contact_update,
)


def _ui_locale() -> Locale:
    try:
        return Locale.parse(translation.get_language() or "en", sep="-")
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def currency_choices(*, include: str = "") -> list[tuple[str, str]]:
    """ISO 4217 codes with their names in the UI language, e.g. ``("INR", "INR — Indian Rupee")``."""
    names = _ui_locale().currencies
    codes = set(list_currencies())
    if include:
        codes.add(include)
    return [(code, f"{code} — {names.get(code, code)}") for code in sorted(codes)]


def region_choices(*, include: str = "") -> list[tuple[str, str]]:
    """Regions phone numbers can be read in (phonenumbers' list), named in the UI language."""
    names = _ui_locale().territories
    codes = set(phonenumbers.SUPPORTED_REGIONS)
    if include:
        codes.add(include)
    return sorted(((code, f"{names.get(code, code)} ({code})") for code in codes), key=lambda c: c[1])


def region_label(region: str) -> str:
    """``India (+91)`` for ``IN``: how the mobile hint names the organization's default region."""
    region = (region or "").upper()
    name = _ui_locale().territories.get(region, region)
    code = phonenumbers.country_code_for_region(region)
    return f"{name} (+{code})" if code else name


class ContactForm(forms.ModelForm):
    currency = forms.ChoiceField(label=_("Currency"), required=False)

    class Meta:
        model = Contact
        fields = CONTACT_FIELDS
        widgets = {
            "billing_address": forms.Textarea(attrs={"rows": 3}),
            "notes": forms.Textarea(attrs={"rows": 3}),
            "payment_terms_days": forms.NumberInput(attrs={"min": 0, "max": 365}),
        }

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization
        base = gettext("Base currency (%(currency)s)") % {"currency": organization.currency}
        self.fields["currency"].choices = [("", base), *currency_choices(include=self.instance.currency)]
        self.fields["display_name"].widget.attrs.update(autofocus=True)


class ContactPersonForm(forms.ModelForm):
    """One person of a contact. ``id`` says which existing person a row edits (none: a new one)."""

    id = forms.IntegerField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = ContactPerson
        fields = PERSON_FIELDS
        widgets = {
            "phone": forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
            "mobile": forms.TextInput(attrs={"type": "tel", "autocomplete": "off", "aria-describedby": "mobile-hint"}),
            "salutation": forms.TextInput(attrs={"size": 5}),
        }


class BaseContactPersonFormSet(forms.BaseFormSet):
    def clean(self) -> None:
        if any(self.errors):
            return
        primaries = [
            form
            for form in self.forms
            if form.has_changed() or form.initial
            if form not in self.deleted_forms and form.cleaned_data.get("is_primary")
        ]
        if len(primaries) > 1:
            raise ValidationError(gettext("Mark only one person as the primary contact."))


ContactPersonFormSet = forms.formset_factory(
    ContactPersonForm, formset=BaseContactPersonFormSet, extra=1, can_delete=True, max_num=50, validate_max=True
)


def person_initial(contact: Contact) -> list[dict[str, Any]]:
    return [{"id": p.pk, **{name: getattr(p, name) for name in PERSON_FIELDS}} for p in contact.persons.all()]


def _attach(form: forms.BaseForm, exc: ValidationError) -> None:
    """Show a service's ValidationError on the form field it names (or above the form)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


def contact_forms_save(
    *,
    form: ContactForm,
    formset: BaseContactPersonFormSet,
    organization: Organization,
    contact_type: str = "",
    contact: Contact | None = None,
) -> Contact | None:
    """Create (``contact_type``) or update (``contact``) a contact and its persons, all or nothing.

    Both forms must be valid. A ValidationError raised by a service is attached to the field of the
    form it came from, every write of this call is rolled back and None is returned.
    """
    current: forms.BaseForm = form
    try:
        with transaction.atomic():
            data = {name: form.cleaned_data[name] for name in CONTACT_FIELDS}
            if contact is None:
                saved = contact_create(organization=organization, contact_type=contact_type, **data)
            else:
                saved = contact_update(contact=contact, **data)

            for person_form in formset.deleted_forms:
                current = person_form
                person = _person_of(saved, person_form.cleaned_data.get("id"))
                if person is not None:
                    contact_person_delete(person=person)

            for person_form in formset.forms:
                current = person_form
                if person_form in formset.deleted_forms or not person_form.has_changed():
                    continue
                fields = {name: person_form.cleaned_data[name] for name in PERSON_FIELDS}
                person_id = person_form.cleaned_data.get("id")
                if person_id:
                    # Read afresh: an earlier row may have just moved the primary flag.
                    person = _person_of(saved, person_id)
                    if person is None:
                        raise ValidationError(gettext("This person was removed meanwhile; reload the page."))
                    contact_person_update(person=person, **fields)
                else:
                    contact_person_create(contact=saved, **fields)
    except ValidationError as exc:
        _attach(current, exc)
        return None
    return saved


def _person_of(contact: Contact, person_id: int | None) -> ContactPerson | None:
    if not person_id:
        return None
    return ContactPerson.objects.filter(contact=contact, pk=person_id).select_related("contact__organization").first()


class StatementPeriodForm(forms.Form):
    from_date = forms.DateField(
        label=_("From"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"), required=False
    )
    to_date = forms.DateField(
        label=_("To"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"), required=False
    )

    def __init__(self, data: Any = None, *, today: datetime.date) -> None:
        # Default period: the current month up to today, in the organization's time zone.
        self.default_from = today.replace(day=1)
        self.default_to = today
        super().__init__(data, initial={"from_date": self.default_from, "to_date": self.default_to})

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        cleaned["from_date"] = cleaned.get("from_date") or self.default_from
        cleaned["to_date"] = cleaned.get("to_date") or self.default_to
        if cleaned["from_date"] > cleaned["to_date"]:
            raise ValidationError(gettext("The start date must be on or before the end date."))
        return cleaned

    def period(self) -> tuple[datetime.date, datetime.date]:
        """The period asked for when valid, else the default one."""
        if self.is_bound and self.is_valid():
            return self.cleaned_data["from_date"], self.cleaned_data["to_date"]
        return self.default_from, self.default_to

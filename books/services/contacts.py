from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from books.models import Contact, ContactPerson, Organization
from books.phone import phone_normalize

CONTACT_FIELDS = (
    "display_name",
    "company_name",
    "email",
    "currency",
    "payment_terms_days",
    "billing_address",
    "tax_id",
    "language",
    "whatsapp_enabled",
    "notes",
    "is_active",
)
PERSON_FIELDS = (
    "salutation",
    "first_name",
    "last_name",
    "email",
    "phone",
    "mobile",
    "is_primary",
    "whatsapp_enabled",
    "language",
)


def _normalize_phones(data: Mapping[str, Any], *, organization: Organization) -> dict[str, Any]:
    cleaned = dict(data)
    errors = {}
    for field in ("phone", "mobile"):
        if field in cleaned:
            try:
                cleaned[field] = phone_normalize(cleaned[field] or "", region=organization.phone_region)
            except ValidationError as exc:
                errors[field] = exc.messages
    if errors:
        raise ValidationError(errors)
    return cleaned


@transaction.atomic
def contact_create(
    *,
    organization: Organization,
    contact_type: str,
    display_name: str,
    persons: Iterable[Mapping[str, Any]] = (),
    **fields: Any,
) -> Contact:
    """Create a customer or vendor and its contact persons; the first person is primary unless one says so."""
    unknown = set(fields) - set(CONTACT_FIELDS)
    if unknown:
        raise TypeError(f"unknown contact fields: {sorted(unknown)}")
    contact = Contact(organization=organization, contact_type=contact_type, display_name=display_name, **fields)
    contact.full_clean()
    contact.save()
    persons = list(persons)
    if persons and not any(p.get("is_primary") for p in persons):
        persons[0] = {**persons[0], "is_primary": True}
    for person in persons:
        contact_person_create(contact=contact, **person)
    return contact


def contact_update(*, contact: Contact, **fields: Any) -> Contact:
    unknown = set(fields) - set(CONTACT_FIELDS)
    if unknown:
        raise TypeError(f"unknown contact fields: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(contact, name, value)
    contact.full_clean()
    contact.save()
    return contact


@transaction.atomic
def contact_person_create(*, contact: Contact, **fields: Any) -> ContactPerson:
    """Add a person to a contact. Phone numbers are stored in E.164 or refused with a message."""
    fields = _normalize_phones(fields, organization=contact.organization)
    if not contact.persons.exists():
        fields["is_primary"] = True
    elif fields.get("is_primary"):
        contact.persons.filter(is_primary=True).update(is_primary=False)
    person = ContactPerson(contact=contact, **fields)
    person.full_clean(validate_constraints=False)
    person.save()
    return person


@transaction.atomic
def contact_person_update(*, person: ContactPerson, **fields: Any) -> ContactPerson:
    fields = _normalize_phones(fields, organization=person.contact.organization)
    if fields.get("is_primary") and not person.is_primary:
        person.contact.persons.filter(is_primary=True).update(is_primary=False)
    if fields.get("is_primary") is False and person.is_primary:
        fields.pop("is_primary")  # a contact keeps a primary person; choose another one instead
    for name, value in fields.items():
        setattr(person, name, value)
    person.full_clean(validate_constraints=False)
    person.save()
    return person


@transaction.atomic
def contact_person_delete(*, person: ContactPerson) -> None:
    contact = person.contact
    was_primary = person.is_primary
    person.delete()
    if was_primary:
        successor = contact.persons.order_by("id").first()
        if successor is not None:
            successor.is_primary = True
            successor.save(update_fields=["is_primary"])

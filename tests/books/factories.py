import datetime
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from books.choices import ContactType, DocumentKind
from books.models import Contact, ContactPerson, Organization
from books.services.contacts import contact_create
from books.services.documents import AllocationInput, LineInput, document_create
from books.services.organizations import membership_add, organization_create


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pass-1234-word")


def make_organization(*, name: str = "Acme Books", user=None, role: str = "Admin", **kwargs) -> Organization:
    """An Indian organization (INR, Asia/Kolkata) unless told otherwise; ``user`` joins it with ``role``."""
    defaults = {"country": "IN", "currency": "INR", "time_zone": "Asia/Kolkata"}
    organization = organization_create(name=name, **{**defaults, **kwargs})
    if user is not None:
        membership_add(organization=organization, user=user, role_name=role)
    return organization


_phone_seq = iter(range(10_000, 99_999))


def make_contact(
    organization: Organization,
    *,
    contact_type: str = ContactType.CUSTOMER,
    name: str | None = None,
    whatsapp: bool = True,
    mobile: str | None = None,
    persons: int = 1,
) -> Contact:
    n = next(_phone_seq)
    person_list = [
        {
            "first_name": f"Person{i}",
            "last_name": f"C{n}",
            "mobile": mobile if (mobile and i == 0) else f"98200{n:05d}"[:10] if i == 0 else f"98201{n:05d}"[:10],
            "whatsapp_enabled": whatsapp,
            "email": f"p{i}.{n}@example.com",
        }
        for i in range(persons)
    ]
    return contact_create(
        organization=organization,
        contact_type=contact_type,
        display_name=name or f"{contact_type.title()} {n}",
        whatsapp_enabled=whatsapp,
        persons=person_list,
    )


def make_document(
    organization: Organization,
    *,
    kind: str = DocumentKind.INVOICE,
    contact: Contact | None = None,
    date: datetime.date | None = None,
    due_date: datetime.date | None = None,
    lines: list[LineInput] | None = None,
    issue: bool = True,
    amount: Decimal | None = None,
    allocations: list[AllocationInput] = (),
    share_with: list[ContactPerson] | None = None,
):
    from books.kinds import KINDS

    spec = KINDS[kind]
    contact = contact or make_contact(organization, contact_type=spec.party)
    return document_create(
        organization=organization,
        kind=kind,
        contact=contact,
        date=date or organization.today(),
        due_date=due_date,
        lines=lines
        if lines is not None
        else ([LineInput("Consulting", Decimal("2"), Decimal("1500.00"), Decimal("18"))] if spec.has_lines else []),
        issue=issue,
        amount=amount,
        allocations=allocations,
        share_with=share_with if share_with is not None else list(contact.persons.all()),
    )

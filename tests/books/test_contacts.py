import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from books.choices import ContactType
from books.models import ContactPerson, Role
from books.permissions import BUILTIN_ROLES, Perm
from books.phone import is_valid_e164, phone_display, phone_normalize
from books.services.contacts import contact_create, contact_person_create, contact_person_delete, contact_person_update

from .factories import UserFactory, make_contact, make_organization

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("9820012345", "IN", "+919820012345"),
        ("098200 12345", "IN", "+919820012345"),
        ("+91 98200-12345", "US", "+919820012345"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("612 34 56 78", "ES", "+34612345678"),
        ("", "IN", ""),
    ],
)
def test_phone_numbers_are_stored_in_e164_using_the_default_region(raw, region, expected):
    assert phone_normalize(raw, region=region) == expected


@pytest.mark.parametrize("raw", ["12345", "not a phone", "+91 12"])
def test_an_invalid_phone_number_is_refused_with_a_clear_message(raw):
    with pytest.raises(ValidationError) as exc:
        phone_normalize(raw, region="IN")
    assert raw in exc.value.messages[0]
    assert exc.value.code == "invalid_phone"


def test_phone_display_and_validity():
    assert phone_display("+919820012345") == "+91 98200 12345"
    assert is_valid_e164("+919820012345")
    assert not is_valid_e164("98200")
    assert phone_display("98200") == "98200"


def test_a_bare_number_in_an_indian_organization_becomes_e164():
    org = make_organization()
    contact = contact_create(
        organization=org,
        contact_type=ContactType.CUSTOMER,
        display_name="Sharma Textiles",
        persons=[{"first_name": "Ravi", "mobile": "9820012345", "whatsapp_enabled": True}],
    )
    person = contact.persons.get()
    assert person.mobile == "+919820012345"
    assert person.is_primary


def test_an_invalid_number_is_refused_and_nothing_is_saved():
    org = make_organization()
    with pytest.raises(ValidationError) as exc:
        contact_create(
            organization=org,
            contact_type=ContactType.CUSTOMER,
            display_name="Broken",
            persons=[{"first_name": "A", "mobile": "12345"}],
        )
    assert "mobile" in exc.value.message_dict
    assert not org.contacts.exists()


def test_a_contact_keeps_exactly_one_primary_person():
    org = make_organization()
    contact = make_contact(org, persons=2)
    first, second = contact.persons.order_by("id")
    assert (first.is_primary, second.is_primary) == (True, False)

    contact_person_update(person=second, is_primary=True)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.is_primary, second.is_primary) == (False, True)

    contact_person_delete(person=second)
    first.refresh_from_db()
    assert first.is_primary

    added = contact_person_create(contact=contact, first_name="New", is_primary=True)
    first.refresh_from_db()
    assert added.is_primary and not first.is_primary


def test_the_database_refuses_two_primary_persons():
    org = make_organization()
    contact = make_contact(org)
    with pytest.raises(IntegrityError):
        ContactPerson.objects.create(contact=contact, first_name="Second", is_primary=True)


def test_every_organization_gets_the_builtin_roles_and_the_owner_is_admin():
    user = UserFactory()
    org = make_organization(user=user)
    assert set(Role.objects.filter(organization=org).values_list("name", flat=True)) == set(BUILTIN_ROLES)
    membership = user.memberships.get(organization=org)
    assert membership.role.name == "Admin"
    assert membership.has_perm(Perm.CUSTOMERS_COMMUNICATION)
    assert membership.has_perm(Perm.VENDORS_COMMUNICATION)


def test_staff_role_cannot_manage_settings_and_an_inactive_membership_grants_nothing():
    user = UserFactory()
    org = make_organization()
    from books.services.organizations import membership_add

    membership = membership_add(organization=org, user=user, role_name="Staff")
    assert membership.has_perm(Perm.SALES_VIEW)
    assert not membership.has_perm(Perm.SETTINGS_MANAGE)
    membership.is_active = False
    assert not membership.has_perm(Perm.SALES_VIEW)


def test_an_invalid_time_zone_is_refused():
    with pytest.raises(ValidationError) as exc:
        make_organization(time_zone="Mars/Olympus")
    assert "time_zone" in exc.value.message_dict


def test_every_customer_kind_is_in_the_sales_menu_once():
    from books.choices import ContactType
    from books.kinds import KINDS, SALES_KINDS

    assert sorted(s.kind for s in SALES_KINDS) == sorted(k for k, s in KINDS.items() if s.party == ContactType.CUSTOMER)

from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.messages import get_messages
from django.urls import reverse

from books.choices import ContactType, DocumentKind, DocumentStatus
from books.models import Contact, ContactPerson, Document, Organization, Role
from books.services.documents import AllocationInput
from books.services.notifications import notification_create, notifications_mark_read
from books.services.organizations import membership_add

from .factories import UserFactory, make_contact, make_document, make_organization

pytestmark = pytest.mark.django_db

BOOKS_MODELS = sorted(
    (model for model in admin.site._registry if model._meta.app_label == "books"), key=lambda m: m.__name__
)


def changelist(model) -> str:
    return reverse(f"admin:books_{model._meta.model_name}_changelist")


def change(obj) -> str:
    return reverse(f"admin:books_{obj._meta.model_name}_change", args=[obj.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def books():
    """Two organizations with a paid-in-part invoice and a read notification each: a row in every books table."""
    data = {}
    for name in ("Own Traders", "Foreign Traders"):
        organization = make_organization(name=name)
        customer = make_contact(organization, name=f"{name} customer")
        invoice = make_document(organization, contact=customer)
        payment = make_document(
            organization,
            kind=DocumentKind.CUSTOMER_PAYMENT,
            contact=customer,
            amount=Decimal("1000.00"),
            allocations=[AllocationInput(invoice, Decimal("1000.00"))],
        )
        notification_create(organization=organization, kind="test.notice", title=f"{name} notice")
        notifications_mark_read(user=UserFactory(), organization=organization)
        data[name] = {"organization": organization, "customer": customer, "invoice": invoice, "payment": payment}
    return data["Own Traders"], data["Foreign Traders"]


@pytest.fixture
def staff_client(client, books):
    """A staff user (not superuser) who is Admin of "Own Traders" only."""
    own, _foreign = books
    user = UserFactory(username="org-admin", is_staff=True)
    membership_add(organization=own["organization"], user=user, role_name="Admin")
    client.force_login(user)
    return client


def test_every_books_model_is_registered():
    assert set(BOOKS_MODELS) == set(apps.get_app_config("books").get_models())


@pytest.mark.parametrize("model", BOOKS_MODELS, ids=lambda m: m.__name__)
def test_every_changelist_renders_for_a_superuser(admin_client, books, model):
    response = admin_client.get(changelist(model))

    assert response.status_code == 200


@pytest.mark.parametrize("model", BOOKS_MODELS, ids=lambda m: m.__name__)
def test_every_changelist_and_change_page_renders_for_a_scoped_staff_user(staff_client, books, model):
    response = staff_client.get(changelist(model))
    obj = model.objects.filter(pk__in=response.context["cl"].queryset.values("pk")).first()

    assert response.status_code == 200
    assert obj is not None
    assert staff_client.get(change(obj)).status_code == 200


def test_a_superuser_sees_every_organization(admin_client, books):
    own, _foreign = books

    response = admin_client.get(changelist(Document))

    assert own["invoice"].number in response.text
    assert {d.organization.name for d in response.context["cl"].queryset} == {"Own Traders", "Foreign Traders"}


def test_a_scoped_staff_user_sees_only_their_organizations_rows(staff_client, books):
    own, _foreign = books

    documents = staff_client.get(changelist(Document)).context["cl"].queryset
    contacts = staff_client.get(changelist(Contact)).context["cl"].queryset
    organizations = staff_client.get(changelist(Organization)).context["cl"].queryset

    assert set(documents) == {own["invoice"], own["payment"]}
    assert set(contacts) == {own["customer"]}
    assert list(organizations) == [own["organization"]]


@pytest.mark.parametrize("key", ["invoice", "customer", "organization"])
def test_another_organizations_row_does_not_exist_for_a_scoped_staff_user(staff_client, books, key):
    _own, foreign = books

    response = staff_client.get(change(foreign[key]))

    assert response.status_code == 302
    assert response.url == reverse("admin:index")
    assert any("doesn’t exist" in m for m in messages_of(response))


def test_foreign_key_choices_are_limited_to_the_users_organizations(staff_client, books):
    own, _foreign = books

    form = staff_client.get(reverse("admin:books_contact_add")).context["adminform"].form

    assert list(form.fields["organization"].queryset) == [own["organization"]]


def test_a_scoped_staff_user_cannot_move_a_role_to_another_organization(staff_client, books):
    _own, foreign = books

    response = staff_client.post(
        reverse("admin:books_role_add"),
        {"organization": foreign["organization"].pk, "name": "Auditor", "permissions": ["sales.view"]},
    )

    assert response.status_code == 200
    assert "organization" in response.context["adminform"].form.errors
    assert not Role.objects.filter(name="Auditor").exists()


def test_a_staff_user_without_settings_permission_sees_nothing(client, books):
    own, _foreign = books
    user = UserFactory(username="accountant", is_staff=True)
    membership_add(organization=own["organization"], user=user, role_name="Accountant")
    client.force_login(user)

    assert client.get(changelist(Document)).status_code == 403
    assert client.get(change(own["invoice"])).status_code in (302, 403)


def test_mark_as_sent_issues_drafts(admin_client, books):
    own, _foreign = books
    draft = make_document(own["organization"], contact=own["customer"], issue=False)

    response = admin_client.post(
        changelist(Document), {"action": "mark_as_sent", "_selected_action": [draft.pk]}, follow=True
    )

    draft.refresh_from_db()
    assert draft.status == DocumentStatus.SENT
    assert "1 document marked as sent." in messages_of(response)


def test_void_reports_what_the_service_refuses(staff_client, books):
    own, _foreign = books
    spare = make_document(own["organization"], contact=own["customer"])

    response = staff_client.post(
        changelist(Document),
        {"action": "void", "_selected_action": [own["invoice"].pk, spare.pk]},
        follow=True,
    )

    own["invoice"].refresh_from_db()
    spare.refresh_from_db()
    assert own["invoice"].status == DocumentStatus.PARTIALLY_PAID
    assert spare.status == DocumentStatus.VOID
    levels = {str(m): m.level_tag for m in get_messages(response.wsgi_request)}
    assert levels[
        f"{own['invoice'].number}: Remove the payments and credits applied to {own['invoice'].number} first."
    ] == ("error")
    assert levels["1 document voided."] == "success"


def test_actions_cannot_reach_another_organizations_documents(staff_client, books):
    _own, foreign = books

    staff_client.post(changelist(Document), {"action": "void", "_selected_action": [foreign["payment"].pk]})

    foreign["payment"].refresh_from_db()
    assert foreign["payment"].status == DocumentStatus.PAID


def test_documents_cannot_be_added_and_totals_are_read_only(admin_client, books):
    own, _foreign = books

    response = admin_client.get(change(own["invoice"]))
    form = response.context["adminform"].form

    assert admin_client.get(reverse("admin:books_document_add")).status_code == 403
    assert set(form.fields) == {"reference_number", "notes", "terms"}


def test_editing_a_documents_notes_goes_through_the_service(admin_client, books):
    own, _foreign = books
    invoice = own["invoice"]

    data = {"reference_number": "PO-1", "notes": "Thanks!", "terms": ""}

    response = admin_client.post(change(invoice), {**inline_management_data(admin_client, invoice), **data})

    assert response.status_code == 302
    invoice.refresh_from_db()
    assert (invoice.reference_number, invoice.notes, invoice.total) == ("PO-1", "Thanks!", Decimal("3540.00"))


def inline_management_data(client, obj) -> dict:
    """The management forms of the change page's inlines, as the browser would post them."""
    data = {}
    for inline in client.get(change(obj)).context["inline_admin_formsets"]:
        management_form = inline.formset.management_form
        data.update({management_form.add_prefix(name): value for name, value in management_form.initial.items()})
    return data


def contact_post_data(organization, *, mobile: str) -> dict:
    return {
        "organization": organization.pk,
        "contact_type": ContactType.CUSTOMER,
        "display_name": "Sharma Textiles",
        "payment_terms_days": 15,
        "language": "en",
        "whatsapp_enabled": "on",
        "is_active": "on",
        "persons-TOTAL_FORMS": 1,
        "persons-INITIAL_FORMS": 0,
        "persons-MIN_NUM_FORMS": 0,
        "persons-MAX_NUM_FORMS": 1000,
        "persons-0-first_name": "Rajesh",
        "persons-0-mobile": mobile,
        "persons-0-whatsapp_enabled": "on",
        "persons-0-language": "en",
    }


def test_the_contact_form_stores_a_typed_mobile_in_e164(staff_client, books):
    own, _foreign = books

    response = staff_client.post(
        reverse("admin:books_contact_add"), contact_post_data(own["organization"], mobile="98200 12345")
    )

    assert response.status_code == 302
    person = ContactPerson.objects.get(contact__display_name="Sharma Textiles")
    assert (person.mobile, person.is_primary) == ("+919820012345", True)


def test_the_contact_form_shows_an_invalid_mobile_on_the_field(staff_client, books):
    own, _foreign = books

    response = staff_client.post(
        reverse("admin:books_contact_add"), contact_post_data(own["organization"], mobile="98200")
    )

    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.forms[0].errors
    assert "is not a valid phone number" in errors["mobile"][0]
    assert not Contact.objects.filter(display_name="Sharma Textiles").exists()


def test_the_contact_person_form_normalizes_with_the_organizations_region(admin_client, books):
    own, _foreign = books
    person = own["customer"].persons.get()

    response = admin_client.post(
        change(person),
        {
            "first_name": "Rajesh",
            "mobile": "9876543210",
            "phone": "022 4012 3456",
            "language": "en",
            "is_primary": "on",
        },
    )

    assert response.status_code == 302
    person.refresh_from_db()
    assert (person.mobile, person.phone) == ("+919876543210", "+912240123456")


def test_a_legacy_invalid_mobile_does_not_block_other_edits(admin_client, books):
    own, _foreign = books
    person = own["customer"].persons.get()
    ContactPerson.objects.filter(pk=person.pk).update(mobile="98200")

    response = admin_client.post(
        change(person), {"first_name": "Renamed", "mobile": "98200", "language": "en", "is_primary": "on"}
    )

    assert response.status_code == 302
    person.refresh_from_db()
    assert (person.first_name, person.mobile) == ("Renamed", "98200")


def test_making_another_person_primary_moves_the_flag(admin_client, books):
    own, _foreign = books
    customer = make_contact(own["organization"], persons=2)
    _first, second = customer.persons.order_by("id")

    response = admin_client.post(
        change(second),
        {"first_name": second.first_name, "mobile": second.mobile, "language": "en", "is_primary": "on"},
    )

    assert response.status_code == 302
    assert list(customer.persons.filter(is_primary=True)) == [second]


def test_adding_an_organization_creates_its_builtin_roles(admin_client):
    response = admin_client.post(
        reverse("admin:books_organization_add"),
        {
            "name": "New Co",
            "country": "IN",
            "currency": "INR",
            "time_zone": "Asia/Kolkata",
            "phone_region": "IN",
            "language": "en",
            "date_format": "dd/MM/yyyy",
        },
    )

    assert response.status_code == 302
    organization = Organization.objects.get(name="New Co")
    assert set(organization.roles.values_list("name", flat=True)) == {"Admin", "Accountant", "Staff"}


def test_builtin_roles_cannot_be_deleted(staff_client, books):
    own, _foreign = books
    admin_role = own["organization"].roles.get(name="Admin")

    response = staff_client.post(reverse("admin:books_role_delete", args=[admin_role.pk]), {"post": "yes"})

    assert response.status_code == 403
    assert Role.objects.filter(pk=admin_role.pk).exists()

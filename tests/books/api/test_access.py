"""Who reaches what: token auth, organization_id, tenant isolation and role permissions."""

import pytest
from rest_framework.test import APIClient

from books.choices import ContactType
from books.kinds import KINDS, KindSpec
from books.models import Membership, Organization, Role
from books.permissions import Perm
from books.services.organizations import membership_add
from tests.books.api.builders import ID_FIELDS, KIND_PARAMS, client_for, make_any, valid_body
from tests.books.factories import UserFactory, make_contact, make_document, make_organization

pytestmark = pytest.mark.django_db


# --- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/invoices", "/api/v1/contacts", "/api/v1/bills/1", "/api/v1/contacts/1/contactpersons"]
)
def test_it_answers_401_without_credentials(org: Organization, path: str):
    response = APIClient().get(path)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_it_answers_401_to_an_unknown_token(org: Organization):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")

    assert client.get("/api/v1/invoices").status_code == 401


def test_a_token_authenticates_the_user(api: APIClient, org: Organization):
    invoice = make_document(org)

    response = api.get("/api/v1/invoices")

    assert response.status_code == 200
    assert [row["invoice_id"] for row in response.json()["results"]] == [invoice.pk]


def test_a_signed_in_browser_session_also_works(client, user, org: Organization):
    client.force_login(user)

    assert client.get("/api/v1/invoices").status_code == 200
    assert client.get("/api/v1/contacts", HTTP_ACCEPT="text/html").status_code == 200  # browsable API


# --- organization_id --------------------------------------------------------------------------


def test_organization_id_is_optional_with_one_organization(api: APIClient, org: Organization):
    invoice = make_document(org)

    assert api.get("/api/v1/invoices").json()["count"] == 1
    assert api.get(f"/api/v1/invoices?organization_id={org.pk}").json()["results"][0]["invoice_id"] == invoice.pk


def test_organization_id_is_required_with_several_organizations(api: APIClient, user, org: Organization):
    make_organization(name="Second", user=user)

    response = api.get("/api/v1/invoices")

    assert response.status_code == 400
    assert response.json() == {"organization_id": ["This parameter is required: you belong to several organizations."]}


def test_organization_id_selects_one_of_several(api: APIClient, user, org: Organization):
    second = make_organization(name="Second", user=user)
    here, there = make_document(org), make_document(second)

    first_ids = [r["invoice_id"] for r in api.get(f"/api/v1/invoices?organization_id={org.pk}").json()["results"]]
    second_ids = [r["invoice_id"] for r in api.get(f"/api/v1/invoices?organization_id={second.pk}").json()["results"]]

    assert (first_ids, second_ids) == ([here.pk], [there.pk])
    created = api.post(
        f"/api/v1/contacts?organization_id={second.pk}", {"contact_name": "New", "contact_type": "customer"}
    )
    assert created.status_code == 201
    assert second.contacts.filter(pk=created.json()["contact_id"]).exists()


@pytest.mark.parametrize("organization_id", ["foreign", "999999", "abc", "-1", "1.5", "99999999999999999999999"])
def test_an_organization_the_user_is_not_in_is_not_found(
    api: APIClient, org: Organization, other_org: Organization, organization_id: str
):
    value = str(other_org.pk) if organization_id == "foreign" else organization_id

    response = api.get(f"/api/v1/invoices?organization_id={value}")

    assert response.status_code == 404


def test_an_inactive_membership_hides_the_organization(api: APIClient, user, org: Organization):
    Membership.objects.filter(user=user, organization=org).update(is_active=False)

    assert api.get(f"/api/v1/invoices?organization_id={org.pk}").status_code == 404
    assert api.get("/api/v1/invoices").status_code == 403


def test_a_user_without_organizations_is_forbidden():
    client = client_for(UserFactory())

    assert client.get("/api/v1/contacts").status_code == 403


# --- tenant isolation -------------------------------------------------------------------------


@pytest.mark.parametrize("spec", KIND_PARAMS)
def test_another_organizations_documents_are_not_found(
    api: APIClient, org: Organization, other_org: Organization, spec: KindSpec
):
    foreign = make_any(other_org, spec)
    own_contact = make_contact(org, contact_type=spec.party)
    base = f"/api/v1/{spec.api_resource}/{foreign.pk}"

    assert api.get(base).status_code == 404
    assert api.get(f"{base}/pdf").status_code == 404
    assert api.patch(base, {"notes": "mine now"}, format="json").status_code == 404
    assert api.put(base, valid_body(spec, own_contact), format="json").status_code == 404
    assert api.get(f"/api/v1/{spec.api_resource}").json()["count"] == 0
    assert api.get(f"/api/v1/{spec.api_resource}?{spec.party}_id={foreign.contact_id}").json()["count"] == 0
    foreign.refresh_from_db()
    assert foreign.notes == ""


@pytest.mark.parametrize("spec", KIND_PARAMS)
def test_a_document_id_of_another_kind_is_not_found(api: APIClient, org: Organization, spec: KindSpec):
    other_kind = next(s for s in KINDS.values() if s.kind != spec.kind)
    document = make_any(org, other_kind)

    assert api.get(f"/api/v1/{spec.api_resource}/{document.pk}").status_code == 404


def test_another_organizations_contacts_are_not_found(api: APIClient, org: Organization, other_org: Organization):
    foreign = make_contact(other_org)
    person = foreign.persons.get()
    base = f"/api/v1/contacts/{foreign.pk}"
    persons = f"{base}/contactpersons"

    assert api.get(base).status_code == 404
    assert api.patch(base, {"contact_name": "Mine"}, format="json").status_code == 404
    assert api.put(base, {"contact_name": "Mine"}, format="json").status_code == 404
    assert api.get(f"{base}/statements").status_code == 404
    assert api.get(f"{base}/statements/pdf").status_code == 404
    assert api.get(persons).status_code == 404
    assert api.post(persons, {"first_name": "Eve"}, format="json").status_code == 404
    assert api.get(f"{persons}/{person.pk}").status_code == 404
    assert api.patch(f"{persons}/{person.pk}", {"first_name": "Eve"}, format="json").status_code == 404
    assert api.put(f"{persons}/{person.pk}", {"first_name": "Eve"}, format="json").status_code == 404
    assert api.delete(f"{persons}/{person.pk}").status_code == 404
    assert api.get("/api/v1/contacts").json()["count"] == 0
    foreign.refresh_from_db()
    person.refresh_from_db()
    assert (foreign.display_name, person.first_name) != ("Mine", "Eve")


def test_a_person_is_reached_only_through_its_own_contact(api: APIClient, org: Organization):
    contact, other = make_contact(org), make_contact(org)
    person = other.persons.get()

    assert api.get(f"/api/v1/contacts/{contact.pk}/contactpersons/{person.pk}").status_code == 404
    assert api.delete(f"/api/v1/contacts/{contact.pk}/contactpersons/{person.pk}").status_code == 404


# --- roles ------------------------------------------------------------------------------------


def member_client(org: Organization, *perms: Perm) -> APIClient:
    """A client for a new user whose role in ``org`` holds exactly ``perms``."""
    role = Role.objects.create(organization=org, name="Custom " + "-".join(perms), permissions=list(perms))
    user = UserFactory()
    membership_add(organization=org, user=user, role_name=role.name)
    return client_for(user)


VIEW_ONLY = (Perm.CUSTOMERS_VIEW, Perm.VENDORS_VIEW, Perm.SALES_VIEW, Perm.PURCHASES_VIEW)


@pytest.mark.parametrize("spec", KIND_PARAMS)
def test_a_view_only_role_reads_documents_but_cannot_write_them(org: Organization, spec: KindSpec):
    client = member_client(org, *VIEW_ONLY)
    document = make_any(org, spec)
    contact = make_contact(org, contact_type=spec.party)
    base = f"/api/v1/{spec.api_resource}"

    assert client.get(base).status_code == 200
    assert client.get(f"{base}/{document.pk}").status_code == 200
    assert client.get(f"{base}/{document.pk}/pdf").status_code == 200
    assert client.post(base, valid_body(spec, contact), format="json").status_code == 403
    assert client.patch(f"{base}/{document.pk}", {"notes": "x"}, format="json").status_code == 403
    assert client.put(f"{base}/{document.pk}", valid_body(spec, contact), format="json").status_code == 403


def test_a_view_only_role_reads_contacts_but_cannot_write_them(org: Organization):
    client = member_client(org, *VIEW_ONLY)
    contact = make_contact(org)
    person = contact.persons.get()
    base = f"/api/v1/contacts/{contact.pk}"

    assert client.get("/api/v1/contacts").status_code == 200
    assert client.get(base).status_code == 200
    assert client.get(f"{base}/statements").status_code == 200
    assert client.get(f"{base}/contactpersons").status_code == 200
    assert client.post("/api/v1/contacts", {"contact_name": "X", "contact_type": "customer"}).status_code == 403
    assert client.patch(base, {"contact_name": "X"}, format="json").status_code == 403
    assert client.post(f"{base}/contactpersons", {"first_name": "X"}, format="json").status_code == 403
    assert client.patch(f"{base}/contactpersons/{person.pk}", {"first_name": "X"}, format="json").status_code == 403
    assert client.delete(f"{base}/contactpersons/{person.pk}").status_code == 403


def test_staff_creates_invoices_but_not_customers_or_bills(org: Organization):
    user = UserFactory()
    membership_add(organization=org, user=user, role_name="Staff")
    client = client_for(user)
    customer, vendor = make_contact(org), make_contact(org, contact_type=ContactType.VENDOR)
    sales, purchases = KINDS["invoice"], KINDS["bill"]

    assert client.post("/api/v1/invoices", valid_body(sales, customer), format="json").status_code == 201
    assert client.post("/api/v1/bills", valid_body(purchases, vendor), format="json").status_code == 403
    assert client.post("/api/v1/contacts", {"contact_name": "X", "contact_type": "customer"}).status_code == 403
    assert client.patch(f"/api/v1/contacts/{customer.pk}", {"notes": "x"}, format="json").status_code == 403


def test_a_role_without_the_view_permission_cannot_list(org: Organization):
    client = member_client(org, Perm.CUSTOMERS_VIEW, Perm.SALES_VIEW)
    make_contact(org)
    vendor = make_contact(org, contact_type=ContactType.VENDOR)

    assert client.get("/api/v1/invoices").status_code == 200
    assert client.get("/api/v1/bills").status_code == 403
    assert client.get("/api/v1/vendorpayments").status_code == 403
    assert client.get("/api/v1/contacts?contact_type=vendor").status_code == 403
    assert client.get(f"/api/v1/contacts/{vendor.pk}").status_code == 403
    assert client.get(f"/api/v1/contacts/{vendor.pk}/contactpersons").status_code == 403
    listed = client.get("/api/v1/contacts").json()["results"]
    assert {row["contact_type"] for row in listed} == {"customer"}


def test_a_statement_needs_the_documents_view_permission(org: Organization):
    client = member_client(org, Perm.CUSTOMERS_VIEW)
    contact = make_contact(org)

    assert client.get(f"/api/v1/contacts/{contact.pk}").status_code == 200
    assert client.get(f"/api/v1/contacts/{contact.pk}/statements").status_code == 403


def test_a_role_with_no_contact_permission_is_forbidden_contacts(org: Organization):
    client = member_client(org, Perm.SALES_VIEW)

    assert client.get("/api/v1/contacts").status_code == 403


def test_a_vendors_manager_creates_vendors_but_not_customers(org: Organization):
    client = member_client(org, Perm.VENDORS_VIEW, Perm.VENDORS_MANAGE)

    vendor = client.post("/api/v1/contacts", {"contact_name": "V", "contact_type": "vendor"}, format="json")
    customer = client.post("/api/v1/contacts", {"contact_name": "C", "contact_type": "customer"}, format="json")

    assert (vendor.status_code, customer.status_code) == (201, 403)


def test_ids_in_responses_match_the_kind(api: APIClient, org: Organization):
    for spec in KINDS.values():
        document = make_any(org, spec)
        assert api.get(f"/api/v1/{spec.api_resource}/{document.pk}").json()[ID_FIELDS[spec.kind]] == document.pk

"""``POST /api/v1/{resource}/{id}/whatsapp``: 202 with the queued messages, 400 naming the rule,
Idempotency-Key honoured (same body → the first answer, different body → 409), 404 across
organizations, 403 without the permission; ``GET`` on the same path says what a send would do."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from books.choices import ContactType, DocumentKind, DocumentStatus
from books.kinds import KINDS
from books.models import Role
from books.permissions import Perm
from books.services.organizations import membership_add
from credits.models import LedgerEntry, Reservation
from credits.services import credits_adjust
from templates_mgmt.modules import MODULES
from tests.books.api.builders import client_for
from tests.books.factories import UserFactory, make_contact, make_document, make_organization
from whatsapp.models import Message

from .factories import make_account, make_approved_template

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return UserFactory()


@pytest.fixture
def org(user):
    organization = make_organization(name="Sharma Accounting", user=user, role="Admin")
    credits_adjust(organization=organization, amount=Decimal("50"), note="opening", user=None)
    return organization


@pytest.fixture
def api(user, org):
    return client_for(user)


@pytest.fixture
def account(org):
    return make_account(org)


@pytest.fixture
def invoice(org, account):
    make_approved_template(account, "invoices")
    customer = make_contact(org, name="Ravi Traders", persons=2)
    return make_document(org, contact=customer, share_with=[customer.persons.order_by("pk").first()])


def url(document, resource: str = "invoices") -> str:
    return f"/api/v1/{resource}/{document.pk}/whatsapp"


@pytest.fixture(autouse=True)
def no_dispatch(monkeypatch):
    monkeypatch.setattr("whatsapp.services.dispatch._enqueue", lambda message_id: None)


def test_sending_answers_202_with_the_queued_messages(api, invoice) -> None:
    response = api.post(url(invoice), {}, format="json")
    assert response.status_code == 202, response.content
    data = response.json()
    (message,) = Message.objects.all()
    assert data["message_ids"] == [message.pk] and data["replayed"] is False
    shared = invoice.share_with.get()
    assert data["messages"][0] | {"message_id": 0} == {
        "message_id": 0,
        "contact_person_id": shared.pk,
        "phone": shared.mobile,
        "status": "queued",
        "template_name": "invoices_notice",
        "category": "utility",
    }


@pytest.mark.parametrize("kind", [spec.document_kind for spec in MODULES.values() if spec.document_kind])
def test_every_document_resource_has_the_path(api, org, account, kind) -> None:
    module = next(m for m, spec in MODULES.items() if spec.document_kind == kind)
    make_approved_template(account, module)
    payment = {"amount": Decimal("5000.00")} if KINDS[kind].is_payment else {}
    document = make_document(org, kind=kind, **payment)
    response = api.post(url(document, KINDS[kind].api_resource), {}, format="json")
    assert response.status_code == 202, response.content


def test_chosen_template_and_people(api, invoice, account) -> None:
    other = make_approved_template(account, "invoices", name="invoice_other", default=False)
    persons = list(invoice.contact.persons.order_by("pk").values_list("pk", flat=True))
    response = api.post(url(invoice), {"template_id": other.pk, "contact_persons": persons}, format="json")
    assert response.status_code == 202
    assert sorted(Message.objects.values_list("contact_person_id", flat=True)) == persons
    assert set(Message.objects.values_list("template_name", flat=True)) == {"invoice_other"}


def test_a_payment_reminder_uses_its_module(api, invoice, account) -> None:
    make_approved_template(account, "payment_reminders")
    response = api.post(url(invoice), {"module": "payment_reminders"}, format="json")
    assert response.status_code == 202
    assert Message.objects.get().module == "payment_reminders"


def test_the_same_key_answers_the_same_and_charges_once(api, invoice, org) -> None:
    first = api.post(url(invoice), {}, format="json", HTTP_IDEMPOTENCY_KEY="retry-1")
    again = api.post(url(invoice), {}, format="json", HTTP_IDEMPOTENCY_KEY="retry-1")
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["message_ids"] == first.json()["message_ids"] and again.json()["replayed"] is True
    assert Message.objects.count() == 1
    assert LedgerEntry.objects.filter(organization=org, kind="reservation").count() == 1


def test_the_same_key_with_another_body_is_409(api, invoice) -> None:
    api.post(url(invoice), {}, format="json", HTTP_IDEMPOTENCY_KEY="retry-2")
    person = invoice.contact.persons.order_by("pk").last()
    response = api.post(url(invoice), {"contact_persons": [person.pk]}, format="json", HTTP_IDEMPOTENCY_KEY="retry-2")
    assert response.status_code == 409 and response.json()["code"] == "idempotency_conflict"
    assert Message.objects.count() == 1


def test_a_refusal_is_a_400_naming_the_rule(api, invoice) -> None:
    invoice.status = DocumentStatus.DRAFT
    invoice.save()
    response = api.post(url(invoice), {}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "document_not_sendable" and invoice.number in response.json()["message"]
    assert not Message.objects.exists() and not Reservation.objects.exists()


def test_too_few_credits_is_a_400_with_the_numbers(api, invoice, org) -> None:
    credits_adjust(organization=org, amount=Decimal("-50"), note="spent", user=None)
    response = api.post(url(invoice), {}, format="json")
    data = response.json()
    assert response.status_code == 400 and data["code"] == "insufficient_credits"
    assert Decimal(data["available"]) == 0 and Decimal(data["needed"]) > 0 and data["url"].endswith("/buy/")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"template_id": "x"}, "template_id"),
        ({"template_id": 999999}, "template_id"),
        ({"contact_persons": []}, "contact_persons"),
        ({"contact_persons": [999999]}, "contact_persons"),
        ({"module": "quotes"}, "module"),
    ],
)
def test_bad_bodies_get_field_errors(api, invoice, body, field) -> None:
    response = api.post(url(invoice), body, format="json")
    assert response.status_code == 400 and field in response.json(), response.content


def test_another_organizations_document_or_person_is_not_found(api, invoice, account) -> None:
    other = make_organization(name="Elsewhere")
    foreign = make_document(other)
    assert api.post(url(foreign), {}, format="json").status_code == 404
    stranger = make_contact(other).persons.get()
    response = api.post(url(invoice), {"contact_persons": [stranger.pk]}, format="json")
    assert response.status_code == 400 and "contact_persons" in response.json()


def test_a_role_without_the_permission_is_refused(invoice, org) -> None:
    clerk = UserFactory()
    role = Role.objects.create(organization=org, name="Viewer", permissions=[Perm.SALES_VIEW])
    membership_add(organization=org, user=clerk, role_name=role.name)
    assert client_for(clerk).post(url(invoice), {}, format="json").status_code == 403
    assert not Message.objects.exists()


def test_get_says_what_a_send_would_do(api, invoice, org) -> None:
    response = api.get(url(invoice))
    assert response.status_code == 200
    data = response.json()
    assert data["can_send"] is True and data["refusal"] is None and data["module"] == "invoices"
    assert [r["selected"] for r in data["recipients"]] == [True, False]
    assert invoice.number in data["preview"] and Decimal(data["credits_needed"]) > 0
    assert not Message.objects.exists()


def test_a_customer_statement_and_a_vendor_notice_through_contacts(api, org, account) -> None:
    make_approved_template(account, "customer_statements")
    make_approved_template(account, "vendors")
    customer = make_contact(org, name="Ravi Traders")
    vendor = make_contact(org, contact_type=ContactType.VENDOR, name="Shree Suppliers")
    body = {"module": "customer_statements", "from_date": "2026-04-01", "to_date": "2026-04-30"}
    response = api.post(f"/api/v1/contacts/{customer.pk}/whatsapp", body, format="json")
    assert response.status_code == 202, response.content
    message = Message.objects.get(contact=customer)
    assert (message.statement_from, message.statement_to) == (datetime.date(2026, 4, 1), datetime.date(2026, 4, 30))
    response = api.post(f"/api/v1/contacts/{vendor.pk}/whatsapp", {}, format="json")
    assert response.status_code == 202 and Message.objects.get(contact=vendor).module == "vendors"
    bad = api.post(f"/api/v1/contacts/{vendor.pk}/whatsapp", {"module": "customer_statements"}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "template_wrong_module"


def test_the_paths_are_in_the_schema(api) -> None:
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/v1/invoices/{invoice_id}/whatsapp" in schema["paths"]
    assert "/api/v1/contacts/{contact_id}/whatsapp" in schema["paths"]
    assert any(
        p["name"] == "Idempotency-Key"
        for p in schema["paths"]["/api/v1/invoices/{invoice_id}/whatsapp"]["post"]["parameters"]
    )


def test_each_send_path_has_its_own_operation_and_request_body(api) -> None:
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    ids = [op["operationId"] for path in schema["paths"].values() for op in path.values() if "operationId" in op]
    assert len(ids) == len(set(ids))  # integrators' generated clients name each call after it
    invoice = schema["paths"]["/api/v1/invoices/{invoice_id}/whatsapp"]["post"]
    contact = schema["paths"]["/api/v1/contacts/{contact_id}/whatsapp"]["post"]
    assert (invoice["operationId"], contact["operationId"]) == ("invoices_whatsapp_send", "contacts_whatsapp_send")
    body = invoice["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    modules = schema["components"]["schemas"][body]["properties"]["module"]
    assert (
        "payment_reminders" in str(modules) and "from_date" not in schema["components"]["schemas"][body]["properties"]
    )


def test_a_bill_has_no_whatsapp_path(api, org) -> None:
    bill = make_document(org, kind=DocumentKind.BILL)
    assert api.post(f"/api/v1/bills/{bill.pk}/whatsapp", {}, format="json").status_code == 404

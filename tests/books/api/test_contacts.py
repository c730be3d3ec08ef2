"""Contacts, contact persons and statements through /api/v1/contacts."""

import datetime
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from books.choices import ContactType, DocumentKind
from books.models import Contact, ContactPerson, Organization
from books.services.documents import AllocationInput, LineInput, document_void
from tests.books.api.builders import make_overdue_invoice
from tests.books.factories import make_contact, make_document

pytestmark = pytest.mark.django_db

CONTACT_FIELDS = {
    "contact_id",
    "contact_name",
    "company_name",
    "contact_type",
    "email",
    "currency_code",
    "payment_terms",
    "billing_address",
    "tax_id",
    "language_code",
    "whatsapp_enabled",
    "notes",
    "status",
    "contact_persons",
    "balance",
    "created_time",
    "last_modified_time",
}
PERSON_FIELDS = {
    "contact_person_id",
    "salutation",
    "first_name",
    "last_name",
    "email",
    "phone",
    "mobile",
    "is_primary_contact",
    "whatsapp_enabled",
    "language_code",
}


def test_it_creates_a_contact_with_persons_and_normalizes_their_phones(api: APIClient, org: Organization):
    body = {
        "contact_name": "Acme Traders",
        "company_name": "Acme Traders Pvt Ltd",
        "contact_type": "customer",
        "email": "accounts@acme.example",
        "payment_terms": 30,
        "language_code": "hi",
        "whatsapp_enabled": True,
        "contact_persons": [
            {"first_name": "Asha", "mobile": "98200 12345", "whatsapp_enabled": True},
            {"first_name": "Ravi", "mobile": "+91 98201-12345", "phone": "022 2345 6789", "is_primary_contact": True},
        ],
    }

    response = api.post("/api/v1/contacts", body, format="json")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert set(data) == CONTACT_FIELDS
    assert (data["contact_name"], data["payment_terms"], data["language_code"]) == ("Acme Traders", 30, "hi")
    assert (data["currency_code"], data["status"], data["balance"]) == ("INR", "active", "0.00")
    persons = {p["first_name"]: p for p in data["contact_persons"]}
    assert set(persons["Asha"]) == PERSON_FIELDS
    assert persons["Asha"]["mobile"] == "+919820012345"
    assert persons["Ravi"]["mobile"] == "+919820112345"
    assert persons["Ravi"]["phone"] == "+912223456789"
    assert (persons["Ravi"]["is_primary_contact"], persons["Asha"]["is_primary_contact"]) == (True, False)


def test_an_invalid_phone_is_a_field_error_of_that_person(api: APIClient, org: Organization):
    body = {
        "contact_name": "Acme",
        "contact_type": "customer",
        "contact_persons": [{"first_name": "Asha", "mobile": "98200 12345"}, {"first_name": "Ravi", "mobile": "12"}],
    }

    response = api.post("/api/v1/contacts", body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["contact_persons"]
    assert response.json()["contact_persons"]["1"]["mobile"]
    assert not Contact.objects.filter(display_name="Acme").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"contact_type": "customer"}, "contact_name"),
        ({"contact_name": "X"}, "contact_type"),
        ({"contact_name": "X", "contact_type": "supplier"}, "contact_type"),
        ({"contact_name": "X", "contact_type": "customer", "email": "not-an-email"}, "email"),
        ({"contact_name": "X", "contact_type": "customer", "currency_code": "RUPEE"}, "currency_code"),
        ({"contact_name": "X", "contact_type": "customer", "payment_terms": -1}, "payment_terms"),
        ({"contact_name": "X", "contact_type": "customer", "payment_terms": "soon"}, "payment_terms"),
        ({"contact_name": "X", "contact_type": "customer", "language_code": "klingon"}, "language_code"),
        ({"contact_name": "X", "contact_type": "customer", "status": "asleep"}, "status"),
        ({"contact_name": "X" * 201, "contact_type": "customer"}, "contact_name"),
        ({"contact_name": "X", "contact_type": "customer", "contact_persons": [{"last_name": "Y"}]}, "contact_persons"),
        ({"contact_name": "X", "contact_type": "customer", "contact_persons": "Asha"}, "contact_persons"),
    ],
)
def test_bad_contact_input_is_a_field_error(api: APIClient, org: Organization, body: dict, field: str):
    response = api.post("/api/v1/contacts", body, format="json")

    assert response.status_code == 400
    assert field in response.json()


def test_it_updates_a_contact_with_put_and_patch(api: APIClient, org: Organization):
    contact = make_contact(org, name="Old name")
    base = f"/api/v1/contacts/{contact.pk}"

    put = api.put(base, {"contact_name": "New name", "currency_code": "usd", "contact_type": "vendor"}, format="json")
    patch = api.patch(base, {"status": "inactive", "notes": "Moved"}, format="json")

    assert put.status_code == 200, put.json()
    assert (put.json()["contact_name"], put.json()["currency_code"]) == ("New name", "USD")
    assert put.json()["contact_type"] == "customer"  # the type never changes
    assert (patch.json()["status"], patch.json()["notes"], patch.json()["contact_name"]) == (
        "inactive",
        "Moved",
        "New name",
    )
    assert api.put(base, {"notes": "no name"}, format="json").status_code == 400


def test_it_lists_and_filters_contacts(api: APIClient, org: Organization):
    acme = make_contact(org, name="Acme Traders")
    globex = make_contact(org, name="Globex")
    vendor = make_contact(org, name="Initech Supplies", contact_type=ContactType.VENDOR)
    api.patch(f"/api/v1/contacts/{globex.pk}", {"status": "inactive"}, format="json")

    def names(query: str = "") -> list[str]:
        response = api.get(f"/api/v1/contacts{query}")
        assert response.status_code == 200, response.json()
        return [row["contact_name"] for row in response.json()["results"]]

    assert names() == ["Acme Traders", "Globex", "Initech Supplies"]
    assert names("?contact_type=vendor") == [vendor.display_name]
    assert names("?contact_type=customer&status=active") == [acme.display_name]
    assert names("?status=inactive") == [globex.display_name]
    assert names("?search_text=acme") == [acme.display_name]
    assert names(f"?search_text={vendor.persons.get().mobile[-5:]}") == [vendor.display_name]
    assert api.get("/api/v1/contacts?contact_type=partner").status_code == 400
    assert api.get("/api/v1/contacts?status=deleted").status_code == 400


def test_the_balance_is_what_issued_documents_still_owe(api: APIClient, org: Organization):
    customer = make_contact(org)
    invoice = make_document(org, contact=customer, lines=[LineInput("Audit", Decimal(1), Decimal("1000.00"))])
    make_document(
        org,
        kind=DocumentKind.RETAINER_INVOICE,
        contact=customer,
        lines=[LineInput("Advance", Decimal(1), Decimal("500.00"))],
    )
    make_document(org, contact=customer, issue=False)  # drafts are not owed
    document_void(document=make_document(org, contact=customer))
    make_document(org, kind=DocumentKind.ESTIMATE, contact=customer)
    make_document(
        org,
        kind=DocumentKind.CUSTOMER_PAYMENT,
        contact=customer,
        amount=Decimal("300"),
        allocations=[AllocationInput(invoice, Decimal("300"))],
    )
    bill = make_document(org, kind=DocumentKind.BILL, lines=[LineInput("Rent", Decimal(1), Decimal("250.00"))])

    balances = {row["contact_id"]: row["balance"] for row in api.get("/api/v1/contacts").json()["results"]}

    assert balances[customer.pk] == "1200.00"
    assert balances[bill.contact_id] == "250.00"
    assert api.get(f"/api/v1/contacts/{customer.pk}").json()["balance"] == "1200.00"


def test_contact_list_queries_do_not_grow_with_rows(api: APIClient, org: Organization, django_assert_max_num_queries):
    for i in range(30):
        contact = make_contact(org, persons=2, contact_type=ContactType.VENDOR if i % 3 else ContactType.CUSTOMER)
        make_document(org, kind=DocumentKind.BILL if i % 3 else DocumentKind.INVOICE, contact=contact)

    with django_assert_max_num_queries(6):
        response = api.get("/api/v1/contacts?search_text=Person")

    assert response.json()["count"] == 30
    assert all(row["balance"] == "3540.00" for row in response.json()["results"])


# --- contact persons --------------------------------------------------------------------------


def test_contact_persons_crud(api: APIClient, org: Organization):
    contact = make_contact(org)
    first = contact.persons.get()
    base = f"/api/v1/contacts/{contact.pk}/contactpersons"

    created = api.post(
        base,
        {"salutation": "Ms.", "first_name": "Neha", "mobile": "98765 43210", "is_primary_contact": True},
        format="json",
    )
    assert created.status_code == 201, created.json()
    neha = created.json()
    assert set(neha) == PERSON_FIELDS
    assert (neha["mobile"], neha["is_primary_contact"]) == ("+919876543210", True)

    listed = api.get(base).json()["results"]
    assert [(p["contact_person_id"], p["is_primary_contact"]) for p in listed] == [
        (neha["contact_person_id"], True),
        (first.pk, False),
    ]

    assert api.get(f"{base}/{first.pk}").json()["first_name"] == first.first_name
    patched = api.patch(f"{base}/{first.pk}", {"last_name": "Rao", "whatsapp_enabled": False}, format="json")
    assert (patched.json()["last_name"], patched.json()["whatsapp_enabled"]) == ("Rao", False)
    put = api.put(f"{base}/{first.pk}", {"first_name": "Anil", "language_code": "es"}, format="json")
    assert (put.json()["first_name"], put.json()["language_code"]) == ("Anil", "es")

    assert api.delete(f"{base}/{neha['contact_person_id']}").status_code == 204
    assert [p.pk for p in contact.persons.all()] == [first.pk]
    assert ContactPerson.objects.get(pk=first.pk).is_primary  # the remaining person became primary


def test_contact_person_bad_input_is_a_field_error(api: APIClient, org: Organization):
    contact = make_contact(org)
    base = f"/api/v1/contacts/{contact.pk}/contactpersons"
    person = contact.persons.get()

    invalid_mobile = api.post(base, {"first_name": "Neha", "mobile": "555"}, format="json")
    unparsable = api.patch(f"{base}/{person.pk}", {"phone": "call me"}, format="json")
    no_name = api.post(base, {"mobile": "9876543210"}, format="json")
    bad_email = api.post(base, {"first_name": "N", "email": "nope"}, format="json")

    assert invalid_mobile.status_code == 400 and "mobile" in invalid_mobile.json()
    assert unparsable.status_code == 400 and "phone" in unparsable.json()
    assert no_name.status_code == 400 and "first_name" in no_name.json()
    assert bad_email.status_code == 400 and "email" in bad_email.json()


# --- statements -------------------------------------------------------------------------------


def test_a_statement_lists_documents_with_a_running_balance(api: APIClient, org: Organization):
    customer = make_contact(org)
    before = make_document(
        org, contact=customer, date=datetime.date(2026, 1, 20), lines=[LineInput("A", Decimal(1), Decimal(100))]
    )
    invoice = make_document(
        org, contact=customer, date=datetime.date(2026, 2, 3), lines=[LineInput("B", Decimal(1), Decimal(500))]
    )
    payment = make_document(
        org,
        kind=DocumentKind.CUSTOMER_PAYMENT,
        contact=customer,
        date=datetime.date(2026, 2, 10),
        amount=Decimal(200),
        allocations=[AllocationInput(invoice, Decimal(200))],
    )
    make_document(org, contact=customer, date=datetime.date(2026, 3, 1))  # after the range

    response = api.get(f"/api/v1/contacts/{customer.pk}/statements?from_date=2026-02-01&to_date=2026-02-28")

    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["contact"] == {
        "contact_id": customer.pk,
        "contact_name": customer.display_name,
        "contact_type": "customer",
    }
    assert (data["from_date"], data["to_date"], data["currency_code"]) == ("2026-02-01", "2026-02-28", "INR")
    assert (data["opening_balance"], data["closing_balance"]) == ("100.00", "400.00")
    assert data["entries"] == [
        {
            "date": "2026-02-03",
            "transaction_type": "invoice",
            "document_id": invoice.pk,
            "number": invoice.number,
            "amount": "500.00",
            "payment": "0.00",
            "balance": "600.00",
        },
        {
            "date": "2026-02-10",
            "transaction_type": "customerpayment",
            "document_id": payment.pk,
            "number": payment.number,
            "amount": "0.00",
            "payment": "200.00",
            "balance": "400.00",
        },
    ]
    assert before.pk not in [entry["document_id"] for entry in data["entries"]]


def test_a_statement_defaults_to_this_month(api: APIClient, org: Organization):
    customer = make_contact(org)
    today = org.today()
    make_overdue_invoice(org, contact=customer)

    data = api.get(f"/api/v1/contacts/{customer.pk}/statements").json()

    assert (data["from_date"], data["to_date"]) == (today.replace(day=1).isoformat(), today.isoformat())


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from_date=2026-13-01", "from_date"),
        ("from_date=01/02/2026", "from_date"),
        ("to_date=yesterday", "to_date"),
        ("from_date=2026-03-01&to_date=2026-02-01", "to_date"),
        ("from_date=0001-01-01", "from_date"),
    ],
)
def test_bad_statement_dates_are_field_errors(api: APIClient, org: Organization, query: str, field: str):
    customer = make_contact(org)

    response = api.get(f"/api/v1/contacts/{customer.pk}/statements?{query}")
    pdf = api.get(f"/api/v1/contacts/{customer.pk}/statements/pdf?{query}")

    assert response.status_code == 400
    assert field in response.json()
    assert pdf.status_code == 400
    assert field in pdf.json()


def test_a_vendor_statement_as_pdf(api: APIClient, org: Organization):
    bill = make_document(org, kind=DocumentKind.BILL)

    response = api.get(f"/api/v1/contacts/{bill.contact_id}/statements/pdf?from_date=2026-01-01")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert "statement-vendor-" in response["Content-Disposition"]

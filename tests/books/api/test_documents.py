"""Documents of every kind through /api/v1/<resource>: CRUD, Zoho field names, filters, PDFs."""

import datetime
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from books.choices import ContactType, DocumentKind, DocumentStatus
from books.kinds import KINDS, KINDS_BY_RESOURCE, KindSpec
from books.models import Document, Organization
from books.services.documents import AllocationInput, LineInput, document_void
from tests.books.api.builders import ID_FIELDS, KIND_PARAMS, line_items, make_any, make_overdue_invoice, valid_body
from tests.books.factories import make_contact, make_document

pytestmark = pytest.mark.django_db

INVOICE = KINDS[DocumentKind.INVOICE]


def url(spec: KindSpec, *parts: object) -> str:
    return "/".join([f"/api/v1/{spec.api_resource}", *map(str, parts)])


# --- create / read / update, every kind -------------------------------------------------------


@pytest.mark.parametrize("spec", KIND_PARAMS)
def test_it_creates_reads_and_updates_each_kind(api: APIClient, org: Organization, spec: KindSpec):
    contact = make_contact(org, contact_type=spec.party)

    created = api.post(url(spec), valid_body(spec, contact, reference_number="PO-1"), format="json")
    assert created.status_code == 201, created.json()
    doc_id = created.json()[ID_FIELDS[spec.kind]]
    assert created.json()[spec.number_field] == f"{spec.prefix}000001"
    assert created.json()["status"] == spec.issued_status

    fetched = api.get(url(spec, doc_id))
    assert fetched.status_code == 200
    assert fetched.json() == created.json()

    patched = api.patch(url(spec, doc_id), {"reference_number": "PO-2", "notes": "Thanks"}, format="json")
    assert patched.status_code == 200, patched.json()
    assert (patched.json()["reference_number"], patched.json()["notes"]) == ("PO-2", "Thanks")

    put = api.put(url(spec, doc_id), valid_body(spec, contact, reference_number="PO-3"), format="json")
    assert put.status_code == 200, put.json()
    assert put.json()["reference_number"] == "PO-3"

    listed = api.get(url(spec))
    assert [row[ID_FIELDS[spec.kind]] for row in listed.json()["results"]] == [doc_id]
    assert Document.objects.get(pk=doc_id).kind == spec.kind


def test_the_trailing_slash_is_optional(api: APIClient, org: Organization):
    invoice = make_document(org)

    assert api.get("/api/v1/invoices/").status_code == 200
    assert api.get(f"/api/v1/invoices/{invoice.pk}/").status_code == 200
    assert api.get(f"/api/v1/invoices/{invoice.pk}").status_code == 200


EXPECTED_FIELDS = {
    "invoices": {"invoice_id", "invoice_number", "customer_id", "customer_name", "due_date", "balance", "terms"},
    "salesorders": {"salesorder_id", "salesorder_number", "customer_id", "customer_name", "shipment_date"},
    "estimates": {"estimate_id", "estimate_number", "customer_id", "customer_name", "expiry_date"},
    "retainerinvoices": {"retainerinvoice_id", "retainerinvoice_number", "customer_id", "balance"},
    "creditnotes": {"creditnote_id", "creditnote_number", "customer_id", "balance"},
    "salesreceipts": {"salesreceipt_id", "receipt_number", "customer_id", "payment_mode"},
    "customerpayments": {"payment_id", "payment_number", "customer_id", "amount", "invoices", "unused_amount"},
    "bills": {"bill_id", "bill_number", "vendor_id", "vendor_name", "due_date", "balance"},
    "vendorpayments": {"payment_id", "payment_number", "vendor_id", "vendor_name", "amount", "bills", "unused_amount"},
}
COMMON_FIELDS = {
    "date",
    "currency_code",
    "status",
    "reference_number",
    "notes",
    "contact_persons",
    "created_time",
    "last_modified_time",
}
LINE_FIELDS = {"line_items", "sub_total", "tax_total", "total"}


@pytest.mark.parametrize("spec", KIND_PARAMS)
def test_it_uses_zoho_books_field_names(api: APIClient, org: Organization, spec: KindSpec):
    document = make_any(org, spec)

    data = api.get(url(spec, document.pk)).json()

    expected = EXPECTED_FIELDS[spec.api_resource] | COMMON_FIELDS | (LINE_FIELDS if spec.has_lines else set())
    assert expected <= set(data)
    assert "is_draft" not in data
    if spec.has_lines:
        assert set(data["line_items"][0]) == {
            "line_item_id",
            "name",
            "description",
            "quantity",
            "rate",
            "tax_percentage",
            "item_total",
            "tax_amount",
        }


def test_an_invoice_shows_its_lines_totals_and_persons(api: APIClient, org: Organization):
    contact = make_contact(org, persons=2)
    person = contact.persons.get(is_primary=False)
    body = {
        "customer_id": contact.pk,
        "date": "2026-01-10",
        "line_items": [
            {"name": "Audit", "quantity": 2, "rate": 24250, "description": "FY 2025"},
            {"name": "Filing", "quantity": "1.5", "rate": "333.33", "tax_percentage": 18},
        ],
        "contact_persons": [person.pk],
        "currency_code": "usd",
    }

    data = api.post(url(INVOICE), body, format="json").json()

    assert (data["sub_total"], data["tax_total"], data["total"], data["balance"]) == (
        "49000.00",
        "90.00",
        "49090.00",
        "49090.00",
    )
    assert data["due_date"] == "2026-01-25"  # date + the contact's 15 days of payment terms
    assert data["contact_persons"] == [person.pk]
    assert data["currency_code"] == "USD"
    assert data["customer_name"] == contact.display_name
    assert [(line["name"], line["quantity"], line["item_total"]) for line in data["line_items"]] == [
        ("Audit", "2.000", "48500.00"),
        ("Filing", "1.500", "500.00"),
    ]


def test_is_draft_creates_a_draft(api: APIClient, org: Organization):
    body = valid_body(INVOICE, make_contact(org), is_draft=True)

    data = api.post(url(INVOICE), body, format="json").json()

    assert data["status"] == DocumentStatus.DRAFT


def test_lines_sent_on_update_replace_the_lines(api: APIClient, org: Organization):
    invoice = make_document(org)

    data = api.patch(url(INVOICE, invoice.pk), {"line_items": line_items("10.00", "20.00")}, format="json").json()

    assert [line["rate"] for line in data["line_items"]] == ["10.00", "20.00"]
    assert data["total"] == "70.80"


def test_estimates_expose_expiry_date_and_sales_orders_shipment_date(api: APIClient, org: Organization):
    contact = make_contact(org)
    estimate = KINDS_BY_RESOURCE["estimates"]
    order = KINDS_BY_RESOURCE["salesorders"]

    quote = api.post(
        url(estimate), valid_body(estimate, contact, date="2026-03-01", expiry_date="2026-03-31"), format="json"
    )
    so = api.post(url(order), valid_body(order, contact, date="2026-03-01", shipment_date="2026-03-05"), format="json")

    assert quote.json()["expiry_date"] == "2026-03-31"
    assert so.json()["shipment_date"] == "2026-03-05"
    assert Document.objects.get(pk=quote.json()["estimate_id"]).due_date == datetime.date(2026, 3, 31)


def test_a_number_can_be_chosen_and_must_be_unique(api: APIClient, org: Organization):
    contact = make_contact(org)

    first = api.post(url(INVOICE), valid_body(INVOICE, contact, invoice_number="X-1"), format="json")
    second = api.post(url(INVOICE), valid_body(INVOICE, contact, invoice_number="X-1"), format="json")
    other = make_document(org)
    renamed = api.patch(url(INVOICE, other.pk), {"invoice_number": "X-1"}, format="json")

    assert first.json()["invoice_number"] == "X-1"
    assert second.status_code == 400 and "invoice_number" in second.json()
    assert renamed.status_code == 400 and "invoice_number" in renamed.json()


def test_changing_the_customer_drops_the_old_customers_persons(api: APIClient, org: Organization):
    invoice = make_document(org)
    new_customer = make_contact(org)

    data = api.patch(url(INVOICE, invoice.pk), {"customer_id": new_customer.pk}, format="json").json()

    assert (data["customer_id"], data["customer_name"]) == (new_customer.pk, new_customer.display_name)
    assert data["contact_persons"] == []


def test_a_void_document_cannot_be_changed(api: APIClient, org: Organization):
    invoice = document_void(document=make_document(org))

    response = api.patch(url(INVOICE, invoice.pk), {"notes": "x"}, format="json")

    assert response.status_code == 400
    assert "non_field_errors" in response.json()


# --- payments ---------------------------------------------------------------------------------


def test_a_customer_payment_applies_to_invoices_and_retainer_invoices(api: APIClient, org: Organization):
    contact = make_contact(org)
    invoice = make_document(org, contact=contact, lines=[LineInput("Audit", Decimal(1), Decimal("1000.00"))])
    retainer = make_document(
        org, kind=DocumentKind.RETAINER_INVOICE, contact=contact, lines=[LineInput("Advance", Decimal(1), Decimal(500))]
    )
    body = {
        "customer_id": contact.pk,
        "amount": "900.00",
        "payment_mode": "upi",
        "invoices": [
            {"invoice_id": invoice.pk, "amount_applied": "400.00"},
            {"invoice_id": retainer.pk, "amount_applied": 500},
        ],
    }

    response = api.post("/api/v1/customerpayments", body, format="json")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["unused_amount"] == "0.00"
    assert data["payment_mode"] == "upi"
    assert {(a["invoice_id"], a["invoice_number"], a["amount_applied"]) for a in data["invoices"]} == {
        (invoice.pk, invoice.number, "400.00"),
        (retainer.pk, retainer.number, "500.00"),
    }
    invoice_data = api.get(url(INVOICE, invoice.pk)).json()
    assert (invoice_data["balance"], invoice_data["status"]) == ("600.00", DocumentStatus.PARTIALLY_PAID)


def test_a_vendor_payment_applies_to_bills(api: APIClient, org: Organization):
    bill = make_document(org, kind=DocumentKind.BILL, lines=[LineInput("Rent", Decimal(1), Decimal("800.00"))])
    body = {"vendor_id": bill.contact_id, "amount": "800", "bills": [{"bill_id": bill.pk, "amount_applied": "800"}]}

    data = api.post("/api/v1/vendorpayments", body, format="json").json()

    assert data["bills"] == [{"bill_id": bill.pk, "bill_number": bill.number, "amount_applied": "800.00"}]
    assert api.get(f"/api/v1/bills/{bill.pk}").json()["status"] == DocumentStatus.PAID


def test_updating_a_payment_replaces_what_it_applies_to(api: APIClient, org: Organization):
    contact = make_contact(org)
    first, second = (make_document(org, contact=contact) for _ in range(2))
    payment = make_document(
        org,
        kind=DocumentKind.CUSTOMER_PAYMENT,
        contact=contact,
        amount=Decimal("100"),
        allocations=[AllocationInput(first, Decimal("100"))],
    )

    body = {"invoices": [{"invoice_id": second.pk, "amount_applied": "100"}]}
    data = api.patch(f"/api/v1/customerpayments/{payment.pk}", body, format="json").json()

    assert [a["invoice_id"] for a in data["invoices"]] == [second.pk]
    first.refresh_from_db()
    assert first.balance == first.total


# --- filters ----------------------------------------------------------------------------------


def ids(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return [row["invoice_id"] for row in response.json()["results"]]


def test_status_overdue_returns_exactly_the_overdue_invoices(api: APIClient, org: Organization):
    today = org.today()
    overdue = make_overdue_invoice(org)
    also_overdue = make_overdue_invoice(org)
    partially_paid = make_overdue_invoice(org, lines=[LineInput("Audit", Decimal(1), Decimal(100))])
    make_document(
        org,
        kind=DocumentKind.CUSTOMER_PAYMENT,
        contact=partially_paid.contact,
        amount=Decimal(40),
        allocations=[AllocationInput(partially_paid, Decimal(40))],
    )
    not_due = make_document(org, due_date=today + datetime.timedelta(days=5))
    due_today = make_document(org, due_date=today)
    draft = make_overdue_invoice(org, issue=False)
    void = document_void(document=make_overdue_invoice(org))
    paid = make_overdue_invoice(org, lines=[LineInput("Audit", Decimal(1), Decimal(100))])
    make_document(
        org,
        kind=DocumentKind.CUSTOMER_PAYMENT,
        contact=paid.contact,
        amount=Decimal(100),
        allocations=[AllocationInput(paid, Decimal(100))],
    )
    make_document(
        org,
        kind=DocumentKind.ESTIMATE,
        date=today - datetime.timedelta(days=10),
        due_date=today - datetime.timedelta(days=3),
    )

    response = api.get("/api/v1/invoices?status=overdue")

    assert set(ids(response)) == {overdue.pk, also_overdue.pk, partially_paid.pk}
    assert {row["status"] for row in response.json()["results"]} == {DocumentStatus.OVERDUE}
    assert set(ids(api.get("/api/v1/invoices?status=sent"))) == {not_due.pk, due_today.pk}
    assert ids(api.get("/api/v1/invoices?status=draft")) == [draft.pk]
    assert ids(api.get("/api/v1/invoices?status=void")) == [void.pk]
    assert ids(api.get("/api/v1/invoices?status=paid")) == [paid.pk]
    assert ids(api.get("/api/v1/invoices?status=partially_paid")) == []


def test_an_unknown_status_is_a_400(api: APIClient, org: Organization):
    response = api.get("/api/v1/invoices?status=lost")
    estimates = api.get("/api/v1/estimates?status=partially_paid")

    assert response.status_code == 400
    assert "status" in response.json()
    assert estimates.status_code == 400


def test_it_filters_by_contact_text_and_dates(api: APIClient, org: Organization):
    acme = make_contact(org, name="Acme Traders")
    globex = make_contact(org, name="Globex")
    early = make_document(org, contact=acme, date=datetime.date(2026, 1, 5))
    late = make_document(org, contact=acme, date=datetime.date(2026, 2, 5))
    other = make_document(org, contact=globex, date=datetime.date(2026, 1, 20))

    assert ids(api.get(f"/api/v1/invoices?customer_id={acme.pk}")) == [late.pk, early.pk]
    assert ids(api.get("/api/v1/invoices?search_text=globex")) == [other.pk]
    assert ids(api.get(f"/api/v1/invoices?search_text={late.number}")) == [late.pk]
    assert ids(api.get("/api/v1/invoices?date_start=2026-01-10&date_end=2026-01-31")) == [other.pk]
    assert api.get("/api/v1/invoices?date_start=10/01/2026").status_code == 400
    assert api.get("/api/v1/invoices?customer_id=abc").status_code == 400


def test_lists_are_newest_first(api: APIClient, org: Organization):
    contact = make_contact(org)
    old = make_document(org, contact=contact, date=datetime.date(2025, 5, 1))
    new = make_document(org, contact=contact, date=datetime.date(2026, 5, 1))
    same_day_later = make_document(org, contact=contact, date=datetime.date(2026, 5, 1))

    assert ids(api.get("/api/v1/invoices")) == [same_day_later.pk, new.pk, old.pk]


@pytest.mark.parametrize("spec", KIND_PARAMS)
def test_list_queries_do_not_grow_with_rows(
    api: APIClient, org: Organization, spec: KindSpec, django_assert_max_num_queries
):
    contact = make_contact(org, contact_type=spec.party, persons=2)
    targets = []
    if spec.is_payment:
        target_kind = spec.applies_to[0]
        targets = [make_document(org, kind=target_kind, contact=contact) for _ in range(2)]
    for _ in range(30):
        allocations = [AllocationInput(t, Decimal("1.00")) for t in targets]
        make_any(org, spec, contact=contact, allocations=allocations)

    with django_assert_max_num_queries(7):
        response = api.get(url(spec))

    assert response.json()["count"] == 30


# --- PDF --------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", KIND_PARAMS)
def test_the_pdf_endpoint_returns_a_pdf(api: APIClient, org: Organization, spec: KindSpec):
    document = make_any(org, spec)

    response = api.get(url(spec, document.pk, "pdf"))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert f'filename="{document.number}.pdf"' in response["Content-Disposition"]


def test_the_pdf_endpoint_answers_clients_that_accept_only_pdf(api: APIClient, org: Organization):
    invoice = make_document(org)

    assert api.get(url(INVOICE, invoice.pk, "pdf"), HTTP_ACCEPT="application/pdf").content.startswith(b"%PDF")
    assert api.get(url(INVOICE, 0, "pdf"), HTTP_ACCEPT="application/pdf").status_code == 404


# --- bad input: 400 with field errors ---------------------------------------------------------


def assert_field_error(response, *path: str | int) -> None:
    assert response.status_code == 400, (response.status_code, response.content)
    node = response.json()
    for key in path:
        node = node[str(key) if isinstance(node, dict) else key]  # DRF keys list item errors by index
    assert node, response.json()


@pytest.fixture
def customer(org: Organization):
    return make_contact(org)


def post_invoice(api: APIClient, **body):
    return api.post("/api/v1/invoices", body, format="json")


def test_wrong_types_are_field_errors(api: APIClient, customer):
    lines = [{"name": "Audit", "quantity": "two", "rate": [], "tax_percentage": "NaN"}]

    response = post_invoice(api, customer_id=customer.pk, line_items=lines, date="yesterday", is_draft="perhaps")

    assert_field_error(response, "line_items", 0, "quantity")
    assert_field_error(response, "line_items", 0, "rate")
    assert_field_error(response, "line_items", 0, "tax_percentage")
    assert_field_error(response, "date")
    assert_field_error(response, "is_draft")


def test_line_items_are_required(api: APIClient, customer):
    assert_field_error(post_invoice(api, customer_id=customer.pk), "line_items")
    assert_field_error(post_invoice(api, customer_id=customer.pk, line_items=[]), "line_items")
    assert_field_error(post_invoice(api, customer_id=customer.pk, line_items=[{"rate": 5}]), "line_items", 0, "name")


def test_a_line_item_patched_in_needs_a_name_and_a_rate(api: APIClient, org: Organization):
    invoice = make_document(org)

    response = api.patch(url(INVOICE, invoice.pk), {"line_items": [{"quantity": 1}]}, format="json")

    assert_field_error(response, "line_items", 0, "name")
    assert_field_error(response, "line_items", 0, "rate")


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"quantity": "-1"}, "quantity"),
        ({"quantity": "0"}, "quantity"),
        ({"rate": "-5"}, "rate"),
        ({"tax_percentage": "100.01"}, "tax_percentage"),
        ({"tax_percentage": "-1"}, "tax_percentage"),
        ({"rate": "1.001"}, "rate"),
        ({"quantity": "99999999999", "rate": "9999999999999999.99"}, "rate"),
    ],
)
def test_line_values_out_of_range_are_field_errors(api: APIClient, customer, line: dict, field: str):
    response = post_invoice(api, customer_id=customer.pk, line_items=[{"name": "Audit", "rate": "10", **line}])

    assert_field_error(response, "line_items", 0, field)


def test_a_document_total_too_large_is_a_field_error(api: APIClient, customer):
    huge = {"name": "Gold", "quantity": "1", "rate": "9999999999999999.00"}

    assert_field_error(post_invoice(api, customer_id=customer.pk, line_items=[huge, huge]), "line_items")


def test_an_unknown_or_foreign_contact_is_a_field_error(api: APIClient, org: Organization, other_org: Organization):
    foreign = make_contact(other_org)
    vendor = make_contact(org, contact_type=ContactType.VENDOR)

    for contact_id in (987654, foreign.pk, vendor.pk, "abc", True, 1.5, 10**30):
        response = post_invoice(api, customer_id=contact_id, line_items=line_items("1"))
        assert_field_error(response, "customer_id")
    assert "not found" in post_invoice(api, customer_id=foreign.pk, line_items=line_items("1")).json()["customer_id"][0]


def test_a_customer_on_a_bill_is_a_field_error(api: APIClient, customer):
    response = api.post("/api/v1/bills", {"vendor_id": customer.pk, "line_items": line_items("1")}, format="json")

    assert_field_error(response, "vendor_id")


def test_a_due_date_before_the_date_is_a_field_error(api: APIClient, customer):
    response = post_invoice(
        api, customer_id=customer.pk, line_items=line_items("1"), date="2026-05-10", due_date="2026-05-01"
    )

    assert_field_error(response, "due_date")


def test_persons_of_another_contact_are_a_field_error(api: APIClient, org: Organization, other_org, customer):
    stranger = make_contact(org).persons.get()
    foreign = make_contact(other_org).persons.get()

    same_org = post_invoice(api, customer_id=customer.pk, line_items=line_items("1"), contact_persons=[stranger.pk])
    other = post_invoice(api, customer_id=customer.pk, line_items=line_items("1"), contact_persons=[foreign.pk])

    assert_field_error(same_org, "contact_persons")
    assert_field_error(other, "contact_persons")


def test_a_bad_currency_is_a_field_error(api: APIClient, customer):
    for code in ("RUPEES", "12A", "€"):
        assert_field_error(
            post_invoice(api, customer_id=customer.pk, line_items=line_items("1"), currency_code=code), "currency_code"
        )


def test_malformed_json_is_a_400(api: APIClient, org: Organization):
    response = api.post("/api/v1/invoices", b'{"customer_id": 1,', content_type="application/json")

    assert response.status_code == 400
    assert "detail" in response.json()


def test_form_bodies_are_refused(api: APIClient, customer):
    response = api.post("/api/v1/invoices", {"customer_id": customer.pk}, format="multipart")

    assert response.status_code == 415


def test_payment_mistakes_are_field_errors(api: APIClient, org: Organization, other_org: Organization, customer):
    invoice = make_document(org, contact=customer, lines=[LineInput("Audit", Decimal(1), Decimal(100))])
    someone_elses = make_document(org)
    draft = make_document(org, contact=customer, issue=False)
    foreign = make_document(other_org)
    bill = make_document(org, kind=DocumentKind.BILL)
    estimate = make_document(org, kind=DocumentKind.ESTIMATE, contact=customer)

    def pay(amount="100", **applied):
        body = {"customer_id": customer.pk, "amount": amount, "invoices": [applied] if applied else []}
        return api.post("/api/v1/customerpayments", body, format="json")

    assert_field_error(pay(amount="0"), "amount")
    assert_field_error(pay(amount="-5"), "amount")
    assert_field_error(api.post("/api/v1/customerpayments", {"customer_id": customer.pk}, format="json"), "amount")
    assert_field_error(pay(invoice_id=invoice.pk, amount_applied="150"), "invoices")  # more than the balance
    assert_field_error(pay(amount="50", invoice_id=invoice.pk, amount_applied="60"), "invoices")  # more than paid
    assert_field_error(pay(invoice_id=someone_elses.pk, amount_applied="10"), "invoices")
    assert_field_error(pay(invoice_id=draft.pk, amount_applied="10"), "invoices")
    for target in (foreign, bill, estimate):
        assert_field_error(pay(invoice_id=target.pk, amount_applied="10"), "invoices", 0, "invoice_id")
    assert_field_error(pay(invoice_id=invoice.pk, amount_applied="0"), "invoices", 0, "amount_applied")
    assert_field_error(pay(invoice_id=invoice.pk), "invoices", 0, "amount_applied")
    twice = {
        "customer_id": customer.pk,
        "amount": "20",
        "invoices": [{"invoice_id": invoice.pk, "amount_applied": "10"}] * 2,
    }
    assert_field_error(api.post("/api/v1/customerpayments", twice, format="json"), "invoices")
    invoice.refresh_from_db()
    assert invoice.balance == Decimal("100.00")

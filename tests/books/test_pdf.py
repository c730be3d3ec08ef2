import datetime
import io
from decimal import Decimal

import pytest
from pypdf import PdfReader

from books.choices import ContactType, DocumentKind, DocumentStatus
from books.formatting import money_format
from books.kinds import KINDS
from books.pdf import _render, document_pdf, document_pdf_filename, statement_pdf
from books.selectors import document_get, statement_build
from books.services.documents import AllocationInput, LineInput, document_void

from .factories import make_contact, make_document, make_organization

pytestmark = pytest.mark.django_db


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def make_any_document(organization, kind: str):
    """A document of ``kind``; payments are applied to an invoice or bill of the same contact."""
    spec = KINDS[kind]
    contact = make_contact(organization, contact_type=spec.party, name=f"Sharma Textiles {kind}")
    if not spec.is_payment:
        return make_document(organization, kind=kind, contact=contact)
    target = make_document(organization, kind=spec.applies_to[0], contact=contact)
    return make_document(
        organization,
        kind=kind,
        contact=contact,
        amount=Decimal("2000.00"),
        allocations=[AllocationInput(target, Decimal("1500.00"))],
    )


@pytest.mark.parametrize("kind", list(KINDS))
def test_it_renders_every_kind_with_number_contact_and_total(kind):
    organization = make_organization()
    document = make_any_document(organization, kind)
    document = document_get(organization=organization, pk=document.pk)

    pdf = document_pdf(document)
    text = pdf_text(pdf)

    assert pdf.startswith(b"%PDF")
    assert document.number in text
    assert document.contact.display_name in text
    assert money_format(document.total, document.currency, organization=organization) in text


def test_a_payment_receipt_lists_the_invoices_it_paid_and_the_unused_amount():
    organization = make_organization()
    payment = make_any_document(organization, DocumentKind.CUSTOMER_PAYMENT)
    invoice = payment.allocations_out.get().target

    text = pdf_text(document_pdf(payment))

    assert "PAYMENT RECEIPT" in text
    assert invoice.number in text
    assert "₹1,500.00" in text  # applied
    assert "Unused amount ₹500.00" in text


def test_an_indian_document_uses_lakh_grouping():
    organization = make_organization()
    invoice = make_document(organization, lines=[LineInput("Audit", Decimal("1"), Decimal("100000.00"))])

    text = pdf_text(document_pdf(invoice))

    assert "1,00,000.00" in text
    assert "₹1,00,000.00" in text


def test_an_invoice_shows_payments_made_and_the_balance_due():
    organization = make_organization()
    invoice = make_document(organization)  # 2 × 1,500.00 + 18% = 3,540.00
    make_document(
        organization,
        kind=DocumentKind.CUSTOMER_PAYMENT,
        contact=invoice.contact,
        amount=Decimal("1000.00"),
        allocations=[AllocationInput(invoice, Decimal("1000.00"))],
    )
    invoice.refresh_from_db()

    text = pdf_text(document_pdf(invoice))

    assert "Payments made (−) ₹1,000.00" in text
    assert "Balance due ₹2,540.00" in text
    assert "GST (18%) ₹540.00" in text


@pytest.mark.parametrize(
    ("state", "stamp"),
    [("draft", "DRAFT"), ("void", "VOID"), ("overdue", "OVERDUE"), ("paid", "PAID"), ("sent", None)],
)
def test_it_stamps_the_status_where_it_applies(state, stamp):
    organization = make_organization()
    today = organization.today()
    if state == "overdue":
        invoice = make_document(organization, date=today - datetime.timedelta(days=40), due_date=today)
        invoice.due_date = today - datetime.timedelta(days=10)
        invoice.save(update_fields=["due_date"])
    else:
        invoice = make_document(organization, issue=state != "draft")
    if state == "void":
        invoice = document_void(document=invoice)
    if state == "paid":
        make_document(
            organization,
            kind=DocumentKind.CUSTOMER_PAYMENT,
            contact=invoice.contact,
            amount=invoice.total,
            allocations=[AllocationInput(invoice, invoice.total)],
        )
        invoice.refresh_from_db()
        assert invoice.status == DocumentStatus.PAID

    text = pdf_text(document_pdf(invoice))

    for word in ("DRAFT", "VOID", "OVERDUE", "PAID"):
        assert (word in text.split()) is (word == stamp)


def test_it_numbers_pages_and_repeats_the_table_header_on_long_documents():
    organization = make_organization()
    lines = [LineInput(f"Item {n}", Decimal("1"), Decimal("100.00"), Decimal("18"), "Two\nlines") for n in range(60)]
    invoice = make_document(organization, lines=lines)

    reader = PdfReader(io.BytesIO(document_pdf(invoice)))
    pages = [page.extract_text() for page in reader.pages]

    assert len(pages) > 2
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in text
    for text in pages[:-1]:  # the last page may hold only the totals
        assert "Item & description" in text


def test_the_due_date_uses_the_kind_label_and_the_organization_date_format():
    organization = make_organization(date_format="dd.MM.yyyy")
    today = organization.today()
    quote = make_document(organization, kind=DocumentKind.ESTIMATE, date=today, due_date=today)

    text = pdf_text(document_pdf(quote))

    assert f"Expiry date {today:%d.%m.%Y}" in text


def test_a_statement_shows_opening_and_closing_balances():
    organization = make_organization()
    customer = make_contact(organization, contact_type=ContactType.CUSTOMER, name="Gupta & Sons")
    today = organization.today()
    make_document(organization, contact=customer, date=today - datetime.timedelta(days=40))  # 3,540.00 before
    invoice = make_document(
        organization,
        contact=customer,
        date=today - datetime.timedelta(days=5),
        lines=[LineInput("Goods", Decimal("50"), Decimal("2000.00"), Decimal("18"))],  # 1,18,000.00
    )
    make_document(
        organization,
        kind=DocumentKind.CUSTOMER_PAYMENT,
        contact=customer,
        date=today,
        amount=Decimal("18000.00"),
        allocations=[AllocationInput(invoice, Decimal("18000.00"))],
    )
    statement = statement_build(contact=customer, from_date=today - datetime.timedelta(days=30), to_date=today)

    pdf = statement_pdf(statement)
    text = pdf_text(pdf)

    assert pdf.startswith(b"%PDF")
    assert "STATEMENT OF" in text
    assert "Gupta & Sons" in text
    assert f"Opening balance {money_format(statement.opening_balance, 'INR', organization=organization)}" in text
    assert statement.closing_balance == Decimal("103540.00")
    assert "Balance due ₹1,03,540.00" in text
    assert invoice.number in text


def test_a_vendor_statement_speaks_of_bills_and_payments_made():
    organization = make_organization()
    vendor = make_contact(organization, contact_type=ContactType.VENDOR, name="Deccan Logistics")
    bill = make_document(organization, kind=DocumentKind.BILL, contact=vendor)
    today = organization.today()

    text = pdf_text(statement_pdf(statement_build(contact=vendor, from_date=today, to_date=today)))

    assert "Billed amount ₹3,540.00" in text
    assert "Amount paid ₹0.00" in text
    assert bill.number in text


def test_it_renders_in_another_locale_and_currency():
    organization = make_organization(country="US", currency="USD", time_zone="America/New_York")
    customer = make_contact(organization, mobile="+14155550123", name="Acme Corp")
    invoice = make_document(
        organization, contact=customer, lines=[LineInput("Audit", Decimal("1"), Decimal("100000.00"))]
    )

    text = pdf_text(document_pdf(invoice))

    assert "$100,000.00" in text
    assert "GSTIN" not in text


def test_the_filename_is_the_number_made_safe():
    organization = make_organization()
    invoice = make_document(organization)
    invoice.number = "INV/2026 07"

    assert document_pdf_filename(make_document(organization)) == "INV-000002.pdf"
    assert document_pdf_filename(invoice) == "INV-2026-07.pdf"


def test_rendering_never_fetches_a_url(monkeypatch):
    opened = []
    monkeypatch.setattr("urllib.request.OpenerDirector.open", lambda self, url, *a, **kw: opened.append(url))
    html = '<link rel="stylesheet" href="http://198.51.100.1/x.css"><img src="http://198.51.100.1/x.png">'

    assert _render(html).startswith(b"%PDF")
    assert opened == []

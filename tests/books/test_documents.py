import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from books.choices import ContactType, DocumentKind, DocumentStatus
from books.selectors import document_list, statement_build
from books.services.documents import AllocationInput, LineInput, document_create, document_update, document_void

from .factories import make_contact, make_document, make_organization

pytestmark = pytest.mark.django_db


def test_it_numbers_each_kind_in_its_own_series_per_organization():
    org, other = make_organization(), make_organization(name="Other")
    first = make_document(org)
    second = make_document(org)
    quote = make_document(org, kind=DocumentKind.ESTIMATE)
    elsewhere = make_document(other)

    assert (first.number, second.number) == ("INV-000001", "INV-000002")
    assert quote.number == "QT-000001"
    assert elsewhere.number == "INV-000001"


def test_it_totals_lines_with_tax_in_decimal():
    org = make_organization()
    invoice = make_document(
        org,
        lines=[
            LineInput("Audit", Decimal("2"), Decimal("24250.00")),
            LineInput("Filing", Decimal("1.5"), Decimal("333.33"), Decimal("18")),
        ],
    )
    invoice.refresh_from_db()

    assert invoice.subtotal == Decimal("49000.00")  # 48500.00 + 499.995 rounded half up to 500.00
    assert invoice.tax_total == Decimal("90.00")
    assert invoice.total == invoice.subtotal + invoice.tax_total
    assert invoice.balance == invoice.total
    assert invoice.status == DocumentStatus.SENT


def test_payments_reduce_balance_and_move_status_to_partially_paid_then_paid():
    org = make_organization()
    invoice = make_document(org, lines=[LineInput("Audit", Decimal("1"), Decimal("1000.00"))])
    pay = dict(organization=org, kind=DocumentKind.CUSTOMER_PAYMENT, contact=invoice.contact, date=org.today())

    document_create(**pay, amount=Decimal("400"), allocations=[AllocationInput(invoice, Decimal("400"))])
    invoice.refresh_from_db()
    assert (invoice.balance, invoice.status) == (Decimal("600.00"), DocumentStatus.PARTIALLY_PAID)

    document_create(**pay, amount=Decimal("600"), allocations=[AllocationInput(invoice, Decimal("600"))])
    invoice.refresh_from_db()
    assert (invoice.balance, invoice.status) == (Decimal("0.00"), DocumentStatus.PAID)


def test_a_payment_cannot_apply_more_than_the_invoice_balance():
    org = make_organization()
    invoice = make_document(org, lines=[LineInput("Audit", Decimal("1"), Decimal("100.00"))])

    with pytest.raises(ValidationError) as exc:
        document_create(
            organization=org,
            kind=DocumentKind.CUSTOMER_PAYMENT,
            contact=invoice.contact,
            date=org.today(),
            amount=Decimal("500"),
            allocations=[AllocationInput(invoice, Decimal("500"))],
        )
    assert "allocations" in exc.value.message_dict
    invoice.refresh_from_db()
    assert invoice.balance == Decimal("100.00")


def test_voiding_a_payment_restores_the_invoice_balance():
    org = make_organization()
    invoice = make_document(org, lines=[LineInput("Audit", Decimal("1"), Decimal("100.00"))])
    payment = document_create(
        organization=org,
        kind=DocumentKind.CUSTOMER_PAYMENT,
        contact=invoice.contact,
        date=org.today(),
        amount=Decimal("100"),
        allocations=[AllocationInput(invoice, Decimal("100"))],
    )

    document_void(document=payment)

    invoice.refresh_from_db()
    assert (invoice.balance, invoice.status) == (Decimal("100.00"), DocumentStatus.SENT)


def test_an_invoice_with_payments_cannot_be_voided():
    org = make_organization()
    invoice = make_document(org)
    document_create(
        organization=org,
        kind=DocumentKind.CUSTOMER_PAYMENT,
        contact=invoice.contact,
        date=org.today(),
        amount=Decimal("10"),
        allocations=[AllocationInput(invoice, Decimal("10"))],
    )
    with pytest.raises(ValidationError):
        document_void(document=invoice)


def test_overdue_is_derived_from_due_date_in_the_organizations_time_zone():
    org = make_organization()
    today = org.today()
    late = make_document(org, date=today - datetime.timedelta(days=40), due_date=today - datetime.timedelta(days=10))
    due_today = make_document(org, date=today - datetime.timedelta(days=5), due_date=today)
    draft_late = make_document(
        org, issue=False, date=today - datetime.timedelta(days=40), due_date=today - datetime.timedelta(days=1)
    )

    assert late.effective_status == DocumentStatus.OVERDUE
    assert late.days_overdue == 10
    assert due_today.effective_status == DocumentStatus.SENT
    assert draft_late.effective_status == DocumentStatus.DRAFT
    assert list(document_list(organization=org, kind=DocumentKind.INVOICE, status="overdue")) == [late]
    assert set(document_list(organization=org, kind=DocumentKind.INVOICE, status="sent")) == {due_today}


def test_a_document_refuses_a_contact_of_the_wrong_party_or_organization():
    org, other = make_organization(), make_organization(name="Other")
    vendor = make_contact(org, contact_type=ContactType.VENDOR)
    foreign = make_contact(other)
    for contact in (vendor, foreign):
        with pytest.raises(ValidationError) as exc:
            make_document(org, contact=contact, share_with=[])
        assert "contact" in exc.value.message_dict


def test_a_document_needs_at_least_one_line():
    org = make_organization()
    with pytest.raises(ValidationError) as exc:
        make_document(org, lines=[])
    assert exc.value.message_dict["lines"] == ["Add at least one line item."]


def test_updating_lines_recomputes_totals_but_not_below_what_was_paid():
    org = make_organization()
    invoice = make_document(org, lines=[LineInput("Audit", Decimal("1"), Decimal("100.00"))])
    document_create(
        organization=org,
        kind=DocumentKind.CUSTOMER_PAYMENT,
        contact=invoice.contact,
        date=org.today(),
        amount=Decimal("80"),
        allocations=[AllocationInput(invoice, Decimal("80"))],
    )
    document_update(document=invoice, lines=[LineInput("Audit", Decimal("2"), Decimal("100.00"))])
    invoice.refresh_from_db()
    assert (invoice.total, invoice.balance) == (Decimal("200.00"), Decimal("120.00"))

    with pytest.raises(ValidationError):
        document_update(document=invoice, lines=[LineInput("Audit", Decimal("1"), Decimal("50.00"))])
    invoice.refresh_from_db()
    assert invoice.total == Decimal("200.00")


def test_customer_statement_has_opening_balance_entries_and_closing_balance():
    org = make_organization()
    contact = make_contact(org)
    d = datetime.date(2026, 9, 1)
    old = make_document(org, contact=contact, date=d, lines=[LineInput("A", Decimal("1"), Decimal("1000.00"))])
    new = make_document(
        org,
        contact=contact,
        date=d + datetime.timedelta(days=30),
        lines=[LineInput("B", Decimal("1"), Decimal("500.00"))],
    )
    document_create(
        organization=org,
        kind=DocumentKind.CUSTOMER_PAYMENT,
        contact=contact,
        date=d + datetime.timedelta(days=35),
        amount=Decimal("700"),
        allocations=[AllocationInput(old, Decimal("700"))],
    )
    make_document(org, contact=contact, date=d + datetime.timedelta(days=31), issue=False)  # draft: left out

    statement = statement_build(
        contact=contact, from_date=d + datetime.timedelta(days=10), to_date=d + datetime.timedelta(days=60)
    )

    assert statement.opening_balance == Decimal("1000.00")
    assert [e.document.number for e in statement.entries] == [new.number, "PR-000001"]
    assert [e.balance for e in statement.entries] == [Decimal("1500.00"), Decimal("800.00")]
    assert statement.closing_balance == Decimal("800.00")

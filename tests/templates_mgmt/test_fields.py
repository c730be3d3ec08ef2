"""The dynamic-field catalogue: what each module offers and how values read for the customer."""

import datetime
import re
from decimal import Decimal

import pytest

from books.choices import DateFormat, DocumentKind, PaymentMode
from books.selectors import statement_build
from books.services.documents import document_create
from templates_mgmt.choices import Module
from templates_mgmt.fields import CATALOGUE, EMPTY_VALUE, FieldSource, catalogue_field, catalogue_fields
from tests.books.factories import make_contact, make_organization
from tests.templates_mgmt.factories import make_invoice


def test_every_module_has_fields_with_meta_safe_keys() -> None:
    assert set(CATALOGUE) == set(Module.values)
    for module, fields in CATALOGUE.items():
        assert fields, module
        for key, field in fields.items():
            # Named parameters: lowercase letters and underscores, short.
            assert re.fullmatch(r"[a-z_]{1,20}", key), key
            assert str(field.label)


def test_the_invoice_catalogue_offers_what_the_issue_lists() -> None:
    keys = [field.key for field in catalogue_fields(Module.INVOICES)]

    for key in (
        "customer_name",
        "contact_person_name",
        "invoice_number",
        "invoice_date",
        "due_date",
        "invoice_total",
        "balance_due",
        "currency_code",
        "organization_name",
        "days_overdue",
    ):
        assert key in keys
    assert catalogue_field(Module.QUOTES, "invoice_number") is None
    assert catalogue_field("nonsense", "customer_name") is None


@pytest.mark.django_db
def test_invoice_values_are_formatted_for_an_indian_organization() -> None:
    organization = make_organization(name="Acme Books")
    invoice = make_invoice(organization)
    source = FieldSource(organization=organization, document=invoice)

    def value(key: str) -> str:
        return catalogue_field(Module.INVOICES, key).value(source)

    assert value("invoice_total") == "₹1,00,000.00"  # lakh grouping
    assert value("balance_due") == "₹1,00,000.00"
    assert value("amount_paid") == "₹0.00"
    assert value("invoice_date") == "01/04/2026"
    assert value("due_date") == "16/04/2026"
    assert value("invoice_number") == "INV-000001"
    assert value("customer_name") == "Ravi Traders"
    assert value("organization_name") == "Acme Books"
    assert value("currency_code") == "INR"
    assert value("reference_number") == EMPTY_VALUE  # Meta refuses an empty parameter


@pytest.mark.django_db
def test_values_follow_the_organizations_locale_and_date_format() -> None:
    organization = make_organization(
        country="US", currency="USD", time_zone="America/New_York", date_format=DateFormat.MDY_SLASH
    )
    invoice = make_invoice(organization, contact=make_contact(organization, mobile="+12025550143"))
    source = FieldSource(organization=organization, document=invoice)

    assert catalogue_field(Module.INVOICES, "invoice_total").value(source) == "$100,000.00"
    assert catalogue_field(Module.INVOICES, "due_date").value(source) == "04/16/2026"
    assert catalogue_field(Module.INVOICES, "invoice_total").example(organization) == "$118,000.00"


@pytest.mark.django_db
def test_examples_are_formatted_for_the_organization() -> None:
    organization = make_organization(name="Acme Books")

    assert catalogue_field(Module.INVOICES, "invoice_total").example(organization) == "₹1,18,000.00"
    assert catalogue_field(Module.INVOICES, "due_date").example(organization) == "16/04/2026"
    assert catalogue_field(Module.INVOICES, "organization_name").example(organization) == "Acme Books"


@pytest.mark.django_db
def test_days_overdue_and_contact_person() -> None:
    organization = make_organization()
    contact = make_contact(organization, name="Ravi Traders")
    today = organization.today()
    invoice = make_invoice(
        organization,
        contact=contact,
        date=today - datetime.timedelta(days=30),
        due_date=today - datetime.timedelta(days=5),
    )
    person = contact.persons.first()

    source = FieldSource(organization=organization, document=invoice)
    addressed = FieldSource(organization=organization, document=invoice, person=person)

    assert catalogue_field(Module.PAYMENT_REMINDERS, "days_overdue").value(source) == "5"
    assert catalogue_field(Module.INVOICES, "contact_person_name").value(source) == contact.primary_person.name
    assert catalogue_field(Module.INVOICES, "contact_person_name").value(addressed) == person.name


@pytest.mark.django_db
def test_payment_values_read_amount_unused_amount_and_mode() -> None:
    organization = make_organization()
    contact = make_contact(organization)
    payment = document_create(
        organization=organization,
        kind=DocumentKind.CUSTOMER_PAYMENT,
        contact=contact,
        date=datetime.date(2026, 4, 5),
        amount=Decimal("2500.00"),
        payment_mode=PaymentMode.UPI,
    )
    source = FieldSource(organization=organization, document=payment)

    assert catalogue_field(Module.PAYMENTS_RECEIVED, "amount_received").value(source) == "₹2,500.00"
    assert catalogue_field(Module.PAYMENTS_RECEIVED, "unused_amount").value(source) == "₹2,500.00"
    assert catalogue_field(Module.PAYMENTS_RECEIVED, "payment_mode").value(source) == "UPI"


@pytest.mark.django_db
def test_statement_values_read_period_and_balances() -> None:
    organization = make_organization()
    contact = make_contact(organization)
    make_invoice(organization, contact=contact, date=datetime.date(2026, 3, 10), due_date=datetime.date(2026, 3, 25))
    make_invoice(organization, contact=contact)
    statement = statement_build(
        contact=contact, from_date=datetime.date(2026, 4, 1), to_date=datetime.date(2026, 4, 30)
    )
    source = FieldSource(organization=organization, statement=statement)

    def value(key: str) -> str:
        return catalogue_field(Module.CUSTOMER_STATEMENTS, key).value(source)

    assert value("statement_period") == "01/04/2026 – 30/04/2026"
    assert value("opening_balance") == "₹1,00,000.00"
    assert value("total_invoiced") == "₹1,00,000.00"
    assert value("closing_balance") == "₹2,00,000.00"
    assert value("customer_name") == contact.display_name


def test_vendor_modules_name_the_vendor() -> None:
    assert catalogue_field(Module.VENDORS, "vendor_name") is not None
    assert catalogue_field(Module.VENDOR_STATEMENTS, "customer_name") is None

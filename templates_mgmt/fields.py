"""The dynamic fields a template can carry, per module, and how each is read for sending.

The builder offers these (key, label, example) for insertion as ``{{key}}``; Meta receives the
example when the template is submitted; rendering reads the value from the document, contact or
statement being sent. Keys are Meta parameter names, so they stay lowercase letters and
underscores (no digits) and at most 20 characters, which satisfies every client-side rule seen
for named parameters.

Values are what the customer reads, formatted as the organization's PDFs format them: amounts
with the currency symbol and the locale's grouping (``₹1,18,000.00`` in an Indian organization),
dates in the organization's date format, labels in the organization's language.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from decimal import Decimal
from typing import Final

from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from books.choices import ContactType
from books.formatting import date_format, money_format
from books.models import Contact, ContactPerson, Document, Organization
from books.phone import phone_display
from books.selectors import Statement

from .choices import Module
from .modules import MODULES

#: Meta refuses an empty text parameter (131008); a missing value is sent as this instead.
EMPTY_VALUE: Final = "-"

SAMPLE_DATE: Final = datetime.date(2026, 4, 1)
SAMPLE_DUE_DATE: Final = datetime.date(2026, 4, 16)
SAMPLE_TOTAL: Final = Decimal("118000.00")
SAMPLE_BALANCE: Final = Decimal("18000.00")


@dataclass(frozen=True)
class FieldSource:
    """What a message is about: the organization and, depending on the module, a contact (and the
    person it goes to), a document or a statement."""

    organization: Organization
    contact: Contact | None = None
    person: ContactPerson | None = None
    document: Document | None = None
    statement: Statement | None = None
    #: Field values read so far (key → value): a send renders its components and its preview
    #: text from one source, and reads and formats each value once.
    values: dict[str, str] = dataclass_field(default_factory=dict, compare=False, repr=False)

    @property
    def party(self) -> Contact | None:
        if self.contact is not None:
            return self.contact
        if self.document is not None:
            return self.document.contact
        if self.statement is not None:
            return self.statement.contact
        return None

    @property
    def currency(self) -> str:
        if self.document is not None:
            return self.document.currency
        if self.statement is not None:
            return self.statement.currency
        party = self.party
        return party.effective_currency if party is not None else self.organization.currency


@dataclass(frozen=True)
class CatalogueField:
    """One dynamic field: ``{{key}}`` in a template, ``label`` in the builder's picker."""

    key: str
    label: Promise
    reader: Callable[[FieldSource], str]
    sampler: Callable[[Organization], str]

    def value(self, source: FieldSource) -> str:
        """The field's value for sending: formatted, and never empty (Meta refuses empty parameters)."""
        value = source.values.get(self.key)
        if value is None:
            value = source.values[self.key] = str(self.reader(source) or "").strip() or EMPTY_VALUE
        return value

    def example(self, organization: Organization) -> str:
        """A realistic sample, formatted for ``organization``: Meta's reviewers and the preview see it."""
        return str(self.sampler(organization) or "").strip() or EMPTY_VALUE


# --- Building blocks ----------------------------------------------------------------------------


def _text(key: str, label: Promise, read: Callable[[FieldSource], object], sample: object) -> CatalogueField:
    def sampler(organization: Organization) -> str:
        return str(sample(organization) if callable(sample) else sample)

    return CatalogueField(key, label, lambda source: str(read(source) or ""), sampler)


def _money(key: str, label: Promise, read: Callable[[FieldSource], Decimal], sample: Decimal) -> CatalogueField:
    return CatalogueField(
        key,
        label,
        lambda source: money_format(read(source), source.currency, organization=source.organization),
        lambda organization: money_format(sample, organization.currency, organization=organization),
    )


def _date(
    key: str, label: Promise, read: Callable[[FieldSource], datetime.date | None], sample: datetime.date
) -> CatalogueField:
    return CatalogueField(
        key,
        label,
        lambda source: date_format(read(source), organization=source.organization),
        lambda organization: date_format(sample, organization=organization),
    )


def _person_name(source: FieldSource) -> str:
    if source.person is not None:
        return source.person.name
    party = source.party
    if party is None:
        return ""
    person = party.primary_person
    return person.name if person is not None else party.display_name


def _document(source: FieldSource) -> Document:
    if source.document is None:
        raise ValueError("This field is read from a document, and none was given.")
    return source.document


def _statement(source: FieldSource) -> Statement:
    if source.statement is None:
        raise ValueError("This field is read from a statement, and none was given.")
    return source.statement


def _payment_mode(source: FieldSource) -> str:
    # Labels in the organization's language, as on the document's PDF.
    with translation.override(source.organization.language):
        return str(_document(source).get_payment_mode_display())


def _party_fields(party: str) -> list[CatalogueField]:
    if party == ContactType.VENDOR:
        name = _text(
            "vendor_name", _("Vendor name"), lambda s: s.party.display_name if s.party else "", "Shree Suppliers"
        )
    else:
        name = _text(
            "customer_name", _("Customer name"), lambda s: s.party.display_name if s.party else "", "Ravi Traders"
        )
    return [
        name,
        _text("contact_person_name", _("Contact person name"), _person_name, "Ravi Kumar"),
        _text("organization_name", _("Organization name"), lambda s: s.organization.name, lambda org: org.name),
    ]


def _organization_contact_fields() -> list[CatalogueField]:
    return [
        _text(
            "organization_phone",
            _("Organization phone"),
            lambda s: phone_display(s.organization.phone),
            lambda org: phone_display(org.phone) or "+91 22 4000 1234",
        ),
        _text(
            "organization_email",
            _("Organization email"),
            lambda s: s.organization.email,
            lambda org: org.email or "accounts@example.com",
        ),
    ]


def _common_document_fields() -> list[CatalogueField]:
    return [
        _text("currency_code", _("Currency code"), lambda s: s.currency, lambda org: org.currency),
        _text("reference_number", _("Reference number"), lambda s: _document(s).reference_number, "PO-4512"),
    ]


def _number(key: str, label: Promise, sample: str) -> CatalogueField:
    return _text(key, label, lambda s: _document(s).number, sample)


def _doc_date(key: str, label: Promise) -> CatalogueField:
    return _date(key, label, lambda s: _document(s).date, SAMPLE_DATE)


def _due_date(key: str, label: Promise) -> CatalogueField:
    return _date(key, label, lambda s: _document(s).due_date, SAMPLE_DUE_DATE)


def _total(key: str, label: Promise) -> CatalogueField:
    return _money(key, label, lambda s: _document(s).total, SAMPLE_TOTAL)


def _balance(key: str, label: Promise) -> CatalogueField:
    return _money(key, label, lambda s: _document(s).balance, SAMPLE_BALANCE)


def _invoice_fields() -> list[CatalogueField]:
    return [
        _number("invoice_number", _("Invoice number"), "INV-000001"),
        _doc_date("invoice_date", _("Invoice date")),
        _due_date("due_date", _("Due date")),
        _total("invoice_total", _("Invoice total")),
        _balance("balance_due", _("Balance due")),
        _money("amount_paid", _("Amount paid"), lambda s: _document(s).amount_paid, SAMPLE_TOTAL - SAMPLE_BALANCE),
        _text("days_overdue", _("Days overdue"), lambda s: str(_document(s).days_overdue), "5"),
    ]


def _statement_fields(party: str) -> list[CatalogueField]:
    def period(source: FieldSource) -> str:
        statement = _statement(source)
        start = date_format(statement.from_date, organization=source.organization)
        end = date_format(statement.to_date, organization=source.organization)
        return f"{start} – {end}"

    def sample_period(organization: Organization) -> str:
        start = date_format(SAMPLE_DATE, organization=organization)
        end = date_format(datetime.date(2026, 4, 30), organization=organization)
        return f"{start} – {end}"

    total_key, total_label = (
        ("total_billed", _("Total billed")) if party == ContactType.VENDOR else ("total_invoiced", _("Total invoiced"))
    )
    return [
        _date("statement_from", _("Statement start date"), lambda s: _statement(s).from_date, SAMPLE_DATE),
        _date("statement_to", _("Statement end date"), lambda s: _statement(s).to_date, datetime.date(2026, 4, 30)),
        CatalogueField("statement_period", _("Statement period"), period, sample_period),
        _money("opening_balance", _("Opening balance"), lambda s: _statement(s).opening_balance, Decimal("25000.00")),
        _money(total_key, total_label, lambda s: _statement(s).total_amount, SAMPLE_TOTAL),
        _money("total_paid", _("Payments and credits"), lambda s: _statement(s).total_payments, Decimal("125000.00")),
        _money("closing_balance", _("Closing balance"), lambda s: _statement(s).closing_balance, SAMPLE_BALANCE),
        _text("currency_code", _("Currency code"), lambda s: s.currency, lambda org: org.currency),
    ]


def _module_fields(module: str) -> list[CatalogueField]:
    party = MODULES[module].party
    fields = _party_fields(party)
    match module:
        case Module.CUSTOMERS | Module.VENDORS:
            fields += _organization_contact_fields()
        case Module.INVOICES | Module.PAYMENT_REMINDERS:
            fields += _invoice_fields() + _common_document_fields()
        case Module.SALES_ORDERS:
            fields += [
                _number("salesorder_number", _("Sales order number"), "SO-000001"),
                _doc_date("salesorder_date", _("Sales order date")),
                _due_date("shipment_date", _("Expected shipment date")),
                _total("order_total", _("Sales order total")),
                *_common_document_fields(),
            ]
        case Module.QUOTES:
            fields += [
                _number("quote_number", _("Quote number"), "QT-000001"),
                _doc_date("quote_date", _("Quote date")),
                _due_date("expiry_date", _("Expiry date")),
                _total("quote_total", _("Quote total")),
                *_common_document_fields(),
            ]
        case Module.RETAINER_INVOICES:
            fields += [
                _number("retainer_number", _("Retainer invoice number"), "RET-000001"),
                _doc_date("retainer_date", _("Retainer invoice date")),
                _total("retainer_total", _("Retainer invoice total")),
                _balance("balance_due", _("Balance due")),
                *_common_document_fields(),
            ]
        case Module.CREDIT_NOTES:
            fields += [
                _number("creditnote_number", _("Credit note number"), "CN-000001"),
                _doc_date("creditnote_date", _("Credit note date")),
                _total("creditnote_total", _("Credit note total")),
                _balance("credits_remaining", _("Credits remaining")),
                *_common_document_fields(),
            ]
        case Module.SALES_RECEIPTS:
            fields += [
                _number("receipt_number", _("Sales receipt number"), "SR-000001"),
                _doc_date("receipt_date", _("Sales receipt date")),
                _total("receipt_total", _("Sales receipt total")),
                _text("payment_mode", _("Payment mode"), _payment_mode, _("Bank transfer")),
                *_common_document_fields(),
            ]
        case Module.PAYMENTS_RECEIVED:
            fields += [
                _number("payment_number", _("Payment number"), "PR-000001"),
                _doc_date("payment_date", _("Payment date")),
                _total("amount_received", _("Amount received")),
                _balance("unused_amount", _("Unused amount")),
                _text("payment_mode", _("Payment mode"), _payment_mode, _("Bank transfer")),
                *_common_document_fields(),
            ]
        case Module.CUSTOMER_STATEMENTS | Module.VENDOR_STATEMENTS:
            fields += _statement_fields(party)
    return fields


#: module → key → field, in the order the builder lists them.
CATALOGUE: Final[dict[str, dict[str, CatalogueField]]] = {
    module: {field.key: field for field in _module_fields(module)} for module in Module.values
}


def catalogue_fields(module: str) -> list[CatalogueField]:
    """The fields a template of ``module`` may insert, in picker order (empty for an unknown module)."""
    return list(CATALOGUE.get(module, {}).values())


def catalogue_field(module: str, key: str) -> CatalogueField | None:
    return CATALOGUE.get(module, {}).get(key)

"""PDFs of documents and statements, rendered by WeasyPrint from ``books/templates/books/pdf/``.

Interface used by the UI, the API and the WhatsApp dynamic attachment:
``document_pdf(document) -> bytes``, ``statement_pdf(statement) -> bytes`` and
``document_pdf_filename(document) -> str``.

Every amount and date is formatted here, with the organization's locale (Babel), currency and
date format, and every string is rendered in the organization's language, so the templates only
lay out text. Rendering never touches the network: WeasyPrint gets a URL fetcher that refuses
every URL, and the one stylesheet is read from disk once per process.
"""

import datetime
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel.numbers import format_decimal
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from books.choices import ContactType, DocumentKind, DocumentStatus
from books.formatting import date_format, money_format
from books.models import ZERO, Contact, Document, Organization
from books.phone import phone_display
from books.selectors import Statement

PDF_TEMPLATE_DIR = Path(__file__).resolve().parent / "templates" / "books" / "pdf"


@functools.cache
def offline_url_fetcher() -> Any:
    """A URL fetcher that refuses every URL (no protocol is allowed): a PDF is built from its HTML
    and pdf.css alone. WeasyPrint is imported on first use: it loads Pango and HarfBuzz (~40 MB),
    which processes that never render a PDF (most workers, the webhook receiver) need not carry."""
    from weasyprint.urls import URLFetcher

    return URLFetcher(allowed_protocols=())


Formatter = Callable[[Decimal], str]
DateFormatter = Callable[[datetime.date | None], str]

# Statuses that get a rubber stamp on the first page, with the stamp's colour.
_STAMPS = {
    DocumentStatus.PAID: "paid",
    DocumentStatus.VOID: "void",
    DocumentStatus.DRAFT: "draft",
    DocumentStatus.OVERDUE: "overdue",
}


@dataclass(frozen=True)
class Row:
    """A label and an already formatted value (meta rows, totals, summaries)."""

    label: str
    value: str
    css: str = ""


@dataclass(frozen=True)
class LineRow:
    position: int
    item: str
    description: str
    quantity: str
    rate: str
    tax_percent: str
    amount: str


@dataclass(frozen=True)
class AllocationRow:
    number: str
    date: str
    total: str
    applied: str


@dataclass(frozen=True)
class StatementRow:
    date: str
    transaction: str
    details: str
    amount: str
    payment: str
    balance: str
    css: str = ""


# --- Public interface --------------------------------------------------------------------------


def document_pdf(document: Document) -> bytes:
    """The customer-facing PDF of any kind of document (A4, the organization's language)."""
    organization = document.organization
    with translation.override(_language(organization)):
        context = _document_context(document)
        html = render_to_string("books/pdf/document.html", context)
    return _render(html)


def statement_pdf(statement: Statement) -> bytes:
    """The "Statement of Accounts" PDF of a customer or vendor."""
    organization = statement.contact.organization
    with translation.override(_language(organization)):
        context = _statement_context(statement)
        html = render_to_string("books/pdf/statement.html", context)
    return _render(html)


def document_pdf_filename(document: Document) -> str:
    """``INV-000001.pdf``; characters that are unsafe in a file name become ``-``."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", document.number).strip("-.") or f"document-{document.pk}"
    return f"{stem}.pdf"


# --- Rendering ---------------------------------------------------------------------------------


@functools.cache
def _stylesheet() -> Any:
    from weasyprint import CSS

    return CSS(filename=PDF_TEMPLATE_DIR / "pdf.css", url_fetcher=offline_url_fetcher())


def _render(html: str) -> bytes:
    from weasyprint import HTML

    return HTML(string=html, url_fetcher=offline_url_fetcher()).write_pdf(stylesheets=[_stylesheet()])


def _language(organization: Organization) -> str:
    return translation.to_language(organization.language)


def _css_string(text: str) -> str:
    """``text`` as a quoted CSS string, safe inside a <style> element."""
    escaped = "".join(ch if ch.isalnum() or ch in " .,:;·-_#/()&'" else f"\\{ord(ch):x} " for ch in text)
    return f'"{escaped}"'


def _page_counter_content() -> str:
    """CSS ``content`` for the footer, e.g. ``"Page " counter(page) " of " counter(pages)``."""
    pattern = _("Page %(page)s of %(pages)s") % {"page": "\0page\0", "pages": "\0pages\0"}
    parts = []
    for piece in pattern.split("\0"):
        if piece in ("page", "pages"):
            parts.append(f"counter({piece})")
        elif piece:
            parts.append(_css_string(piece))
    return " ".join(parts)


# --- Formatting helpers ------------------------------------------------------------------------


def _tax_names(organization: Organization) -> tuple[str, str]:
    """(label of the tax id, name of the tax) as the organization's customers know them."""
    if organization.country == "IN":
        return _("GSTIN"), _("GST")
    return _("Tax ID"), _("Tax")


def _number(value: Decimal, organization: Organization) -> str:
    """A quantity or a percentage without trailing zeros, grouped the locale's way."""
    return format_decimal(value, locale=organization.locale)


def _lines_of(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _organization_context(organization: Organization) -> dict[str, object]:
    tax_id_label, _tax = _tax_names(organization)
    return {
        "organization": organization,
        "org_address_lines": _lines_of(organization.address),
        "org_tax_id_label": tax_id_label,
        "org_phone": phone_display(organization.phone),
        "page_counter_content": _page_counter_content(),
    }


def _party_context(contact: Contact, organization: Organization) -> dict[str, object]:
    tax_id_label, _tax = _tax_names(organization)
    return {
        "name": contact.display_name,
        "company": contact.company_name if contact.company_name != contact.display_name else "",
        "address_lines": _lines_of(contact.billing_address),
        "tax_id": contact.tax_id,
        "tax_id_label": tax_id_label,
    }


# --- Documents ---------------------------------------------------------------------------------


def _title(document: Document) -> str:
    if document.kind == DocumentKind.CUSTOMER_PAYMENT:
        return _("Payment receipt")
    return str(document.spec.label)


def _party_label(document: Document) -> str:
    return {
        DocumentKind.CUSTOMER_PAYMENT: _("Received from"),
        DocumentKind.BILL: _("Bill from"),
        DocumentKind.VENDOR_PAYMENT: _("Paid to"),
    }.get(document.kind, _("Bill to"))


def _date_label(document: Document) -> str:
    spec = document.spec
    if spec.is_payment:
        return _("Payment date")
    return _("%(kind)s date") % {"kind": spec.label}


def _document_context(document: Document) -> dict[str, object]:
    organization = document.organization
    spec = document.spec

    def money(amount: Decimal) -> str:
        return money_format(amount, document.currency, organization=organization)

    def date(value: datetime.date | None) -> str:
        return date_format(value, organization=organization)

    meta = [Row(_date_label(document), date(document.date))]
    if document.due_date is not None:
        meta.append(Row(str(spec.due_date_label or _("Due date")), date(document.due_date)))
    if spec.carries_balance and document.due_date is not None:
        days = (document.due_date - document.date).days
        meta.append(Row(_("Terms"), _("Net %(days)s") % {"days": days} if days else _("Due on receipt")))
    if document.reference_number:
        meta.append(Row(_("Reference #"), document.reference_number))
    if document.payment_mode:
        meta.append(Row(_("Payment mode"), document.get_payment_mode_display()))

    effective_status = document.effective_status
    stamp = None
    if effective_status in _STAMPS and not (spec.is_payment and effective_status == DocumentStatus.PAID):
        stamp = {"text": document.effective_status_label, "css": _STAMPS[effective_status]}

    context: dict[str, object] = {
        **_organization_context(organization),
        "document": document,
        "spec": spec,
        "title": _title(document),
        "meta": meta,
        "party_label": _party_label(document),
        "party": _party_context(document.contact, organization),
        "stamp": stamp,
        "notes": document.notes,
        "terms": document.terms,
        "footer_left_css": _css_string(f"{organization.name} · {_title(document)} {document.number}"),
    }
    if spec.is_payment:
        context.update(_payment_context(document, money=money, date=date))
    else:
        context.update(_lines_context(document, money=money))
    return context


def _lines_context(document: Document, *, money: Formatter) -> dict[str, object]:
    organization = document.organization
    spec = document.spec
    lines = list(document.lines.all())
    rows = [
        LineRow(
            position=index,
            item=line.item,
            description=line.description,
            quantity=_number(line.quantity, organization),
            rate=money(line.rate),
            tax_percent=f"{_number(line.tax_percent, organization)}%" if line.tax_percent else "",
            amount=money(line.amount),
        )
        for index, line in enumerate(lines, start=1)
    ]

    _tax_id_label, tax_name = _tax_names(organization)
    tax_by_rate: dict[Decimal, Decimal] = {}
    for line in lines:
        if line.tax_amount:
            tax_by_rate[line.tax_percent] = tax_by_rate.get(line.tax_percent, ZERO) + line.tax_amount
    totals = [Row(_("Sub total"), money(document.subtotal))]
    for rate, tax in sorted(tax_by_rate.items()):
        totals.append(Row(f"{tax_name} ({_number(rate, organization)}%)", money(tax)))
    totals.append(Row(_("Total"), money(document.total), "total"))

    balance_due = None
    if spec.carries_balance:
        payments = credits = ZERO
        for allocation in document.allocations_in.select_related("source"):
            if allocation.source.spec.is_payment:
                payments += allocation.amount
            else:
                credits += allocation.amount
        if payments:
            totals.append(Row(_("Payments made"), f"(−) {money(payments)}"))
        if credits:
            totals.append(Row(_("Credits applied"), f"(−) {money(credits)}"))
        balance_due = money(document.balance)
        totals.append(Row(_("Balance due"), balance_due, "balance"))
    elif spec.applies_to:  # credit notes: what is left to apply
        totals.append(Row(_("Credits remaining"), money(document.balance), "balance"))

    return {
        "lines": rows,
        "totals": totals,
        "balance_due": balance_due,
        "total_in_header": money(document.total),
    }


def _payment_context(document: Document, *, money: Formatter, date: DateFormatter) -> dict[str, object]:
    allocations = list(document.allocations_out.select_related("target").order_by("target__date", "target__id"))
    rows = [
        AllocationRow(
            number=allocation.target.number,
            date=date(allocation.target.date),
            total=money(allocation.target.total),
            applied=money(allocation.amount),
        )
        for allocation in allocations
    ]
    used = sum((a.amount for a in allocations), ZERO)
    is_sales = document.contact.contact_type == ContactType.CUSTOMER
    return {
        "amount": money(document.total),
        "amount_label": _("Amount received") if is_sales else _("Amount paid"),
        "allocations": rows,
        "allocation_number_label": _("Invoice number") if is_sales else _("Bill number"),
        "allocation_date_label": _("Invoice date") if is_sales else _("Bill date"),
        "allocation_total_label": _("Invoice amount") if is_sales else _("Bill amount"),
        "payment_totals": [
            Row(_("Amount used for payments"), money(used)),
            Row(_("Unused amount"), money(ZERO if document.status == DocumentStatus.VOID else document.balance)),
        ],
    }


# --- Statements --------------------------------------------------------------------------------


def _statement_context(statement: Statement) -> dict[str, object]:
    contact = statement.contact
    organization = contact.organization
    is_customer = contact.contact_type == ContactType.CUSTOMER

    def money(amount: Decimal) -> str:
        return money_format(amount, statement.currency, organization=organization)

    def date(value: datetime.date | None) -> str:
        return date_format(value, organization=organization)

    period = _("%(from)s to %(to)s") % {"from": date(statement.from_date), "to": date(statement.to_date)}
    rows = [
        StatementRow(
            date=date(statement.from_date),
            transaction=_("Opening balance"),
            details="",
            amount=money(statement.opening_balance),
            payment="",
            balance=money(statement.opening_balance),
            css="opening",
        )
    ]
    for entry in statement.entries:
        document = entry.document
        details = [document.number]
        if document.due_date and document.spec.carries_balance:
            details.append(_("due %(date)s") % {"date": date(document.due_date)})
        if document.reference_number:
            details.append(_("ref. %(reference)s") % {"reference": document.reference_number})
        rows.append(
            StatementRow(
                date=date(entry.date),
                transaction=str(document.spec.label),
                details=" · ".join(details),
                amount=money(entry.amount) if entry.amount else "",
                payment=money(entry.payment) if entry.payment else "",
                balance=money(entry.balance),
            )
        )
    summary = [
        Row(_("Opening balance"), money(statement.opening_balance)),
        Row(_("Invoiced amount") if is_customer else _("Billed amount"), money(statement.total_amount)),
        Row(_("Amount received") if is_customer else _("Amount paid"), money(statement.total_payments)),
        Row(_("Balance due"), money(statement.closing_balance), "balance"),
    ]
    return {
        **_organization_context(organization),
        "statement": statement,
        "title": _("Statement of accounts"),
        "period": period,
        "party_label": _("To"),
        "party": _party_context(contact, organization),
        "summary": summary,
        "rows": rows,
        "closing_balance": money(statement.closing_balance),
        "footer_left_css": _css_string(f"{organization.name} · {_('Statement of accounts')} · {contact.display_name}"),
    }

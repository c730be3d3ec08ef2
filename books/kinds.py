"""What differs between document kinds, in one table.

Every document is a row of ``books.Document``; this registry says, per kind, how it is
numbered, which party it is addressed to, which statuses it can take, where it lives in the UI
and under which name the REST API exposes it (Zoho Books' resource names).
"""

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from .choices import ContactType, DocumentKind
from .choices import DocumentStatus as S


@dataclass(frozen=True)
class KindSpec:
    kind: str
    label: Promise
    label_plural: Promise
    slug: str  # UI path segment
    api_resource: str  # REST resource name, as in Zoho Books' API
    number_field: str  # REST field name of the document number, as in Zoho Books' API
    prefix: str
    party: str  # ContactType
    has_due_date: bool
    has_lines: bool
    issued_status: str  # the status a document takes when it leaves draft
    statuses: tuple[str, ...]  # statuses that can be stored for this kind
    is_payment: bool = False
    # Receivable/payable documents carry a balance that payments (or credits) reduce.
    carries_balance: bool = False
    # Kinds a payment/credit of this kind can be applied to.
    applies_to: tuple[str, ...] = ()
    due_date_label: Promise | None = None  # None: "Due date"

    @property
    def is_sales(self) -> bool:
        return self.party == ContactType.CUSTOMER

    @property
    def can_be_overdue(self) -> bool:
        return self.carries_balance and self.has_due_date

    @property
    def filter_statuses(self) -> tuple[str, ...]:
        """Statuses offered as list filters (stored ones plus the derived 'overdue')."""
        if self.can_be_overdue:
            return (*self.statuses[:2], S.OVERDUE, *self.statuses[2:])
        return self.statuses


KINDS: dict[str, KindSpec] = {
    spec.kind: spec
    for spec in (
        KindSpec(
            kind=DocumentKind.INVOICE,
            label=_("Invoice"),
            label_plural=_("Invoices"),
            slug="invoices",
            api_resource="invoices",
            number_field="invoice_number",
            prefix="INV-",
            party=ContactType.CUSTOMER,
            has_due_date=True,
            has_lines=True,
            issued_status=S.SENT,
            statuses=(S.DRAFT, S.SENT, S.PARTIALLY_PAID, S.PAID, S.VOID),
            carries_balance=True,
        ),
        KindSpec(
            kind=DocumentKind.SALES_ORDER,
            label=_("Sales order"),
            label_plural=_("Sales orders"),
            slug="salesorders",
            api_resource="salesorders",
            number_field="salesorder_number",
            prefix="SO-",
            party=ContactType.CUSTOMER,
            has_due_date=True,
            has_lines=True,
            issued_status=S.OPEN,
            statuses=(S.DRAFT, S.OPEN, S.INVOICED, S.CLOSED, S.VOID),
            due_date_label=_("Expected shipment date"),
        ),
        KindSpec(
            kind=DocumentKind.ESTIMATE,
            label=_("Quote"),
            label_plural=_("Quotes"),
            slug="quotes",
            api_resource="estimates",
            number_field="estimate_number",
            prefix="QT-",
            party=ContactType.CUSTOMER,
            has_due_date=True,
            has_lines=True,
            issued_status=S.SENT,
            statuses=(S.DRAFT, S.SENT, S.ACCEPTED, S.DECLINED, S.INVOICED, S.VOID),
            due_date_label=_("Expiry date"),
        ),
        KindSpec(
            kind=DocumentKind.RETAINER_INVOICE,
            label=_("Retainer invoice"),
            label_plural=_("Retainer invoices"),
            slug="retainerinvoices",
            api_resource="retainerinvoices",
            number_field="retainerinvoice_number",
            prefix="RET-",
            party=ContactType.CUSTOMER,
            has_due_date=False,
            has_lines=True,
            issued_status=S.SENT,
            statuses=(S.DRAFT, S.SENT, S.PARTIALLY_PAID, S.PAID, S.VOID),
            carries_balance=True,
        ),
        KindSpec(
            kind=DocumentKind.CREDIT_NOTE,
            label=_("Credit note"),
            label_plural=_("Credit notes"),
            slug="creditnotes",
            api_resource="creditnotes",
            number_field="creditnote_number",
            prefix="CN-",
            party=ContactType.CUSTOMER,
            has_due_date=False,
            has_lines=True,
            issued_status=S.OPEN,
            statuses=(S.DRAFT, S.OPEN, S.CLOSED, S.VOID),
            applies_to=(DocumentKind.INVOICE,),
        ),
        KindSpec(
            kind=DocumentKind.SALES_RECEIPT,
            label=_("Sales receipt"),
            label_plural=_("Sales receipts"),
            slug="salesreceipts",
            api_resource="salesreceipts",
            number_field="receipt_number",
            prefix="SR-",
            party=ContactType.CUSTOMER,
            has_due_date=False,
            has_lines=True,
            issued_status=S.PAID,
            statuses=(S.DRAFT, S.PAID, S.VOID),
        ),
        KindSpec(
            kind=DocumentKind.CUSTOMER_PAYMENT,
            label=_("Payment received"),
            label_plural=_("Payments received"),
            slug="paymentsreceived",
            api_resource="customerpayments",
            number_field="payment_number",
            prefix="PR-",
            party=ContactType.CUSTOMER,
            has_due_date=False,
            has_lines=False,
            issued_status=S.PAID,
            statuses=(S.PAID, S.VOID),
            is_payment=True,
            applies_to=(DocumentKind.INVOICE, DocumentKind.RETAINER_INVOICE),
        ),
        KindSpec(
            kind=DocumentKind.BILL,
            label=_("Bill"),
            label_plural=_("Bills"),
            slug="bills",
            api_resource="bills",
            number_field="bill_number",
            prefix="BILL-",
            party=ContactType.VENDOR,
            has_due_date=True,
            has_lines=True,
            issued_status=S.OPEN,
            statuses=(S.DRAFT, S.OPEN, S.PARTIALLY_PAID, S.PAID, S.VOID),
            carries_balance=True,
        ),
        KindSpec(
            kind=DocumentKind.VENDOR_PAYMENT,
            label=_("Payment made"),
            label_plural=_("Payments made"),
            slug="paymentsmade",
            api_resource="vendorpayments",
            number_field="payment_number",
            prefix="PM-",
            party=ContactType.VENDOR,
            has_due_date=False,
            has_lines=False,
            issued_status=S.PAID,
            statuses=(S.PAID, S.VOID),
            is_payment=True,
            applies_to=(DocumentKind.BILL,),
        ),
    )
}

KINDS_BY_SLUG: dict[str, KindSpec] = {spec.slug: spec for spec in KINDS.values()}
KINDS_BY_RESOURCE: dict[str, KindSpec] = {spec.api_resource: spec for spec in KINDS.values()}

# In the order of Zoho Books' Sales menu.
SALES_KINDS: tuple[KindSpec, ...] = tuple(
    KINDS[k]
    for k in (
        DocumentKind.ESTIMATE,
        DocumentKind.SALES_ORDER,
        DocumentKind.INVOICE,
        DocumentKind.RETAINER_INVOICE,
        DocumentKind.SALES_RECEIPT,
        DocumentKind.CUSTOMER_PAYMENT,
        DocumentKind.CREDIT_NOTE,
    )
)
PURCHASE_KINDS: tuple[KindSpec, ...] = tuple(s for s in KINDS.values() if s.party == ContactType.VENDOR)


def kind_spec(kind: str) -> KindSpec:
    return KINDS[kind]

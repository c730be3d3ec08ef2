"""Reads on the books, always scoped to one organization."""

import datetime
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import DecimalField, F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from .choices import ContactType, DocumentKind, DocumentStatus
from .kinds import KINDS, KindSpec
from .models import ZERO, Contact, Document, Membership, Organization


def membership_list(*, user: AbstractBaseUser) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user, is_active=True).select_related("organization", "role")


def membership_get(*, user: AbstractBaseUser, organization_id: int | str) -> Membership | None:
    try:
        return membership_list(user=user).get(organization_id=int(organization_id))
    except (Membership.DoesNotExist, ValueError, TypeError):
        return None


def contact_list(*, organization: Organization, contact_type: str | None = None, search: str = "") -> QuerySet[Contact]:
    qs = Contact.objects.filter(organization=organization).prefetch_related("persons")
    if contact_type:
        qs = qs.filter(contact_type=contact_type)
    if search:
        qs = qs.filter(
            Q(display_name__icontains=search)
            | Q(company_name__icontains=search)
            | Q(email__icontains=search)
            | Q(persons__mobile__icontains=search)
            | Q(persons__first_name__icontains=search)
            | Q(persons__last_name__icontains=search)
        ).distinct()
    return qs


def document_list(
    *,
    organization: Organization,
    kind: str | None = None,
    status: str = "",
    search: str = "",
    contact: Contact | None = None,
) -> QuerySet[Document]:
    """Documents of one organization; ``status`` is the status the user sees (incl. 'overdue')."""
    qs = Document.objects.filter(organization=organization).select_related("contact", "organization")
    if kind:
        qs = qs.filter(kind=kind)
    if contact is not None:
        qs = qs.filter(contact=contact)
    if status:
        qs = qs.with_status(status, organization.today())
    if search:
        qs = qs.filter(
            Q(number__icontains=search)
            | Q(contact__display_name__icontains=search)
            | Q(reference_number__icontains=search)
        )
    return qs


def document_get(*, organization: Organization, pk: int, kind: str | None = None) -> Document:
    """One document of the organization; raises Document.DoesNotExist for another organization's id."""
    qs = Document.objects.filter(organization=organization)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.select_related("contact", "organization").prefetch_related("lines", "share_with").get(pk=pk)


def payment_target_list(*, spec: KindSpec, contact: Contact, payment: Document | None = None) -> list[Document]:
    """The documents a payment of ``spec`` from ``contact`` can be applied to: issued, with a balance
    left, oldest first. When editing ``payment``, the documents it already pays are included, with
    what it applies to them added back to ``open_balance`` (the service replaces its allocations)."""
    applied: dict[int, Decimal] = {}
    if payment is not None:
        applied = {a.target_id: a.amount for a in payment.allocations_out.all()}
    open_filter = Q(balance__gt=0) & ~Q(status__in=[DocumentStatus.DRAFT, DocumentStatus.VOID])
    targets = list(
        Document.objects.filter(organization_id=contact.organization_id, contact=contact, kind__in=spec.applies_to)
        .filter(open_filter | Q(pk__in=list(applied)))
        .select_related("organization")
        .order_by("date", "id")
    )
    for target in targets:
        target.open_balance = target.balance + applied.get(target.pk, ZERO)
        target.applied_here = applied.get(target.pk)
    return targets


@dataclass(frozen=True)
class DashboardSummary:
    receivables: Decimal
    overdue_count: int
    overdue_amount: Decimal
    payables: Decimal
    draft_count: int


def dashboard_summary(*, organization: Organization) -> DashboardSummary:
    from django.db.models import Count, Sum

    open_receivables = Document.objects.filter(
        organization=organization, kind=DocumentKind.INVOICE, balance__gt=0
    ).exclude(status__in=[DocumentStatus.DRAFT, DocumentStatus.VOID])
    overdue = Document.objects.filter(organization=organization, kind=DocumentKind.INVOICE).overdue(
        organization.today()
    )
    overdue_stats = overdue.aggregate(n=Count("id"), s=Sum("balance"))
    payables = Document.objects.filter(organization=organization, kind=DocumentKind.BILL, balance__gt=0).exclude(
        status__in=[DocumentStatus.DRAFT, DocumentStatus.VOID]
    )
    return DashboardSummary(
        receivables=open_receivables.aggregate(s=Sum("balance"))["s"] or ZERO,
        overdue_count=overdue_stats["n"] or 0,
        overdue_amount=overdue_stats["s"] or ZERO,
        payables=payables.aggregate(s=Sum("balance"))["s"] or ZERO,
        draft_count=Document.objects.filter(
            organization=organization, kind=DocumentKind.INVOICE, status=DocumentStatus.DRAFT
        ).count(),
    )


# --- Statements --------------------------------------------------------------------------------

# What raises (+) and lowers (-) the amount due, per party.
_STATEMENT_SIGNS = {
    ContactType.CUSTOMER: {
        DocumentKind.INVOICE: 1,
        DocumentKind.RETAINER_INVOICE: 1,
        DocumentKind.CREDIT_NOTE: -1,
        DocumentKind.CUSTOMER_PAYMENT: -1,
    },
    ContactType.VENDOR: {
        DocumentKind.BILL: 1,
        DocumentKind.VENDOR_PAYMENT: -1,
    },
}


@dataclass(frozen=True)
class StatementEntry:
    date: datetime.date
    document: Document
    amount: Decimal  # raises the balance due (invoices, bills)
    payment: Decimal  # lowers it (payments, credit notes)
    balance: Decimal  # running balance after this entry


@dataclass(frozen=True)
class Statement:
    contact: Contact
    from_date: datetime.date
    to_date: datetime.date
    currency: str
    opening_balance: Decimal
    entries: list[StatementEntry] = field(default_factory=list)

    @property
    def total_amount(self) -> Decimal:
        return sum((e.amount for e in self.entries), ZERO)

    @property
    def total_payments(self) -> Decimal:
        return sum((e.payment for e in self.entries), ZERO)

    @property
    def closing_balance(self) -> Decimal:
        return self.opening_balance + self.total_amount - self.total_payments


def statement_build(*, contact: Contact, from_date: datetime.date, to_date: datetime.date) -> Statement:
    """A customer's or vendor's statement: balance due before ``from_date``, each document in the
    range in date order with a running balance, and the balance due at ``to_date``.
    Drafts and void documents are left out."""
    signs = _STATEMENT_SIGNS[contact.contact_type]
    documents = (
        Document.objects.filter(contact=contact, kind__in=list(signs), date__lte=to_date)
        .exclude(status__in=[DocumentStatus.DRAFT, DocumentStatus.VOID])
        .select_related("organization", "contact")
        .order_by("date", "id")
    )
    opening = ZERO
    entries: list[StatementEntry] = []
    running = ZERO
    for document in documents:
        sign = signs[document.kind]
        if document.date < from_date:
            opening += sign * document.total
            running = opening
            continue
        running += sign * document.total
        entries.append(
            StatementEntry(
                date=document.date,
                document=document,
                amount=document.total if sign > 0 else ZERO,
                payment=document.total if sign < 0 else ZERO,
                balance=running,
            )
        )
    return Statement(
        contact=contact,
        from_date=from_date,
        to_date=to_date,
        currency=contact.effective_currency,
        opening_balance=opening,
        entries=entries,
    )


# --- Balances ----------------------------------------------------------------------------------


def contact_balance_annotate(queryset: QuerySet[Contact]) -> QuerySet[Contact]:
    """Annotate ``open_balance``: what the contact owes (customers: invoices and retainer invoices)
    or is owed (vendors: bills) on issued documents, as one correlated subquery, so a list stays
    one query whatever joins a search adds."""
    outstanding = (
        Document.objects.filter(
            contact=OuterRef("pk"), kind__in=[k for k, spec in KINDS.items() if spec.carries_balance], balance__gt=0
        )
        .exclude(status__in=[DocumentStatus.DRAFT, DocumentStatus.VOID])
        .order_by()
        .values("contact")
        .annotate(total=Sum("balance"))
        .values("total")
    )
    money = DecimalField(max_digits=18, decimal_places=2)
    return queryset.annotate(
        open_balance=Coalesce(Subquery(outstanding, output_field=money), Value(ZERO, output_field=money))
    )


def contact_list_with_balance(*, organization: Organization, contact_type: str, search: str = "") -> QuerySet[Contact]:
    return contact_balance_annotate(contact_list(organization=organization, contact_type=contact_type, search=search))


def customer_balance_list(*, organization: Organization) -> QuerySet[Contact]:
    """Per customer with issued invoices: invoiced, received (payments and credits applied),
    balance due and the overdue part of it — one aggregate query over a single join."""
    issued = Q(
        documents__kind__in=[DocumentKind.INVOICE, DocumentKind.RETAINER_INVOICE],
    ) & ~Q(documents__status__in=[DocumentStatus.DRAFT, DocumentStatus.VOID])
    overdue = (
        Q(documents__kind=DocumentKind.INVOICE)
        & Q(documents__status__in=[DocumentStatus.SENT, DocumentStatus.OPEN, DocumentStatus.PARTIALLY_PAID])
        & Q(documents__due_date__lt=organization.today(), documents__balance__gt=0)
    )
    money = DecimalField(max_digits=18, decimal_places=2)
    zero = Value(ZERO, output_field=money)
    return (
        Contact.objects.filter(organization=organization, contact_type=ContactType.CUSTOMER)
        .annotate(
            invoiced=Coalesce(Sum("documents__total", filter=issued), zero, output_field=money),
            balance_due=Coalesce(Sum("documents__balance", filter=issued), zero, output_field=money),
            overdue=Coalesce(Sum("documents__balance", filter=overdue), zero, output_field=money),
        )
        .annotate(received=F("invoiced") - F("balance_due"))
        .filter(invoiced__gt=0)
        .order_by("-balance_due", "display_name")
    )

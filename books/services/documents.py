"""Writes on documents: numbering, totals, payments applied to invoices and bills, status."""

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from books.choices import ContactType, DocumentStatus
from books.formatting import money_format
from books.kinds import KINDS, KindSpec
from books.models import ZERO, Allocation, Contact, ContactPerson, Document, LineItem, NumberSeries, Organization

CENT = Decimal("0.01")


@dataclass(frozen=True)
class LineInput:
    item: str
    quantity: Decimal
    rate: Decimal
    tax_percent: Decimal = ZERO
    description: str = ""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "LineInput":
        return cls(
            item=data["item"],
            quantity=Decimal(str(data["quantity"])),
            rate=Decimal(str(data["rate"])),
            tax_percent=Decimal(str(data.get("tax_percent") or 0)),
            description=data.get("description", "") or "",
        )


@dataclass(frozen=True)
class AllocationInput:
    target: Document
    amount: Decimal


def _fmt(amount: Decimal, document: Document) -> str:
    return money_format(amount, document.currency, organization=document.organization)


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def number_next(*, organization: Organization, kind: str) -> str:
    """Take the next number of the kind's series. Caller is inside a transaction."""
    spec = KINDS[kind]
    NumberSeries.objects.get_or_create(organization=organization, kind=kind, defaults={"prefix": spec.prefix})
    series = NumberSeries.objects.select_for_update().get(organization=organization, kind=kind)
    while True:
        number = str(series)
        series.next_number += 1
        # A number typed by hand may already use the next value of the series: skip it.
        if not Document.objects.filter(organization=organization, kind=kind, number=number).exists():
            break
    series.save(update_fields=["next_number"])
    return number


def _check_header(
    *,
    spec: KindSpec,
    organization: Organization,
    contact: Contact,
    date: datetime.date,
    due_date: datetime.date | None,
    share_with: Sequence[ContactPerson],
) -> None:
    errors: dict[str, list[str]] = {}
    if contact.organization_id != organization.id:
        errors["contact"] = [_("Choose a contact of this organization.")]
    elif contact.contact_type != spec.party:
        party = ContactType(spec.party).label.lower()
        errors["contact"] = [_("Choose a %(party)s: this document is addressed to one.") % {"party": party}]
    if due_date is not None and due_date < date:
        errors["due_date"] = [_("The due date cannot be before the document date.")]
    foreign = [p for p in share_with if p.contact_id != contact.id]
    if foreign:
        errors["share_with"] = [_("Share only with persons of the chosen contact.")]
    if errors:
        raise ValidationError(errors)


def _write_lines(document: Document, lines: Sequence[LineInput]) -> None:
    if not lines:
        raise ValidationError({"lines": [_("Add at least one line item.")]})
    errors = []
    for line in lines:
        if not line.item.strip():
            errors.append(_("Every line needs an item name."))
        if line.quantity <= 0:
            errors.append(_("Quantity must be greater than zero."))
        if line.rate < 0:
            errors.append(_("Rate cannot be negative."))
        if not ZERO <= line.tax_percent <= 100:
            errors.append(_("Tax % must be between 0 and 100."))
    if errors:
        raise ValidationError({"lines": sorted(set(errors))})
    document.lines.all().delete()
    objs = []
    for position, line in enumerate(lines):
        amount = _money(line.quantity * line.rate)
        objs.append(
            LineItem(
                document=document,
                position=position,
                item=line.item.strip(),
                description=line.description,
                quantity=line.quantity,
                rate=line.rate,
                tax_percent=line.tax_percent,
                amount=amount,
                tax_amount=_money(amount * line.tax_percent / 100),
            )
        )
    LineItem.objects.bulk_create(objs)


def _refresh_totals(document: Document) -> None:
    """Recompute totals, balance and the stored status from lines and allocations."""
    spec = document.spec
    if spec.has_lines:
        sums = document.lines.aggregate(subtotal=Sum("amount"), tax=Sum("tax_amount"))
        document.subtotal = sums["subtotal"] or ZERO
        document.tax_total = sums["tax"] or ZERO
        document.total = document.subtotal + document.tax_total
    if spec.carries_balance:
        applied = document.allocations_in.aggregate(s=Sum("amount"))["s"] or ZERO
        if applied > document.total:
            raise ValidationError(
                _("The total cannot be less than the payments already applied (%(applied)s).")
                % {"applied": _fmt(applied, document)}
            )
        document.balance = max(document.total - applied, ZERO) if document.status != DocumentStatus.VOID else ZERO
        if document.status not in (DocumentStatus.DRAFT, DocumentStatus.VOID):
            if document.balance == 0 and document.total > 0:
                document.status = DocumentStatus.PAID
            elif document.balance < document.total:
                document.status = DocumentStatus.PARTIALLY_PAID
            else:
                document.status = spec.issued_status
    elif spec.applies_to:  # payments and credit notes: balance is the unused amount
        used = document.allocations_out.aggregate(s=Sum("amount"))["s"] or ZERO
        document.balance = max(document.total - used, ZERO) if document.status != DocumentStatus.VOID else ZERO
        if not spec.is_payment and document.status in (DocumentStatus.OPEN, DocumentStatus.CLOSED):
            document.status = DocumentStatus.CLOSED if document.balance == 0 else DocumentStatus.OPEN
    else:
        document.balance = ZERO
    document.save(update_fields=["subtotal", "tax_total", "total", "balance", "status", "updated_at"])


def _apply_allocations(source: Document, allocations: Sequence[AllocationInput]) -> None:
    """Replace the source's allocations. Caller holds locks on source and targets."""
    spec = source.spec
    errors: list[str] = []
    old_targets = list(Document.objects.filter(allocations_in__source=source))
    source.allocations_out.all().delete()
    for old in old_targets:
        _refresh_totals(old)
    total = sum((a.amount for a in allocations), ZERO)
    if total > source.total:
        errors.append(
            _("The amounts applied (%(applied)s) exceed the amount (%(total)s).")
            % {
                "applied": _fmt(total, source),
                "total": _fmt(source.total, source),
            }
        )
    for allocation in allocations:
        target = Document.objects.select_for_update().get(pk=allocation.target.pk)
        if target.organization_id != source.organization_id or target.contact_id != source.contact_id:
            errors.append(_("%(number)s belongs to another contact.") % {"number": target.number})
        elif target.kind not in spec.applies_to:
            errors.append(_("%(number)s cannot receive this kind of payment.") % {"number": target.number})
        elif target.is_draft_or_void:
            errors.append(_("%(number)s is a draft or void.") % {"number": target.number})
        elif target.currency != source.currency:
            errors.append(_("%(number)s is in another currency.") % {"number": target.number})
        elif allocation.amount <= 0:
            errors.append(_("Amounts applied must be greater than zero."))
        elif allocation.amount > target.balance:
            errors.append(
                _("%(number)s has a balance of %(balance)s; %(amount)s is too much.")
                % {
                    "number": target.number,
                    "balance": _fmt(target.balance, target),
                    "amount": _fmt(allocation.amount, target),
                }
            )
        else:
            Allocation.objects.create(
                organization_id=source.organization_id,
                source=source,
                target=target,
                amount=allocation.amount,
                date=source.date,
            )
            _refresh_totals(target)
    if errors:
        raise ValidationError({"allocations": errors})
    _refresh_totals(source)


@transaction.atomic
def document_create(
    *,
    organization: Organization,
    kind: str,
    contact: Contact,
    date: datetime.date,
    due_date: datetime.date | None = None,
    lines: Iterable[LineInput] = (),
    amount: Decimal | None = None,
    allocations: Iterable[AllocationInput] = (),
    share_with: Iterable[ContactPerson] = (),
    issue: bool = True,
    currency: str = "",
    number: str = "",
    created_by: AbstractBaseUser | None = None,
    **fields: Any,
) -> Document:
    """Create a document of ``kind``: numbered, totalled and (unless ``issue`` is False) issued.

    Payments take an ``amount`` and the ``allocations`` that apply it to invoices or bills.
    Raises ValidationError keyed by field when the input cannot make a sound document.
    """
    spec = KINDS[kind]
    share_with = list(share_with)
    if spec.has_due_date and due_date is None and spec.carries_balance:
        due_date = date + datetime.timedelta(days=contact.payment_terms_days)
    if not spec.has_due_date:
        due_date = None
    _check_header(
        spec=spec, organization=organization, contact=contact, date=date, due_date=due_date, share_with=share_with
    )
    if spec.is_payment:
        if amount is None or amount <= 0:
            raise ValidationError({"amount": [_("Enter an amount greater than zero.")]})
        issue = True  # a payment is never a draft
    document = Document(
        organization=organization,
        kind=kind,
        number=number.strip() or number_next(organization=organization, kind=kind),
        contact=contact,
        date=date,
        due_date=due_date,
        currency=(currency or contact.effective_currency).upper(),
        status=spec.issued_status if issue else DocumentStatus.DRAFT,
        created_by=created_by,
        total=_money(amount) if spec.is_payment else ZERO,
        **fields,
    )
    if Document.objects.filter(organization=organization, kind=kind, number=document.number).exists():
        raise ValidationError({"number": [_("%(number)s is already used.") % {"number": document.number}]})
    document.full_clean(exclude=["contact", "organization"], validate_constraints=False)
    document.save()
    document.share_with.set(share_with)
    if spec.has_lines:
        _write_lines(document, list(lines))
    if spec.applies_to:
        _apply_allocations(document, list(allocations))
    else:
        _refresh_totals(document)
    return document


@transaction.atomic
def document_update(
    *,
    document: Document,
    lines: Iterable[LineInput] | None = None,
    amount: Decimal | None = None,
    allocations: Iterable[AllocationInput] | None = None,
    share_with: Iterable[ContactPerson] | None = None,
    **fields: Any,
) -> Document:
    """Change a document that is not void; totals, balance and status follow."""
    document = Document.objects.select_for_update().get(pk=document.pk)
    spec = document.spec
    if document.status == DocumentStatus.VOID:
        raise ValidationError(_("A void document cannot be changed."))
    contact_changes = "contact" in fields and fields["contact"].pk != document.contact_id
    if contact_changes and (document.allocations_in.exists() or document.allocations_out.exists()):
        raise ValidationError({"contact": [_("Payments are applied to this document: its contact cannot change.")]})
    if "number" in fields:
        fields["number"] = (fields["number"] or "").strip() or document.number
        taken = Document.objects.filter(organization=document.organization, kind=document.kind, number=fields["number"])
        if taken.exclude(pk=document.pk).exists():
            raise ValidationError({"number": [_("%(number)s is already used.") % {"number": fields["number"]}]})
    for name, value in fields.items():
        setattr(document, name, value)
    if not spec.has_due_date:
        document.due_date = None
    persons = list(share_with) if share_with is not None else list(document.share_with.all())
    _check_header(
        spec=spec,
        organization=document.organization,
        contact=document.contact,
        date=document.date,
        due_date=document.due_date,
        share_with=persons,
    )
    if spec.is_payment and amount is not None:
        if amount <= 0:
            raise ValidationError({"amount": [_("Enter an amount greater than zero.")]})
        document.total = _money(amount)
    document.full_clean(exclude=["contact", "organization"], validate_constraints=False)
    document.save()
    if share_with is not None:
        document.share_with.set(persons)
    if spec.has_lines and lines is not None:
        _write_lines(document, list(lines))
    if spec.applies_to:
        current = [AllocationInput(a.target, a.amount) for a in document.allocations_out.select_related("target")]
        _apply_allocations(document, list(allocations) if allocations is not None else current)
    else:
        _refresh_totals(document)
    return document


@transaction.atomic
def document_issue(*, document: Document) -> Document:
    """Take a draft out of draft ("Mark as sent" / "Mark as open")."""
    document = Document.objects.select_for_update().get(pk=document.pk)
    if document.status != DocumentStatus.DRAFT:
        return document
    document.status = document.spec.issued_status
    document.save(update_fields=["status", "updated_at"])
    _refresh_totals(document)
    return document


@transaction.atomic
def document_void(*, document: Document) -> Document:
    """Void a document. An invoice or bill with payments applied must have them removed first."""
    document = Document.objects.select_for_update().get(pk=document.pk)
    if document.status == DocumentStatus.VOID:
        return document
    if document.allocations_in.exists():
        raise ValidationError(
            _("Remove the payments and credits applied to %(number)s first.") % {"number": document.number}
        )
    targets = list(Document.objects.select_for_update().filter(allocations_in__source=document))
    document.allocations_out.all().delete()
    document.status = DocumentStatus.VOID
    document.save(update_fields=["status", "updated_at"])
    _refresh_totals(document)
    for target in targets:
        _refresh_totals(target)
    return document


@transaction.atomic
def document_set_status(*, document: Document, status: str) -> Document:
    """Move a quote or sales order along its own statuses (accepted, declined, invoiced, closed)."""
    document = Document.objects.select_for_update().get(pk=document.pk)
    if status not in document.spec.statuses or status in (DocumentStatus.VOID, DocumentStatus.DRAFT):
        raise ValidationError({"status": [_("%(status)s is not a status you can set here.") % {"status": status}]})
    if document.spec.carries_balance or document.spec.is_payment:
        raise ValidationError({"status": [_("This status follows from payments.")]})
    document.status = status
    document.save(update_fields=["status", "updated_at"])
    return document

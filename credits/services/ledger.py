"""Every change of an organization's credits: reserve, settle, release, adjust.

Each service takes the organization's credit lock (:func:`credits.locks.credit_account_lock`),
changes the account and writes exactly one ledger entry per change, all in one transaction. The
database refuses a reserved amount above the balance, so a bug here fails loudly instead of
leaving an organization with negative credits.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from books.bulk_insert import bulk_insert, model_new
from books.models import Organization
from books.services.notifications import notification_create
from credits.choices import EntryKind, ReservationStatus
from credits.formatting import credits_format
from credits.locks import credit_account_lock
from credits.models import CREDITS, ZERO, CreditAccount, LedgerEntry, Reservation
from credits.selectors import category_normalize, price_table_get

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
#: The largest amount a credits column holds (``CREDITS``: 14 digits, 2 decimals).
MAX_CREDITS = Decimal(10 ** (CREDITS["max_digits"] - CREDITS["decimal_places"])) - CENT
REFERENCE_MAX = Reservation._meta.get_field("reference").max_length
LOW_BALANCE_KIND = "credits.low_balance"


class InsufficientCredits(Exception):
    """Not enough available credits: ``needed`` were asked for, ``available`` were left."""

    def __init__(self, *, needed: Decimal, available: Decimal) -> None:
        self.needed = needed
        self.available = available
        super().__init__(needed, available)

    def __str__(self) -> str:
        return _("Not enough IM credits: %(needed)s needed, %(available)s available. Buy IM credits to send.") % {
            "needed": self.needed,
            "available": self.available,
        }


@dataclass(frozen=True)
class ReservationRequest:
    """Credits to hold for one message: ``reference`` names it (``whatsapp.message:123``),
    ``amount`` is its estimated price (:func:`credits.services.credits_price`)."""

    reference: str
    amount: Decimal
    category: str
    country_code: str = ""


def credits_amount(value: Any, *, allow_negative: bool = False) -> Decimal:
    """``value`` as credits (Decimal to the hundredth); ValueError for floats, NaN, too many decimals
    or a value out of range."""
    if isinstance(value, float | bool):
        raise ValueError("Credits are Decimal, never float.")
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{value!r} is not an amount of credits.") from None
    if not amount.is_finite() or amount != amount.quantize(CENT):
        raise ValueError(f"{value!r} is not an amount of credits (at most two decimals).")
    if abs(amount) > MAX_CREDITS or (amount < 0 and not allow_negative):
        raise ValueError(f"{value!r} is out of range.")
    return amount.quantize(CENT)


# --- The one way an account changes ------------------------------------------------------------------


def entry_apply(
    account: CreditAccount, *, kind: str, amount: Decimal = ZERO, reserved_change: Decimal = ZERO, **fields: Any
) -> LedgerEntry:
    """Apply one change to the (locked) ``account`` in memory and return its unsaved ledger entry.

    For the services of this package only; :func:`entries_save` then writes both.
    """
    account.balance += amount
    account.reserved += reserved_change
    return model_new(
        LedgerEntry,
        organization_id=account.organization_id,
        kind=kind,
        amount=amount,
        reserved_change=reserved_change,
        balance_after=account.balance,
        reserved_after=account.reserved,
        **fields,
    )


def entries_save(
    account: CreditAccount, entries: Sequence[LedgerEntry], *, organization: Organization, available_before: Decimal
) -> list[LedgerEntry]:
    """Save the (locked) account and its new entries; tell members if the change made credits run low.

    Caller holds the account's lock, in the transaction the entries belong to.
    """
    notify = _low_balance_update(account, available_before=available_before)
    account.save(update_fields=["balance", "reserved", "low_balance_notified", "updated_at"])
    if len(entries) == 1:
        entries[0].save()
        saved = list(entries)
    else:
        saved = bulk_insert(entries)
    if notify:
        _low_balance_notify(account, organization=organization)
    return saved


def _low_balance_update(account: CreditAccount, *, available_before: Decimal) -> bool:
    """Set or clear ``low_balance_notified``; True when members must be told now.

    Told once per crossing: when available goes from at or above the threshold to below it.
    The flag clears once available is back at or above the threshold, so the next crossing is
    told again; staying below says nothing more.
    """
    threshold = account.low_balance_threshold
    available = account.available
    if available >= threshold:
        account.low_balance_notified = False
        return False
    if available_before >= threshold and not account.low_balance_notified:
        account.low_balance_notified = True
        return True
    return False


def _low_balance_notify(account: CreditAccount, *, organization: Organization) -> None:
    # A row in this transaction: if the change rolls back, the notification does too.
    with translation.override(organization.language):
        number = {
            "available": credits_format(account.available, organization=organization),
            "threshold": credits_format(account.low_balance_threshold, organization=organization),
        }
        notification_create(
            organization=organization,
            kind=LOW_BALANCE_KIND,
            title=_("IM credits are running low"),
            body=_(
                "%(available)s IM credits are available, below your alert threshold of %(threshold)s. "
                "Buy IM credits so that WhatsApp notifications keep going out."
            )
            % number,
            url=reverse("credits:overview"),
        )
    logger.info("Organization %s: IM credits below the threshold (%s).", organization.pk, account.available)


# --- Reserve, settle, release ------------------------------------------------------------------------


def _validated(requests: Sequence[ReservationRequest]) -> list[ReservationRequest]:
    seen: set[str] = set()
    cleaned = []
    for request in requests:
        if not request.reference or len(request.reference) > REFERENCE_MAX:
            raise ValueError(f"A reservation needs a reference of 1 to {REFERENCE_MAX} characters.")
        if request.reference in seen:
            raise ValueError(f"Reference {request.reference!r} is asked for twice in one reservation.")
        seen.add(request.reference)
        cleaned.append(
            ReservationRequest(
                reference=request.reference,
                amount=credits_amount(request.amount),
                category=category_normalize(request.category),
                country_code=request.country_code,
            )
        )
    return cleaned


@transaction.atomic
def credits_reserve(
    *,
    organization: Organization,
    requests: Sequence[ReservationRequest],
    user: AbstractBaseUser | None = None,
    new_references: bool = False,
) -> list[Reservation]:
    """Hold credits for messages about to be sent, all or nothing; one reservation (and one ledger
    entry) per request, returned in the order asked.

    A reference that already has a reservation gets that one back and is not held twice, so a
    retried send never reserves again. ``new_references`` says the caller knows none can have one
    (messages inserted in this transaction): they are not looked up, and a reservation that
    existed after all would fail the transaction on the unique reference instead of being reused.
    Raises :class:`InsufficientCredits` when the new holds together exceed the available credits;
    nothing is reserved then.
    """
    requests = _validated(requests)
    if not requests:
        return []
    account = credit_account_lock(organization=organization)
    # Reservations are created under the lock only, so what exists now is all there is.
    existing: dict[str, Reservation] = {}
    if not new_references:
        references = [request.reference for request in requests]
        existing = {
            r.reference: r for r in Reservation.objects.filter(organization=organization, reference__in=references)
        }
    new = [request for request in requests if request.reference not in existing]
    needed = sum((request.amount for request in new), ZERO)
    available_before = account.available
    if needed > available_before:
        raise InsufficientCredits(needed=needed, available=available_before)
    if new:
        now = timezone.now()
        created = bulk_insert(
            [
                model_new(
                    Reservation,
                    organization=organization,
                    reference=request.reference,
                    amount=request.amount,
                    category=request.category,
                    country_code=request.country_code,
                    created_at=now,
                )
                for request in new
            ]
        )
        entries = [
            entry_apply(
                account,
                kind=EntryKind.RESERVATION,
                reserved_change=reservation.amount,
                reservation=reservation,
                reference=reservation.reference,
                category=reservation.category,
                country_code=reservation.country_code,
                created_by=user,
                created_at=now,
            )
            for reservation in created
        ]
        entries_save(account, entries, organization=organization, available_before=available_before)
        existing.update({reservation.reference: reservation for reservation in created})
    return [existing[request.reference] for request in requests]


@dataclass(frozen=True)
class ReservationClose:
    """How one hold ends: settled (``settle``: charged the price of the reported ``category`` and
    ``country_code`` when ``billable``) or released (nothing charged; ``reason`` goes in the note)."""

    reference: str
    settle: bool
    billable: bool = False
    category: str = ""
    country_code: str = ""
    reason: str = ""


@transaction.atomic
def reservation_settle(
    *, organization: Organization, reference: str, billable: bool, category: str, country_code: str = ""
) -> Reservation | None:
    """Charge a message what WhatsApp reported and let its hold go.

    ``charged`` is the price of the *reported* category and country (the reservation's country
    when none is given), or 0 when the message is not billable. Settling is conditional on the
    reservation still being held: a second call (a duplicate webhook) changes nothing and returns
    the row. None when there is no reservation for ``reference``.

    Never fails for lack of credits: if the reported category costs more than was held and the
    organization cannot cover the difference, it is charged only what keeps every other hold
    covered, and the shortfall is written in the entry's note.
    """
    close = ReservationClose(
        reference=reference, settle=True, billable=billable, category=category, country_code=country_code
    )
    return _reservation_close(organization=organization, close=close)


@transaction.atomic
def reservation_release(*, organization: Organization, reference: str, reason: str = "") -> Reservation | None:
    """Let a hold go without charging anything (the message failed or was never sent).

    Idempotent: a reservation already settled or released is returned unchanged. None when
    there is no reservation for ``reference``.
    """
    close = ReservationClose(reference=reference, settle=False, reason=reason)
    return _reservation_close(organization=organization, close=close)


def _reservation_close(*, organization: Organization, close: ReservationClose) -> Reservation | None:
    account = credit_account_lock(organization=organization)
    reservation = (
        Reservation.objects.select_for_update().filter(organization=organization, reference=close.reference).first()
    )
    if reservation is None or reservation.status != ReservationStatus.RESERVED:
        return reservation
    _held_close(account, [(reservation, close)], organization=organization)
    return reservation


@transaction.atomic
def reservations_close(*, organization: Organization, closes: Sequence[ReservationClose]) -> int:
    """Settle or release many holds of one organization at once: one lock, one ledger entry per hold
    (inserted together), one account update. How many holds ended.

    Each hold ends as :func:`reservation_settle` or :func:`reservation_release` would end it, in
    the order given (the first close of a reference counts); a reference without a reservation, or
    whose reservation already ended, is skipped. When none of the references is still held, the
    organization's lock is not taken at all: a burst of statuses for messages that reserved
    nothing (free ones, or a retry of statuses already settled) costs one query.
    """
    wanted: dict[str, ReservationClose] = {}
    for close in closes:
        wanted.setdefault(close.reference, close)
    held = Reservation.objects.filter(
        organization=organization, reference__in=list(wanted), status=ReservationStatus.RESERVED
    )
    if not held.exists():
        return 0
    account = credit_account_lock(organization=organization)
    # Read again under the lock: what is held now is all there is until the transaction ends.
    order = {reference: n for n, reference in enumerate(wanted)}
    reservations = sorted(held.select_for_update().order_by("pk"), key=lambda r: order[r.reference])
    _held_close(account, [(r, wanted[r.reference]) for r in reservations], organization=organization)
    return len(reservations)


def _held_close(
    account: CreditAccount,
    held: Sequence[tuple[Reservation, ReservationClose]],
    *,
    organization: Organization,
) -> None:
    """End holds that are still reserved, in order. Caller holds the account's lock and has locked
    every reservation (``SELECT … FOR UPDATE``), so each conditional UPDATE below matches all its rows."""
    now = timezone.now()
    available_before = account.available
    prices = None
    entries = []
    ended: dict[tuple[str, Decimal], list[int]] = defaultdict(list)
    for reservation, close in held:
        if close.settle:
            category = category_normalize(close.category)
            country_code = close.country_code or reservation.country_code
            price = ZERO
            if close.billable:
                prices = prices or price_table_get(organization=organization)
                price = prices.price(category, country_code)
            # Others' holds stay covered: the balance may not fall below what stays reserved.
            charged = min(price, account.balance - (account.reserved - reservation.amount))
            note = ""
            if charged < price:
                note = _("Shortfall: %(price)s credits were due, %(charged)s could be charged.") % {
                    "price": price,
                    "charged": charged,
                }
                logger.warning(
                    "Organization %s: settling %s short by %s credits.",
                    organization.pk,
                    reservation.reference,
                    price - charged,
                )
            entry = entry_apply(
                account,
                kind=EntryKind.SETTLEMENT,
                amount=-charged,
                reserved_change=-reservation.amount,
                reservation=reservation,
                reference=reservation.reference,
                category=category,
                country_code=country_code,
                note=note,
                created_at=now,
            )
            reservation.status, reservation.charged = ReservationStatus.SETTLED, charged
        else:
            entry = entry_apply(
                account,
                kind=EntryKind.RELEASE,
                reserved_change=-reservation.amount,
                reservation=reservation,
                reference=reservation.reference,
                category=reservation.category,
                country_code=reservation.country_code,
                note=close.reason,
                created_at=now,
            )
            reservation.status = ReservationStatus.RELEASED
        reservation.closed_at = now
        entries.append(entry)
        ended[reservation.status, reservation.charged].append(reservation.pk)
    for (status, charged), ids in ended.items():  # one UPDATE per outcome: settled at a price, or released
        updated = Reservation.objects.filter(pk__in=ids, status=ReservationStatus.RESERVED).update(
            status=status, charged=charged, closed_at=now
        )
        if updated != len(ids):  # the caller's locks make this impossible; never write a wrong ledger
            raise RuntimeError(f"Reservations {ids} changed without the credit lock.")
    entries_save(account, entries, organization=organization, available_before=available_before)


# --- Administrators ------------------------------------------------------------------------------------


@transaction.atomic
def credits_adjust(
    *, organization: Organization, amount: Decimal, note: str, user: AbstractBaseUser | None
) -> LedgerEntry:
    """An administrator's correction: add (positive) or take away (negative) credits, with the reason.

    Refused (ValidationError) when it would leave fewer credits than are held for messages in
    flight, when ``amount`` is zero or not an amount of credits, or without a note.
    """
    try:
        amount = credits_amount(amount, allow_negative=True)
    except ValueError:
        raise ValidationError({"amount": _("Enter an amount of credits with at most two decimals.")}) from None
    if amount == 0:
        raise ValidationError({"amount": _("Enter an amount other than zero.")})
    if not note or not note.strip():
        raise ValidationError({"note": _("Say why the credits are adjusted.")})
    account = credit_account_lock(organization=organization)
    if account.balance + amount < account.reserved:
        raise ValidationError(
            {
                "amount": _(
                    "This would leave %(balance)s credits while %(reserved)s are reserved for messages in flight."
                )
                % {"balance": account.balance + amount, "reserved": account.reserved}
            }
        )
    if account.balance + amount > MAX_CREDITS:
        raise ValidationError({"amount": _("The balance cannot grow that large.")})
    available_before = account.available
    entry = entry_apply(account, kind=EntryKind.ADJUSTMENT, amount=amount, note=note.strip(), created_by=user)
    return entries_save(account, [entry], organization=organization, available_before=available_before)[0]


@transaction.atomic
def credits_threshold_set(*, organization: Organization, threshold: Decimal) -> CreditAccount:
    """Change when members are told that credits run low (no ledger entry: no credits move).

    Raising the threshold above what is available tells nobody now (nothing was spent); the
    next spending that is still below it does not tell either, until credits have been back
    above the threshold once. Lowering it below what is available re-arms the alert.
    """
    try:
        threshold = credits_amount(threshold)
    except ValueError:
        raise ValidationError(
            {"low_balance_threshold": _("Enter a number of credits, zero or more, with at most two decimals.")}
        ) from None
    account = credit_account_lock(organization=organization)
    account.low_balance_threshold = threshold
    if account.available >= threshold:
        account.low_balance_notified = False
    else:
        # Already below: a warning now would not be about a change; count it as told.
        account.low_balance_notified = True
    account.save(update_fields=["low_balance_threshold", "low_balance_notified", "updated_at"])
    return account

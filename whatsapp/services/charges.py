"""A message's IM credits: reserved when it is queued, settled or given back as Meta reports.

``credits`` knows reservations by reference, not messages; this module is the one place that
names a message's reservation and decides, from a status webhook, what Meta charges for it.
Meta charges a template message when it is *delivered* (its ``pricing`` comes with ``sent`` and
with one of ``delivered``/``read``), service messages and utility templates inside an open
customer window are free, and a message that fails costs nothing.

Statuses are applied first and their credits closed afterwards (:class:`CreditsFollow`), so the
organization's credit lock is never held while a batch of webhooks is applied.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from django.db.models import BigIntegerField, Exists, OuterRef
from django.db.models.functions import Cast, Substr
from django.utils import timezone

from books.models import Organization
from credits.choices import ReservationStatus
from credits.models import Reservation
from credits.services import ReservationClose, phone_calling_code, reservation_release, reservations_close
from whatsapp.choices import MessageStatus, MessageType
from whatsapp.models import Message

#: Prefix of every message's reservation reference.
REFERENCE_PREFIX = "whatsapp.message:"
#: WhatsApp keeps trying to deliver for 30 days; a message still undelivered then is never charged.
UNDELIVERED_AFTER = datetime.timedelta(days=30)
#: A delivered or failed message whose credits are still held this long after its last change was
#: missed by :meth:`CreditsFollow.close` (which runs right after its statuses commit).
UNSETTLED_AFTER = datetime.timedelta(minutes=2)
#: The statuses after which a message's credits are settled or released.
CLOSING_STATUSES = (MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.FAILED)


def credits_reference(message_id: int) -> str:
    """The credits reservation of one message."""
    return f"{REFERENCE_PREFIX}{message_id}"


def message_credits_release(message: Message, *, organization: Organization | None = None) -> None:
    """Give back a failed message's reserved credits (nothing happens when none are reserved)."""
    reservation_release(
        organization=organization or message.organization,
        reference=credits_reference(message.pk),
        reason=message.error_title or "failed",
    )


class CreditsFollow:
    """The credits that statuses settle or release: collected while the statuses are applied,
    closed afterwards (:meth:`close`) in one short transaction per organization.

    Closing after the statuses' transaction, not inside it, keeps the organization's credit lock
    out of the webhook drain's batch (two drains would otherwise queue, or deadlock, on it). The
    reservation's own state makes it exactly once: only a held reservation is settled or released,
    so closing twice, or the same status again, changes nothing. A crash between the statuses'
    commit and :meth:`close` leaves holds that :func:`unsettled_credits_close` ends later.

    The first closing status of a message decides, as if each were closed at once: delivered or
    read settles it (with that status's pricing, else what the message keeps of earlier ones),
    failed releases it, and whatever comes after finds the hold gone.
    """

    def __init__(self) -> None:
        self._due: dict[int, tuple[Organization, ReservationClose]] = {}

    def __len__(self) -> int:
        return len(self._due)

    def add(
        self, message: Message, *, organization: Organization, status: str, pricing: Mapping[str, Any] | None
    ) -> None:
        """``status`` was applied to ``message`` (which holds the message's state after it)."""
        if status not in CLOSING_STATUSES or message.pk in self._due:
            return
        reference = credits_reference(message.pk)
        if status == MessageStatus.FAILED:
            close = ReservationClose(reference=reference, settle=False, reason=message.error_title or "failed")
        else:
            billable, category = _billing(message, pricing or {})
            close = ReservationClose(
                reference=reference,
                settle=True,
                billable=billable,
                category=category,
                country_code=phone_calling_code(phone=message.phone),
            )
        self._due[message.pk] = (organization, close)

    def merge(self, other: CreditsFollow) -> None:
        """Take over what ``other`` collected after what this one has (the statuses of a later event)."""
        for message_id, due in other._due.items():
            self._due.setdefault(message_id, due)

    def close(self) -> int:
        """Settle and release what was collected, then forget it; how many holds ended.

        Call it once the statuses are committed: a hold closed for a status that then rolls back
        would charge a message that was never delivered.
        """
        by_organization: dict[int, tuple[Organization, list[ReservationClose]]] = {}
        for organization, close in self._due.values():
            by_organization.setdefault(organization.pk, (organization, []))[1].append(close)
        self._due.clear()
        return sum(
            reservations_close(organization=organization, closes=closes)
            for organization, closes in by_organization.values()
        )


def _billing(message: Message, pricing: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether Meta charges the message, and in which category (``billable`` is being retired:
    ``type`` ``regular`` is what Meta charges; ``free_customer_service`` and ``free_entry_point``
    are free)."""
    if pricing:
        billable = pricing.get("billable")
        if not isinstance(billable, bool):
            billable = str(pricing.get("type") or "regular") == "regular"
        return billable, str(pricing.get("category") or message.category)
    category = message.pricing_category or message.category
    if message.billable is not None:
        return message.billable, category
    if message.pricing_type:  # an earlier status's ``type`` (or its pricing model, when it had no type)
        return not message.pricing_type.startswith("free"), category
    return message.message_type == MessageType.TEMPLATE, message.category


def unsettled_credits_close(*, now: datetime.datetime | None = None, limit: int = 500) -> int:
    """Beat: settle or release the credits of messages delivered (or failed) at least
    :data:`UNSETTLED_AFTER` ago whose hold is still there: the status was committed but the process
    stopped before :meth:`CreditsFollow.close`. Returns how many holds ended.

    Read from the held reservations (messages in flight, not the whole history), each joined to its
    message by the id in its reference.
    """
    now = now or timezone.now()
    message_id = Cast(Substr("reference", len(REFERENCE_PREFIX) + 1), BigIntegerField())
    closing = Message.objects.filter(
        pk=OuterRef("message_id"), status__in=CLOSING_STATUSES, updated_at__lt=now - UNSETTLED_AFTER
    )
    held = (
        Reservation.objects.filter(status=ReservationStatus.RESERVED, reference__startswith=REFERENCE_PREFIX)
        .annotate(message_id=message_id)
        .filter(Exists(closing))
        .order_by("created_at")
        .values_list("message_id", flat=True)[:limit]
    )
    follow = CreditsFollow()
    for message in Message.objects.filter(pk__in=list(held)).select_related("organization").order_by("pk"):
        # Delivered, even if it failed afterwards (another device): Meta charged it.
        status = MessageStatus.DELIVERED if message.delivered_at is not None else message.status
        follow.add(message, organization=message.organization, status=status, pricing=None)
    return follow.close()


def undelivered_credits_release(*, now: datetime.datetime | None = None, limit: int = 500) -> int:
    """Beat: give back what messages WhatsApp never delivered reserved (a number that blocked the
    business stays ``sent`` for ever, and Meta charges only delivered messages). Returns how many."""
    now = now or timezone.now()
    open_reservations = Reservation.objects.filter(
        status=ReservationStatus.RESERVED,
        reference__startswith=REFERENCE_PREFIX,
        created_at__lt=now - UNDELIVERED_AFTER,
    ).select_related("organization")[:limit]
    by_message = {int(r.reference.removeprefix(REFERENCE_PREFIX)): r for r in open_reservations}
    waiting = set(
        Message.objects.filter(
            pk__in=list(by_message), status__in=[MessageStatus.QUEUED, MessageStatus.SENDING]
        ).values_list("pk", flat=True)
    )
    released = 0
    for message_id, reservation in by_message.items():
        if message_id in waiting:  # still on its way (a long backoff): the sweeper fails it if it never goes
            continue
        reservation_release(
            organization=reservation.organization,
            reference=reservation.reference,
            reason="not delivered within 30 days",
        )
        released += 1
    return released

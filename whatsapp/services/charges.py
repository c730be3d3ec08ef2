"""A message's IM credits: reserved when it is queued, settled or given back as Meta reports.

``credits`` knows reservations by reference, not messages; this module is the one place that
names a message's reservation and decides, from a status webhook, what Meta charges for it.
Meta charges a template message when it is *delivered* (its ``pricing`` comes with ``sent`` and
with one of ``delivered``/``read``), service messages and utility templates inside an open
customer window are free, and a message that fails costs nothing.
"""

from __future__ import annotations

import datetime

from django.utils import timezone

from books.models import Organization
from credits.choices import ReservationStatus
from credits.models import Reservation
from credits.services import phone_calling_code, reservation_release, reservation_settle
from whatsapp.choices import MessageStatus, MessageType
from whatsapp.models import Message

#: Prefix of every message's reservation reference.
REFERENCE_PREFIX = "whatsapp.message:"
#: WhatsApp keeps trying to deliver for 30 days; a message still undelivered then is never charged.
UNDELIVERED_AFTER = datetime.timedelta(days=30)


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


def message_credits_follow(message: Message, *, organization: Organization, status: str, pricing: dict | None) -> None:
    """After a status webhook: settle on delivered/read with Meta's pricing, release on failed.

    Both are idempotent in ``credits``: the second ``delivered``/``read`` settles nothing more,
    and a failure after a delivery (another device) gives nothing back, as Meta charged it.
    """
    if status == MessageStatus.FAILED:
        message_credits_release(message, organization=organization)
        return
    if status not in (MessageStatus.DELIVERED, MessageStatus.READ):
        return
    billable, category = _billing(message, pricing or {})
    reservation_settle(
        organization=organization,
        reference=credits_reference(message.pk),
        billable=billable,
        category=category,
        country_code=phone_calling_code(phone=message.phone),
    )


def _billing(message: Message, pricing: dict) -> tuple[bool, str]:
    """Whether Meta charges the message, and in which category (``billable`` is being retired:
    ``type`` ``regular`` is what Meta charges)."""
    if pricing:
        billable = pricing.get("billable")
        if not isinstance(billable, bool):
            billable = str(pricing.get("type") or "regular") == "regular"
        return billable, str(pricing.get("category") or message.category)
    if message.billable is not None:
        return message.billable, message.pricing_category or message.category
    return message.message_type == MessageType.TEMPLATE, message.category


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

"""Pausing a bulk send when Meta restricts sending, and resuming it.

Meta answers 131048 ("spam rate limit hit: sending restricted") when recipients reported or
blocked recent messages. Every further message of the same bulk send would be refused the same
way, and each refusal lowers the number's quality further; Meta's advice is not to retry and to
pause bulk sends. So the message that got it fails as any permanent error does, and its bulk send
is paused (:func:`bulk_send_pause`): its queued messages are *held* — still ``queued``, their
credits still reserved, ``send_after`` set to :data:`HELD_UNTIL`, so that dispatch, which claims
due rows only, passes them by without a change to its claim — and the organization is told. After
reviewing the template someone presses "Resume sending" (:func:`bulk_send_resume`): the held
messages are due again and dispatch is woken. One-off sends and automatic reminders (no bulk send)
are not paused.

A row can come back to the queue after the pause held the others (a pump puts back what it had
claimed, a retry's backoff ends, the sweeper takes back a dead worker's claim, the bulk send's task
writes more): dispatch looks at the bulk send of what it claims and holds such rows then
(:func:`bulks_paused_lock`). Pausing, resuming and holding lock the bulk send's row first, so a
resume never misses a row held at the same moment.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable
from typing import Final

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from whatsapp.choices import Direction, MessageStatus
from whatsapp.client import CloudAPIError
from whatsapp.models import BulkSend, Message, PhoneNumber

logger = logging.getLogger(__name__)

#: Meta's error codes that pause the bulk send of the message refused with them.
PAUSE_CODES: Final = frozenset({131048})
#: ``send_after`` of a held message: far enough never to fall due, near enough for any date arithmetic.
HELD_UNTIL: Final = datetime.datetime(3000, 1, 1, tzinfo=datetime.UTC)
PAUSED_NOTICE_KIND: Final = "whatsapp.bulk_paused"


def pauses_bulk(exc: Exception) -> bool:
    """Whether Meta's refusal ``exc`` pauses the bulk send of the refused message."""
    return isinstance(exc, CloudAPIError) and exc.code in PAUSE_CODES


def bulk_send_pause(*, bulk_id: int, code: int, phone_number_id: int | None) -> bool:
    """Pause bulk send ``bulk_id`` after Meta refused one of its messages with error ``code`` (in
    the send's answer, or in a failed status webhook later): hold its
    queued messages and tell the organization. True when this call paused it (a conditional
    UPDATE: a hundred refusals pause and notify once).

    The reason is written in the organization's language, as its notification is.
    """
    bulk = BulkSend.objects.select_related("organization").filter(pk=bulk_id).first()
    if bulk is None:
        return False
    organization = bulk.organization
    number = PhoneNumber.objects.filter(pk=phone_number_id).values_list("display_phone_number", flat=True).first()
    with translation.override(organization.language or settings.LANGUAGE_CODE):
        reason = _(
            "Meta restricted sending from %(number)s (error %(code)s) because recent messages were reported or "
            "blocked. Review the template's wording before you resume sending."
        ) % {"number": number or _("this WhatsApp number"), "code": code}
        now = timezone.now()
        with transaction.atomic():
            paused = BulkSend.objects.filter(pk=bulk_id, paused_at__isnull=True).update(
                paused_at=now, pause_reason=reason
            )
            if not paused:
                return False
            held = _queued(bulk_id).update(send_after=HELD_UNTIL)
            logger.warning("WhatsApp bulk send %s paused (%s): %s messages held.", bulk_id, code, held)
            from books.services.notifications import notification_create

            notification_create(
                organization=organization,
                kind=PAUSED_NOTICE_KIND,
                title=_("WhatsApp bulk send paused: Meta restricted sending"),
                body=ngettext(
                    "%(reason)s The %(count)d message still waiting is kept, not lost: resume the bulk send "
                    "from its page when you are ready.",
                    "%(reason)s The %(count)d messages still waiting are kept, none is lost: resume the bulk "
                    "send from its page when you are ready.",
                    held,
                )
                % {"reason": reason, "count": held},
                url=reverse("whatsapp_send:bulk", args=[bulk_id]),
            )
    return True


def bulk_send_resume(*, bulk: BulkSend) -> int | None:
    """Resume a paused bulk send: its held messages fall due and dispatch is woken (on commit).
    How many were released; None when it was not paused (a second click changes nothing)."""
    from whatsapp.services.dispatch import messages_dispatch_on_commit

    with transaction.atomic():
        resumed = BulkSend.objects.filter(pk=bulk.pk, paused_at__isnull=False).update(paused_at=None, pause_reason="")
        if not resumed:
            return None
        ids = list(_queued(bulk.pk).filter(send_after=HELD_UNTIL).values_list("pk", flat=True))
        Message.objects.filter(pk__in=ids, status=MessageStatus.QUEUED, send_after=HELD_UNTIL).update(send_after=None)
        messages_dispatch_on_commit(ids)
    bulk.paused_at, bulk.pause_reason = None, ""
    logger.info("WhatsApp bulk send %s resumed: %s messages released.", bulk.pk, len(ids))
    return len(ids)


def bulks_paused(*, bulk_ids: Iterable[int]) -> set[int]:
    """Which of ``bulk_ids`` are paused (a plain read: hold what they name with :func:`bulks_paused_lock`)."""
    return set(BulkSend.objects.filter(pk__in=list(bulk_ids), paused_at__isnull=False).values_list("pk", flat=True))


def bulks_paused_lock(*, bulk_ids: Iterable[int]) -> set[int]:
    """Which of ``bulk_ids`` are paused, their rows locked until the caller's transaction ends
    (the caller holds their messages in it): a resume waits for the hold and then releases what it
    held, or a hold that waited for a resume finds the bulk send no longer paused.

    ``FOR NO KEY UPDATE``: messages of the bulk send can still be inserted meanwhile.
    """
    return set(
        BulkSend.objects.select_for_update(no_key=True)
        .filter(pk__in=list(bulk_ids), paused_at__isnull=False)
        .values_list("pk", flat=True)
    )


def _queued(bulk_id: int) -> QuerySet[Message]:
    return Message.objects.filter(bulk_id=bulk_id, status=MessageStatus.QUEUED, direction=Direction.OUTBOUND)

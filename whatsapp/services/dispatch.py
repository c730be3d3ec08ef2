"""Outbound messages: a row before a request, then one claimed send per row.

:func:`message_queue` writes the ``Message`` (status ``queued``) and enqueues its dispatch when
the transaction commits. :func:`message_dispatch` claims the row with a conditional UPDATE
(``queued → sending``; a redelivered task finds nothing to claim), calls the Cloud API with
``biz_opaque_callback_data`` = the row's id, and stores the wamid. From there only webhooks move
the row (sent, delivered, read, failed).

Errors: a retryable one (throughput, pair rate, Meta unavailable) puts the row back to ``queued``
and the task retries with backoff; a permanent one fails the row with Meta's code, title and
details (the fix hint is derived from the code). An *ambiguous* one — the request went out but no
answer came — is never retried blindly, because Meta may have accepted it: the row stays
``sending`` until a webhook says what happened, and the sweeper fails it after
:data:`UNCONFIRMED_AFTER` with a hint to check before resending.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from books.models import Contact, ContactPerson, Document
from books.phone import is_valid_e164
from whatsapp.choices import Category, Direction, MessageStatus, MessageType
from whatsapp.client import MAX_TEXT_LENGTH, CloudAPIError
from whatsapp.cloud import account_cloud_api
from whatsapp.models import Message, PhoneNumber, WhatsAppAccount

logger = logging.getLogger(__name__)

#: Attempts for retryable errors before the row fails (Meta's throughput errors clear in seconds).
MAX_ATTEMPTS = 6
#: A ``sending`` row with no answer and no webhook after this long is failed as unconfirmed.
UNCONFIRMED_AFTER = datetime.timedelta(minutes=15)
#: A ``queued`` row whose task was lost is enqueued again after this long.
STUCK_QUEUED_AFTER = datetime.timedelta(minutes=5)


class RetryDispatch(Exception):
    """A retryable Meta error: the row is queued again; the task should retry after ``countdown``."""

    def __init__(self, countdown: float) -> None:
        super().__init__(f"retry in {countdown}s")
        self.countdown = countdown


def message_queue(
    *,
    account: WhatsAppAccount,
    to: str,
    message_type: str,
    body: Mapping[str, Any],
    content: str,
    category: str = Category.SERVICE,
    phone_number: PhoneNumber | None = None,
    contact: Contact | None = None,
    contact_person: ContactPerson | None = None,
    document: Document | None = None,
    template_name: str = "",
    template_language: str = "",
    user: Any = None,
) -> Message:
    """Write an outbound message (``queued``) and enqueue its dispatch on commit.

    ``body`` is the type object of Meta's send request (``{"body": …}`` for text, the template
    object for templates), stored as is so a retry sends exactly the same thing.
    """
    phone_number = phone_number or account.default_phone_number
    if not account.can_send:
        raise ValidationError(
            _("WhatsApp is not active for this organization (status: %(status)s).")
            % {"status": account.get_status_display()}
        )
    if phone_number is None or phone_number.account_id != account.pk or not phone_number.is_verified:
        raise ValidationError(_("Choose a verified WhatsApp number of this organization to send from."))
    if not is_valid_e164(to):
        raise ValidationError({"to": _("“%(to)s” is not a valid mobile number with its country code.") % {"to": to}})
    message = Message.objects.create(
        organization=account.organization,
        account=account,
        phone_number=phone_number,
        direction=Direction.OUTBOUND,
        message_type=message_type,
        phone=to,
        contact=contact or (contact_person.contact if contact_person else None),
        contact_person=contact_person,
        document=document,
        template_name=template_name,
        template_language=template_language,
        category=category,
        content=content,
        payload={"type": message_type, message_type: dict(body)},
        status=MessageStatus.QUEUED,
        queued_at=timezone.now(),
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    transaction.on_commit(lambda: _enqueue(message.pk))
    return message


def message_text_queue(
    *,
    account: WhatsAppAccount,
    to: str,
    text: str,
    contact_person: ContactPerson | None = None,
    phone_number: PhoneNumber | None = None,
    user: Any = None,
) -> Message:
    """A free-form text (only delivered inside the customer's 24 h window)."""
    text = (text or "").strip()
    if not text or len(text) > MAX_TEXT_LENGTH:
        raise ValidationError({"text": _("Write 1 to %(max)d characters.") % {"max": MAX_TEXT_LENGTH}})
    return message_queue(
        account=account,
        to=to,
        message_type=MessageType.TEXT,
        body={"body": text, "preview_url": False},
        content=text,
        contact_person=contact_person,
        phone_number=phone_number,
        user=user,
    )


def message_template_queue(
    *,
    account: WhatsAppAccount,
    to: str,
    name: str,
    language: str,
    components: Sequence[Mapping[str, Any]] = (),
    content: str = "",
    category: str = Category.UTILITY,
    **fields: Any,
) -> Message:
    """An approved template with its rendered components (Meta's send shape)."""
    body: dict[str, Any] = {"name": name, "language": {"code": language}}
    if components:
        body["components"] = [dict(component) for component in components]
    return message_queue(
        account=account,
        to=to,
        message_type=MessageType.TEMPLATE,
        body=body,
        content=content,
        category=category,
        template_name=name,
        template_language=language,
        **fields,
    )


def _enqueue(message_id: int) -> None:
    from whatsapp.tasks import message_dispatch_task

    try:
        message_dispatch_task.delay(message_id)
    except Exception:  # the broker is down: the row is queued, the sweeper sends it later
        logger.exception("Could not enqueue dispatch of WhatsApp message %s; the sweeper will.", message_id)


def message_dispatch(*, message_id: int) -> Message | None:
    """Send one queued message; None when there was nothing to claim (already sent or being sent).

    Raises :class:`RetryDispatch` for a retryable error (the row is queued again first).
    """
    claimed = Message.objects.filter(pk=message_id, status=MessageStatus.QUEUED, direction=Direction.OUTBOUND).update(
        status=MessageStatus.SENDING, sending_at=timezone.now(), attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    message = Message.objects.select_related("account", "phone_number").get(pk=message_id)
    account, phone_number = message.account, message.phone_number
    if account is None or phone_number is None or not account.can_send:
        return _fail(message, None, _("WhatsApp is not active for this organization."), "")
    try:
        result = _send(account, phone_number, message)
    except CloudAPIError as exc:
        if exc.ambiguous:
            logger.warning("WhatsApp message %s: no answer from Meta; waiting for a webhook.", message.pk)
            Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING).update(
                error_title=exc.title[:255], error_details=exc.details or exc.message
            )
            return message
        if exc.retryable and message.attempts < MAX_ATTEMPTS:
            Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING).update(status=MessageStatus.QUEUED)
            raise RetryDispatch(countdown=_backoff(exc, message.attempts)) from exc
        return _fail(message, exc.code, exc.title, exc.details or exc.message, subcode=exc.subcode)
    except ValueError as exc:  # the stored request can't be sent as it is (client-side validation)
        return _fail(message, None, _("The message could not be sent as written."), str(exc))
    # A fast webhook may have stored the wamid (matched by callback data) already.
    Message.objects.filter(pk=message.pk, wamid__isnull=True).update(wamid=result.wamid)
    message.refresh_from_db()
    return message


def _send(account: WhatsAppAccount, phone_number: PhoneNumber, message: Message) -> Any:
    api = account_cloud_api(account)
    payload = message.payload
    kind = payload.get("type")
    body = payload.get(kind) or {}
    common = {"biz_opaque_callback_data": str(message.pk)}
    to = message.phone
    if kind == MessageType.TEMPLATE:
        return api.send_template(
            phone_number.phone_number_id,
            to,
            body["name"],
            body["language"]["code"],
            body.get("components"),
            **common,
        )
    if kind == MessageType.TEXT:
        return api.send_text(
            phone_number.phone_number_id, to, body["body"], preview_url=bool(body.get("preview_url")), **common
        )
    return api.send_media(
        phone_number.phone_number_id,
        to,
        kind,
        media_id=body.get("id"),
        link=body.get("link"),
        caption=body.get("caption"),
        filename=body.get("filename"),
        **common,
    )


def _backoff(exc: CloudAPIError, attempts: int) -> float:
    """Seconds before the next try: pair-rate limits (131056) wait 4^n s as Meta suggests."""
    if exc.code == 131056:
        return float(min(4**attempts, 900))
    return float(min(2**attempts, 300))


def _fail(message: Message, code: int | None, title: str, details: str, *, subcode: int | None = None) -> Message:
    Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING).update(
        status=MessageStatus.FAILED,
        failed_at=timezone.now(),
        error_code=code,
        error_subcode=subcode,
        error_title=title[:255],
        error_details=details,
    )
    message.refresh_from_db()
    return message


def messages_sweep(*, now: datetime.datetime | None = None) -> dict[str, int]:
    """Beat: re-enqueue queued rows whose task was lost; fail sends Meta never confirmed."""
    now = now or timezone.now()
    stuck = list(
        Message.objects.filter(
            direction=Direction.OUTBOUND, status=MessageStatus.QUEUED, queued_at__lt=now - STUCK_QUEUED_AFTER
        )
        # A row put back for a retry waits out its backoff (up to 15 minutes for pair-rate limits).
        .filter(Q(sending_at__isnull=True) | Q(sending_at__lt=now - UNCONFIRMED_AFTER))
        .values_list("pk", flat=True)[:1000]
    )
    for message_id in stuck:
        _enqueue(message_id)
    unconfirmed = Message.objects.filter(
        direction=Direction.OUTBOUND,
        status=MessageStatus.SENDING,
        wamid__isnull=True,
        sending_at__lt=now - UNCONFIRMED_AFTER,
    ).update(
        status=MessageStatus.FAILED,
        failed_at=now,
        error_code=None,
        error_title="WhatsApp did not confirm this message",
        error_details="No answer and no status came from WhatsApp. Check with the recipient before sending it again.",
    )
    return {"requeued": len(stuck), "unconfirmed": unconfirmed}

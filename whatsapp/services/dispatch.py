"""Outbound messages: a row before a request, then one claimed send per row.

:func:`message_queue` writes the ``Message`` (status ``queued``) and enqueues its dispatch when
the transaction commits. :func:`message_dispatch` claims the row with a conditional UPDATE
(``queued → sending``; a redelivered task finds nothing to claim), calls the Cloud API with
``biz_opaque_callback_data`` = the row's id, and stores the wamid. From there only webhooks move
the row (sent, delivered, read, failed).

Errors: a retryable one (throughput, pair rate, Meta unavailable) puts the row back to ``queued``
and the task retries with backoff; a permanent one fails the row with Meta's code, title and
details (the fix hint is derived from the code); Meta's spam limit (131048) also pauses the
message's bulk send (:mod:`whatsapp.services.bulk_pause`), whose held messages wait for a resume.
An *ambiguous* one — the request went out but no
answer came — is never retried blindly, because Meta may have accepted it: the row stays
``sending`` until a webhook says what happened, and the sweeper fails it after
:data:`UNCONFIRMED_AFTER` with a hint to check before resending. A started row of which nothing
was heard at all (its worker died) is sent again instead when WhatsApp has since reported on later
sends of its number (:func:`messages_sweep`).
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from books.bulk_insert import bulk_insert, model_new
from books.models import Contact, ContactPerson, Document
from books.pdf import document_pdf, statement_pdf
from books.phone import is_valid_e164
from books.selectors import statement_build
from templates_mgmt.attachments import file_bytes
from whatsapp.choices import Category, Direction, MessageStatus, MessageType
from whatsapp.client import MAX_TEXT_LENGTH, CloudAPI, CloudAPIError, SendResult
from whatsapp.cloud import account_cloud_api, fresh_cloud_api
from whatsapp.models import MediaUpload, Message, PhoneNumber, WhatsAppAccount
from whatsapp.services.bulk_pause import HELD_UNTIL, bulk_send_pause, bulks_paused, bulks_paused_lock, pauses_bulk
from whatsapp.services.charges import (
    message_credits_release,
    undelivered_credits_release,
    unsettled_credits_close,
)

logger = logging.getLogger(__name__)

#: Attempts for retryable errors before the row fails (Meta's throughput errors clear in seconds).
MAX_ATTEMPTS = 6
#: A ``sending`` row with no answer and no webhook after this long is failed as unconfirmed.
UNCONFIRMED_AFTER = datetime.timedelta(minutes=15)
#: A row a pump claimed but did not start within this long belonged to a worker that died.
CLAIM_LEASE = datetime.timedelta(minutes=2)
#: A ``queued`` row whose task was lost is enqueued again after this long.
STUCK_QUEUED_AFTER = datetime.timedelta(minutes=5)
#: Dispatch modes (``WHATSAPP_DISPATCH_MODE``).
BATCH = "batch"
PER_MESSAGE = "per_message"
#: An uploaded file is reused for this long (Meta keeps media 30 days).
MEDIA_REUSE_FOR = datetime.timedelta(days=25)


class RetryDispatch(Exception):
    """A retryable Meta error: the row is queued again; the task should retry after ``countdown``."""

    def __init__(self, countdown: float) -> None:
        super().__init__(f"retry in {countdown}s")
        self.countdown = countdown


def message_build(
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
    template: Any = None,
    module: str = "",
    statement_from: datetime.date | None = None,
    statement_to: datetime.date | None = None,
    media: Mapping[str, Any] | None = None,
    user: Any = None,
) -> Message:
    """An outbound message (``queued``), checked and not saved: :func:`message_queue` saves one,
    bulk sends save many at once (:func:`messages_queue`)."""
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
    return model_new(
        Message,
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
        template=template,
        module=module,
        statement_from=statement_from,
        statement_to=statement_to,
        payload={"type": message_type, message_type: dict(body), **({"media": dict(media)} if media else {})},
        status=MessageStatus.QUEUED,
        queued_at=timezone.now(),
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )


def message_queue(**fields: Any) -> Message:
    """Write an outbound message (``queued``) and enqueue its dispatch on commit.

    Takes :func:`message_build`'s arguments. ``body`` is the type object of Meta's send request
    (``{"body": …}`` for text, the template object for templates), stored as is so a retry sends
    exactly the same thing. ``media`` says where a template header's file comes from
    (``{"source": "document" | "statement" | "static", "kind", "filename", "mime_type"}``);
    dispatch uploads it and fills in the header's media id.
    """
    return _save_and_enqueue(message_build(**fields))


def messages_queue(messages: Sequence[Message]) -> list[Message]:
    """Save many built messages at once (:func:`~books.bulk_insert.bulk_insert`) and enqueue each
    one's dispatch on commit."""
    saved = bulk_insert(messages)
    ids = [message.pk for message in saved]
    transaction.on_commit(lambda: _dispatch_after_commit(ids))
    return saved


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


def message_template_build(
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
    """An approved template with its rendered components (Meta's send shape), not saved yet."""
    body: dict[str, Any] = {"name": name, "language": {"code": language}}
    if components:
        body["components"] = [dict(component) for component in components]
    return message_build(
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


def message_template_queue(**fields: Any) -> Message:
    """Write a template message (:func:`message_template_build`'s arguments) and enqueue it on commit."""
    return _save_and_enqueue(message_template_build(**fields))


def messages_dispatch_on_commit(message_ids: Sequence[int]) -> None:
    """Enqueue the dispatch of queued rows (a pump's wake in batch mode) when the transaction commits."""
    ids = list(message_ids)
    transaction.on_commit(lambda: _dispatch_after_commit(ids))


def _save_and_enqueue(message: Message) -> Message:
    message.save(force_insert=True)
    message_id = message.pk
    transaction.on_commit(lambda: _dispatch_after_commit([message_id]))
    return message


def dispatch_mode() -> str:
    """``batch`` (pumps send many messages per task, paced and concurrent) or ``per_message`` (one
    task and one fresh connection per message: the naive way, kept for ``make bench``'s comparison)."""
    mode = getattr(settings, "WHATSAPP_DISPATCH_MODE", BATCH)
    return PER_MESSAGE if mode == PER_MESSAGE else BATCH


def _dispatch_after_commit(message_ids: Sequence[int]) -> None:
    if dispatch_mode() == PER_MESSAGE:
        for message_id in message_ids:
            _enqueue(message_id)
    else:
        from whatsapp.services.pump import dispatch_wake

        dispatch_wake()


def _enqueue(message_id: int, countdown: float = 0) -> None:
    from whatsapp.tasks import message_dispatch_task

    try:
        message_dispatch_task.apply_async((message_id,), countdown=countdown or None)
    except Exception:  # the broker is down: the row is queued, the sweeper sends it later
        logger.exception("Could not enqueue dispatch of WhatsApp message %s; the sweeper will.", message_id)


def message_dispatch(*, message_id: int) -> Message | None:
    """Send one queued message now; None when there was nothing to claim (already sent or being sent).

    The per-message path (``WHATSAPP_DISPATCH_MODE = "per_message"``, and tests of one send);
    batch mode sends through :mod:`whatsapp.services.pump` with the same rules.
    Raises :class:`RetryDispatch` for a retryable error (the row is queued again first).
    """
    now = timezone.now()
    claimed = Message.objects.filter(pk=message_id, status=MessageStatus.QUEUED, direction=Direction.OUTBOUND).update(
        status=MessageStatus.SENDING, claimed_at=now, sending_at=now, send_after=None, attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    message = Message.objects.select_related("account", "phone_number").get(pk=message_id)
    account, phone_number = message.account, message.phone_number
    if account is None or phone_number is None or not account.can_send:
        return _fail(message, None, _("WhatsApp is not active for this organization."), "")
    if account.token_refused_at is not None:  # paused until the token is replaced: back in the queue
        _unclaim(message_id, claimed_at=now)
        return None
    if message.bulk_id is not None and bulks_paused(bulk_ids=[message.bulk_id]) and _bulk_hold(message, now):
        return None  # its bulk send is paused: held in the queue until it is resumed
    fresh = dispatch_mode() == PER_MESSAGE
    api = fresh_cloud_api(account.access_token) if fresh else account_cloud_api(account)
    try:
        result = send_call(api, send_prepare(api, phone_number, message))
    except (CloudAPIError, ValueError) as exc:
        if isinstance(exc, CloudAPIError) and exc.is_auth_error:
            token_refused_apply(message, account, exc)
            message.refresh_from_db()
            return message
        countdown = send_error_apply(message, exc)
        if countdown is not None:
            raise RetryDispatch(countdown=countdown) from exc
        message.refresh_from_db()
        return message
    finally:
        if fresh:
            api.close()
    sent_apply({message.pk: result.wamid})
    message.refresh_from_db()
    return message


def _bulk_hold(message: Message, claimed_at: datetime.datetime) -> bool:
    """Put the row claimed at ``claimed_at`` back to the queue, held, if its bulk send is still
    paused (checked under the bulk send's lock: a resume that commits first has released it)."""
    with transaction.atomic():
        if not bulks_paused_lock(bulk_ids=[message.bulk_id]):
            return False
        _unclaim(message.pk, send_after=HELD_UNTIL, claimed_at=claimed_at)
    return True


def _unclaim(message_id: int, *, send_after: datetime.datetime | None = None, **still: Any) -> int:
    """The claimed row back in the queue as it was before its claim (the attempt not counted), not
    before ``send_after``, if it is still claimed and matches ``still``; nothing went out."""
    return Message.objects.filter(pk=message_id, status=MessageStatus.SENDING, **still).update(
        status=MessageStatus.QUEUED, claimed_at=None, sending_at=None, send_after=send_after, attempts=F("attempts") - 1
    )


def sent_apply(wamids: Mapping[int, str]) -> None:
    """Store the wamids Meta answered with. A fast webhook may have stored one already (matched by
    callback data): a stored wamid is never replaced.

    The rows are locked first in id order, as the webhook drain locks them
    (:class:`~whatsapp.services.messages.StatusBatch`): a multi-row UPDATE alone locks in the
    order it finds the rows on disk, and against a drain holding some of them that deadlocks.
    On PostgreSQL the lock and the write are one statement (the ids and wamids as two arrays):
    Django's ``CASE`` with a ``WHEN`` per row, and the separate locking query, cost the pump more
    to build than anything else it does per message.
    """
    if not wamids:
        return
    now = timezone.now()
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(Message._meta.db_table)
        ids = sorted(wamids)
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH locked AS (SELECT id FROM {table} WHERE id = ANY(%s) AND wamid IS NULL "  # noqa: S608
                "ORDER BY id FOR UPDATE) "
                f"UPDATE {table} AS m SET wamid = v.wamid, updated_at = %s "
                "FROM locked JOIN unnest(%s::bigint[], %s::varchar[]) AS v(id, wamid) ON v.id = locked.id "
                "WHERE m.id = locked.id",
                [ids, now, ids, [wamids[pk] for pk in ids]],
            )
        return
    with transaction.atomic():  # SQLite: one writer at a time, the same outcome through Django
        ids = list(
            Message.objects.filter(pk__in=list(wamids), wamid__isnull=True)
            .order_by("pk")
            .select_for_update()
            .values_list("pk", flat=True)
        )
        if ids:
            Message.objects.filter(pk__in=ids).update(
                wamid=Case(*(When(pk=pk, then=Value(wamids[pk])) for pk in ids)), updated_at=now
            )


def token_refused_apply(message: Message, account: WhatsAppAccount, exc: CloudAPIError) -> None:
    """Meta refused the account's access token (190): nothing was sent, and nothing will be until
    an administrator replaces the token. The row goes back to the queue as it was before its claim
    (the attempt not counted), and the account's sending pauses
    (:func:`~whatsapp.services.accounts.account_token_refused`): a token is not the message's fault,
    so no message is failed for it."""
    from whatsapp.services.accounts import account_token_refused

    _unclaim(message.pk, wamid__isnull=True)
    account_token_refused(account=account, error=exc)


def send_error_apply(message: Message, exc: Exception) -> float | None:
    """Record on its row what a failed send means: the seconds until it may be tried again (the row
    is queued again, not before then), or None — failed for good (credits released), or waiting for
    a webhook because Meta may have taken it (no answer: never retried blindly). Meta's spam limit
    (131048) pauses the message's bulk send as well."""
    if isinstance(exc, CloudAPIError):
        if exc.ambiguous:
            logger.warning("WhatsApp message %s: no answer from Meta; waiting for a webhook.", message.pk)
            Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING).update(
                error_title=exc.title[:255], error_details=exc.details or exc.message
            )
            return None
        if exc.retryable and message.attempts < MAX_ATTEMPTS:
            countdown = _backoff(exc, message.attempts)
            Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING).update(
                status=MessageStatus.QUEUED,
                claimed_at=None,
                send_after=timezone.now() + datetime.timedelta(seconds=countdown),
            )
            return countdown
        _fail(message, exc.code, exc.title, exc.details or exc.message, subcode=exc.subcode)
        if pauses_bulk(exc) and message.bulk_id is not None:
            bulk_send_pause(bulk_id=message.bulk_id, code=exc.code, phone_number_id=message.phone_number_id)
        return None
    # The stored request can't be sent as it is (client-side validation, a deleted document).
    _fail(message, None, _("The message could not be sent as written."), str(exc))
    return None


@dataclass(frozen=True, slots=True)
class SendCall:
    """One send request, ready to go: only HTTP is left (safe to run on another thread)."""

    kind: str
    phone_number_id: str
    to: str
    body: Mapping[str, Any]
    components: list[dict[str, Any]] | None
    callback_data: str


def send_prepare(api: CloudAPI, phone_number: PhoneNumber, message: Message) -> SendCall:
    """The request for a claimed message; uploads its header file first when it has one (database
    and HTTP, on the calling thread). Raises CloudAPIError (an upload failed; a retry is always
    safe, nothing was sent) or ValueError (the message can't be sent as stored)."""
    payload = message.payload
    kind = payload.get("type")
    body = payload.get(kind) or {}
    components = None
    if kind == MessageType.TEMPLATE:
        components = body.get("components")
        if payload.get("media"):
            try:
                media_id = _media_id(api, phone_number, message)
            except CloudAPIError as exc:
                # An upload that got no answer sent nothing to anybody: trying it again is safe.
                exc.retryable = exc.retryable or exc.ambiguous
                exc.ambiguous = False
                raise
            components = _with_media(components, payload["media"], media_id)
    return SendCall(
        kind=str(kind),
        phone_number_id=phone_number.phone_number_id,
        to=message.phone,
        body=body,
        components=components,
        callback_data=str(message.pk),
    )


def send_call(api: CloudAPI, call: SendCall) -> SendResult:
    """Send a prepared request (HTTP only: no database, so any thread may run it)."""
    body, common = call.body, {"biz_opaque_callback_data": call.callback_data}
    if call.kind == MessageType.TEMPLATE:
        return api.send_template(
            call.phone_number_id, call.to, body["name"], body["language"]["code"], call.components, **common
        )
    if call.kind == MessageType.TEXT:
        return api.send_text(
            call.phone_number_id, call.to, body["body"], preview_url=bool(body.get("preview_url")), **common
        )
    return api.send_media(
        call.phone_number_id,
        call.to,
        call.kind,
        media_id=body.get("id"),
        link=body.get("link"),
        caption=body.get("caption"),
        filename=body.get("filename"),
        **common,
    )


def _with_media(
    components: list[dict[str, Any]] | None, media: Mapping[str, Any], media_id: str
) -> list[dict[str, Any]]:
    """The stored components with the uploaded file's id in the header (the stored row keeps none)."""
    rendered = copy.deepcopy(components or [])
    for component in rendered:
        if component.get("type") == "header":
            for parameter in component.get("parameters", []):
                if parameter.get("type") == media.get("kind"):
                    parameter[media["kind"]]["id"] = media_id
    return rendered


def _media_id(api: Any, phone_number: PhoneNumber, message: Message) -> str:
    """The header file's media id: the one this message already uploaded (a retry), one uploaded
    for the same bytes from this number within :data:`MEDIA_REUSE_FOR`, or a new upload."""
    if message.media_id:
        return message.media_id
    media = message.payload["media"]
    content = _media_content(message, media)
    digest = hashlib.sha256(content).hexdigest()
    upload = MediaUpload.objects.filter(
        phone_number=phone_number, sha256=digest, uploaded_at__gte=timezone.now() - MEDIA_REUSE_FOR
    ).first()
    if upload is None:
        media_id = api.upload_media(phone_number.phone_number_id, content, media["mime_type"], media["filename"])
        MediaUpload.objects.update_or_create(
            phone_number=phone_number,
            sha256=digest,
            defaults={
                "media_id": media_id,
                "mime_type": media["mime_type"],
                "filename": media["filename"],
                "size": len(content),
                "uploaded_at": timezone.now(),
            },
        )
    else:
        media_id = upload.media_id
    Message.objects.filter(pk=message.pk).update(
        media_id=media_id, media_mime_type=media["mime_type"], media_filename=media["filename"], media_sha256=digest
    )
    message.media_id = media_id
    return media_id


def _media_content(message: Message, media: Mapping[str, Any]) -> bytes:
    """The file a template header carries: the document's PDF, the statement's, or the template's own."""
    source = media.get("source")
    if source == "document":
        if message.document is None:
            raise ValueError(_("The document was deleted before its message was sent."))
        return document_pdf(message.document)
    if source == "statement":
        if message.contact is None or message.statement_from is None or message.statement_to is None:
            raise ValueError(_("The statement's customer or period is gone."))
        statement = statement_build(
            contact=message.contact, from_date=message.statement_from, to_date=message.statement_to
        )
        return statement_pdf(statement)
    if message.template is None or not message.template.attachment:
        raise ValueError(_("The template's attachment file is gone."))
    return file_bytes(message.template.attachment)


def _backoff(exc: CloudAPIError, attempts: int) -> float:
    """Seconds before the next try: pair-rate limits (131056) wait 4^n s as Meta suggests."""
    if exc.code == 131056:
        return float(min(4**attempts, 900))
    return float(min(2**attempts, 300))


def _fail(message: Message, code: int | None, title: str, details: str, *, subcode: int | None = None) -> Message:
    """Fail a claimed message for good and give back the credits it reserved."""
    failed = Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING).update(
        status=MessageStatus.FAILED,
        failed_at=timezone.now(),
        error_code=code,
        error_subcode=subcode,
        error_title=title[:255],
        error_details=details,
    )
    if failed:
        message_credits_release(message)
    message.refresh_from_db()
    return message


def messages_sweep(*, now: datetime.datetime | None = None) -> dict[str, int]:
    """Beat: send again what a lost task or a dead worker left, fail sends Meta never confirmed.

    - Rows a pump claimed but never started (``sending_at`` empty) when the claim lease ran out:
      the worker died before sending them, so they are queued again (nothing went out).
    - Queued rows still waiting after :data:`STUCK_QUEUED_AFTER` that are due: dispatch is woken
      (a lost task, a broker outage). Rows waiting out a backoff (``send_after``), and those a
      paused bulk send holds (:data:`~whatsapp.services.bulk_pause.HELD_UNTIL`), are left alone.
    - Started rows with no wamid and no webhook after :data:`UNCONFIRMED_AFTER`:
      * queued again when nothing was heard of the send (no answer and no error recorded: its
        worker died around the request) *and* WhatsApp has since reported delivering or reading a
        later send of the same number: its webhooks reach the hub, and a message WhatsApp had taken
        would have had its own status long before, so this one never reached it (resent: a killed
        worker loses nothing);
      * failed otherwise, with a hint to check before resending: a request that went out and got no
        answer (a timeout), or no later status to go by — Meta may or may not have sent them, and
        resending could double.
    - Credits a crash left held for messages already delivered, read or failed are closed, and
      those of messages never delivered within 30 days are released.
    """
    now = now or timezone.now()
    abandoned = Message.objects.filter(
        direction=Direction.OUTBOUND,
        status=MessageStatus.SENDING,
        sending_at__isnull=True,
        claimed_at__lt=now - CLAIM_LEASE,
    ).update(status=MessageStatus.QUEUED, claimed_at=None)
    # Before the stuck rows: the ones queued again here are among them, and dispatched with them.
    unconfirmed_rows = list(
        Message.objects.filter(
            direction=Direction.OUTBOUND,
            status=MessageStatus.SENDING,
            wamid__isnull=True,
            sending_at__lt=now - UNCONFIRMED_AFTER,
        ).select_related("organization")[:1000]
    )
    unconfirmed = resent = 0
    for row in unconfirmed_rows:
        if not row.error_title and _later_send_reported(row):
            resent += _unconfirmed_requeue(row)
        else:
            unconfirmed += _unconfirmed_fail(row, now)
    due = Q(send_after__isnull=True) | Q(send_after__lte=now)
    stuck = Message.objects.filter(
        direction=Direction.OUTBOUND, status=MessageStatus.QUEUED, queued_at__lt=now - STUCK_QUEUED_AFTER
    ).filter(due)
    if dispatch_mode() == PER_MESSAGE:
        stuck_ids = list(stuck.values_list("pk", flat=True)[:1000])
        for message_id in stuck_ids:
            _enqueue(message_id)
        requeued = len(stuck_ids)
    else:
        requeued = stuck.count()
        if requeued or abandoned:
            from whatsapp.services.pump import dispatch_wake

            dispatch_wake(force=True)
    credits_closed = unsettled_credits_close(now=now)
    released = undelivered_credits_release(now=now)
    return {
        "requeued": requeued,
        "abandoned": abandoned,
        "unconfirmed": unconfirmed,
        "resent": resent,
        "credits_closed": credits_closed,
        "credits_released": released,
    }


def _later_send_reported(message: Message) -> bool:
    """Whether WhatsApp reported a delivery or a read of a send of ``message``'s number that started
    after it (statuses only webhooks bring). Read through the organization's recent messages (an
    index): a later send was created no earlier than this one."""
    reported = Q(delivered_at__isnull=False) | Q(read_at__isnull=False)
    return (
        Message.objects.filter(
            organization_id=message.organization_id,
            created_at__gte=message.created_at,
            direction=Direction.OUTBOUND,
            phone_number_id=message.phone_number_id,
            sending_at__gt=message.sending_at,
        )
        .filter(reported)
        .exists()
    )


def _unconfirmed_requeue(message: Message) -> int:
    """Queue ``message`` again, if it is still the start the sweeper looked at."""
    return Message.objects.filter(
        pk=message.pk, status=MessageStatus.SENDING, wamid__isnull=True, sending_at=message.sending_at
    ).update(status=MessageStatus.QUEUED, sending_at=None, claimed_at=None, send_after=None)


def _unconfirmed_fail(message: Message, now: datetime.datetime) -> int:
    failed = Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING, wamid__isnull=True).update(
        status=MessageStatus.FAILED,
        failed_at=now,
        error_code=None,
        error_title="WhatsApp did not confirm this message",
        error_details="No answer and no status came from WhatsApp. Check with the recipient before sending it again.",
    )
    if failed:
        message_credits_release(message)
    return failed

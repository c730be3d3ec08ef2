"""Writes to WhatsApp messages that come from Meta: status updates and inbound messages.

Statuses only move forward. Each status also stamps the steps it implies (``read`` implies
``delivered`` implies ``sent``) with the earliest time reported, and ``failed`` outranks every
other status, so duplicates and any arrival order end in the same row as the natural order.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import get_valid_filename

from books.models import ContactPerson, Organization
from books.phone import phone_normalize
from whatsapp.choices import STATUS_RANK, Direction, MediaState, MessageStatus, MessageType
from whatsapp.client import CloudAPIError
from whatsapp.cloud import account_cloud_api
from whatsapp.models import Message, PhoneNumber, WhatsAppAccount
from whatsapp.services.bulk_pause import PAUSE_CODES, bulk_send_pause
from whatsapp.services.charges import CreditsFollow

logger = logging.getLogger(__name__)

#: Meta's outbound statuses the hub applies, and the steps each one implies.
_IMPLIED: dict[str, tuple[str, ...]] = {
    MessageStatus.SENT: (MessageStatus.SENT,),
    MessageStatus.DELIVERED: (MessageStatus.SENT, MessageStatus.DELIVERED),
    MessageStatus.READ: (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ),
    MessageStatus.FAILED: (MessageStatus.FAILED,),
}
#: Inbound media the hub downloads: Meta's own size limits (video and audio 16 MB, documents 100 MB).
MAX_INBOUND_MEDIA_BYTES = 100 * 1024 * 1024
MEDIA_TYPES = {MessageType.IMAGE, MessageType.DOCUMENT, MessageType.AUDIO, MessageType.VIDEO, MessageType.STICKER}


@dataclass(frozen=True)
class StatusUpdate:
    """One ``statuses[]`` item of a webhook, parsed."""

    wamid: str
    status: str
    at: datetime.datetime
    callback_data: str = ""
    error_code: int | None = None
    error_subcode: int | None = None
    error_title: str = ""
    error_details: str = ""
    pricing: Mapping[str, Any] | None = None

    @classmethod
    def from_webhook(cls, item: Mapping[str, Any]) -> StatusUpdate | None:
        """None for a status the hub does not track (``played``, ``deleted``) or a malformed item."""
        status = str(item.get("status", ""))
        wamid = str(item.get("id", ""))
        if status not in _IMPLIED or not wamid:
            return None
        try:
            at = datetime.datetime.fromtimestamp(int(item.get("timestamp")), tz=datetime.UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            at = timezone.now()
        errors = item.get("errors")
        error = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        error_data = error.get("error_data") if isinstance(error.get("error_data"), dict) else {}
        pricing = item.get("pricing")
        return cls(
            wamid=wamid,
            status=status,
            at=at,
            callback_data=str(item.get("biz_opaque_callback_data") or ""),
            error_code=_int(error.get("code")),
            error_subcode=_int(error.get("error_subcode")),
            error_title=str(error.get("title") or error.get("message") or "")[:255],
            error_details=str(error_data.get("details") or error.get("message") or ""),
            pricing=pricing if isinstance(pricing, dict) else None,
        )


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def message_status_apply(
    *, organization: Organization, update: StatusUpdate, credits: CreditsFollow | None = None
) -> Message | None:
    """Move an outbound message forward by one webhook status; None when no message matches.

    The message is found by wamid, else by ``biz_opaque_callback_data`` (our id, for a status that
    beat the send response), within ``organization`` only. Its credits are settled or released
    once the status is saved; with ``credits`` they are left there for the caller to close after
    its own transaction commits.
    """
    follow = CreditsFollow() if credits is None else credits
    with transaction.atomic():
        match = Q(wamid=update.wamid)
        if update.callback_data.isdigit():
            match |= Q(pk=int(update.callback_data), wamid__isnull=True)
        message = (
            Message.objects.select_for_update()
            .filter(match, organization=organization, direction=Direction.OUTBOUND)
            .first()
        )
        if message is None:
            return None
        changed = _apply(message, update)
        if changed:
            message.save(update_fields=[*changed, "updated_at"])
        if _pauses_bulk(message, update):
            bulk_send_pause(bulk_id=message.bulk_id, code=update.error_code, phone_number_id=message.phone_number_id)
        follow.add(message, organization=organization, status=update.status, pricing=update.pricing)
    if credits is None:
        follow.close()
    return message


class StatusBatch:
    """Statuses of many webhooks applied together, as :func:`message_status_apply` applies each.

    :meth:`load` reads every message the statuses name with one query, locked in id order (so two
    drains wait for each other instead of deadlocking); :meth:`apply` moves a message forward in
    memory; :meth:`save` then writes every changed message once, with one statement. Credits go
    to ``credits``, for the caller to close after its transaction commits.
    """

    #: What a status reads or writes, and what settling the message's credits needs.
    FIELDS = (
        "organization_id",
        "wamid",
        "status",
        "sent_at",
        "delivered_at",
        "read_at",
        "failed_at",
        "error_code",
        "error_subcode",
        "error_title",
        "error_details",
        "pricing_type",
        "pricing_category",
        "billable",
        "category",
        "message_type",
        "phone",
        "updated_at",
        "bulk_id",
        "phone_number_id",
    )

    def __init__(self, *, credits: CreditsFollow) -> None:
        self.credits = credits
        self._messages: dict[int, Message] = {}
        self._by_wamid: dict[str, Message] = {}
        self._changed: dict[int, set[str]] = {}
        self._pauses: dict[int, tuple[int, int | None]] = {}  # bulk send pk → (error code, number pk)

    def load(self, statuses: Iterable[tuple[Organization, StatusUpdate]]) -> None:
        """Read and lock the outbound messages ``statuses`` may name (by wamid, or by id for a
        message whose wamid is not stored yet). Call it inside the transaction that will save."""
        wamids: set[str] = set()
        ids: set[int] = set()
        organizations: set[int] = set()
        for organization, update in statuses:
            organizations.add(organization.pk)
            wamids.add(update.wamid)
            if update.callback_data.isdigit():
                ids.add(int(update.callback_data))
        if not wamids:
            return
        match = Q(wamid__in=wamids)
        if ids:
            match |= Q(pk__in=ids, wamid__isnull=True)
        rows = (
            Message.objects.filter(match, organization_id__in=organizations, direction=Direction.OUTBOUND)
            .select_for_update()
            .only(*self.FIELDS)
            .order_by("pk")
        )
        for message in rows:
            self._messages[message.pk] = message
            if message.wamid is not None:
                self._by_wamid[message.wamid] = message

    def apply(self, *, organization: Organization, update: StatusUpdate) -> Message | None:
        """Apply one status to its (loaded) message in memory; None when no message matches."""
        message = self._by_wamid.get(update.wamid)
        if message is None and update.callback_data.isdigit():
            message = self._messages.get(int(update.callback_data))
            if message is not None and message.wamid is not None:
                message = None  # an id names only a message still without its wamid
        if message is None or message.organization_id != organization.pk:
            return None
        changed = _apply(message, update)
        if changed:
            self._changed.setdefault(message.pk, set()).update(changed)
            if "wamid" in changed:
                self._by_wamid[update.wamid] = message
        if _pauses_bulk(message, update):
            self._pauses[message.bulk_id] = (update.error_code, message.phone_number_id)
        self.credits.add(message, organization=organization, status=update.status, pricing=update.pricing)
        return message

    def save(self) -> int:
        """Write every message a status changed, once; how many. Then pause the bulk sends Meta
        restricted (:func:`_pauses_bulk`), in the same transaction."""
        written = self._write()
        pauses, self._pauses = self._pauses, {}
        for bulk_id, (code, phone_number_id) in pauses.items():
            bulk_send_pause(bulk_id=bulk_id, code=code, phone_number_id=phone_number_id)
        return written

    def _write(self) -> int:
        if not self._changed:
            return 0
        now = timezone.now()
        changed = [self._messages[pk] for pk in sorted(self._changed)]
        for message in changed:
            message.updated_at = now
        fields = sorted(set().union(*self._changed.values()) | {"updated_at"})
        if connection.vendor == "postgresql":
            _messages_write(changed, fields)
        else:  # the same rows through Django (SQLite has no arrays to unnest)
            Message.objects.bulk_update(changed, fields)
        self._changed.clear()
        return len(changed)


def _messages_write(messages: list[Message], fields: list[str]) -> None:
    """``fields`` of ``messages`` as they are in memory, in one ``UPDATE … FROM unnest(…)``: one
    array parameter per column, whatever the number of rows (Django's ``bulk_update`` builds a
    ``CASE`` per row and column, which costs more to build than the drain spends on anything else).
    PostgreSQL only."""
    quote = connection.ops.quote_name
    columns = [Message._meta.pk, *(Message._meta.get_field(name) for name in fields)]
    arrays = [[column.get_db_prep_save(getattr(m, column.attname), connection) for m in messages] for column in columns]
    source = ", ".join(f"%s::{column.db_type(connection)}[]" for column in columns)
    names = ", ".join(quote(column.column) for column in columns)
    assignments = ", ".join(f"{quote(column.column)} = v.{quote(column.column)}" for column in columns[1:])
    pk = quote(Message._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(Message._meta.db_table)} AS m SET {assignments} "  # noqa: S608 (names from the model)
            f"FROM unnest({source}) AS v({names}) WHERE m.{pk} = v.{pk}",
            arrays,
        )


def _pauses_bulk(message: Message, update: StatusUpdate) -> bool:
    """A failed status with Meta's spam limit (131048) for a bulk send's message: Meta refused it
    after accepting it, and refuses the rest of the bulk send alike — it is paused as when the send's
    own answer says so (:mod:`whatsapp.services.bulk_pause`)."""
    return update.status == MessageStatus.FAILED and update.error_code in PAUSE_CODES and message.bulk_id is not None


def _apply(message: Message, update: StatusUpdate) -> list[str]:
    changed: list[str] = []
    if message.wamid is None:
        message.wamid = update.wamid
        changed.append("wamid")
    for step in _IMPLIED[update.status]:
        field_name = f"{step}_at"
        current = getattr(message, field_name)
        if current is None or update.at < current:
            setattr(message, field_name, update.at)
            changed.append(field_name)
            if step == MessageStatus.FAILED:
                # The earliest failure explains the message; a later duplicate keeps it.
                message.error_code = update.error_code
                message.error_subcode = update.error_subcode
                message.error_title = update.error_title
                message.error_details = update.error_details
                changed += ["error_code", "error_subcode", "error_title", "error_details"]
    if STATUS_RANK[update.status] > STATUS_RANK.get(message.status, -1):
        message.status = update.status
        changed.append("status")
    if update.pricing:
        billable = update.pricing.get("billable")
        values = {
            "pricing_type": str(update.pricing.get("type") or update.pricing.get("pricing_model") or "")[:32],
            "pricing_category": str(update.pricing.get("category") or "")[:32],
            "billable": billable if isinstance(billable, bool) else message.billable,
        }
        for name, value in values.items():
            if value != getattr(message, name) and value not in ("", None):
                setattr(message, name, value)
                changed.append(name)
    return changed


# --- Inbound ----------------------------------------------------------------------------------


def inbound_message_record(
    *,
    account: WhatsAppAccount,
    phone_number: PhoneNumber | None,
    message: Mapping[str, Any],
    profile_name: str = "",
) -> Message | None:
    """Record a customer's (or vendor's) message once, matched to a contact person by phone.

    Media is not fetched here: the row is stored with ``media_state=pending`` and a task downloads
    it through the client (a slow download must not hold the webhook queue).
    """
    wamid = str(message.get("id", ""))
    if not wamid:
        return None
    existing = Message.objects.filter(wamid=wamid).first()
    if existing is not None:
        return existing
    organization = account.organization
    wa_id = str(message.get("from", ""))
    phone = _e164(wa_id, organization)
    person = _person_for(organization, phone)
    message_type, content, media = _parse_inbound(message)
    context = message.get("context") if isinstance(message.get("context"), dict) else {}
    reply_to = str(context.get("id", ""))
    replied = Message.objects.filter(wamid=reply_to, organization=organization).first() if reply_to else None
    try:
        received_at = datetime.datetime.fromtimestamp(int(message.get("timestamp")), tz=datetime.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        received_at = timezone.now()
    row = Message(
        organization=organization,
        account=account,
        phone_number=phone_number,
        direction=Direction.INBOUND,
        message_type=message_type,
        phone=phone,
        wa_id=wa_id[:64],
        profile_name=profile_name[:200],
        contact=person.contact if person else (replied.contact if replied else None),
        contact_person=person or (replied.contact_person if replied else None),
        document=replied.document if replied else None,
        content=content,
        payload=dict(message),
        reply_to_wamid=reply_to[:255],
        status=MessageStatus.RECEIVED,
        wamid=wamid,
        received_at=received_at,
        media_id=str(media.get("id", ""))[:64],
        media_mime_type=str(media.get("mime_type", ""))[:100],
        media_filename=str(media.get("filename", ""))[:255],
        media_sha256=str(media.get("sha256", ""))[:128],
        media_state=MediaState.PENDING if media.get("id") else MediaState.NONE,
    )
    if message_type == MessageType.UNSUPPORTED:
        errors = message.get("errors")
        error = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        row.error_code = _int(error.get("code"))
        row.error_title = str(error.get("title") or "")[:255]
        row.error_details = str((error.get("error_data") or {}).get("details") or error.get("message") or "")
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:  # the same message recorded by a concurrent worker
        return Message.objects.filter(wamid=wamid).first()
    if row.media_state == MediaState.PENDING:
        from whatsapp.tasks import inbound_media_fetch_task

        transaction.on_commit(lambda: inbound_media_fetch_task.delay(row.pk))
    return row


def _e164(wa_id: str, organization: Organization) -> str:
    try:
        return phone_normalize("+" + wa_id, region=organization.phone_region) or ("+" + wa_id)
    except ValidationError:
        return ("+" + wa_id)[:32] if wa_id else ""


def _person_for(organization: Organization, phone: str) -> ContactPerson | None:
    """The contact person with this number: WhatsApp-enabled, then primary, then the oldest."""
    if not phone:
        return None
    return (
        ContactPerson.objects.select_related("contact")
        .filter(Q(mobile=phone) | Q(phone=phone), contact__organization=organization)
        .order_by("-whatsapp_enabled", "-is_primary", "pk")
        .first()
    )


def _parse_inbound(message: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(type, the text the accountant reads, the media object or {})."""
    kind = str(message.get("type", ""))
    body = message.get(kind) if isinstance(message.get(kind), dict) else {}
    if kind == "text":
        return MessageType.TEXT, str(body.get("body", "")), {}
    if kind in MEDIA_TYPES:
        return kind, str(body.get("caption", "")), dict(body)
    if kind == "location":
        parts = [str(body.get(key)) for key in ("name", "address") if body.get(key)]
        where = f"{body.get('latitude')}, {body.get('longitude')}"
        return MessageType.LOCATION, " · ".join([*parts, where]), {}
    if kind == "button":
        return MessageType.BUTTON, str(body.get("text") or body.get("payload") or ""), {}
    if kind == "interactive":
        reply = body.get(str(body.get("type", ""))) if isinstance(body.get(str(body.get("type", ""))), dict) else {}
        text = reply.get("title") or reply.get("body") or reply.get("response_json") or ""
        return MessageType.INTERACTIVE, str(text), {}
    if kind == "reaction":
        return MessageType.REACTION, str(body.get("emoji", "")), {}
    if kind == "contacts":
        contacts = message.get("contacts") if isinstance(message.get("contacts"), list) else []
        names = [str((c.get("name") or {}).get("formatted_name", "")) for c in contacts if isinstance(c, dict)]
        return MessageType.CONTACTS, ", ".join(name for name in names if name), {}
    return MessageType.UNSUPPORTED, "", {}


def inbound_media_fetch(*, message_id: int) -> Message | None:
    """Download an inbound message's media through the client and keep it with the message.

    The bytes must match the SHA-256 Meta reported and stay under the size limit; the file name is
    made safe. Raises :class:`~whatsapp.client.CloudAPIError` when a retry can help.
    """
    message = Message.objects.select_related("account").filter(pk=message_id).first()
    if message is None or message.media_state != MediaState.PENDING or message.account is None:
        return message
    api = account_cloud_api(message.account)
    try:
        info = api.get_media(message.media_id)
        content = api.download_media(info.url or "", max_bytes=MAX_INBOUND_MEDIA_BYTES)
    except CloudAPIError as exc:
        if exc.retryable:
            raise
        _media_failed(message, exc.title or str(exc))
        return message
    except ValueError as exc:  # a URL the client refuses to send the token to
        _media_failed(message, str(exc))
        return message
    expected = (message.media_sha256 or info.sha256 or "").lower()
    if expected and hashlib.sha256(content).hexdigest() != expected:
        _media_failed(message, "the downloaded file does not match its SHA-256")
        return message
    name = get_valid_filename(message.media_filename or f"{message.message_type}-{message.pk}") or "media"
    message.media_file.save(name, ContentFile(content), save=False)
    message.media_state = MediaState.STORED
    message.media_mime_type = message.media_mime_type or (info.mime_type or "")[:100]
    message.save(update_fields=["media_file", "media_state", "media_mime_type", "updated_at"])
    return message


def _media_failed(message: Message, reason: str) -> None:
    logger.warning("Inbound media of message %s not stored: %s", message.pk, reason)
    message.media_state = MediaState.FAILED
    message.save(update_fields=["media_state", "updated_at"])

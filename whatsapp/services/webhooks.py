"""Meta's webhooks, after the receiver accepted them: store once, then apply every change.

A body is stored raw with its SHA-256 as the unique key (Meta redelivers the same bytes until it
gets a 200), then :func:`webhook_event_process` walks every entry and every change — Meta batches
them — and hands each to a ``handle_<field>`` function. Every handler is idempotent (statuses only
move forward, inbound messages are unique by wamid, template events older than the applied one
change nothing), so processing an event twice, or two events in any order, is harmless.

A status can arrive before the send that caused it has stored its wamid (the webhook races the
HTTP response). Such a status is matched by ``biz_opaque_callback_data`` (the message id); when
neither matches, the event is retried a few times before it is closed as "not ours".
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from templates_mgmt.services import template_status_apply
from whatsapp.choices import WebhookEventState
from whatsapp.models import LIVE_ACCOUNT_STATES, PhoneNumber, WebhookEvent, WhatsAppAccount
from whatsapp.services.messages import StatusUpdate, inbound_message_record, message_status_apply

logger = logging.getLogger(__name__)

#: How many times an event with statuses for unknown messages is retried before it is closed.
UNMATCHED_RETRIES = 5


@dataclass
class Outcome:
    """What processing one event did, for the event row and the tests."""

    statuses: int = 0
    messages: int = 0
    unmatched: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- Receiving --------------------------------------------------------------------------------


def webhook_event_store(*, body: bytes) -> int | None:
    """Store a signed body once; the new event's id, or None when the same body was stored before.

    One statement (``INSERT … ON CONFLICT DO NOTHING RETURNING id``) on PostgreSQL and SQLite, so
    two deliveries of the same body racing each other store one row.
    """
    digest = hashlib.sha256(body).hexdigest()
    table = WebhookEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (body, body_sha256, state, attempts, error, received_at) "  # noqa: S608
            "VALUES (%s, %s, %s, 0, '', %s) ON CONFLICT (body_sha256) DO NOTHING RETURNING id",
            [body.decode("utf-8", errors="replace"), digest, WebhookEventState.PENDING, timezone.now()],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def webhook_event_enqueue(*, event_id: int) -> None:
    """Hand an event to a worker. A broker outage is logged, not raised: the row is stored and the
    sweeper (``webhook_events_sweep``) enqueues it later."""
    from whatsapp.tasks import webhook_event_process_task

    try:
        webhook_event_process_task.delay(event_id)
    except Exception:  # the broker is down or unreachable; Meta must still get its 200
        logger.exception("Could not enqueue WhatsApp webhook event %s; the sweeper will retry it.", event_id)


def webhook_events_sweep(*, older_than: datetime.timedelta = datetime.timedelta(minutes=2)) -> int:
    """Enqueue events still pending after ``older_than`` (a lost task, a broker outage)."""
    cutoff = timezone.now() - older_than
    ids = list(
        WebhookEvent.objects.filter(state=WebhookEventState.PENDING, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:1000]
    )
    for event_id in ids:
        webhook_event_enqueue(event_id=event_id)
    return len(ids)


# --- Processing -------------------------------------------------------------------------------


class RetryLater(Exception):
    """Some statuses named messages not recorded yet; try the event again shortly."""


def webhook_event_process(*, event_id: int, final_attempt: bool = False) -> Outcome | None:
    """Apply one stored event. Raises :class:`RetryLater` while statuses are unmatched, unless
    ``final_attempt``; returns None when the event was already processed."""
    updated = WebhookEvent.objects.filter(pk=event_id).exclude(state=WebhookEventState.PROCESSED)
    if not updated.update(attempts=F("attempts") + 1):
        return None
    event = WebhookEvent.objects.get(pk=event_id)
    try:
        payload = json.loads(event.body)
    except ValueError as exc:
        _event_close(event, WebhookEventState.FAILED, f"not JSON: {exc}")
        return Outcome()
    outcome = webhook_payload_apply(payload=payload)
    if outcome.unmatched and not final_attempt:
        WebhookEvent.objects.filter(pk=event_id).update(error=_unmatched_note(outcome))
        raise RetryLater(_unmatched_note(outcome))
    notes = outcome.notes + ([_unmatched_note(outcome)] if outcome.unmatched else [])
    _event_close(event, WebhookEventState.PROCESSED, "\n".join(notes))
    return outcome


def _unmatched_note(outcome: Outcome) -> str:
    return "statuses for unknown messages: " + ", ".join(sorted(set(outcome.unmatched)))


def _event_close(event: WebhookEvent, state: str, error: str) -> None:
    WebhookEvent.objects.filter(pk=event.pk).update(state=state, error=error[:10_000], processed_at=timezone.now())


def webhook_payload_apply(*, payload: Any) -> Outcome:
    """Walk every entry and change of a ``whatsapp_business_account`` payload."""
    outcome = Outcome()
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        outcome.notes.append(f"ignored object {_short(payload, 'object')}")
        return outcome
    for entry in _list(payload.get("entry")):
        waba_id = str(entry.get("id", ""))
        account = _live_account(waba_id)
        if account is None:
            outcome.notes.append(f"no connected account for WABA {waba_id}")
            continue
        entry_time = _timestamp(entry.get("time"))
        for change in _list(entry.get("changes")):
            field_name = str(change.get("field", ""))
            value = change.get("value")
            handler = HANDLERS.get(field_name)
            if handler is None or not isinstance(value, dict):
                outcome.notes.append(f"ignored field {field_name}")
                continue
            handler(account, value, entry_time, outcome)
    return outcome


def _live_account(waba_id: str) -> WhatsAppAccount | None:
    if not waba_id:
        return None
    return (
        WhatsAppAccount.objects.select_related("organization")
        .filter(waba_id=waba_id, status__in=LIVE_ACCOUNT_STATES)
        .first()
    )


# --- One handler per webhook field ------------------------------------------------------------


def handle_messages(
    account: WhatsAppAccount, value: Mapping[str, Any], at: datetime.datetime | None, outcome: Outcome
) -> None:
    """``messages``: statuses of what we sent, and what customers send us."""
    for status in _list(value.get("statuses")):
        update = StatusUpdate.from_webhook(status)
        if update is None:
            outcome.notes.append(f"ignored status {_short(status, 'status')}")
            continue
        if message_status_apply(organization=account.organization, update=update) is None:
            outcome.unmatched.append(update.wamid)
        else:
            outcome.statuses += 1
    inbound = _list(value.get("messages"))
    if not inbound:  # a status batch: no number lookup on the hot path
        return
    profiles = {
        str(contact.get("wa_id", "")): str((contact.get("profile") or {}).get("name", ""))
        for contact in _list(value.get("contacts"))
    }
    metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
    phone_number = _phone_number(account, str(metadata.get("phone_number_id", "")))
    for message in inbound:
        inbound_message_record(
            account=account,
            phone_number=phone_number,
            message=message,
            profile_name=profiles.get(str(message.get("from", "")), ""),
        )
        outcome.messages += 1


def handle_message_template_status_update(
    account: WhatsAppAccount, value: Mapping[str, Any], at: datetime.datetime | None, outcome: Outcome
) -> None:
    template_status_apply(
        organization=account.organization,
        waba_id=account.waba_id,
        meta_id=str(value.get("message_template_id", "")),
        name=str(value.get("message_template_name", "")),
        language=str(value.get("message_template_language", "")),
        event=str(value.get("event", "")),
        at=at or timezone.now(),
        reason=str(value.get("reason") or ""),
        category=str(value.get("message_template_category") or ""),
        detail=value,
    )


def handle_phone_number_quality_update(
    account: WhatsAppAccount, value: Mapping[str, Any], at: datetime.datetime | None, outcome: Outcome
) -> None:
    """Quality or limit changes (FLAGGED, UNFLAGGED, UPGRADE, DOWNGRADE, THROUGHPUT_UPGRADE…)."""
    digits = _digits(str(value.get("display_phone_number", "")))
    phone_number = next(
        (number for number in account.phone_numbers.all() if _digits(number.display_phone_number) == digits), None
    )
    if phone_number is None:
        outcome.notes.append(f"quality update for unknown number {digits}")
        return
    phone_number.quality_event = str(value.get("event", ""))[:32]
    phone_number.quality_event_at = at or timezone.now()
    fields = ["quality_event", "quality_event_at"]
    if value.get("current_limit"):
        phone_number.messaging_limit_tier = str(value["current_limit"])[:32]
        fields.append("messaging_limit_tier")
    if value.get("event") == "THROUGHPUT_UPGRADE":
        phone_number.throughput_level = "HIGH"
        fields.append("throughput_level")
    phone_number.save(update_fields=fields)


def handle_account_update(
    account: WhatsAppAccount, value: Mapping[str, Any], at: datetime.datetime | None, outcome: Outcome
) -> None:
    """Account review, bans and restrictions: shown on the settings page."""
    _account_event(account, str(value.get("event", "")), value, at)


def handle_account_alerts(
    account: WhatsAppAccount, value: Mapping[str, Any], at: datetime.datetime | None, outcome: Outcome
) -> None:
    _account_event(account, str(value.get("alert_type") or value.get("event") or "ALERT"), value, at)


def handle_account_review_update(
    account: WhatsAppAccount, value: Mapping[str, Any], at: datetime.datetime | None, outcome: Outcome
) -> None:
    _account_event(account, f"REVIEW_{value.get('decision', '')}", value, at)


def _account_event(
    account: WhatsAppAccount, event: str, value: Mapping[str, Any], at: datetime.datetime | None
) -> None:
    at = at or timezone.now()
    with transaction.atomic():
        locked = WhatsAppAccount.objects.select_for_update().get(pk=account.pk)
        if locked.meta_event_at is not None and at < locked.meta_event_at:
            return
        locked.meta_event = event[:64]
        locked.meta_event_detail = dict(value)
        locked.meta_event_at = at
        locked.save(update_fields=["meta_event", "meta_event_detail", "meta_event_at", "updated_at"])


HandlerFn = Callable[[WhatsAppAccount, Mapping[str, Any], "datetime.datetime | None", Outcome], None]
HANDLERS: dict[str, HandlerFn] = {
    "messages": handle_messages,
    "message_template_status_update": handle_message_template_status_update,
    "phone_number_quality_update": handle_phone_number_quality_update,
    "account_update": handle_account_update,
    "account_alerts": handle_account_alerts,
    "account_review_update": handle_account_review_update,
}


# --- Small parsing helpers --------------------------------------------------------------------


def _phone_number(account: WhatsAppAccount, phone_number_id: str) -> PhoneNumber | None:
    if not phone_number_id:
        return None
    return account.phone_numbers.filter(phone_number_id=phone_number_id).first()


def _list(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def _timestamp(value: Any) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromtimestamp(int(value), tz=datetime.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _short(value: Any, key: str) -> str:
    return repr(value.get(key) if isinstance(value, dict) else type(value).__name__)[:64]

"""Meta's webhooks, after the receiver accepted them: store once, then apply every change.

A body is stored raw with its SHA-256 as the unique key (Meta redelivers the same bytes until it
gets a 200), then :func:`webhook_payload_apply` walks every entry and every change — Meta batches
them — and hands each to a ``handle_<field>`` function. Every handler is idempotent (statuses only
move forward, inbound messages are unique by wamid, template events older than the applied one
change nothing), so processing an event twice, or two events in any order, is harmless.

Events are applied in batches: the receiver asks for a drain (:func:`webhook_events_drain_enqueue`,
one Celery task for however many events arrive while it is queued or running), and the drain
(:func:`webhook_events_drain`) claims pending events a hundred at a time and applies them
together: the messages their statuses name are read with one query and written with one
statement, and the credits the statuses settle are closed after the batch commits (gathered
over a second of batches), so the organization's credit lock is not held during a batch. If the
batch raises, each of its events is applied again in a savepoint of its own, so one that raises
is marked failed without holding back the others.

A status can arrive before the send that caused it has stored its wamid (the webhook races the
HTTP response). Such a status is matched by ``biz_opaque_callback_data`` (the message id); when
neither matches, the event leaves the drain for a task of its own
(:func:`webhook_event_process`), retried a few times before it is closed as "not ours".
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import F
from django.utils import timezone

from books.models import Organization
from templates_mgmt.services import template_status_apply
from whatsapp.choices import WebhookEventState
from whatsapp.models import LIVE_ACCOUNT_STATES, Message, PhoneNumber, WebhookEvent, WhatsAppAccount
from whatsapp.services.charges import CreditsFollow
from whatsapp.services.messages import StatusBatch, StatusUpdate, inbound_message_record, message_status_apply

logger = logging.getLogger(__name__)

#: How many times an event with statuses for unknown messages is retried before it is closed.
UNMATCHED_RETRIES = 5
#: Events one drain transaction claims and applies.
DRAIN_BATCH = 100
#: Seconds the "a drain is queued or running" key lives, from its last batch: a lost drain task
#: holds back the next one no longer than this (the sweeper still finds the events it left).
DRAIN_KEY_TTL = 5

#: Seconds a drain keeps the accounts it looked up, from batch to batch. Under a steady flow of
#: statuses a drain applies a few events per batch, several batches a second, and looking each
#: batch's accounts up again took a fifth of its CPU. A change of account (disconnected, say)
#: is seen by the drain within this time.
DRAIN_ACCOUNTS_SECONDS = 5.0

#: Seconds a drain collects the credits its batches' statuses settle or release before it closes
#: them (and once more when it stops). Each close takes the organization's credit lock and
#: writes its ledger entries and account, about seven statements an organization, which for a
#: batch of a few events cost as much as applying them. Committed statuses whose credits wait
#: here are closed by the beat sweep should the process die (:func:`unsettled_credits_close`).
DRAIN_CREDITS_SECONDS = 1.0

#: Seconds between two looks for new events while a drain lingers (``WHATSAPP_WEBHOOK_DRAIN_LINGER``).
DRAIN_LINGER_POLL = 0.1

#: ``{waba_id: account or None}``, looked up once per drain batch; the accounts found are kept for
#: the drain's next batches, up to :data:`DRAIN_ACCOUNTS_SECONDS`.
AccountMemo = dict[str, WhatsAppAccount | None]


class StatusApply(Protocol):
    """Applies one status to its message: the message, or None when none matches."""

    def __call__(self, *, organization: Organization, update: StatusUpdate) -> Message | None: ...


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

    Outside a transaction the statement is also the check of the kept connection: with
    ``CONN_HEALTH_CHECKS`` Django would first spend a ``SELECT 1`` round trip on it (measured: about
    0.06 ms of the receiver's CPU per webhook, and as much of PostgreSQL's). If the connection
    turns out to be dead (PostgreSQL restarted, a proxy dropped it), it is closed and the INSERT
    runs once more on a new one, which is harmless: had the first one committed after all, the
    second finds the body and returns None, and the sweeper enqueues the drain for it.
    """
    params = [
        body.decode("utf-8", errors="replace"),
        hashlib.sha256(body).hexdigest(),
        WebhookEventState.PENDING,
        timezone.now(),
    ]
    if connection.in_atomic_block:  # the caller's transaction: no retrying on another connection
        return _event_insert(params)
    connection.health_check_done = True  # Django's per-request check; the INSERT below is the check
    try:
        return _event_insert(params)
    except (OperationalError, InterfaceError):
        logger.warning("Storing a WhatsApp webhook failed on a kept connection; retrying on a new one.", exc_info=True)
        connection.close()
        return _event_insert(params)


def _event_insert(params: list[Any]) -> int | None:
    table = WebhookEvent._meta.db_table
    with _server_binding_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (body, body_sha256, state, attempts, error, received_at) "  # noqa: S608
            "VALUES (%s, %s, %s, 0, '', %s) ON CONFLICT (body_sha256) DO NOTHING RETURNING id",
            params,
        )
        row = cursor.fetchone()
    return row[0] if row else None


def _server_binding_cursor() -> CursorWrapper:
    """On PostgreSQL, a cursor that sends the parameters apart from the SQL (server-side binding).

    Django's psycopg cursors bind client-side: psycopg quotes every value into the SQL text, which
    for a webhook's body (kilobytes) was a tenth of the receiver's CPU. Bound server-side the body
    goes out as it is. Nothing is prepared (Django leaves psycopg's ``prepare_threshold`` off, for
    connection poolers). The cursor is wrapped as Django wraps its own: database errors become
    ``django.db`` errors, and queries are logged (DEBUG, the tests' query counts) and pass through
    ``connection.execute_wrapper()``.
    """
    if connection.vendor != "postgresql":
        return connection.cursor()
    connection.ensure_connection()
    cursor = psycopg.Cursor(connection.connection)
    return connection.make_debug_cursor(cursor) if connection.queries_logged else connection.make_cursor(cursor)


def webhook_events_drain_enqueue() -> None:
    """Make sure a drain runs after this event was stored: enqueue one unless one is pending already.

    The cache key (``SET NX`` with :data:`DRAIN_KEY_TTL`) means "a drain is queued or running and
    will look for pending events after it releases the key", so the receiver enqueues one task per
    burst instead of one per webhook. Neither a cache nor a broker outage is raised: the body is
    stored and Meta must get its 200. Without the cache a drain is enqueued for every event (a
    drain with nothing to do costs one query); without the broker the sweeper
    (:func:`webhook_events_sweep`) enqueues one later.
    """
    key = _drain_key()
    try:
        if not cache.add(key, 1, timeout=DRAIN_KEY_TTL):
            return
    except Exception:  # the cache is down or unreachable
        logger.warning("Cache unreachable: enqueueing a WhatsApp webhook drain without it.", exc_info=True)
        key = ""
    if not _drain_task_enqueue() and key:
        _drain_key_release(key)  # no drain is coming: let the next event try again


def webhook_event_enqueue(*, event_id: int, countdown: int = 0) -> None:
    """Hand one event to a task of its own (a retry of unmatched statuses). A broker outage is logged,
    not raised: the row is stored and the sweeper enqueues it later."""
    from whatsapp.tasks import webhook_event_process_task

    try:
        webhook_event_process_task.apply_async((event_id,), countdown=countdown)
    except Exception:  # the broker is down or unreachable
        logger.exception("Could not enqueue WhatsApp webhook event %s; the sweeper will retry it.", event_id)


def webhook_events_sweep(*, older_than: datetime.timedelta = datetime.timedelta(minutes=2)) -> int:
    """Enqueue what events still pending after ``older_than`` wait for (a lost task, a broker or cache
    outage): a drain for events never tried, their own task again for events being retried.
    How many events were found."""
    stale = WebhookEvent.objects.filter(state=WebhookEventState.PENDING, received_at__lt=timezone.now() - older_than)
    untried = stale.filter(attempts=0).count()
    if untried:
        _drain_task_enqueue()  # not through the key: whoever holds it has missed these events
    retrying = list(stale.filter(attempts__gt=0).order_by("received_at").values_list("pk", flat=True)[:1000])
    for event_id in retrying:
        webhook_event_enqueue(event_id=event_id)
    return untried + len(retrying)


def _drain_key() -> str:
    # One key per database, so that test runs (or two hubs) sharing a Redis never hold each other's
    # drains back.
    return f"whatsapp:webhook-drain:{connection.settings_dict['NAME']}"


def _drain_key_hold(key: str) -> None:
    """Give the drain key its whole time to live again, after each batch. Under a steady flow of
    webhooks a drain runs for minutes; once its key expired, the next webhook enqueued a second
    drain, and a third: they took the worker's other processes and split the events into smaller
    batches, each paying for its claim, its lookups and its credit locks."""
    try:
        cache.touch(key, DRAIN_KEY_TTL)
    except Exception:  # without the cache every webhook enqueues a drain anyway
        logger.warning("Could not hold the WhatsApp webhook drain key.", exc_info=True)


def _drain_key_release(key: str) -> None:
    try:
        cache.delete(key)
    except Exception:  # the key expires by itself within DRAIN_KEY_TTL
        logger.warning("Could not release the WhatsApp webhook drain key.", exc_info=True)


def _drain_task_enqueue() -> bool:
    from whatsapp.tasks import webhook_events_drain_task

    try:
        webhook_events_drain_task.delay()
    except Exception:  # the broker is down or unreachable
        logger.exception("Could not enqueue a WhatsApp webhook drain; the sweeper will.")
        return False
    return True


# --- Processing -------------------------------------------------------------------------------


class RetryLater(Exception):
    """Some statuses named messages not recorded yet; try the event again in ``countdown`` seconds."""

    def __init__(self, message: str, *, countdown: int) -> None:
        super().__init__(message)
        self.countdown = countdown


def webhook_events_drain(*, batch_size: int = DRAIN_BATCH, linger: float | None = None) -> int:
    """Apply pending events until there are none for ``linger`` seconds
    (``WHATSAPP_WEBHOOK_DRAIN_LINGER`` by default), release the drain key, then look once more.

    While it lingers the drain holds its key and looks for new events every
    :data:`DRAIN_LINGER_POLL` seconds, so that under a steady flow of statuses (Meta sends them in
    bursts) one drain applies them all: a drain for every burst paid for a task, a last look and a
    close of its credits each time, and drains overlapping split the events into smaller batches.
    The last look catches an event stored after the final empty claim but before the key was
    released: its receiver saw the key held and enqueued nothing. Events stored after the release
    find no key and enqueue a drain of their own. How many events were taken.
    """
    if linger is None:
        linger = _linger_default()
    key = _drain_key()
    try:
        taken = _drain_until_empty(batch_size=batch_size, key=key, linger=linger)
    finally:
        _drain_key_release(key)
    return taken + _drain_until_empty(batch_size=batch_size)


def _linger_default() -> float:
    """``WHATSAPP_WEBHOOK_DRAIN_LINGER``; none when tasks run inline (``CELERY_TASK_ALWAYS_EAGER``):
    the drain would then hold the webhook's own request, and Meta waits for its 200."""
    from whatsapp.tasks import webhook_events_drain_task

    if webhook_events_drain_task.app.conf.task_always_eager:
        return 0.0
    return settings.WHATSAPP_WEBHOOK_DRAIN_LINGER


def _drain_until_empty(*, batch_size: int, key: str = "", linger: float = 0.0) -> int:
    """Drain batches until claims have found nothing for ``linger`` seconds (at once: one empty
    claim); ``key``, the drain key, is held meanwhile. The credits the batches settle are closed
    every :data:`DRAIN_CREDITS_SECONDS` and at the end."""
    taken = 0
    accounts: AccountMemo = {}
    renew_at = time.monotonic() + DRAIN_ACCOUNTS_SECONDS
    credits = CreditsFollow()
    close_at = time.monotonic() + DRAIN_CREDITS_SECONDS
    idle_since: float | None = None
    try:
        while True:
            batch = _drain_batch(batch_size=batch_size, accounts=accounts, credits=credits)
            now = time.monotonic()
            if batch:
                taken += batch
                idle_since = None
            else:
                idle_since = now if idle_since is None else idle_since
                if now - idle_since >= linger:
                    break
            if key:
                _drain_key_hold(key)
            if credits and now >= close_at:
                _credits_close(credits)
                close_at = now + DRAIN_CREDITS_SECONDS
            if now >= renew_at:
                accounts = {}
                renew_at = now + DRAIN_ACCOUNTS_SECONDS
            else:  # an account not found may be connected by the next batch: only the found ones are kept
                accounts = {waba_id: account for waba_id, account in accounts.items() if account is not None}
            if not batch:
                time.sleep(DRAIN_LINGER_POLL)
    finally:  # a batch that raised rolled back alone: the earlier ones' credits are closed
        _credits_close(credits)
    return taken


def _drain_batch(*, batch_size: int, accounts: AccountMemo, credits: CreditsFollow) -> int:
    """Claim up to ``batch_size`` events never tried, apply them and close them, in one transaction.

    Rows another drain holds are skipped (``SKIP LOCKED``), so no event is applied twice. The
    events are applied together (:func:`_events_apply_together`); if that raises, it is rolled back
    and each event is applied again in a savepoint of its own, so that the one that raises is marked
    failed without holding back the others. Once the batch commits, the credits its statuses settle
    or release join ``credits``, for the drain to close, and events with unmatched statuses are
    handed to their own task. ``accounts`` holds the accounts the drain's earlier batches looked up.
    """
    batch_credits = CreditsFollow()
    with transaction.atomic():
        claim = WebhookEvent.objects.filter(state=WebhookEventState.PENDING, attempts=0).order_by("pk")
        if connection.features.has_select_for_update_skip_locked:  # PostgreSQL; SQLite has one writer
            claim = claim.select_for_update(skip_locked=True)
        events = [(event_id, _parse(body)) for event_id, body in claim.values_list("pk", "body")[:batch_size]]
        if not events:
            return 0
        try:
            with transaction.atomic():
                results = _events_apply_together(events, accounts=accounts, credits=batch_credits)
        except (OperationalError, InterfaceError):
            raise  # the connection, not an event: the batch rolls back and stays pending
        except Exception:
            logger.warning("A WhatsApp webhook batch failed; applying its events one by one.", exc_info=True)
            batch_credits = CreditsFollow()
            results = {
                event_id: _event_apply(event_id, payload, accounts=accounts, credits=batch_credits)
                for event_id, payload in events
            }
        closed: dict[tuple[str, str], list[int]] = defaultdict(list)
        retrying: dict[int, str] = {}
        for event_id, (state, note) in results.items():
            if state == WebhookEventState.PENDING:
                retrying[event_id] = note
            else:
                closed[state, note].append(event_id)
        now = timezone.now()
        for (state, note), event_ids in closed.items():  # one UPDATE per outcome, usually one in all
            WebhookEvent.objects.filter(pk__in=event_ids).update(
                state=state, error=note[:10_000], attempts=F("attempts") + 1, processed_at=now
            )
        for event_id, note in retrying.items():
            WebhookEvent.objects.filter(pk=event_id).update(error=note, attempts=F("attempts") + 1)
    credits.merge(batch_credits)
    for event_id in retrying:  # after the commit, which the task must see; the drain was attempt 1
        webhook_event_enqueue(event_id=event_id, countdown=_retry_countdown(1))
    return len(events)


class NotJSON(str):
    """A stored body that does not parse: why, for the event's note."""


def _parse(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        return NotJSON(f"not JSON: {exc}")


def _events_apply_together(
    events: list[tuple[int, Any]], *, accounts: AccountMemo, credits: CreditsFollow
) -> dict[int, tuple[str, str]]:
    """Apply claimed events with no savepoint each: the messages their statuses name are read with
    one query before and written with one statement after (:class:`StatusBatch`). The state each
    event ends in and its note; raises if any event does."""
    statuses = StatusBatch(credits=credits)
    statuses.load(
        status
        for _event_id, payload in events
        if not isinstance(payload, NotJSON)
        for status in _statuses_of(payload, accounts=accounts)
    )
    results = {}
    for event_id, payload in events:
        if isinstance(payload, NotJSON):
            results[event_id] = (WebhookEventState.FAILED, str(payload))
            continue
        outcome = webhook_payload_apply(payload=payload, accounts=accounts, statuses=statuses.apply)
        results[event_id] = _event_state(outcome)
    statuses.save()
    return results


def _event_apply(event_id: int, payload: Any, *, accounts: AccountMemo, credits: CreditsFollow) -> tuple[str, str]:
    """Apply one claimed event in a savepoint: the state it ends in and the note it keeps.
    Pending means "unmatched statuses, retry it"."""
    if isinstance(payload, NotJSON):
        return WebhookEventState.FAILED, str(payload)
    own = CreditsFollow()  # kept only if the event's savepoint is
    try:
        with transaction.atomic():
            outcome = webhook_payload_apply(
                payload=payload, accounts=accounts, statuses=functools.partial(message_status_apply, credits=own)
            )
    except (OperationalError, InterfaceError):
        raise  # the connection, not the event: the batch rolls back and stays pending
    except Exception as exc:  # a bug or bad data in this event only; its savepoint is rolled back
        logger.exception("WhatsApp webhook event %s could not be applied; marked failed.", event_id)
        return WebhookEventState.FAILED, f"{type(exc).__name__}: {exc}"
    credits.merge(own)
    return _event_state(outcome)


def _event_state(outcome: Outcome) -> tuple[str, str]:
    if outcome.unmatched:
        return WebhookEventState.PENDING, _unmatched_note(outcome)
    return WebhookEventState.PROCESSED, "\n".join(outcome.notes)


def _credits_close(credits: CreditsFollow) -> None:
    """Close the credits of a committed batch. A failure is logged, not raised: the statuses are
    applied and the events closed, and the beat sweep ends the holds left."""
    count = len(credits)
    try:
        credits.close()
    except Exception:
        logger.exception("Credits of %s WhatsApp messages not closed; the sweeper will close them.", count)


def webhook_event_process(*, event_id: int, final_attempt: bool = False) -> Outcome | None:
    """Apply one stored event on its own (a retry of unmatched statuses). Raises :class:`RetryLater`
    while statuses are unmatched, until the event has been tried ``UNMATCHED_RETRIES`` + 1 times or
    on ``final_attempt``; returns None when the event was already processed."""
    table = WebhookEvent._meta.db_table
    with connection.cursor() as cursor:  # count the attempt and read the body in one statement
        cursor.execute(
            f"UPDATE {table} SET attempts = attempts + 1 WHERE id = %s AND state <> %s "  # noqa: S608
            "RETURNING body, attempts",
            [event_id, WebhookEventState.PROCESSED],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    body, attempts = row
    try:
        payload = json.loads(body)
    except ValueError as exc:
        _event_close(event_id, WebhookEventState.FAILED, f"not JSON: {exc}")
        return Outcome()
    outcome = webhook_payload_apply(payload=payload)
    if outcome.unmatched and not (final_attempt or attempts > UNMATCHED_RETRIES):
        WebhookEvent.objects.filter(pk=event_id).update(error=_unmatched_note(outcome))
        raise RetryLater(_unmatched_note(outcome), countdown=_retry_countdown(attempts))
    notes = outcome.notes + ([_unmatched_note(outcome)] if outcome.unmatched else [])
    _event_close(event_id, WebhookEventState.PROCESSED, "\n".join(notes))
    return outcome


def _retry_countdown(attempts: int) -> int:
    """Seconds before the next try of an event tried ``attempts`` times: 2, 4, 8, 16, 32."""
    return 2**attempts


def _unmatched_note(outcome: Outcome) -> str:
    return "statuses for unknown messages: " + ", ".join(sorted(set(outcome.unmatched)))


def _event_close(event_id: int, state: str, error: str) -> None:
    WebhookEvent.objects.filter(pk=event_id).update(state=state, error=error[:10_000], processed_at=timezone.now())


def webhook_payload_apply(
    *, payload: Any, accounts: AccountMemo | None = None, statuses: StatusApply | None = None
) -> Outcome:
    """Walk every entry and change of a ``whatsapp_business_account`` payload. ``accounts`` keeps the
    accounts looked up, for the next payloads of a drain batch; ``statuses`` applies each status
    (:func:`~whatsapp.services.messages.message_status_apply` unless a drain batch gives its own)."""
    accounts = {} if accounts is None else accounts
    statuses = message_status_apply if statuses is None else statuses
    outcome = Outcome()
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        outcome.notes.append(f"ignored object {_short(payload, 'object')}")
        return outcome
    for entry in _list(payload.get("entry")):
        waba_id = str(entry.get("id", ""))
        if waba_id not in accounts:
            accounts[waba_id] = _live_account(waba_id)
        account = accounts[waba_id]
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
            handler(account, value, entry_time, outcome, statuses)
    return outcome


def _statuses_of(payload: Any, *, accounts: AccountMemo) -> Iterator[tuple[Organization, StatusUpdate]]:
    """The statuses of a payload, with the organization of their account, as the handlers see them."""
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        return
    for entry in _list(payload.get("entry")):
        waba_id = str(entry.get("id", ""))
        if waba_id not in accounts:
            accounts[waba_id] = _live_account(waba_id)
        account = accounts[waba_id]
        if account is None:
            continue
        for change in _list(entry.get("changes")):
            value = change.get("value")
            if change.get("field") != "messages" or not isinstance(value, dict):
                continue
            for status in _list(value.get("statuses")):
                update = StatusUpdate.from_webhook(status)
                if update is not None:
                    yield account.organization, update


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
    account: WhatsAppAccount,
    value: Mapping[str, Any],
    at: datetime.datetime | None,
    outcome: Outcome,
    statuses: StatusApply,
) -> None:
    """``messages``: statuses of what we sent, and what customers send us."""
    for status in _list(value.get("statuses")):
        update = StatusUpdate.from_webhook(status)
        if update is None:
            outcome.notes.append(f"ignored status {_short(status, 'status')}")
            continue
        if statuses(organization=account.organization, update=update) is None:
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
    account: WhatsAppAccount,
    value: Mapping[str, Any],
    at: datetime.datetime | None,
    outcome: Outcome,
    statuses: StatusApply,
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
    account: WhatsAppAccount,
    value: Mapping[str, Any],
    at: datetime.datetime | None,
    outcome: Outcome,
    statuses: StatusApply,
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
    account: WhatsAppAccount,
    value: Mapping[str, Any],
    at: datetime.datetime | None,
    outcome: Outcome,
    statuses: StatusApply,
) -> None:
    """Account review, bans and restrictions: shown on the settings page."""
    _account_event(account, str(value.get("event", "")), value, at)


def handle_account_alerts(
    account: WhatsAppAccount,
    value: Mapping[str, Any],
    at: datetime.datetime | None,
    outcome: Outcome,
    statuses: StatusApply,
) -> None:
    _account_event(account, str(value.get("alert_type") or value.get("event") or "ALERT"), value, at)


def handle_account_review_update(
    account: WhatsAppAccount,
    value: Mapping[str, Any],
    at: datetime.datetime | None,
    outcome: Outcome,
    statuses: StatusApply,
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


HandlerFn = Callable[[WhatsAppAccount, Mapping[str, Any], "datetime.datetime | None", Outcome, StatusApply], None]
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

"""Webhooks out: the sandbox acting as Meta's webhook sender.

A webhook is a :class:`~.models.SandboxWebhookDelivery` row before it is a request: scheduling
saves the exact body with the time it is due. Then either

- **background** (``WHATSAPP_SANDBOX_DELIVERY = "background"``, the default): a daemon thread per
  process keeps a heap of (due time, row id), sleeps until the next one is due, and delivers it.
  It starts lazily on the first webhook, and picks up rows left pending by an earlier process; or
- **manual** (``"manual"``, for tests): nothing leaves until :func:`deliver_due` or :func:`flush`
  is called, so tests decide when "later" is.

Delivering a row claims it with a conditional UPDATE (``pending → sending``; a row pushed twice
is delivered once), applies what the event means on the sandbox's side (the message becomes
``delivered``, the template ``APPROVED``), then POSTs the body signed with
``X-Hub-Signature-256: sha256=HMAC-SHA256(WHATSAPP_APP_SECRET, body)``. A refused or failed POST is
retried with exponential backoff, as Meta retries, up to :data:`MAX_ATTEMPTS`.

With ``status_batch_ms`` set (:class:`~.models.SandboxSettings`), status webhooks are batched as
Meta batches them under load: each status row is due at the end of its window, and delivering
one claims every due status row of the same WABA (:func:`deliver_status_batch`) and POSTs them
as one body, one change per phone number carrying all its ``statuses``. The rows stay one per
status, so each keeps its own state; a batch is delivered, retried or given up as one.

The POST uses ``urllib.request``: the sandbox is Meta here, not the hub, so it stays off the
hub's HTTP client (and its banned-import rule); a few requests a second need no pool.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import logging
import math
import os
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F
from django.utils import timezone

from . import payloads, selectors
from .choices import DeliveryState, MessageStatus, TemplateStatus, WebhookKind
from .models import SandboxBusinessAccount, SandboxMessage, SandboxTemplate, SandboxWebhookDelivery

__all__ = [
    "MAX_ATTEMPTS",
    "deliver_due",
    "deliver_one",
    "deliver_status_batch",
    "delivery_mode",
    "flush",
    "sign",
    "status_webhooks_schedule",
    "webhook_schedule",
    "webhook_url",
]

logger = logging.getLogger(__name__)

DEFAULT_WEBHOOK_URL: Final = "http://127.0.0.1:8000/webhooks/whatsapp/"
MAX_ATTEMPTS: Final = 5
#: Seconds before retry n (1, 2, 4, 8): Meta backs off for days; the sandbox keeps it short.
BACKOFF_BASE: Final = 1.0
POST_TIMEOUT: Final = 10.0
#: A row left ``sending`` this long by a dead process is taken again.
STALE_CLAIM: Final = timedelta(minutes=1)
USER_AGENT: Final = "facebookexternalua"
#: Status rows one batched webhook carries at most (a few hundred bytes each).
MAX_BATCH: Final = 1000

#: A heap entry's batch key: (account pk, due timestamp) of a window of batched statuses, or None.
BatchKey = tuple[int, float] | None

#: Forward-only order of outbound statuses; ``failed`` is terminal.
_STATUS_RANK: Final = {
    MessageStatus.ACCEPTED: 0,
    MessageStatus.SENT: 1,
    MessageStatus.DELIVERED: 2,
    MessageStatus.READ: 3,
    MessageStatus.FAILED: 9,
}


def delivery_mode() -> str:
    """``background`` (a thread delivers when due) or ``manual`` (tests call :func:`deliver_due`)."""
    mode = getattr(settings, "WHATSAPP_SANDBOX_DELIVERY", "background")
    return "manual" if mode == "manual" else "background"


def webhook_url(account: SandboxBusinessAccount) -> str:
    """Where this WABA's webhooks go: its override callback, else the configured hub receiver."""
    return account.override_callback_uri or getattr(settings, "WHATSAPP_SANDBOX_WEBHOOK_URL", DEFAULT_WEBHOOK_URL)


def sign(body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value for a body: HMAC-SHA256 with the app secret, hex."""
    secret = str(getattr(settings, "WHATSAPP_APP_SECRET", "") or "")
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_schedule(
    *,
    account: SandboxBusinessAccount,
    kind: str,
    event: str,
    payload: dict[str, Any],
    delay: float = 0.0,
    message: SandboxMessage | None = None,
    template: SandboxTemplate | None = None,
) -> SandboxWebhookDelivery:
    """Save a webhook due ``delay`` seconds from now; in background mode, wake the sender on commit."""
    delivery = SandboxWebhookDelivery.objects.create(
        kind=kind,
        event=event,
        account=account,
        message=message,
        template=template,
        template_revision=template.revision if template is not None else None,
        payload=payloads.dumps(payload),
        due_at=timezone.now() + timedelta(seconds=max(delay, 0.0)),
    )
    if delivery_mode() == "background":
        due, pk = delivery.due_at.timestamp(), delivery.pk
        transaction.on_commit(lambda: _sender.push(due, pk))
    return delivery


def status_webhooks_schedule(
    *,
    account: SandboxBusinessAccount,
    message: SandboxMessage,
    webhooks: list[tuple[str, float, dict[str, Any]]],
    batch_ms: int = 0,
) -> list[SandboxWebhookDelivery]:
    """Save a message's status webhooks, ``(status, delay, payload)`` each, in one INSERT.

    With ``batch_ms``, each is due at the end of the window of that many milliseconds it falls
    in, so the statuses of a WABA due in one window share a due time and leave as one webhook.
    """
    now = timezone.now()
    rows = [
        SandboxWebhookDelivery(
            kind=WebhookKind.MESSAGE_STATUS,
            event=status,
            account=account,
            message=message,
            payload=payloads.dumps(payload),
            due_at=_window_end(now + timedelta(seconds=max(delay, 0.0)), batch_ms),
        )
        for status, delay, payload in webhooks
    ]
    SandboxWebhookDelivery.objects.bulk_create(rows)
    if delivery_mode() == "background":
        entries = [
            (row.due_at.timestamp(), row.pk, (account.pk, row.due_at.timestamp()) if batch_ms else None) for row in rows
        ]
        transaction.on_commit(lambda: _sender.push_many(entries))
    return rows


def _window_end(due: datetime, batch_ms: int) -> datetime:
    if batch_ms <= 0:
        return due
    window = batch_ms / 1000
    return datetime.fromtimestamp(math.ceil(due.timestamp() / window) * window, tz=UTC)


def deliver_due(*, now: datetime | None = None) -> int:
    """Deliver every pending webhook due by ``now`` (default: now), oldest first; return how many rows were processed.

    With status batching on, the statuses of each WABA leave together (:func:`deliver_status_batch`).
    """
    now = now or timezone.now()
    rows = list(
        SandboxWebhookDelivery.objects.filter(state=DeliveryState.PENDING, due_at__lte=now)
        .order_by("due_at", "pk")
        .values_list("pk", "kind")
    )
    batching = bool(rows) and selectors.sandbox_settings_get().status_batch_ms > 0
    done: set[int] = set()
    for pk, kind in rows:
        if pk in done:
            continue
        if batching and kind == WebhookKind.MESSAGE_STATUS:
            done.update(deliver_status_batch(pk, now=now))
        elif deliver_one(pk, now=now):
            done.add(pk)
    return len(done)


def flush(*, max_rounds: int = MAX_ATTEMPTS + 2) -> int:
    """Deliver everything pending, whenever it is due, retries included; return how many were processed."""
    total = 0
    for _ in range(max_rounds):
        horizon = timezone.now() + timedelta(days=1)
        processed = deliver_due(now=horizon)
        total += processed
        if not processed:
            break
    return total


def deliver_one(pk: int, *, now: datetime | None = None) -> bool:
    """Claim one due webhook, apply it, POST it; reschedule on failure. False if it wasn't ours to send."""
    now = now or timezone.now()
    claimed = SandboxWebhookDelivery.objects.filter(pk=pk, state=DeliveryState.PENDING, due_at__lte=now).update(
        state=DeliveryState.SENDING, last_attempt_at=timezone.now()
    )
    if not claimed:
        return False
    delivery = SandboxWebhookDelivery.objects.select_related("account").get(pk=pk)
    fields = ["state", "applied", "attempts", "url", "last_status_code", "last_error", "due_at"]
    if not delivery.applied:
        delivery.applied = True
        if not _apply(delivery):
            delivery.state = DeliveryState.SKIPPED
            delivery.last_error = "Superseded: the template was edited or deleted before this review finished."
            delivery.save(update_fields=fields)
            return True
    account = delivery.account
    if not account.subscribed:
        delivery.state = DeliveryState.SKIPPED
        delivery.last_error = (
            f"The app is not subscribed to WABA {account.waba_id} (POST /{{waba_id}}/subscribed_apps)."
        )
        delivery.save(update_fields=fields)
        return True

    delivery.url = webhook_url(account)
    delivery.attempts += 1
    status, error = _post(delivery.url, delivery.payload.encode())
    delivery.last_status_code = status
    delivery.last_error = error
    if status is not None and 200 <= status < 300:
        delivery.state = DeliveryState.DELIVERED
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.state = DeliveryState.FAILED
    else:
        delivery.state = DeliveryState.PENDING
        delivery.due_at = timezone.now() + timedelta(seconds=BACKOFF_BASE * 2 ** (delivery.attempts - 1))
    delivery.save(update_fields=fields)
    if delivery.state == DeliveryState.PENDING and delivery_mode() == "background":
        _sender.push(delivery.due_at.timestamp(), delivery.pk)
    return True


def deliver_status_batch(pk: int, *, now: datetime | None = None) -> list[int]:
    """Claim the due status rows of ``pk``'s WABA, apply them, POST them as one webhook; the ids claimed.

    One statement claims up to :data:`MAX_BATCH` rows (``SKIP LOCKED`` on PostgreSQL, so two
    senders never take the same row); the rows then share one outcome: delivered, retried
    together after the backoff, or given up.
    """
    now = now or timezone.now()
    ids = _status_batch_claim(pk, now)
    if not ids:
        return []
    rows = list(SandboxWebhookDelivery.objects.filter(pk__in=ids).select_related("account").order_by("due_at", "pk"))
    _statuses_apply([row for row in rows if not row.applied])
    account = rows[0].account
    claimed = SandboxWebhookDelivery.objects.filter(pk__in=ids)
    if not account.subscribed:
        claimed.update(
            state=DeliveryState.SKIPPED,
            applied=True,
            last_error=f"The app is not subscribed to WABA {account.waba_id} (POST /{{waba_id}}/subscribed_apps).",
        )
        return ids

    url = webhook_url(account)
    body = payloads.dumps(payloads.statuses_batch(account, [json.loads(row.payload) for row in rows]))
    status, error = _post(url, body.encode())
    outcome = {"applied": True, "url": url, "last_status_code": status, "last_error": error}
    if status is not None and 200 <= status < 300:
        claimed.update(state=DeliveryState.DELIVERED, attempts=F("attempts") + 1, **outcome)
        return ids
    by_attempts: dict[int, list[int]] = defaultdict(list)
    for row in rows:
        by_attempts[row.attempts + 1].append(row.pk)
    for attempts, pks in by_attempts.items():
        if attempts >= MAX_ATTEMPTS:
            SandboxWebhookDelivery.objects.filter(pk__in=pks).update(
                state=DeliveryState.FAILED, attempts=attempts, **outcome
            )
            continue
        due_at = timezone.now() + timedelta(seconds=BACKOFF_BASE * 2 ** (attempts - 1))
        SandboxWebhookDelivery.objects.filter(pk__in=pks).update(
            state=DeliveryState.PENDING, attempts=attempts, due_at=due_at, **outcome
        )
        if delivery_mode() == "background":
            _sender.push(due_at.timestamp(), pks[0], (account.pk, due_at.timestamp()))
    return ids


def _status_batch_claim(pk: int, now: datetime) -> list[int]:
    """``pending → sending`` for the due status rows of ``pk``'s WABA, oldest first, in one statement."""
    table = connection.ops.quote_name(SandboxWebhookDelivery._meta.db_table)
    lock = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    sql = (
        f"UPDATE {table} SET state = %(sending)s, last_attempt_at = %(at)s WHERE id IN ("  # noqa: S608
        f"SELECT id FROM {table} WHERE state = %(pending)s AND kind = %(kind)s AND due_at <= %(now)s "
        f"AND account_id = (SELECT account_id FROM {table} WHERE id = %(pk)s) "
        f"ORDER BY due_at, id LIMIT %(limit)s{lock}) RETURNING id"
    )
    params = {
        "sending": DeliveryState.SENDING,
        "pending": DeliveryState.PENDING,
        "kind": WebhookKind.MESSAGE_STATUS,
        "at": connection.ops.adapt_datetimefield_value(timezone.now()),
        "now": connection.ops.adapt_datetimefield_value(now),
        "pk": pk,
        "limit": MAX_BATCH,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def _statuses_apply(rows: list[SandboxWebhookDelivery]) -> None:
    """Move the rows' messages forward, one UPDATE per status, lowest rank first (a message ends at its highest)."""
    by_status: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        if row.message_id is not None:
            by_status[row.event].append(row.message_id)
    for status in sorted(by_status, key=lambda name: _STATUS_RANK.get(MessageStatus(name), 0)):
        _messages_status_advance(by_status[status], status)


def _post(url: str, body: bytes) -> tuple[int | None, str]:
    if not url.startswith(("http://", "https://")):
        return None, f"Not an http(s) URL: {url!r}"
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body), "User-Agent": USER_AGENT},
    )
    try:
        with urllib.request.urlopen(request, timeout=POST_TIMEOUT) as response:  # noqa: S310
            response.read(1024)
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


# --- What an event means on the sandbox's side --------------------------------------------------


def _apply(delivery: SandboxWebhookDelivery) -> bool:
    """Apply the event; False when it no longer applies (a review of content since replaced)."""
    if delivery.kind == WebhookKind.MESSAGE_STATUS and delivery.message_id is not None:
        _message_status_advance(delivery.message_id, delivery.event)
    elif delivery.kind == WebhookKind.TEMPLATE_STATUS and delivery.template_id is not None:
        template = SandboxTemplate.objects.filter(pk=delivery.template_id).first()
        if (
            template is None
            or template.status == TemplateStatus.DELETED
            or template.revision != delivery.template_revision
        ):
            return False
        value = _first_change_value(delivery.payload)
        template.status = delivery.event
        template.rejected_reason = str(value.get("reason") or "NONE") if delivery.event == "REJECTED" else "NONE"
        template.save(update_fields=["status", "rejected_reason", "updated_at"])
    return True


def _message_status_advance(message_pk: int, status: str) -> None:
    """Move a message's status forward (never back; ``failed`` stays)."""
    _messages_status_advance([message_pk], status)


def _messages_status_advance(message_pks: list[int], status: str) -> None:
    rank = _STATUS_RANK.get(MessageStatus(status), 0)
    before = [s for s, r in _STATUS_RANK.items() if r < rank]
    SandboxMessage.objects.filter(pk__in=message_pks, status__in=before).update(
        status=status, updated_at=timezone.now()
    )


def _first_change_value(body: str) -> dict[str, Any]:
    try:
        return json.loads(body)["entry"][0]["changes"][0]["value"]
    except (ValueError, KeyError, IndexError, TypeError):
        return {}


# --- The background sender ----------------------------------------------------------------------


class _Sender:
    """A heap of (due timestamp, delivery id, batch key) and the daemon threads that work through it.

    A window of batched statuses needs one entry: its first row, delivered with the rest of the
    window (:func:`deliver_status_batch`); ``_batches`` holds the windows already in the heap.
    """

    def __init__(self) -> None:
        self._cv = threading.Condition()
        # (due, id, tie-breaker, batch key): the same row may be pushed twice (recovery and commit).
        self._heap: list[tuple[float, int, int, BatchKey]] = []
        self._order = itertools.count()
        self._batches: set[tuple[int, float]] = set()
        self._threads: list[threading.Thread] = []
        self._pid: int | None = None

    def push(self, due: float, pk: int, batch: BatchKey = None) -> None:
        self.push_many([(due, pk, batch)])

    def push_many(self, entries: list[tuple[float, int, BatchKey]]) -> None:
        with self._cv:
            self._ensure_started()
            for due, pk, batch in entries:
                if batch is not None:
                    if batch in self._batches:
                        continue
                    self._batches.add(batch)
                heapq.heappush(self._heap, (due, pk, next(self._order), batch))
            self._cv.notify()

    def _ensure_started(self) -> None:
        # Threads don't survive fork(): a child starts its own, with an empty heap.
        if self._pid != os.getpid():
            self._pid, self._heap, self._batches, self._threads = os.getpid(), [], set(), []
        self._threads = [thread for thread in self._threads if thread.is_alive()]
        if self._threads:
            return
        count = max(1, int(getattr(settings, "WHATSAPP_SANDBOX_DELIVERY_THREADS", 1)))
        for index in range(count):
            thread = threading.Thread(
                target=self._run, args=(index == 0,), name=f"sandbox-webhooks-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _recover(self) -> None:
        """Queue the rows an earlier process left pending (or claimed and never finished)."""
        stale = timezone.now() - STALE_CLAIM
        SandboxWebhookDelivery.objects.filter(state=DeliveryState.SENDING, last_attempt_at__lt=stale).update(
            state=DeliveryState.PENDING
        )
        rows = SandboxWebhookDelivery.objects.filter(state=DeliveryState.PENDING).values_list("pk", "due_at")
        with self._cv:
            for pk, due_at in rows:
                heapq.heappush(self._heap, (due_at.timestamp(), pk, next(self._order), None))
            self._cv.notify_all()

    def _run(self, recover: bool) -> None:
        if recover:
            try:
                self._recover()
            except Exception:
                logger.exception("Sandbox webhook sender could not load pending deliveries")
            finally:
                connection.close()
        while True:
            with self._cv:
                while not self._heap or self._heap[0][0] > time.time():
                    self._cv.wait(None if not self._heap else max(self._heap[0][0] - time.time(), 0.0))
                _, pk, _, batch = heapq.heappop(self._heap)
                if batch is not None:
                    # Rows of this window committed from now on push an entry of their own.
                    self._batches.discard(batch)
            try:
                if batch is not None:
                    deliver_status_batch(pk)
                else:
                    deliver_one(pk)
            except Exception:
                logger.exception("Sandbox webhook delivery %s failed", pk)
            finally:
                close_old_connections()
                if not self._has_due():
                    # Idle until the next one: don't hold a database connection meanwhile.
                    connection.close()

    def _has_due(self) -> bool:
        with self._cv:
            return bool(self._heap) and self._heap[0][0] <= time.time()


_sender = _Sender()

"""Webhooks out: the sandbox acting as Meta's webhook sender.

A webhook is a :class:`~.models.SandboxWebhookDelivery` row before it is a request: the row holds
the exact body and the time it is due. Then either

- **background** (``WHATSAPP_SANDBOX_DELIVERY = "background"``, the default): daemon threads per
  process keep a heap of due times, sleep until the next one, and deliver what is due then. They
  start lazily on the first webhook, and pick up what an earlier process left pending; or
- **manual** (``"manual"``, for tests): nothing leaves until :func:`deliver_due` or :func:`flush`
  is called, so tests decide when "later" is.

Delivering a row claims it with a conditional UPDATE (``pending → sending``; a row pushed twice
is delivered once), applies what the event means on the sandbox's side (the template becomes
``APPROVED``), then POSTs the body signed with
``X-Hub-Signature-256: sha256=HMAC-SHA256(WHATSAPP_APP_SECRET, body)``. A refused or failed POST is
retried with exponential backoff, as Meta retries, up to :data:`MAX_ATTEMPTS`.

**Message statuses** (sent → delivered → read, or one ``failed``) are the bulk of the traffic, three
for every accepted send, so they are not rows until they leave: an accepted message carries the
time its next status is due (``status_due_at``; the send is one INSERT). :func:`deliver_statuses`
claims the messages due (``SKIP LOCKED``: two senders never take the same one), moves each forward
through every status due by then, and in the same transaction writes the webhooks that announce
it: with ``status_batch_ms`` set (:class:`~.models.SandboxSettings`), one per WABA with a change
per phone number carrying all its ``statuses``, as Meta batches them under load, the heap waking
once per window of that many milliseconds; without it, one per status. From then on such a
webhook is a row like any other: POSTed, retried as one, given up as one.

The POST uses ``http.client``, the background sender keeping one connection alive per thread
and origin while it has work (one reset by the server meanwhile is replaced once): the sandbox
is Meta here, not the hub, so it stays off the hub's HTTP client (and its banned-import rule).
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import http.client as http_client
import itertools
import json
import logging
import math
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

from django.conf import settings
from django.db import close_old_connections, connection, models, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from . import payloads, selectors
from .choices import DeliveryState, MessageStatus, TemplateStatus, WebhookKind
from .models import (
    SandboxBusinessAccount,
    SandboxMessage,
    SandboxPhoneNumber,
    SandboxTemplate,
    SandboxWebhookDelivery,
)
from .process_cache import forget_all

__all__ = [
    "MAX_ATTEMPTS",
    "deliver_due",
    "deliver_one",
    "deliver_statuses",
    "delivery_mode",
    "flush",
    "sign",
    "statuses_schedule",
    "webhook_schedule",
    "webhook_url",
]

logger = logging.getLogger(__name__)

DEFAULT_WEBHOOK_URL: Final = "http://127.0.0.1:8000/webhooks/whatsapp/"
MAX_ATTEMPTS: Final = 5
#: Seconds before retry n (1, 2, 4, 8): Meta backs off for days; the sandbox keeps it short.
BACKOFF_BASE: Final = 1.0
POST_TIMEOUT: Final = 10.0
#: Bytes of an answer read at most (the hub answers a webhook with a few).
MAX_ANSWER: Final = 64 * 1024
#: A row left ``sending`` this long by a dead process is taken again.
STALE_CLAIM: Final = timedelta(minutes=1)
USER_AGENT: Final = "facebookexternalua"
#: Messages one claim of due statuses takes at most (their webhooks carry a few hundred bytes each).
MAX_BATCH: Final = 1000
#: A sender thread with nothing due within this many seconds gives its database connection back.
IDLE_SECONDS: Final = 5.0

#: The outbound status after each one; ``failed`` follows ``accepted`` instead when the send
#: carries an error (an async refusal), and ends the message's statuses, as ``read`` does.
_NEXT_STATUS: Final = {
    MessageStatus.ACCEPTED: MessageStatus.SENT,
    MessageStatus.SENT: MessageStatus.DELIVERED,
    MessageStatus.DELIVERED: MessageStatus.READ,
}
#: Statuses whose webhook carries the message's pricing (Meta leaves it off read and failed).
_PRICED: Final = frozenset({MessageStatus.SENT, MessageStatus.DELIVERED})
#: Per sender thread: the connection kept alive to each origin webhooks go to, while it is busy.
#: Elsewhere (``flush`` in tests) each POST has a connection of its own: a kept one would keep a
#: thread of the server at the other end, and its database connection, past the caller's work.
_kept_alive = threading.local()
#: A heap entry's kind: deliver the row of that id, or the statuses due by then.
_ROW: Final = "row"
_STATUSES: Final = "statuses"


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
        transaction.on_commit(lambda: _sender.push(due, _ROW, pk))
    return delivery


def statuses_schedule(*, dues: Iterable[datetime], batch_ms: int) -> None:
    """Messages' next statuses fall due at ``dues``: in background mode, wake the sender then (on commit).

    With ``batch_ms`` the sender wakes at the end of each window of that many milliseconds the
    times fall in, once for every status due in it.
    """
    if delivery_mode() == "background":
        wakes = {_window_end(due.timestamp(), batch_ms) for due in dues}
        transaction.on_commit(lambda: _sender.push_many([(wake, _STATUSES, 0) for wake in wakes]))


def _window_end(due: float, batch_ms: int) -> float:
    if batch_ms <= 0:
        return due
    window = batch_ms / 1000
    return math.ceil(due / window) * window


def deliver_due(*, now: datetime | None = None) -> int:
    """Deliver every pending webhook due by ``now`` (default: now), oldest first, then the message
    statuses due by then; return how many webhooks and statuses left (or were given up)."""
    now = now or timezone.now()
    pending = SandboxWebhookDelivery.objects.filter(state=DeliveryState.PENDING, due_at__lte=now)
    done = sum(deliver_one(pk, now=now) for pk in pending.order_by("due_at", "pk").values_list("pk", flat=True))
    return done + deliver_statuses(now=now)


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
    if not delivery.applied:
        delivery.applied = True
        if not _apply(delivery):
            delivery.state = DeliveryState.SKIPPED
            delivery.last_error = "Superseded: the template was edited or deleted before this review finished."
            delivery.save(update_fields=["state", "applied", "last_error"])
            return True
    if not delivery.account.subscribed:
        delivery.state = DeliveryState.SKIPPED
        delivery.last_error = _unsubscribed(delivery.account)
        delivery.save(update_fields=["state", "applied", "last_error"])
        return True
    _attempt(delivery)
    return True


def _attempt_all(deliveries: list[SandboxWebhookDelivery]) -> None:
    """POST claimed rows one after another; those answered 2xx are recorded together, in one UPDATE."""
    delivered: dict[tuple[str, int], list[int]] = defaultdict(list)
    for delivery in deliveries:
        url = webhook_url(delivery.account)
        status, error = _post(url, delivery.payload.encode())
        if status is not None and 200 <= status < 300:
            delivered[(url, status)].append(delivery.pk)
        else:
            _attempt_record(delivery, url, status, error)
    for (url, status), pks in delivered.items():
        SandboxWebhookDelivery.objects.filter(pk__in=pks).update(
            state=DeliveryState.DELIVERED, attempts=F("attempts") + 1, url=url, last_status_code=status, last_error=""
        )


def _attempt(delivery: SandboxWebhookDelivery) -> None:
    """POST a claimed row to its account's URL and record the outcome: delivered, retried later, or given up."""
    url = webhook_url(delivery.account)
    _attempt_record(delivery, url, *_post(url, delivery.payload.encode()))


def _attempt_record(delivery: SandboxWebhookDelivery, url: str, status: int | None, error: str) -> None:
    delivery.url = url
    delivery.attempts += 1
    delivery.last_status_code = status
    delivery.last_error = error
    if status is not None and 200 <= status < 300:
        delivery.state = DeliveryState.DELIVERED
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.state = DeliveryState.FAILED
    else:
        delivery.state = DeliveryState.PENDING
        delivery.due_at = timezone.now() + timedelta(seconds=BACKOFF_BASE * 2 ** (delivery.attempts - 1))
    delivery.save(update_fields=["state", "applied", "attempts", "url", "last_status_code", "last_error", "due_at"])
    if delivery.state == DeliveryState.PENDING and delivery_mode() == "background":
        _sender.push(delivery.due_at.timestamp(), _ROW, delivery.pk)


def _unsubscribed(account: SandboxBusinessAccount) -> str:
    return f"The app is not subscribed to WABA {account.waba_id} (POST /{{waba_id}}/subscribed_apps)."


# --- Message statuses ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Due:
    """A message as claimed: what its status webhooks need."""

    pk: int
    wamid: str
    status: str
    due: datetime
    error_code: int | None
    recipient: str
    pricing: dict[str, Any] | None
    callback_data: str
    phone_pk: int


def deliver_statuses(*, now: datetime | None = None) -> int:
    """Send the message statuses due by ``now`` (default: now); return how many statuses left.

    Each claim takes up to :data:`MAX_BATCH` messages, so a backlog leaves in several.
    """
    now = now or timezone.now()
    total = 0
    while True:
        webhooks, statuses, claimed = _statuses_claim(now)
        _attempt_all([webhook for webhook in webhooks if webhook.state == DeliveryState.SENDING])
        total += statuses
        if claimed < MAX_BATCH:
            return total


def _statuses_claim(now: datetime) -> tuple[list[SandboxWebhookDelivery], int, int]:
    """Claim the messages due, move them forward, write their webhooks; (webhooks, statuses, messages claimed).

    One transaction: the messages locked (``SKIP LOCKED``: another sender takes the others) and
    moved forward in one UPDATE, the webhooks inserted, committed before any POST.
    Status webhooks of an unsubscribed app are written as skipped, as Meta drops them.
    """
    row = selectors.sandbox_settings_get()
    with transaction.atomic():
        claimed = [
            _Due(*values)
            for values in SandboxMessage.objects.select_for_update(skip_locked=True)
            .filter(status_due_at__lte=now)
            .order_by("status_due_at", "pk")
            .values_list(
                "pk",
                "wamid",
                "status",
                "status_due_at",
                "error_code",
                "recipient",
                "pricing",
                "biz_opaque_callback_data",
                "phone_number_id",
            )[:MAX_BATCH]
        ]
        if not claimed:
            return [], 0, 0
        emitted: list[tuple[datetime, int, int, _Due, str]] = []
        advanced: dict[int, list[int]] = defaultdict(list)  # statuses moved → messages
        upcoming: list[datetime] = []
        delays = {
            MessageStatus.SENT: row.sent_delay,
            MessageStatus.DELIVERED: row.delivered_delay,
            MessageStatus.READ: row.read_delay,
        }
        for message in claimed:
            steps, next_due = _steps_due(message, now, delays)
            emitted.extend((due, message.pk, rank, message, status) for rank, (status, due) in enumerate(steps))
            advanced[len(steps)].append(message.pk)
            if next_due is not None:
                upcoming.append(next_due)
        changed_at = timezone.now()
        if advanced.get(0):  # due with no status left (never in practice): stop waking for them
            SandboxMessage.objects.filter(pk__in=advanced[0]).update(status_due_at=None, updated_at=changed_at)
        for step in range(1, max(advanced) + 1):  # one step for all, then again for the few due for more
            pks = [pk for count, group in advanced.items() if count >= step for pk in group]
            SandboxMessage.objects.filter(pk__in=pks).update(**_one_status_on(delays), updated_at=changed_at)
        emitted.sort(key=lambda item: item[:3])
        phones = {pk: selectors.phone_number_by_pk(pk=pk) for pk in {message.phone_pk for message in claimed}}
        webhooks = _status_webhooks(emitted, phones, batched=row.status_batch_ms > 0, at=changed_at)
        for webhook in webhooks:  # a few (a WABA each): one INSERT each, cheaper than bulk_create's
            webhook.save(force_insert=True)  # arrays, which escape every quote of the bodies in Python
        statuses_schedule(dues=upcoming, batch_ms=row.status_batch_ms)
    return webhooks, len(emitted), len(claimed)


def _one_status_on(delays: dict[str, float]) -> dict[str, Case]:
    """An UPDATE's values moving each message to its next status, and its due time to the one after.

    Written on the row's own status (SET reads the row as it was), so one statement with one
    list of ids moves every claimed message, whichever status it was in.
    """
    return {
        "status": Case(
            When(status=MessageStatus.ACCEPTED, error_code__isnull=False, then=Value(MessageStatus.FAILED)),
            When(status=MessageStatus.ACCEPTED, then=Value(MessageStatus.SENT)),
            When(status=MessageStatus.SENT, then=Value(MessageStatus.DELIVERED)),
            default=Value(MessageStatus.READ),
        ),
        "status_due_at": Case(
            When(
                status=MessageStatus.ACCEPTED,
                error_code__isnull=True,
                then=F("status_due_at") + _gap(delays, MessageStatus.SENT, MessageStatus.DELIVERED),
            ),
            When(
                status=MessageStatus.SENT,
                then=F("status_due_at") + _gap(delays, MessageStatus.DELIVERED, MessageStatus.READ),
            ),
            default=None,
            output_field=models.DateTimeField(),
        ),
    }


def _gap(delays: dict[str, float], status: str, following: str) -> timedelta:
    """From one status's due time to the next one's: the difference of their delays, never negative."""
    return timedelta(seconds=max(delays[following] - delays[status], 0.0))


def _steps_due(
    message: _Due, now: datetime, delays: dict[str, float]
) -> tuple[list[tuple[str, datetime]], datetime | None]:
    """The statuses of ``message`` due by ``now``, each with its time, and when the one after them is due.

    Each status is due its configured delay after the send; the send's instant is only in the
    first due time, so the next one's is the current one's plus the difference of their delays
    (never before it).
    """
    steps: list[tuple[str, datetime]] = []
    status, due = message.status, message.due
    while due is not None and due <= now:
        if status == MessageStatus.ACCEPTED and message.error_code is not None:
            following = MessageStatus.FAILED
        else:
            following = _NEXT_STATUS.get(status)
        if following is None:  # nothing left to announce: stop waking for it
            return steps, None
        steps.append((following, due))
        after = None if following == MessageStatus.FAILED else _NEXT_STATUS.get(following)
        due = None if after is None else due + _gap(delays, following, after)
        status = following
    return steps, due


def _status_webhooks(
    emitted: list[tuple[datetime, int, int, _Due, str]],
    phones: dict[int, SandboxPhoneNumber],
    *,
    batched: bool,
    at: datetime,
) -> list[SandboxWebhookDelivery]:
    """The webhooks announcing ``emitted`` (in order): one per WABA when batched, else one per status."""
    groups: dict[Any, list[tuple[_Due, str, datetime]]] = defaultdict(list)
    for due, _pk, _rank, message, status in emitted:
        key = phones[message.phone_pk].account_id if batched else (message.pk, status)
        groups[key].append((message, status, due))
    webhooks = []
    for items in groups.values():
        account = phones[items[0][0].phone_pk].account
        changes: dict[int, tuple[SandboxPhoneNumber, list[dict[str, Any]]]] = {}
        for message, status, due in items:
            phone = phones[message.phone_pk]
            changes.setdefault(phone.pk, (phone, []))[1].append(
                payloads.status_item(
                    wamid=message.wamid,
                    status=status,
                    timestamp=int(due.timestamp()),
                    recipient_id=message.recipient,
                    callback_data=message.callback_data,
                    pricing=message.pricing if status in _PRICED else None,
                    error_code=message.error_code if status == MessageStatus.FAILED else None,
                )
            )
        subscribed = account.subscribed
        webhooks.append(
            SandboxWebhookDelivery(
                kind=WebhookKind.MESSAGE_STATUS,
                event=",".join(dict.fromkeys(status for _, status, _ in items))[:32],
                account=account,
                message_id=None if batched else items[0][0].pk,
                payload=payloads.dumps(payloads.statuses(account, list(changes.values()))),
                state=DeliveryState.SENDING if subscribed else DeliveryState.SKIPPED,
                last_error="" if subscribed else _unsubscribed(account),
                applied=True,
                due_at=at,
                last_attempt_at=at,
            )
        )
    return webhooks


def _post(url: str, body: bytes) -> tuple[int | None, str]:
    """POST a signed body; (HTTP status, error) — the status None when no answer came."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None, f"Not an http(s) URL: {url!r}"
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body), "User-Agent": USER_AGENT}
    origin = (parts.scheme, parts.netloc)
    kept = _kept_connections()
    retry = True
    while True:
        http = kept.pop(origin, None)
        reused = http is not None
        if http is None:
            kind = http_client.HTTPSConnection if parts.scheme == "https" else http_client.HTTPConnection
            http = kind(parts.hostname, parts.port, timeout=POST_TIMEOUT)
        try:
            http.request("POST", target, body=body, headers=headers)
            response = http.getresponse()
            response.read(MAX_ANSWER)
        except (OSError, http_client.HTTPException, ValueError) as exc:
            http.close()
            idle_reset = isinstance(exc, http_client.RemoteDisconnected | ConnectionResetError | BrokenPipeError)
            if reused and idle_reset and retry:  # the server closed the idle connection: once on a new one
                retry = False
                continue
            return None, f"{type(exc).__name__}: {exc}"
        if response.will_close or not response.isclosed() or not getattr(_kept_alive, "enabled", False):
            http.close()  # kept by the sender's threads only, once the whole answer was read
        else:
            kept[origin] = http
        if 200 <= response.status < 300:
            return response.status, ""
        return response.status, f"HTTP {response.status} {response.reason}"


def _kept_connections() -> dict[tuple[str, str], http_client.HTTPConnection]:
    """This thread's kept-alive connections, by (scheme, host:port)."""
    if not hasattr(_kept_alive, "connections"):
        _kept_alive.connections = {}
    return _kept_alive.connections


def _kept_connections_close() -> None:
    for http in _kept_connections().values():
        http.close()
    _kept_alive.connections = {}


# --- What an event means on the sandbox's side --------------------------------------------------


def _apply(delivery: SandboxWebhookDelivery) -> bool:
    """Apply the event; False when it no longer applies (a review of content since replaced)."""
    if delivery.kind == WebhookKind.TEMPLATE_STATUS and delivery.template_id is not None:
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
        forget_all()
    return True


def _first_change_value(body: str) -> dict[str, Any]:
    try:
        return json.loads(body)["entry"][0]["changes"][0]["value"]
    except (ValueError, KeyError, IndexError, TypeError):
        return {}


# --- The background sender ----------------------------------------------------------------------


class _Sender:
    """A heap of (due timestamp, kind, row id) and the daemon threads that work through it.

    A ``row`` entry delivers that webhook row; a ``statuses`` entry the message statuses due by
    the time it is taken, and is pushed once per due time (``_statuses`` holds those in the heap).
    """

    def __init__(self) -> None:
        self._cv = threading.Condition()
        # (due, tie-breaker, kind, id): the same row may be pushed twice (recovery and commit).
        self._heap: list[tuple[float, int, str, int]] = []
        self._order = itertools.count()
        self._statuses: set[float] = set()
        self._threads: list[threading.Thread] = []
        self._pid: int | None = None

    def push(self, due: float, kind: str, pk: int = 0) -> None:
        self.push_many([(due, kind, pk)])

    def push_many(self, entries: list[tuple[float, str, int]]) -> None:
        with self._cv:
            self._ensure_started()
            for due, kind, pk in entries:
                self._push(due, kind, pk)
            self._cv.notify()

    def _push(self, due: float, kind: str, pk: int) -> None:
        if kind == _STATUSES:
            if due in self._statuses:
                return
            self._statuses.add(due)
        heapq.heappush(self._heap, (due, next(self._order), kind, pk))

    def _ensure_started(self) -> None:
        # Threads don't survive fork(): a child starts its own, with an empty heap.
        if self._pid != os.getpid():
            self._pid, self._heap, self._statuses, self._threads = os.getpid(), [], set(), []
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
        """Queue what an earlier process left: pending rows (or claimed and never finished), statuses due."""
        stale = timezone.now() - STALE_CLAIM
        SandboxWebhookDelivery.objects.filter(state=DeliveryState.SENDING, last_attempt_at__lt=stale).update(
            state=DeliveryState.PENDING
        )
        rows = SandboxWebhookDelivery.objects.filter(state=DeliveryState.PENDING).values_list("pk", "due_at")
        batch_ms = selectors.sandbox_settings_get().status_batch_ms
        dues = SandboxMessage.objects.filter(status_due_at__isnull=False).values_list("status_due_at", flat=True)
        with self._cv:
            for pk, due_at in rows:
                self._push(due_at.timestamp(), _ROW, pk)
            for due in dues.iterator():
                self._push(_window_end(due.timestamp(), batch_ms), _STATUSES, 0)
            self._cv.notify_all()

    def _run(self, recover: bool) -> None:
        _kept_alive.enabled = True
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
                    if not self._heap or self._heap[0][0] > time.time() + IDLE_SECONDS:
                        # Nothing due soon: hold no database connection, nor any to a webhook receiver.
                        connection.close()
                        _kept_connections_close()
                    self._cv.wait(None if not self._heap else max(self._heap[0][0] - time.time(), 0.0))
                due, _, kind, pk = heapq.heappop(self._heap)
                if kind == _STATUSES:
                    # Statuses falling due at this time from now on push an entry of their own.
                    self._statuses.discard(due)
            try:
                if kind == _STATUSES:
                    deliver_statuses()
                else:
                    deliver_one(pk)
            except Exception:
                logger.exception("Sandbox webhook delivery (%s %s) failed", kind, pk)
            finally:
                close_old_connections()


_sender = _Sender()

"""Batched dispatch: a pump claims queued messages by the hundred, paces them and sends them
concurrently, so that a slow Graph API (100–300 ms a call) does not cap the rate.

One pump runs as one Celery task (:func:`dispatch_pump`, woken by :func:`dispatch_wake` when
messages are queued). In a loop it

1. **claims**, for each phone number with due ``queued`` rows, up to a second of that number's
   sends, topped up when less than half a second is left in hand (``FOR UPDATE SKIP LOCKED``, then
   ``queued → sending`` with ``claimed_at``): every row is claimed by one pump only;
2. **holds back** what the business portfolio's daily messaging limit would not take (new
   recipients beyond the tier), with a notice for the organization, and **books** the rest with
   the shared pacer (:mod:`whatsapp.services.pacing`): a slot per message at the number's rate,
   recipients whose pair rate is used up wait for a later batch (``send_after``);
3. **prepares** each request (uploads a header file when it has one) and **releases** each at its
   slot: the rows about to go get ``sending_at`` in one conditional UPDATE (a row the sweeper took
   back is not sent), then the HTTP call runs on a thread pool with the process's pooled client,
   never more of them in flight than the pool has threads (the rest wait their turn in the pump).
   Slots a late pump finds overdue are spread out again at the number's rate (:meth:`_Pump._local_slot`),
   and each thread checks its number's last second before its request leaves (:class:`_SendGate`):
   a busy process never sends a number's requests in a burst Meta would refuse (130429);
4. **records** the answers: wamids in one UPDATE every :data:`STORE_EVERY`; retryable errors queue
   the row again after a backoff (130429 also slows the number down, 131056 holds the recipient
   back); permanent ones fail the row and release its credits; no answer leaves the row for the
   webhook. Meta's spam limit (131048) on a bulk send's message also pauses that bulk send
   (:mod:`whatsapp.services.bulk_pause`): the pump gives back, held, what it has of it, and holds
   any of its rows it claims later until the bulk send is resumed.

Exactly once: a row is sent only by the pump whose claim holds (``claimed_at``) and only after
``sending_at`` is set. A worker killed after that may have sent it: the row waits for the webhook,
which finds it by ``biz_opaque_callback_data``. A worker killed before that has sent nothing, and
the sweeper queues the row again when the claim lease runs out. When Redis (the pacer) does not
answer, the claimed rows go back to ``queued`` untouched. Rows go back only while the pump's claim
holds (``claimed_at``), as they are started: a stale pump never undoes another one's claim.

A pump hands its worker back after :data:`RUN_SECONDS` (other tasks run in between) and wakes the
next one while work remains.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import datetime
import heapq
import itertools
import logging
import math
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from whatsapp.choices import Direction, MessageStatus, MessageType
from whatsapp.client import CloudAPI, CloudAPIError
from whatsapp.cloud import account_cloud_api
from whatsapp.models import Message, PhoneNumber, WhatsAppAccount
from whatsapp.services.bulk_pause import HELD_UNTIL, bulks_paused, bulks_paused_lock, pauses_bulk
from whatsapp.services.dispatch import (
    SendCall,
    _fail,
    send_call,
    send_error_apply,
    send_prepare,
    sent_apply,
    token_refused_apply,
)
from whatsapp.services.pacing import Pacer, PacerUnavailable, effective_rate, pacer

logger = logging.getLogger(__name__)

#: Seconds of each number's sends claimed and booked ahead (claims are topped up at half of it).
HORIZON: Final = 2.0
#: Seconds of a number's sends, at its rate, a pump holds at most (claimed and not yet released),
#: however far ahead the slots are booked: a pump that sends slower than it books (a busy machine)
#: does not pile up rows — and the memory they take — that it then re-spaces.
IN_HAND: Final = 1.0
#: Most rows claimed per number per round.
MAX_CLAIM: Final = 500
#: A pump returns its worker after this long (then the next pump task carries on).
RUN_SECONDS: Final = 20.0
#: Requests whose slot falls within this many seconds go out together.
WAVE: Final = 0.01
#: A pump that comes round late may send what fell due this long ago at once; older is re-spaced.
CATCH_UP: Final = 0.05
#: How often a pump looks for newly queued rows while it has work in hand.
REFILL_EVERY: Final = 0.25
#: Seconds a pump keeps the phone numbers (with their account and organization) it loaded, and
#: each account's daily messaging limit: they were read again at every refill and claim, and
#: were a sixth of a pump's CPU. A number's new throughput or tier, or its account's new status,
#: reaches a running pump within this time.
NUMBERS_SECONDS: Final = 2.0
#: Seconds between two writes of the wamids answered meanwhile: one statement for the answers of
#: a tenth of a second, not one for every handful the loop collects (twenty writes a second).
#: A status webhook that arrives first finds its row by callback data all the same.
STORE_EVERY: Final = 0.1
#: Seconds before the next pump after one stopped on an unexpected error (not a hot loop on a bug).
ERROR_PAUSE: Final = 5
#: The "a pump is running" key outlives a pump killed mid-run by this long.
RUNNING_TTL: Final = 15
#: The "a pump task is queued" key: one task per burst of queued messages.
QUEUED_TTL: Final = 60
#: Deferred rows due within this long get a delayed wake (later ones: the sweeper).
WAKE_AHEAD: Final = datetime.timedelta(minutes=15)
#: Unique recipients a business portfolio may reach in 24 h, by Meta's tier name.
TIER_LIMITS: Final = {
    "TIER_50": 50,
    "TIER_250": 250,
    "TIER_1K": 1_000,
    "TIER_2K": 2_000,
    "TIER_10K": 10_000,
    "TIER_100K": 100_000,
}
LIMIT_NOTICE_KIND: Final = "whatsapp.messaging_limit"


# --- Waking -------------------------------------------------------------------------------------


def _keys() -> tuple[str, str]:
    name = connection.settings_dict["NAME"]
    return f"whatsapp:dispatch-queued:{name}", f"whatsapp:dispatch-running:{name}"


def dispatch_keys_clear() -> None:
    """Forget that a pump is queued or running (a test harness whose broker has no worker)."""
    cache.delete_many(list(_keys()))


def dispatch_wake(*, countdown: float = 0, force: bool = False) -> None:
    """Make sure a pump runs after this point: enqueue one unless one is queued already.

    A running pump looks for new rows every :data:`REFILL_EVERY` and once more after it stops,
    so a row committed while it runs is never left behind. ``force`` enqueues regardless (the
    sweeper: a key may name a task that was lost). Neither a cache nor a broker outage is raised:
    the rows are stored and the sweeper wakes a pump later.
    """
    from whatsapp.tasks import dispatch_pump_task

    if countdown and dispatch_pump_task.app.conf.task_always_eager:
        return  # inline tasks can't wait: a delayed wake would run now and find nothing due, again
    queued_key, _running = _keys()
    if not countdown and not force:
        try:
            if not cache.add(queued_key, 1, timeout=QUEUED_TTL):
                return
        except Exception:
            logger.warning("Cache unreachable: waking WhatsApp dispatch without it.", exc_info=True)
    try:
        dispatch_pump_task.apply_async(countdown=countdown or None)
    except Exception:
        logger.exception("Could not enqueue WhatsApp dispatch; the sweeper will.")
        with contextlib.suppress(Exception):  # the key expires by itself
            cache.delete(queued_key)


@dataclass
class PumpResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    deferred: int = 0
    held: int = 0
    unanswered: int = 0
    paused: int = 0  # back in the queue: the account's access token was refused
    bulk_held: int = 0  # back in the queue, held: their bulk send was paused (131048)
    ran: bool = True

    def as_dict(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "retried": self.retried,
            "failed": self.failed,
            "deferred": self.deferred,
            "held": self.held,
            "unanswered": self.unanswered,
            "paused": self.paused,
            "bulk_held": self.bulk_held,
        }


def dispatch_pump(*, run_seconds: float = RUN_SECONDS) -> PumpResult:
    """Send due queued messages for up to ``run_seconds``; then wake the next pump if work is left.

    Returns at once (``ran=False``) when another pump is running: it will see this one's rows.
    """
    queued_key, running_key = _keys()
    try:
        cache.delete(queued_key)
        if not cache.add(running_key, os.getpid(), timeout=RUNNING_TTL):
            return PumpResult(ran=False)
    except Exception:
        logger.warning("Cache unreachable: WhatsApp dispatch waits for it.", exc_info=True)
        return PumpResult(ran=False)
    pump = _Pump(deadline=time.monotonic() + run_seconds, running_key=running_key)
    stopped_by_error = False
    try:
        pump.run()
    except Exception:  # e.g. the database ended a transaction: the next pump carries on
        stopped_by_error = True
        logger.exception("WhatsApp dispatch stopped on an error; the next pump starts in %ss.", ERROR_PAUSE)
    finally:
        pump.give_back()
        try:
            cache.delete(running_key)
        except Exception:
            logger.warning("Could not release the WhatsApp dispatch key; it expires by itself.", exc_info=True)
    if pump.unavailable:
        return pump.result
    if stopped_by_error:
        dispatch_wake(countdown=ERROR_PAUSE)
        return pump.result
    _wake_for_what_is_left()
    return pump.result


def _due(now: datetime.datetime) -> Q:
    return Q(send_after__isnull=True) | Q(send_after__lte=now)


def _queued() -> Any:
    return Message.objects.filter(status=MessageStatus.QUEUED, direction=Direction.OUTBOUND)


def _queued_due_sql(now: datetime.datetime) -> tuple[str, list[Any]]:
    """``FROM … WHERE …`` of the due queued outbound rows, as :func:`_queued` and :func:`_due` filter
    them, for the statements written in SQL (PostgreSQL); and its parameters."""
    table = connection.ops.quote_name(Message._meta.db_table)
    sql = f"FROM {table} WHERE status = %s AND direction = %s AND (send_after IS NULL OR send_after <= %s)"
    return sql, [MessageStatus.QUEUED, Direction.OUTBOUND, now]


def _numbers_due(now: datetime.datetime) -> list[int | None]:
    """The phone numbers with due queued rows (None among them: rows whose number was removed).

    On PostgreSQL a loose index scan of ``message_queued_by_number``: one probe for the next
    number with a due row, from the last one found, so the query costs a few probes per number
    instead of reading every queued row (a ``DISTINCT`` over ten thousand queued rows took 6 ms,
    four times a second). Elsewhere the ``DISTINCT``.
    """
    if connection.vendor != "postgresql":
        return list(_queued().filter(_due(now)).order_by().values_list("phone_number_id", flat=True).distinct())
    due, params = _queued_due_sql(now)
    sql = (
        f"WITH RECURSIVE numbers(id) AS ((SELECT phone_number_id {due} AND phone_number_id IS NOT NULL "  # noqa: S608
        "ORDER BY phone_number_id LIMIT 1) "
        f"UNION ALL SELECT (SELECT phone_number_id {due} AND phone_number_id > numbers.id "
        "ORDER BY phone_number_id LIMIT 1) FROM numbers WHERE numbers.id IS NOT NULL) "
        f"SELECT id FROM numbers WHERE id IS NOT NULL "
        f"UNION ALL SELECT NULL WHERE EXISTS (SELECT 1 {due} AND phone_number_id IS NULL)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params * 3)
        return [pk for (pk,) in cursor.fetchall()]


def _wake_for_what_is_left() -> None:
    now = timezone.now()
    if _queued().filter(_due(now)).exists():
        dispatch_wake()
        return
    later = (
        _queued()
        .filter(send_after__gt=now, send_after__lte=now + WAKE_AHEAD)
        .order_by("send_after")
        .values_list("send_after", flat=True)
        .first()
    )
    if later is not None:
        dispatch_wake(countdown=max((later - now).total_seconds(), 0.5))


# --- The pump -----------------------------------------------------------------------------------


@dataclass
class _Sending:
    """What this process's pumps share: the HTTP threads and the gate their requests pass."""

    pid: int
    pool: concurrent.futures.ThreadPoolExecutor
    size: int  # the pool's threads: a pump keeps no more requests than that in flight
    gate: _SendGate


_sending: _Sending | None = None
_sending_lock = threading.Lock()


def _process_sending() -> _Sending:
    """This process's :class:`_Sending`; a forked child builds its own."""
    global _sending
    with _sending_lock:
        if _sending is None or _sending.pid != os.getpid():
            size = max(1, int(getattr(settings, "WHATSAPP_DISPATCH_CONCURRENCY", 100)))
            pool = concurrent.futures.ThreadPoolExecutor(max_workers=size, thread_name_prefix="whatsapp-send")
            _sending = _Sending(pid=os.getpid(), pool=pool, size=size, gate=_SendGate())
        return _sending


def _send_pool() -> concurrent.futures.ThreadPoolExecutor:
    """This process's threads for HTTP calls (``WHATSAPP_DISPATCH_CONCURRENCY``, default 100):
    at 100 ms a call, 100 in flight carry 1,000 msg/s."""
    return _process_sending().pool


class _SendGate:
    """The starts of this process's requests per number over the last second, checked by the send
    thread itself right before its request leaves.

    The pump releases each request at its slot, but a thread may only get to run it later (the
    process short of CPU, the interpreter's lock held by another thread), and requests delayed
    together would leave together: more than the number's rate in one second at Meta's end
    (130429). Past the rate, a thread waits here until the oldest start leaves the window. (The
    pump also spreads overdue slots out before releasing them, :meth:`_Pump._local_slot`, so that
    a backlog waits in its heap rather than in threads sleeping here.)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._starts: dict[int, collections.deque[float]] = defaultdict(collections.deque)

    def enter(self, key: int, limit: int) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                starts = self._starts[key]
                while starts and starts[0] <= now - 1.0:
                    starts.popleft()
                if len(starts) < limit:
                    starts.append(now)
                    return
                wait = starts[0] + 1.0 - now
            time.sleep(wait)


def _gated_send(gate: _SendGate, number: PhoneNumber, api: CloudAPI, call: SendCall) -> Any:
    gate.enter(number.pk, max(1, math.floor(effective_rate(number.messages_per_second))))
    return send_call(api, call)


@dataclass(order=True)
class _Job:
    at: float
    seq: int
    message: Message = field(compare=False)
    number: PhoneNumber = field(compare=False)
    call: SendCall | None = field(compare=False, default=None)
    respaced: bool = field(compare=False, default=False)  # ``at`` is a slot of the pump's own (_local_slot)


class _Pump:
    def __init__(self, *, deadline: float, running_key: str) -> None:
        self.deadline = deadline
        self.running_key = running_key
        self.pacer: Pacer = pacer()
        self.pool = _send_pool()
        self.scheduled: list[_Job] = []
        self.in_flight: dict[concurrent.futures.Future[Any], _Job] = {}
        sending = _process_sending()
        self.gate = sending.gate  # shared by this process's successive pumps
        self.max_in_flight = sending.size
        self.next_release: dict[int, float] = {}  # number pk → the earliest its next request may leave
        self.claimed: dict[int, datetime.datetime] = {}  # message id → our claim time
        self.apis: dict[int, CloudAPI] = {}
        self.seq = itertools.count()
        self.result = PumpResult()
        self.unavailable = False
        self.next_refill = 0.0
        self.last_touch = time.monotonic()
        self.numbers: dict[int, PhoneNumber] = {}  # pk → number, account and organization loaded
        self.limits: dict[int, int | None] = {}  # account pk → its daily messaging limit, kept as the numbers
        self.bulks: dict[int, bool] = {}  # bulk send pk → whether it is paused, kept as the numbers
        self.numbers_until = 0.0
        self.answered: dict[int, str] = {}  # message id → wamid, not stored yet
        self.store_at = 0.0

    # -- loop --

    def run(self) -> None:
        while True:
            now = time.monotonic()
            self._collect()
            if now >= self.next_refill and now < self.deadline and not self.unavailable:
                found = self._refill()
                self.next_refill = now + REFILL_EVERY
                if not found and not self.scheduled and not self.in_flight:
                    self._store_answers()
                    return
            self._release()
            if not self.scheduled and not self.in_flight and (now >= self.deadline or self.unavailable):
                self._store_answers()
                return
            self._touch()
            self._wait()

    def _wait(self) -> None:
        now = time.monotonic()
        wake = self.next_refill if now < self.deadline else now + 0.05
        if self.scheduled and len(self.in_flight) < self.max_in_flight:  # (when full: until one ends)
            wake = min(wake, self.scheduled[0].at - WAVE / 2)
        timeout = min(max(wake - now, 0.0), 0.05)
        if self.in_flight:
            concurrent.futures.wait(self.in_flight, timeout=timeout, return_when=concurrent.futures.FIRST_COMPLETED)
        elif timeout:
            time.sleep(timeout)

    def _touch(self) -> None:
        if time.monotonic() - self.last_touch > RUNNING_TTL / 3:
            self.last_touch = time.monotonic()
            try:
                cache.touch(self.running_key, RUNNING_TTL)
            except Exception:
                logger.warning("Could not extend the WhatsApp dispatch key.", exc_info=True)

    # -- claim, hold back, book, prepare --

    def _refill(self) -> bool:
        now = timezone.now()
        numbers = _numbers_due(now)
        if not numbers:
            return False
        if None in numbers:
            self._fail_numberless(now)
        by_pk = self._numbers([pk for pk in numbers if pk is not None])
        in_hand = collections.Counter(job.number.pk for job in [*self.scheduled, *self.in_flight.values()])
        for number in by_pk.values():
            if number.account.token_refused_at is not None:
                continue  # its rows wait for a new access token
            rate = effective_rate(number.messages_per_second)
            room = math.ceil(rate * IN_HAND) - in_hand[number.pk]
            if room < rate * IN_HAND / 2:
                continue
            try:
                ahead = self.pacer.booked_ahead(number=number.phone_number_id)
            except PacerUnavailable:
                self._pacer_down()
                return True
            if ahead >= HORIZON / 2:
                continue
            want = min(MAX_CLAIM, room, max(1, math.ceil(rate * (HORIZON - ahead))))
            rows = self._claim(number, want, now)
            if rows:
                self._schedule(number, rows)
            if self.unavailable:
                return True
        return True

    def _numbers(self, pks: list[int]) -> dict[int, PhoneNumber]:
        """The numbers ``pks`` with their account and organization, read again every
        :data:`NUMBERS_SECONDS` (and when one is new to this pump)."""
        if time.monotonic() >= self.numbers_until:
            self.numbers, self.limits, self.bulks = {}, {}, {}
            self.apis = {}  # an access token replaced meanwhile is used from now on
            self.numbers_until = time.monotonic() + NUMBERS_SECONDS
        if missing := [pk for pk in pks if pk not in self.numbers]:
            loaded = PhoneNumber.objects.filter(pk__in=missing).select_related("account", "organization")
            self.numbers.update((number.pk, number) for number in loaded)
        return {pk: self.numbers[pk] for pk in pks if pk in self.numbers}

    def _claim(self, number: PhoneNumber, want: int, now: datetime.datetime) -> list[Message]:
        rows = _claim_rows(number, want, now)
        if not rows:
            return []
        for row in rows:
            self.claimed[row.pk] = now
        account = number.account
        if not account.can_send:
            for message in rows:
                self._forget(message.pk)
                _fail(message, None, _("WhatsApp is not active for this organization."), "")
                self.result.failed += 1
            return []
        rows = self._without_paused_bulks(rows)
        return self._within_daily_limit(number, rows, now) if rows else []

    def _without_paused_bulks(self, rows: list[Message]) -> list[Message]:
        """``rows`` less those of paused bulk sends, which go back to the queue held.

        The pause held its bulk send's queued rows, but one may have come back since (a backoff
        over, a put-back, the sweeper, the bulk send's task writing more). Whether a bulk send is
        paused is kept as the numbers are: a query for a bulk send new to the pump, none per claim.
        """
        bulk_ids = {row.bulk_id for row in rows if row.bulk_id is not None}
        if not bulk_ids:
            return rows
        if unknown := bulk_ids - self.bulks.keys():
            paused = bulks_paused(bulk_ids=unknown)
            self.bulks.update((pk, pk in paused) for pk in unknown)
        paused = {pk for pk in bulk_ids if self.bulks[pk]}
        if not paused:
            return rows
        self._bulk_rows_hold([row for row in rows if row.bulk_id in paused])
        return [row for row in rows if row.bulk_id not in paused]

    def _fail_numberless(self, now: datetime.datetime) -> None:
        """Rows whose sending number was removed can't go anywhere. They are claimed as any row is
        (``claimed_at``): a worker that dies before failing them leaves them to the sweeper, which
        queues them again when the lease runs out, and the next pump fails them."""
        with transaction.atomic():
            rows = list(_queued().filter(phone_number__isnull=True).select_for_update(skip_locked=True)[:MAX_CLAIM])
            Message.objects.filter(pk__in=[row.pk for row in rows]).update(status=MessageStatus.SENDING, claimed_at=now)
        for row in rows:
            _fail(row, None, _("The WhatsApp number this message was to be sent from was removed."), "")
            self.result.failed += 1

    def _within_daily_limit(self, number: PhoneNumber, rows: list[Message], now: datetime.datetime) -> list[Message]:
        """Hold back templates to recipients the portfolio may not reach today (Meta's messaging
        limit counts unique recipients of business-initiated messages in a rolling 24 h).

        Counted: the account's templates started in the last 24 h, and those claimed (by this
        pump, by another, for any of the account's numbers) and not started yet, the rows of this
        claim aside — they are about to go, and would otherwise be over the limit together.
        """
        if number.account_id not in self.limits:
            self.limits[number.account_id] = messaging_limit(number.account)
        limit = self.limits[number.account_id]
        templates = [row for row in rows if row.message_type == MessageType.TEMPLATE]
        if limit is None or not templates:
            return rows
        since = now - datetime.timedelta(hours=24)
        account_templates = Message.objects.filter(
            account=number.account, direction=Direction.OUTBOUND, message_type=MessageType.TEMPLATE
        )
        sent_24h = account_templates.filter(sending_at__gte=since).exclude(status=MessageStatus.FAILED)
        claimed = Q(status=MessageStatus.SENDING, sending_at__isnull=True, claimed_at__isnull=False)
        counted = (
            account_templates.filter(Q(sending_at__gte=since) | claimed)
            .exclude(status=MessageStatus.FAILED)
            .exclude(pk__in=[row.pk for row in rows])
        )
        reached = set(counted.filter(phone__in={row.phone for row in templates}).values_list("phone", flat=True))
        room = limit - counted.values("phone").distinct().count()
        keep, hold, new = [], [], set()
        for row in rows:
            if row.message_type != MessageType.TEMPLATE or row.phone in reached or row.phone in new:
                keep.append(row)
            elif len(new) < room:
                new.add(row.phone)
                keep.append(row)
            else:
                hold.append(row)
        if hold:
            first = sent_24h.order_by("sending_at").values_list("sending_at", flat=True).first() or now
            after = max(first + datetime.timedelta(hours=24), now + datetime.timedelta(minutes=5))
            self._requeue(hold, after)
            self.result.held += len(hold)
            _limit_notice(number.account, limit, after)
        return keep

    def _schedule(self, number: PhoneNumber, rows: list[Message]) -> None:
        try:
            slots = self.pacer.book(
                number=number.phone_number_id,
                rate=effective_rate(number.messages_per_second),
                recipients=[row.phone for row in rows],
            )
        except PacerUnavailable:
            self._requeue(rows, None)
            self._pacer_down()
            return
        start = time.monotonic()
        deferred: dict[float, list[Message]] = defaultdict(list)
        for row, slot in zip(rows, slots, strict=True):
            if slot.defer is not None:
                deferred[round(slot.defer, 1)].append(row)
                continue
            job = _Job(at=start + slot.delay, seq=next(self.seq), message=row, number=number)
            try:
                job.call = send_prepare(self._api(number.account), number, row)
            except (CloudAPIError, ValueError) as exc:
                self._error(job, exc)
                continue
            heapq.heappush(self.scheduled, job)
        for seconds, waiting in deferred.items():
            self._requeue(waiting, timezone.now() + datetime.timedelta(seconds=seconds))
            self.result.deferred += len(waiting)

    def _api(self, account: WhatsAppAccount) -> CloudAPI:
        api = self.apis.get(account.pk)
        if api is None:
            api = self.apis[account.pk] = account_cloud_api(account)
        return api

    # -- release, collect --

    def _release(self) -> None:
        now = time.monotonic()
        horizon = now + WAVE
        wave: list[_Job] = []
        later: list[_Job] = []
        # No more in flight than there are threads: what a busy process cannot send yet waits here,
        # claimed and re-spaced when its turn comes, not in the thread pool's queue.
        room = self.max_in_flight - len(self.in_flight)
        while self.scheduled and self.scheduled[0].at <= horizon and len(wave) < room:
            job = heapq.heappop(self.scheduled)
            at = job.at if job.respaced else self._local_slot(job.number, now)
            if at <= horizon:
                wave.append(job)
            else:
                job.at, job.respaced = at, True
                later.append(job)
        for job in later:
            heapq.heappush(self.scheduled, job)
        if not wave:
            return
        started = self._mark_started(wave)
        for job in wave:
            if job.message.pk not in started:  # the sweeper took it back: not ours any more
                self._forget(job.message.pk)
                continue
            future = self.pool.submit(_gated_send, self.gate, job.number, self._api(job.number.account), job.call)
            self.in_flight[future] = job

    def _local_slot(self, number: PhoneNumber, now: float) -> float:
        """When a request from ``number`` may leave, spaced here too at the number's rate.

        The slots booked in Redis are spaced at the rate, but a pump that fell behind (a busy
        machine, a slow query) finds several slots overdue at once, and sending them together
        would put more than the number's cap into one second at Meta's end (130429). So each
        release takes a slot of this pump's as well, one interval after the last: what fell due
        within :data:`CATCH_UP` goes now (so a loop that comes round late keeps the rate, the
        few extra absorbed by the rate's headroom), anything older is spread out again.
        """
        interval = 1.0 / effective_rate(number.messages_per_second)
        slot = max(self.next_release.get(number.pk, now), now - CATCH_UP)
        self.next_release[number.pk] = slot + interval
        return slot

    def _mark_started(self, wave: Sequence[_Job]) -> set[int]:
        """``sending_at`` on the rows still claimed by this pump (the sweeper may have taken one
        back, and another pump claimed it since); their ids.

        One conditional ``UPDATE … RETURNING`` for the wave, whatever numbers and claims it spans
        (on PostgreSQL the ids and their claim times as two arrays; elsewhere one statement per
        claim): each row is checked and marked under its own row lock, so a row the sweeper took
        back is not returned. No webhook can name these rows yet (nothing was sent), so the drain
        never holds them.
        """
        table = connection.ops.quote_name(Message._meta.db_table)
        adapt = connection.ops.adapt_datetimefield_value  # as the ORM would write them (SQLite: UTC text)
        now = adapt(timezone.now())
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                ids = [job.message.pk for job in wave]
                cursor.execute(
                    f"UPDATE {table} AS m SET sending_at = %s "  # noqa: S608
                    "FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, claimed_at) "
                    "WHERE m.id = v.id AND m.status = %s AND m.sending_at IS NULL AND m.claimed_at = v.claimed_at "
                    "RETURNING m.id",
                    [now, ids, [self.claimed[pk] for pk in ids], MessageStatus.SENDING],
                )
                return {pk for (pk,) in cursor.fetchall()}
            by_claim: dict[datetime.datetime, list[int]] = defaultdict(list)
            for job in wave:
                by_claim[self.claimed[job.message.pk]].append(job.message.pk)
            started: set[int] = set()
            for claimed_at, ids in by_claim.items():
                cursor.execute(
                    f"UPDATE {table} SET sending_at = %s WHERE id IN ({', '.join(['%s'] * len(ids))})"  # noqa: S608
                    " AND status = %s AND sending_at IS NULL AND claimed_at = %s RETURNING id",
                    [now, *ids, MessageStatus.SENDING, adapt(claimed_at)],
                )
                started.update(pk for (pk,) in cursor.fetchall())
            return started

    def _collect(self) -> None:
        done = [future for future in self.in_flight if future.done()]
        for future in done:
            job = self.in_flight.pop(future)
            self._forget(job.message.pk)
            try:
                self.answered[job.message.pk] = future.result().wamid
            except (CloudAPIError, ValueError) as exc:
                self._error(job, exc)
            except Exception as exc:  # a bug in a send must not strand the rest of the batch
                logger.exception("WhatsApp message %s: unexpected error while sending", job.message.pk)
                self._error(job, ValueError(str(exc)))
        if self.answered and time.monotonic() >= self.store_at:
            self._store_answers()

    def _store_answers(self) -> None:
        """Write the wamids answered since the last write (:data:`STORE_EVERY`), in one statement."""
        answered, self.answered = self.answered, {}
        self.store_at = time.monotonic() + STORE_EVERY
        if answered:
            sent_apply(answered)
            self.result.sent += len(answered)

    def _error(self, job: _Job, exc: Exception) -> None:
        self._forget(job.message.pk)
        message, number = job.message, job.number
        if isinstance(exc, CloudAPIError) and exc.is_auth_error:
            token_refused_apply(message, number.account, exc)
            self._account_hold(number.account_id)
            self.result.paused += 1
            return
        retry_in = send_error_apply(message, exc)
        if retry_in is None:
            if pauses_bulk(exc) and message.bulk_id is not None:  # its bulk send was paused
                self._bulk_hold(message.bulk_id)
            if isinstance(exc, CloudAPIError) and exc.ambiguous:
                self.result.unanswered += 1
            else:
                self.result.failed += 1
            return
        self.result.retried += 1
        try:
            if isinstance(exc, CloudAPIError) and exc.code == 130429:
                self.pacer.slow_down(number=number.phone_number_id)
            elif isinstance(exc, CloudAPIError) and exc.code == 131056:
                self.pacer.pair_hold(number=number.phone_number_id, recipient=message.phone, seconds=retry_in)
        except PacerUnavailable:
            self._pacer_down()

    # -- giving rows back --

    def _requeue(self, rows: Iterable[Message], after: datetime.datetime | None) -> None:
        """Rows claimed by this pump and not started go back to ``queued`` (attempt not counted)."""
        self._requeue_ids([row.pk for row in rows], after)

    def _requeue_ids(self, ids: list[int], after: datetime.datetime | None) -> None:
        """Put back the rows ``ids`` that this pump's claim still holds (``claimed_at``) and that were
        not started: the sweeper may have taken one back and another pump claimed it since, and
        that claim is not undone.

        As :meth:`_mark_started`: on PostgreSQL one ``UPDATE`` with the ids and their claim times as
        two arrays; elsewhere one statement per claim.
        """
        claims = {pk: self.claimed.pop(pk) for pk in ids if pk in self.claimed}
        if not claims:
            return
        table = connection.ops.quote_name(Message._meta.db_table)
        adapt = connection.ops.adapt_datetimefield_value  # as the ORM would write them (SQLite: UTC text)
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(
                    f"UPDATE {table} AS m SET status = %s, claimed_at = NULL, send_after = %s, "  # noqa: S608
                    "attempts = m.attempts - 1 FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, claimed_at) "
                    "WHERE m.id = v.id AND m.status = %s AND m.sending_at IS NULL AND m.claimed_at = v.claimed_at",
                    [MessageStatus.QUEUED, adapt(after), list(claims), list(claims.values()), MessageStatus.SENDING],
                )
                return
            by_claim: dict[datetime.datetime, list[int]] = defaultdict(list)
            for pk, claimed_at in claims.items():
                by_claim[claimed_at].append(pk)
            for claimed_at, pks in by_claim.items():
                cursor.execute(
                    f"UPDATE {table} SET status = %s, claimed_at = NULL, send_after = %s, "  # noqa: S608
                    f"attempts = attempts - 1 WHERE id IN ({', '.join(['%s'] * len(pks))}) AND status = %s "
                    "AND sending_at IS NULL AND claimed_at = %s",
                    [MessageStatus.QUEUED, adapt(after), *pks, MessageStatus.SENDING, adapt(claimed_at)],
                )

    def _forget(self, pk: int) -> None:
        self.claimed.pop(pk, None)

    def _account_hold(self, account_id: int) -> None:
        """Claim nothing more of the account, and give back what waits for its slot (its requests
        in flight come back refused as well, each to the queue)."""
        for number in self.numbers.values():
            if number.account_id == account_id:
                number.account.token_refused_at = number.account.token_refused_at or timezone.now()
        held = self._unschedule_where(lambda job: job.number.account_id == account_id)
        if held:
            self._requeue(held, None)
            self.result.paused += len(held)

    def _bulk_hold(self, bulk_id: int) -> None:
        """The bulk send was paused: claim none of it, and give back, held, what of it waits for its
        slot (its requests in flight are answered, each on its own)."""
        self.bulks[bulk_id] = True
        held = self._unschedule_where(lambda job: job.message.bulk_id == bulk_id)
        if held:
            self._bulk_rows_hold(held)

    def _unschedule_where(self, taken: Callable[[_Job], bool]) -> list[Message]:
        """Take the jobs waiting for their slot that ``taken`` picks out of the heap; their rows."""
        picked = [job for job in self.scheduled if taken(job)]
        if picked:
            self.scheduled = [job for job in self.scheduled if not taken(job)]
            heapq.heapify(self.scheduled)
        return [job.message for job in picked]

    def _bulk_rows_hold(self, rows: list[Message]) -> None:
        """Claimed rows of paused bulk sends back to the queue, held until a resume; a bulk send
        resumed meanwhile (checked under its lock) has its rows put back due, as any row."""
        bulk_ids = {row.bulk_id for row in rows}
        with transaction.atomic():
            paused = bulks_paused_lock(bulk_ids=bulk_ids)
            held = [row for row in rows if row.bulk_id in paused]
            self._requeue(held, HELD_UNTIL)
            self._requeue([row for row in rows if row.bulk_id not in paused], None)
        self.bulks.update((pk, pk in paused) for pk in bulk_ids)
        self.result.bulk_held += len(held)

    def _unschedule(self) -> None:
        """Everything waiting for its slot goes back to the queue."""
        self._requeue([job.message for job in self.scheduled], None)
        self.scheduled.clear()

    def _pacer_down(self) -> None:
        if not self.unavailable:
            logger.warning("WhatsApp pacer (Redis) unavailable: dispatch stops until it answers.")
        self.unavailable = True
        self._unschedule()

    def give_back(self) -> None:
        """On the way out (normally or not): what was claimed and not started goes back to the queue."""
        self._unschedule()
        if self.in_flight:
            concurrent.futures.wait(list(self.in_flight), timeout=30)
        self._collect()
        answered = len(self.answered)
        try:
            self._store_answers()
        except Exception:  # the rows stay ``sending``: their status webhooks find them by callback data
            logger.exception("WhatsApp dispatch could not store the wamids of %s answered messages.", answered)
        self._requeue_ids(list(self.claimed), None)


def _claim_rows(number: PhoneNumber, want: int, now: datetime.datetime) -> list[Message]:
    """Up to ``want`` due queued rows of ``number``, oldest first, moved ``queued → sending`` with
    ``claimed_at = now`` (the attempt counted) and returned as they are after that.

    On PostgreSQL one statement: ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``,
    rows other pumps hold being skipped. Elsewhere (SQLite, one writer) the same in three: the
    ids, the update, the rows.
    """
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(Message._meta.db_table)
        due, due_params = _queued_due_sql(now)
        sql = (
            f"UPDATE {table} SET status = %s, claimed_at = %s, sending_at = NULL, send_after = NULL, "  # noqa: S608
            f"attempts = attempts + 1, updated_at = %s WHERE id IN (SELECT id {due} AND phone_number_id = %s "
            "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING *"
        )
        params = [MessageStatus.SENDING, now, now, *due_params, number.pk, want]
        return sorted(Message.objects.raw(sql, params), key=lambda row: row.pk)
    with transaction.atomic():
        ids = list(
            _queued()
            .filter(phone_number=number)
            .filter(_due(now))
            .order_by("pk")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:want]
        )
        if not ids:
            return []
        Message.objects.filter(pk__in=ids).update(
            status=MessageStatus.SENDING,
            claimed_at=now,
            sending_at=None,
            send_after=None,
            attempts=F("attempts") + 1,
            updated_at=now,
        )
    return list(Message.objects.filter(pk__in=ids).order_by("pk"))


# --- The daily messaging limit ------------------------------------------------------------------


def messaging_limit(account: WhatsAppAccount) -> int | None:
    """Unique recipients the account's business portfolio may reach in 24 h (None: unlimited or
    not reported). Every number of a portfolio shares it; the highest tier reported wins."""
    tiers = {tier for tier in account.phone_numbers.values_list("messaging_limit_tier", flat=True) if tier}
    if not tiers or any(tier not in TIER_LIMITS for tier in tiers):
        return None  # TIER_UNLIMITED, or a tier name this hub does not know: Meta enforces it
    return max(TIER_LIMITS[tier] for tier in tiers)


def _limit_notice(account: WhatsAppAccount, limit: int, after: datetime.datetime) -> None:
    """Tell the organization once a day that messages wait for the messaging limit."""
    from books.models import Notification
    from books.services.notifications import notification_create

    organization = account.organization
    since = timezone.now() - datetime.timedelta(hours=24)
    if Notification.objects.filter(organization=organization, kind=LIMIT_NOTICE_KIND, created_at__gte=since).exists():
        return
    with translation.override(organization.language or settings.LANGUAGE_CODE):
        notification_create(
            organization=organization,
            kind=LIMIT_NOTICE_KIND,
            title=_("WhatsApp daily messaging limit reached"),
            body=_(
                "Meta lets this business reach %(limit)s customers a day. The remaining messages wait "
                "and go out from %(after)s, when the limit frees up; nothing is lost."
            )
            % {"limit": limit, "after": timezone.localtime(after).strftime("%Y-%m-%d %H:%M")},
            url="/settings/integrations/whatsapp/",
        )

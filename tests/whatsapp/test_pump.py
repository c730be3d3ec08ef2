"""Batched dispatch (whatsapp.services.pump) and its shared pacer, on PostgreSQL and Redis.

Meta is httpx2's MockTransport behind the real client, answering from the pump's send threads;
each test counts what reached it, when, and from which number. The pacer is the real one in Redis
(two pacer objects stand for two workers).
"""

from __future__ import annotations

import datetime
import itertools
import json
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
import redis
from django.conf import settings
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from books.models import Notification
from tests.books.factories import make_organization
from tests.whatsapp.factories import make_account
from whatsapp import cloud
from whatsapp.choices import MessageStatus
from whatsapp.client import CloudAPI
from whatsapp.models import BulkSend, Message, PhoneNumber
from whatsapp.services import pump as pump_module
from whatsapp.services.bulk_pause import HELD_UNTIL
from whatsapp.services.dispatch import message_template_queue, message_text_queue, messages_sweep, sent_apply
from whatsapp.services.pacing import (
    PAIR_BURST,
    PAIR_INTERVAL,
    SLOWDOWN_FACTOR,
    SLOWDOWN_FLOOR,
    LocalPacer,
    RedisPacer,
    Slot,
    effective_rate,
    pacing_forget,
)
from whatsapp.services.pump import dispatch_pump, messaging_limit

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


class Meta:
    """Accepts every send (or answers with the error scripted for a recipient) and records it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[float, str, dict[str, Any]]] = []
        self.errors: dict[str, list[int]] = defaultdict(list)

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        number = request.url.path.split("/")[-2]
        with self.lock:
            self.requests.append((time.monotonic(), number, body))
            scripted = self.errors.get(body["to"])
            code = scripted.pop(0) if scripted else None
        if code is not None:
            return httpx2.Response(
                400,
                json={"error": {"message": f"({code})", "code": code, "type": "OAuthException", "fbtrace_id": "x"}},
            )
        return httpx2.Response(
            200,
            json={
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"][1:]}],
                "messages": [{"id": f"wamid.{body['biz_opaque_callback_data']}"}],
            },
        )

    def callbacks(self) -> Counter[str]:
        return Counter(body["biz_opaque_callback_data"] for _at, _number, body in self.requests)


@pytest.fixture
def meta(monkeypatch: pytest.MonkeyPatch) -> Meta:
    server = Meta()
    monkeypatch.setattr(cloud, "cloud_api", lambda token: CloudAPI(token, transport=httpx2.MockTransport(server)))
    return server


@pytest.fixture(autouse=True)
def fresh_pacing() -> None:
    """Phone number ids repeat from test to test: forget what earlier tests booked."""
    pacing_forget()
    pump_module.dispatch_keys_clear()


@pytest.fixture
def account():
    return make_account(make_organization())


def queue_texts(
    account, recipients: list[str], django_capture_on_commit_callbacks: Callable[..., Any], number=None
) -> list[Message]:
    with django_capture_on_commit_callbacks(execute=False):
        return [
            message_text_queue(account=account, to=to, text=f"Invoice {index}", phone_number=number)
            for index, to in enumerate(recipients)
        ]


def queued_template(account, to: str) -> Message:
    return message_template_queue(account=account, to=to, name="payment_reminder", language="en")


def recipients(count: int, start: int = 0) -> list[str]:
    return [f"+9198200{index:05d}" for index in range(start, start + count)]


def queue_on_both_numbers(account, count: int, django_capture_on_commit_callbacks: Callable[..., Any]):
    """``count`` texts from each of the account's two numbers: (first, second, messages)."""
    first, second = account.phone_numbers.order_by("phone_number_id")
    messages = queue_texts(account, recipients(count), django_capture_on_commit_callbacks, number=first)
    messages += queue_texts(account, recipients(count, 100), django_capture_on_commit_callbacks, number=second)
    return first, second, messages


def test_every_queued_message_goes_once_with_its_id_and_gets_its_wamid(
    account, meta, django_capture_on_commit_callbacks
) -> None:
    first, second, messages = queue_on_both_numbers(account, 30, django_capture_on_commit_callbacks)

    result = dispatch_pump(run_seconds=10)

    assert result.sent == 60 and result.failed == result.retried == 0
    assert meta.callbacks() == Counter({str(message.pk): 1 for message in messages})
    numbers = Counter(number for _at, number, _body in meta.requests)
    assert numbers == {first.phone_number_id: 30, second.phone_number_id: 30}
    for message in Message.objects.filter(pk__in=[m.pk for m in messages]):
        assert message.status == MessageStatus.SENDING and message.wamid == f"wamid.{message.pk}"
        assert message.claimed_at and message.sending_at and message.attempts == 1
    assert dispatch_pump(run_seconds=1).sent == 0  # nothing left to claim


def test_the_answers_are_stored_a_tenth_of_a_second_at_a_time(
    account, meta, django_capture_on_commit_callbacks
) -> None:
    """Not one write per handful of answers the loop collects: one per STORE_EVERY, and a last one."""
    _first, _second, messages = queue_on_both_numbers(account, 40, django_capture_on_commit_callbacks)

    started = time.monotonic()
    with CaptureQueriesContext(connection) as queries:
        assert dispatch_pump(run_seconds=10).sent == 80
    elapsed = time.monotonic() - started

    writes = [query for query in queries.captured_queries if re.search(r'SET "?wamid"? =', query["sql"])]
    assert 1 <= len(writes) <= elapsed / pump_module.STORE_EVERY + 2
    stored = Message.objects.filter(pk__in=[m.pk for m in messages]).values_list("pk", "wamid")
    assert all(wamid == f"wamid.{pk}" for pk, wamid in stored)


def test_a_claim_is_one_statement_taking_the_oldest_due_rows_of_its_number(
    account, django_capture_on_commit_callbacks
) -> None:
    first, second = account.phone_numbers.order_by("phone_number_id")
    mine = queue_texts(account, recipients(5), django_capture_on_commit_callbacks, number=first)
    queue_texts(account, recipients(2, 100), django_capture_on_commit_callbacks, number=second)
    later = mine[1]
    Message.objects.filter(pk=later.pk).update(send_after=timezone.now() + datetime.timedelta(minutes=5))
    now = timezone.now()

    with CaptureQueriesContext(connection) as queries:
        rows = pump_module._claim_rows(first, 3, now)

    assert len(queries.captured_queries) == 1
    assert [row.pk for row in rows] == [mine[0].pk, mine[2].pk, mine[3].pk]
    assert all(row.status == MessageStatus.SENDING and row.claimed_at == now and row.attempts == 1 for row in rows)
    assert rows[0].payload == Message.objects.get(pk=mine[0].pk).payload  # whole rows, as stored
    assert Message.objects.filter(status=MessageStatus.QUEUED).count() == 4  # the rest, the other number's
    assert pump_module._claim_rows(first, 3, now) == [mine[4]]


def test_the_numbers_with_due_rows_are_found_in_one_statement_and_a_numberless_row_fails(
    account, meta, django_capture_on_commit_callbacks
) -> None:
    first, second = account.phone_numbers.order_by("phone_number_id")
    mine = queue_texts(account, recipients(3), django_capture_on_commit_callbacks, number=first)
    later = queue_texts(account, recipients(2, 100), django_capture_on_commit_callbacks, number=second)
    in_an_hour = timezone.now() + datetime.timedelta(hours=1)
    Message.objects.filter(pk__in=[m.pk for m in later]).update(send_after=in_an_hour)
    Message.objects.filter(pk=mine[0].pk).update(phone_number=None)  # its number was removed

    with CaptureQueriesContext(connection) as queries:
        found = pump_module._numbers_due(timezone.now())

    assert len(queries.captured_queries) == 1
    assert sorted(found, key=str) == sorted([first.pk, None], key=str)  # not the number with deferred rows only
    assert set(pump_module._numbers_due(in_an_hour)) == {first.pk, second.pk, None}

    result = dispatch_pump(run_seconds=2)

    assert (result.sent, result.failed) == (2, 1)
    removed = Message.objects.get(pk=mine[0].pk)
    assert removed.status == MessageStatus.FAILED and "removed" in removed.error_title
    assert pump_module._numbers_due(timezone.now()) == []


def test_a_numberless_row_a_pump_died_over_is_taken_back_and_failed_by_the_next(
    account, meta, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    (message,) = queue_texts(account, recipients(1), django_capture_on_commit_callbacks)
    Message.objects.filter(pk=message.pk).update(phone_number=None)  # its number was removed

    def killed(*args, **kwargs):  # the pump dies after claiming the row, before failing it
        raise RuntimeError("killed")

    with monkeypatch.context() as patch:
        patch.setattr(pump_module, "_fail", killed)
        with django_capture_on_commit_callbacks(execute=False):
            dispatch_pump(run_seconds=1)
    assert Message.objects.get(pk=message.pk).status == MessageStatus.SENDING

    with django_capture_on_commit_callbacks(execute=False):
        swept = messages_sweep(now=timezone.now() + datetime.timedelta(minutes=3))
    assert swept["abandoned"] == 1  # claimed like any row: the lease runs out
    assert dispatch_pump(run_seconds=1).failed == 1
    removed = Message.objects.get(pk=message.pk)
    assert removed.status == MessageStatus.FAILED and "removed" in removed.error_title
    assert not meta.requests


def test_a_wave_is_marked_started_in_one_statement_and_a_row_claimed_since_by_another_is_left_out(
    account, django_capture_on_commit_callbacks
) -> None:
    first, second = account.phone_numbers.order_by("phone_number_id")
    queue_texts(account, recipients(3), django_capture_on_commit_callbacks, number=first)
    queue_texts(account, recipients(2, 100), django_capture_on_commit_callbacks, number=second)
    pump = pump_module._Pump(deadline=time.monotonic() + 5, running_key="test-pump")
    now = timezone.now()
    rows = pump._claim(first, 3, now) + pump._claim(second, 2, now + datetime.timedelta(seconds=1))
    wave = [pump_module._Job(at=0, seq=n, message=row, number=first) for n, row in enumerate(rows)]
    # The sweeper took the first row back and another pump claimed it since.
    Message.objects.filter(pk=rows[0].pk).update(claimed_at=now + datetime.timedelta(minutes=3))

    with CaptureQueriesContext(connection) as queries:
        started = pump._mark_started(wave)

    assert len(queries.captured_queries) == 1
    assert started == {row.pk for row in rows[1:]}
    marked = dict(Message.objects.filter(pk__in=[row.pk for row in rows]).values_list("pk", "sending_at"))
    assert marked[rows[0].pk] is None and all(marked[row.pk] for row in rows[1:])
    assert pump._mark_started(wave) == set()  # started already: never twice


def test_storing_answers_keeps_a_wamid_a_webhook_stored_first(account, django_capture_on_commit_callbacks) -> None:
    raced, answered = queue_texts(account, recipients(2), django_capture_on_commit_callbacks)
    Message.objects.filter(pk=raced.pk).update(wamid="wamid.from-the-webhook")
    before = Message.objects.get(pk=answered.pk).updated_at

    sent_apply({raced.pk: "wamid.from-the-answer", answered.pk: "wamid.answered"})

    assert Message.objects.get(pk=raced.pk).wamid == "wamid.from-the-webhook"
    stored = Message.objects.get(pk=answered.pk)
    assert stored.wamid == "wamid.answered" and stored.updated_at > before
    sent_apply({})  # nothing to store: no statement, no error


def test_a_number_is_paced_at_its_rate_less_the_headroom(account, meta, django_capture_on_commit_callbacks) -> None:
    number = account.default_phone_number
    queue_texts(account, recipients(120), django_capture_on_commit_callbacks)

    dispatch_pump(run_seconds=10)

    times = sorted(at for at, _number, _body in meta.requests)
    assert len(times) == 120
    rate = effective_rate(number.messages_per_second)  # 68/s for a standard number
    assert rate == pytest.approx(68)
    # Slots are 1/68 s apart; waves and threads bunch a few together, which the headroom absorbs:
    # no second holds more than Meta's 80, and all 120 take at least 119 intervals less one wave.
    assert max(sum(1 for t in times if start <= t < start + 1) for start in times) <= number.messages_per_second
    assert times[-1] - times[0] >= 119 / rate - 0.05


def test_a_pump_that_fell_behind_does_not_catch_up_faster_than_the_rate(
    account, meta, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    """Slots found overdue all at once (the pump's process was starved of CPU) still leave at no
    more than the number's rate in any one second: Meta would refuse the burst with 130429."""
    number = account.default_phone_number
    queue_texts(account, recipients(150), django_capture_on_commit_callbacks)
    # Every slot already due, as if the pump woke up late for all of them.
    for pacer_class in (LocalPacer, RedisPacer):
        monkeypatch.setattr(pacer_class, "book", lambda self, *, number, rate, recipients: [Slot()] * len(recipients))

    dispatch_pump(run_seconds=10)

    times = sorted(at for at, _number, _body in meta.requests)
    assert len(times) == 150
    # Released one interval apart at 68 a second (the rate less the headroom); the send threads'
    # jitter is what the headroom absorbs: no second at Meta's end holds more than its 80.
    assert max(sum(1 for t in times if start <= t < start + 1) for start in times) <= number.messages_per_second
    assert times[-1] - times[0] >= 2 * 1.0 - 0.1  # 150 at 68 a second: three windows


def test_a_pump_that_sends_slower_than_it_books_holds_at_most_a_second_of_sends(
    account, meta, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    """A busy process releases requests slower than the pacer books slots: the pump claims no more
    than it can hold (about a second at the number's rate), not the whole queue ahead of time."""
    number = account.default_phone_number
    queue_texts(account, recipients(300), django_capture_on_commit_callbacks)
    rate = effective_rate(number.messages_per_second)
    real_slot = pump_module._Pump._local_slot

    def half_speed(self, number, now):  # it gets out one request every two intervals
        slot = real_slot(self, number, now)
        self.next_release[number.pk] += 1 / rate
        return slot

    held: list[int] = []
    real_schedule = pump_module._Pump._schedule

    def schedule(self, number, rows):
        real_schedule(self, number, rows)
        held.append(len(self.scheduled))

    monkeypatch.setattr(pump_module._Pump, "_local_slot", half_speed)
    monkeypatch.setattr(pump_module._Pump, "_schedule", schedule)

    dispatch_pump(run_seconds=3)

    sent = len(meta.requests)
    assert 80 < sent < 150  # about 34 a second for three seconds
    assert max(held) <= rate * pump_module.IN_HAND + 1
    # What it did not send it never claimed: still queued, not waiting in a worker's memory.
    assert Message.objects.filter(status=MessageStatus.QUEUED).count() >= 300 - sent - rate * pump_module.IN_HAND


def test_a_pump_keeps_no_more_requests_in_flight_than_it_has_threads(
    account, meta, django_capture_on_commit_callbacks, monkeypatch, settings
) -> None:
    """A number allowed 1,000 msg/s and a slow Graph API: the pump hands the thread pool no more
    requests than it has threads. The rest wait in the pump, re-spaced when their turn comes, instead
    of piling up in the pool's queue (and the worker's memory) to leave late."""
    settings.WHATSAPP_DISPATCH_CONCURRENCY = 4
    monkeypatch.setattr(pump_module, "_sending", None)  # this test's own pool, of 4 threads
    number = account.default_phone_number
    PhoneNumber.objects.filter(pk=number.pk).update(throughput_level="HIGH")
    queue_texts(account, recipients(60), django_capture_on_commit_callbacks)
    answer = meta.__call__

    def slow_answer(request):
        time.sleep(0.05)
        return answer(request)

    monkeypatch.setattr(Meta, "__call__", lambda self, request: slow_answer(request))
    most: list[int] = []
    real_release = pump_module._Pump._release

    def release(self):
        real_release(self)
        most.append(len(self.in_flight))

    monkeypatch.setattr(pump_module._Pump, "_release", release)

    result = dispatch_pump(run_seconds=10)

    assert result.sent == 60
    assert meta.callbacks() == Counter({str(message.pk): 1 for message in Message.objects.all()})
    assert max(most) == 4


class StalledPool:
    """The pump's thread pool, except that no thread gets to run before ``until``: a process that
    got no CPU (or whose interpreter lock another thread held) for that long, then all at once."""

    def __init__(self, pool, seconds: float) -> None:
        self.pool = pool
        self.until = time.monotonic() + seconds

    def submit(self, fn, *args):
        def late():
            time.sleep(max(0.0, self.until - time.monotonic()))
            return fn(*args)

        return self.pool.submit(late)


def test_send_threads_that_ran_late_do_not_send_in_a_burst(
    account, meta, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    """Requests released on time but run late by their threads still leave at the number's pace:
    each thread checks the last second's starts right before its request goes."""
    number = account.default_phone_number
    queue_texts(account, recipients(150), django_capture_on_commit_callbacks)
    real_pool = pump_module._send_pool()
    monkeypatch.setattr(pump_module, "_send_pool", lambda: StalledPool(real_pool, 1.5))

    dispatch_pump(run_seconds=10)

    times = sorted(at for at, _number, _body in meta.requests)
    assert len(times) == 150
    # About 100 were released during the stall; they leave 68 in the first second, the rest after.
    assert max(sum(1 for t in times if start <= t < start + 1) for start in times) <= number.messages_per_second


def test_two_workers_share_one_number_s_rate_through_redis() -> None:
    one, two = RedisPacer(settings.REDIS_URL), RedisPacer(settings.REDIS_URL)
    bookings = []  # (clock before the call, clock after it, the delays); Redis's clock is between the two
    for pacer, start in ((one, 0), (two, 50), (one, 100)):
        before = time.time()
        delays = [s.delay for s in pacer.book(number="shared", rate=50.0, recipients=recipients(50, start))]
        bookings.append((before, time.time(), delays))
    for _before, _after, delays in bookings:  # Redis keeps slots to the microsecond
        assert [b - a for a, b in itertools.pairwise(delays)] == pytest.approx([1 / 50] * 49, abs=1e-5)
    # Across workers, the next booking's first slot follows the previous one's last by one interval:
    # the true gap lies between the bounds the two clock readings give, whatever the round trip took.
    for (before1, after1, delays1), (before2, after2, delays2) in itertools.pairwise(bookings):
        shortest = before2 + delays2[0] - (after1 + delays1[-1])
        longest = after2 + delays2[0] - (before1 + delays1[-1])
        assert shortest - 1e-3 <= 1 / 50 <= longest + 1e-3
    assert one.booked_ahead(number="shared") == pytest.approx(150 / 50, abs=0.2)


@pytest.mark.parametrize("pacer_class", ["redis", "local"])
def test_one_recipient_gets_a_burst_then_waits_for_the_pair_rate(pacer_class: str) -> None:
    pacer = RedisPacer(settings.REDIS_URL) if pacer_class == "redis" else LocalPacer()
    slots = pacer.book(number="pair", rate=80.0, recipients=["+919820000001"] * (PAIR_BURST + 2) + ["+919820000002"])
    assert all(slot.defer is None for slot in slots[:PAIR_BURST])
    assert [slot.defer is not None for slot in slots[PAIR_BURST:-1]] == [True, True]
    assert slots[PAIR_BURST].defer == pytest.approx(PAIR_INTERVAL, abs=0.1)
    assert slots[-1].defer is None  # another recipient is not held back
    # Deferred messages took no slot of the number's.
    assert slots[-1].delay == pytest.approx(PAIR_BURST / 80.0, abs=0.01)


@pytest.mark.parametrize("pacer_class", ["redis", "local"])
def test_throughput_refusals_compound_the_slow_down_down_to_a_floor(pacer_class: str) -> None:
    pacer = RedisPacer(settings.REDIS_URL) if pacer_class == "redis" else LocalPacer()

    def gap(number: str) -> float:
        first, second = pacer.book(number=number, rate=80.0, recipients=recipients(2, 500))
        return second.delay - first.delay

    assert gap("steady") == pytest.approx(1 / 80, abs=0.002)
    pacer.slow_down(number="refused", pause=0)
    assert gap("refused") == pytest.approx(1 / (80 * SLOWDOWN_FACTOR), abs=0.002)
    pacer.slow_down(number="refused", pause=0)
    assert gap("refused") == pytest.approx(1 / (80 * SLOWDOWN_FACTOR**2), abs=0.002)
    for _ in range(10):
        pacer.slow_down(number="refused", pause=0)
    assert gap("refused") == pytest.approx(1 / (80 * SLOWDOWN_FLOOR), abs=0.002)
    assert gap("steady") == pytest.approx(1 / 80, abs=0.002)  # another number is not slowed


def test_messages_past_the_pair_burst_wait_in_the_queue_not_in_the_worker(
    account, meta, django_capture_on_commit_callbacks
) -> None:
    messages = queue_texts(account, ["+919820011111"] * (PAIR_BURST + 3), django_capture_on_commit_callbacks)

    result = dispatch_pump(run_seconds=5)

    assert (result.sent, result.deferred) == (PAIR_BURST, 3)
    waiting = Message.objects.filter(pk__in=[m.pk for m in messages], status=MessageStatus.QUEUED)
    assert waiting.count() == 3
    for message in waiting:
        assert message.attempts == 0 and message.claimed_at is None
        assert message.send_after > timezone.now() + datetime.timedelta(seconds=PAIR_INTERVAL - 1)


def test_a_throughput_error_slows_the_number_and_the_message_goes_later_once(
    account, meta, django_capture_on_commit_callbacks
) -> None:
    meta.errors["+919820000003"] = [130429]
    messages = queue_texts(account, recipients(6), django_capture_on_commit_callbacks)

    result = dispatch_pump(run_seconds=5)

    assert (result.sent, result.retried) == (5, 1)
    throttled = Message.objects.get(pk=messages[3].pk)
    assert throttled.status == MessageStatus.QUEUED and throttled.send_after > timezone.now()
    client = redis.Redis.from_url(settings.REDIS_URL)
    number = account.default_phone_number.phone_number_id
    assert client.get(f"whatsapp:pace:{connection.settings_dict['NAME']}:{number}:slow") is not None

    Message.objects.filter(pk=throttled.pk).update(send_after=timezone.now())  # its backoff is over
    assert dispatch_pump(run_seconds=5).sent == 1
    assert meta.callbacks()[str(throttled.pk)] == 2  # refused once, accepted once
    throttled.refresh_from_db()
    assert throttled.wamid == f"wamid.{throttled.pk}" and throttled.attempts == 2


def test_a_pair_rate_error_holds_that_recipient_back_and_the_others_go_on(
    account, meta, django_capture_on_commit_callbacks
) -> None:
    held = "+919820000002"
    meta.errors[held] = [131056]
    messages = queue_texts(account, recipients(5), django_capture_on_commit_callbacks)

    result = dispatch_pump(run_seconds=5)

    assert (result.sent, result.retried) == (4, 1)  # the other four recipients went on
    refused = Message.objects.get(pk=messages[2].pk)
    assert refused.status == MessageStatus.QUEUED
    assert refused.send_after >= timezone.now() + datetime.timedelta(seconds=3)  # Meta's 4^attempt seconds
    # The pacer holds the customer back too: a new message to them waits in the queue, not sent.
    again = queue_texts(account, [held], django_capture_on_commit_callbacks)[0]
    assert dispatch_pump(run_seconds=2).deferred == 1
    later = Message.objects.get(pk=again.pk)
    assert later.status == MessageStatus.QUEUED and later.send_after > timezone.now()
    assert meta.callbacks()[str(again.pk)] == 0

    Message.objects.filter(pk__in=[refused.pk, again.pk]).update(send_after=timezone.now())  # the hold is over
    pacing_forget()
    assert dispatch_pump(run_seconds=5).sent == 2
    assert meta.callbacks()[str(refused.pk)] == 2 and meta.callbacks()[str(again.pk)] == 1


def test_a_permanent_error_fails_that_message_only(account, meta, django_capture_on_commit_callbacks) -> None:
    meta.errors["+919820000001"] = [131026]
    messages = queue_texts(account, recipients(4), django_capture_on_commit_callbacks)

    result = dispatch_pump(run_seconds=5)

    assert (result.sent, result.failed) == (3, 1)
    failed = Message.objects.get(pk=messages[1].pk)
    assert (failed.status, failed.error_code) == (MessageStatus.FAILED, 131026)
    assert Message.objects.filter(pk__in=[m.pk for m in messages], wamid__isnull=False).count() == 3


def test_the_daily_messaging_limit_holds_new_recipients_back_with_a_notice(
    account, meta, django_capture_on_commit_callbacks
) -> None:
    PhoneNumber.objects.filter(account=account).update(messaging_limit_tier="TIER_250")
    assert messaging_limit(account) == 250
    earlier = timezone.now() - datetime.timedelta(hours=2)
    reached = recipients(249, 500)
    Message.objects.bulk_create(
        [
            Message(
                organization=account.organization,
                account=account,
                phone_number=account.default_phone_number,
                direction="outbound",
                message_type="template",
                phone=to,
                status=MessageStatus.READ,
                sending_at=earlier,
                queued_at=earlier,
            )
            for to in reached
        ]
    )
    with django_capture_on_commit_callbacks(execute=False):
        new = [queued_template(account, to) for to in recipients(3)]
        again = queued_template(account, reached[0])

    result = dispatch_pump(run_seconds=5)

    assert (result.sent, result.held) == (2, 2)  # one new recipient fits, a known one always does
    sent = set(meta.callbacks())
    assert str(again.pk) in sent and str(new[0].pk) in sent
    held = Message.objects.filter(pk__in=[new[1].pk, new[2].pk])
    assert all(
        m.status == MessageStatus.QUEUED and m.send_after >= earlier + datetime.timedelta(hours=24) for m in held
    )
    notice = Notification.objects.get(organization=account.organization, kind="whatsapp.messaging_limit")
    assert "250" in notice.body
    dispatch_pump(run_seconds=1)
    assert Notification.objects.filter(kind="whatsapp.messaging_limit").count() == 1  # once a day


def test_a_row_the_sweeper_took_back_from_a_dead_pump_is_sent_once(
    account, meta, django_capture_on_commit_callbacks
) -> None:
    (message,) = queue_texts(account, recipients(1), django_capture_on_commit_callbacks)
    # A pump claimed it and died before its slot: claimed, never started.
    long_ago = timezone.now() - datetime.timedelta(minutes=3)
    Message.objects.filter(pk=message.pk).update(status=MessageStatus.SENDING, claimed_at=long_ago, attempts=1)
    assert dispatch_pump(run_seconds=1).sent == 0  # not queued: nobody may send it yet

    with django_capture_on_commit_callbacks(execute=False):
        swept = messages_sweep()
    assert swept["abandoned"] == 1
    assert dispatch_pump(run_seconds=2).sent == 1
    assert meta.callbacks() == {str(message.pk): 1}


def test_a_started_row_is_never_taken_back(account, meta, django_capture_on_commit_callbacks) -> None:
    (message,) = queue_texts(account, recipients(1), django_capture_on_commit_callbacks)
    long_ago = timezone.now() - datetime.timedelta(minutes=3)
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.SENDING, claimed_at=long_ago, sending_at=long_ago, attempts=1
    )
    with django_capture_on_commit_callbacks(execute=False):
        assert messages_sweep()["abandoned"] == 0
    assert dispatch_pump(run_seconds=1).sent == 0 and not meta.requests


def test_a_pump_reads_its_numbers_and_limits_again_every_few_seconds_not_at_every_refill(
    account, meta, django_capture_on_commit_callbacks
) -> None:
    queue_texts(account, recipients(200), django_capture_on_commit_callbacks)  # 3 s at 68/s

    with CaptureQueriesContext(connection) as queries:
        assert dispatch_pump(run_seconds=10).sent == 200

    statements = [q["sql"] for q in queries.captured_queries]
    refills = sum(1 for sql in statements if sql.startswith("WITH RECURSIVE numbers"))  # pump_module._numbers_due
    table = PhoneNumber._meta.db_table
    loads = sum(1 for sql in statements if sql.startswith(f'SELECT "{table}"."id"') and "books_organization" in sql)
    assert refills >= 8  # four a second
    assert 1 <= loads <= 1 + refills * pump_module.REFILL_EVERY / pump_module.NUMBERS_SECONDS
    # The account's messaging limit is kept with them, not looked up at every claim.
    claims = sum(1 for sql in statements if "SKIP LOCKED" in sql)
    tiers = sum(1 for sql in statements if sql.startswith(f'SELECT "{table}"."messaging_limit_tier"'))
    assert claims >= 3 and 1 <= tiers <= loads


def test_a_second_pump_leaves_the_work_to_the_running_one(account, meta, django_capture_on_commit_callbacks) -> None:
    queue_texts(account, recipients(3), django_capture_on_commit_callbacks)
    from django.core.cache import cache

    _queued_key, running_key = pump_module._keys()
    cache.set(running_key, 1, 30)
    assert dispatch_pump(run_seconds=1).ran is False and not meta.requests
    cache.delete(running_key)
    assert dispatch_pump(run_seconds=2).sent == 3


def test_a_pump_stopped_by_a_database_error_wakes_the_next_and_sends_nothing_twice(
    account, meta, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    """A deadlock (say) while storing wamids ends that pump, not dispatch: the next pump is woken
    after a pause, and a message whose wamid was not stored waits for its webhook, not resent."""
    messages = queue_texts(account, recipients(5), django_capture_on_commit_callbacks)
    real_sent_apply = pump_module.sent_apply
    failures = [OperationalError("deadlock detected")]

    def sent_apply(wamids):
        if failures:
            raise failures.pop()
        real_sent_apply(wamids)

    woken: list[float] = []
    monkeypatch.setattr(pump_module, "sent_apply", sent_apply)
    monkeypatch.setattr(pump_module, "dispatch_wake", lambda countdown=0, force=False: woken.append(countdown))

    dispatch_pump(run_seconds=2)

    assert woken == [pump_module.ERROR_PAUSE] and not failures
    dispatch_pump(run_seconds=2)
    assert meta.callbacks() == Counter({str(message.pk): 1 for message in messages})
    rows = Message.objects.filter(pk__in=[m.pk for m in messages])
    assert all(row.status == MessageStatus.SENDING and row.sending_at for row in rows)
    # The failed round's wamids were not stored: their webhooks will find those rows by id.
    assert any(row.wamid is None for row in rows)


def test_a_put_back_leaves_a_row_another_pump_claimed_since_in_one_statement(
    account, django_capture_on_commit_callbacks
) -> None:
    first, second = account.phone_numbers.order_by("phone_number_id")
    queue_texts(account, recipients(3), django_capture_on_commit_callbacks, number=first)
    queue_texts(account, recipients(2, 100), django_capture_on_commit_callbacks, number=second)
    stale = pump_module._Pump(deadline=time.monotonic() + 5, running_key="test-pump")
    now = timezone.now()
    rows = stale._claim(first, 3, now) + stale._claim(second, 2, now + datetime.timedelta(seconds=1))
    # The sweeper took the first row back from this (stalled) pump, and another pump claimed it since.
    fresh_claim = now + datetime.timedelta(minutes=3)
    Message.objects.filter(pk=rows[0].pk).update(claimed_at=fresh_claim, attempts=2)

    with CaptureQueriesContext(connection) as queries:
        stale._requeue(rows, None)

    assert len(queries.captured_queries) == 1
    taken = Message.objects.get(pk=rows[0].pk)
    assert (taken.status, taken.claimed_at, taken.attempts) == (MessageStatus.SENDING, fresh_claim, 2)
    back = Message.objects.filter(pk__in=[row.pk for row in rows[1:]])
    assert all((m.status, m.claimed_at, m.attempts) == (MessageStatus.QUEUED, None, 0) for m in back)
    assert not stale.claimed  # none of them is the stale pump's any more


def test_two_numbers_of_one_account_do_not_exceed_its_daily_limit_together(
    account, meta, django_capture_on_commit_callbacks
) -> None:
    """Both numbers are claimed in the same refill, before either's rows start: the second's check
    counts the first's claimed rows, so the portfolio reaches 50 new customers, not 80."""
    PhoneNumber.objects.filter(account=account).update(messaging_limit_tier="TIER_50")
    first, second = account.phone_numbers.order_by("phone_number_id")
    with django_capture_on_commit_callbacks(execute=False):
        for number, start in ((first, 0), (second, 100)):
            for to in recipients(40, start):
                message_template_queue(
                    account=account, to=to, name="payment_reminder", language="en", phone_number=number
                )

    result = dispatch_pump(run_seconds=5)

    assert (result.sent, result.held) == (50, 30)
    assert len({body["to"] for _at, _number, body in meta.requests}) == 50
    assert Message.objects.filter(status=MessageStatus.QUEUED, send_after__gt=timezone.now()).count() == 30


def bulk_templates(account, count: int, django_capture_on_commit_callbacks, *, start: int = 0) -> tuple[BulkSend, list]:
    """A bulk send of ``count`` templates, queued."""
    bulk = BulkSend.objects.create(
        organization=account.organization, target="documents", module="invoices", total=count, state="done"
    )
    with django_capture_on_commit_callbacks(execute=False):
        messages = [queued_template(account, to) for to in recipients(count, start)]
    Message.objects.filter(pk__in=[m.pk for m in messages]).update(bulk=bulk)
    return bulk, messages


def test_a_spam_limit_refusal_pauses_the_bulk_send_and_the_pump_holds_the_rest(
    account, meta, django_capture_on_commit_callbacks
) -> None:
    bulk, messages = bulk_templates(account, 60, django_capture_on_commit_callbacks)
    meta.errors[messages[2].phone] = [131048]
    (one_off,) = queue_texts(account, recipients(1, 900), django_capture_on_commit_callbacks)

    result = dispatch_pump(run_seconds=5)

    refused = Message.objects.get(pk=messages[2].pk)
    assert (refused.status, refused.error_code) == (MessageStatus.FAILED, 131048) and refused.fix_hint
    bulk.refresh_from_db()
    assert bulk.paused_at is not None and "131048" in bulk.pause_reason
    assert account.default_phone_number.display_phone_number in bulk.pause_reason
    rows = Message.objects.filter(bulk=bulk)
    sent = rows.filter(wamid__isnull=False).count()
    held = rows.filter(status=MessageStatus.QUEUED)
    # Sent before the refusal came back (a few), the refused one, and the rest held: nothing lost,
    # the attempt not counted, and nothing more sent for the bulk send.
    assert sent + 1 + held.count() == 60 and held.count() >= 50
    assert all((m.send_after, m.attempts, m.claimed_at) == (HELD_UNTIL, 0, None) for m in held)
    assert result.bulk_held >= 1 and len(meta.requests) == sent + 1 + 1
    assert Message.objects.get(pk=one_off.pk).wamid  # not in the bulk send: sent as ever
    notice = Notification.objects.get(organization=account.organization, kind="whatsapp.bulk_paused")
    assert str(bulk.pk) in notice.url and "131048" in notice.body

    assert dispatch_pump(run_seconds=1).sent == 0  # held: not claimed again
    assert len(meta.requests) == sent + 2


def test_a_hundred_refusals_pause_the_bulk_send_once(
    account, meta, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    """Requests in flight when the first refusal comes back are refused too: one pause, one notice."""
    PhoneNumber.objects.filter(account=account).update(throughput_level="HIGH")  # many in flight at once
    bulk, messages = bulk_templates(account, 40, django_capture_on_commit_callbacks)
    for message in messages:
        meta.errors[message.phone] = [131048]
    answer = meta.__call__

    def slow_answer(request):
        time.sleep(0.05)
        return answer(request)

    monkeypatch.setattr(Meta, "__call__", lambda self, request: slow_answer(request))

    result = dispatch_pump(run_seconds=5)

    assert result.failed >= 2 and result.failed == len(meta.requests)
    assert Notification.objects.filter(kind="whatsapp.bulk_paused").count() == 1
    assert Message.objects.filter(bulk=bulk, status=MessageStatus.QUEUED, send_after=HELD_UNTIL).count() == 40 - (
        result.failed
    )


def test_a_row_of_a_paused_bulk_send_that_came_back_due_is_held_when_claimed(
    account, meta, django_capture_on_commit_callbacks
) -> None:
    """E.g. the sweeper took back a dead pump's claim after the pause, with no ``send_after``."""
    bulk, messages = bulk_templates(account, 3, django_capture_on_commit_callbacks)
    BulkSend.objects.filter(pk=bulk.pk).update(paused_at=timezone.now(), pause_reason="restricted")
    Message.objects.filter(pk=messages[0].pk).update(send_after=HELD_UNTIL)  # held by the pause; the others came back
    (one_off,) = queue_texts(account, recipients(1, 900), django_capture_on_commit_callbacks)

    result = dispatch_pump(run_seconds=2)

    assert (result.sent, result.bulk_held) == (1, 2)
    assert meta.callbacks() == {str(one_off.pk): 1}
    held = Message.objects.filter(bulk=bulk)
    assert all((m.status, m.send_after, m.attempts) == (MessageStatus.QUEUED, HELD_UNTIL, 0) for m in held)


def test_a_pump_that_thinks_a_resumed_bulk_send_paused_puts_its_rows_back_due(
    account, django_capture_on_commit_callbacks
) -> None:
    """The pump keeps whether a bulk send is paused for a few seconds; the hold itself checks under
    the bulk send's lock, so a resume just before is not undone."""
    bulk, _messages = bulk_templates(account, 3, django_capture_on_commit_callbacks)
    pump = pump_module._Pump(deadline=time.monotonic() + 5, running_key="test-pump")
    pump.bulks[bulk.pk] = True  # seen paused a moment ago; resumed since
    pump.numbers_until = time.monotonic() + 60

    assert pump._claim(account.default_phone_number, 3, timezone.now()) == []

    rows = Message.objects.filter(bulk=bulk)
    assert all((m.status, m.send_after, m.attempts) == (MessageStatus.QUEUED, None, 0) for m in rows)
    assert pump.bulks[bulk.pk] is False  # the next claim sends them
    assert len(pump._claim(account.default_phone_number, 3, timezone.now())) == 3

"""The webhook drain: the receiver enqueues one drain per burst (Redis ``SET NX``), the drain applies
pending events in batches, each in a savepoint, and nothing is stranded or applied twice.

The cache is a real Redis (database 12, a key prefix of the test's own) because the mechanism is
Redis's ``SET NX``; the concurrency test needs PostgreSQL's ``SKIP LOCKED`` and two connections.
"""

from __future__ import annotations

import datetime
import itertools
import json
import threading
import time
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.cache import cache
from django.db import OperationalError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from config.celery import app as celery_app
from credits.locks import credit_account_lock
from credits.models import LedgerEntry, Reservation
from credits.selectors import credit_balance_get
from credits.services import ReservationRequest, credits_reserve
from tests import settings as test_settings
from tests.books.factories import make_organization
from tests.credits.factories import default_prices, fund
from tests.whatsapp.factories import make_account, make_message
from whatsapp import tasks
from whatsapp.choices import AccountStatus, MessageStatus
from whatsapp.models import Message, WebhookEvent, WhatsAppAccount
from whatsapp.services import webhooks
from whatsapp.services.charges import UNSETTLED_AFTER, CreditsFollow, credits_reference, unsettled_credits_close
from whatsapp.services.messages import StatusBatch
from whatsapp.services.webhooks import (
    UNMATCHED_RETRIES,
    webhook_event_store,
    webhook_events_drain,
    webhook_events_sweep,
)
from whatsapp.signature import signature_compute

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"
SECRET = "test-app-secret"
URL = "/webhooks/whatsapp/"
CACHE_DB = 12  # the tests' other Redis databases: 14 (Celery delivery), 15 (the suite's cache)


def _redis_url(db: int, port: int | None = None) -> str:
    parts = urlsplit(test_settings.redis_url)
    netloc = parts.netloc if port is None else f"{parts.hostname}:{port}"
    return urlunsplit((parts.scheme, netloc, f"/{db}", "", ""))


def _cache_settings(location: str) -> dict[str, Any]:
    return {
        "default": {
            "BACKEND": "config.redis_cache.RedisCache",
            "LOCATION": location,
            "KEY_PREFIX": f"test-drain-{uuid.uuid4().hex}",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }


@pytest.fixture(autouse=True)
def redis_cache(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real Redis cache under a key prefix of this test's own (the drain key expires by itself);
    Celery tasks run where they are enqueued."""
    settings.CACHES = _cache_settings(_redis_url(CACHE_DB))
    settings.WHATSAPP_APP_SECRET = SECRET
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    monkeypatch.setitem(celery_app.conf, "task_eager_propagates", True)


@pytest.fixture
def account(db: None) -> WhatsAppAccount:
    return make_account(make_organization())


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Drains enqueued, recorded instead of run."""
    calls: list[str] = []
    monkeypatch.setattr(tasks.webhook_events_drain_task, "delay", lambda: calls.append("drain"))
    return calls


def status_body(account: WhatsAppAccount, message: Message, *, status: str = "delivered") -> bytes:
    text = (FIXTURES / f"status_{status}.json").read_text()
    for name, value in {
        "WABA_ID": account.waba_id,
        "PHONE_NUMBER_ID": account.default_phone_number.phone_number_id,
        "WAMID": message.wamid,
        "MESSAGE_ID": message.pk,
    }.items():
        text = text.replace(f"__{name}__", str(value))
    return json.dumps(json.loads(text), separators=(",", ":")).encode()


def sent_messages(account: WhatsAppAccount, count: int, *, prefix: str = "wamid.DRAIN") -> list[Message]:
    return [make_message(account, status=MessageStatus.SENT, wamid=f"{prefix}{n}") for n in range(count)]


def post(client: Client, body: bytes) -> Any:
    signature = signature_compute(body, SECRET)
    return client.post(URL, data=body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=signature)


def statuses(messages: list[Message]) -> list[str]:
    return list(Message.objects.filter(pk__in=[m.pk for m in messages]).order_by("pk").values_list("status", flat=True))


# --- The receiver asks for one drain per burst --------------------------------------------------


@pytest.mark.redis
def test_a_burst_of_webhooks_enqueues_one_drain(client: Client, account: WhatsAppAccount, enqueued: list[str]) -> None:
    messages = sent_messages(account, 5)

    responses = [post(client, status_body(account, message)) for message in messages]

    assert [r.status_code for r in responses] == [200] * 5
    assert enqueued == ["drain"]  # the key stands for it until the drain releases it
    assert WebhookEvent.objects.filter(state="pending").count() == 5


@pytest.mark.redis
def test_a_redelivered_body_enqueues_nothing(client: Client, account: WhatsAppAccount, enqueued: list[str]) -> None:
    body = status_body(account, sent_messages(account, 1)[0])
    post(client, body)
    cache.delete(webhooks._drain_key())  # as if the drain had finished

    assert post(client, body).status_code == 200

    assert enqueued == ["drain"] and WebhookEvent.objects.count() == 1


@pytest.mark.redis
def test_the_cache_reuses_one_redis_client_instead_of_building_one_per_call() -> None:
    backend = cache._cache  # config.redis_cache: redis-py builds ~170 callbacks per client

    assert backend.get_client(write=True) is backend.get_client(write=False)
    assert cache.add("probe", 1, timeout=5) and not cache.add("probe", 2, timeout=5)
    assert cache.get("probe") == 1


# --- The drain ---------------------------------------------------------------------------------


@pytest.mark.redis
def test_the_drain_applies_a_batch_and_closes_every_event_with_two_statements_per_batch(
    account: WhatsAppAccount,
) -> None:
    messages = sent_messages(account, 7)
    event_ids = [webhook_event_store(body=status_body(account, message)) for message in messages]

    with CaptureQueriesContext(connection) as queries:
        taken = webhook_events_drain(batch_size=3)

    assert taken == 7
    assert statuses(messages) == [MessageStatus.DELIVERED] * 7
    events = WebhookEvent.objects.filter(pk__in=event_ids)
    assert {(e.state, e.attempts, e.error) for e in events} == {("processed", 1, "")}
    assert all(e.processed_at is not None for e in events)
    # Per batch, the events table sees one claim and one close, whatever the batch holds: 3 full
    # or partial batches, then an empty claim before the key is released and one after.
    on_events = [q["sql"] for q in queries.captured_queries if WebhookEvent._meta.db_table in q["sql"]]
    assert Counter(sql.split()[0] for sql in on_events) == {"SELECT": 3 + 2, "UPDATE": 3}
    # ... and the messages table one read (locking the batch's messages) and one write.
    on_messages = [q["sql"] for q in queries.captured_queries if Message._meta.db_table in q["sql"]]
    assert Counter(sql.split()[0] for sql in on_messages) == {"SELECT": 3, "UPDATE": 3}
    if connection.features.has_select_for_update:  # SQLite has one writer and no row locks
        assert all(sql.endswith("FOR UPDATE") for sql in on_messages if sql.startswith("SELECT"))


def account_lookups(queries: CaptureQueriesContext) -> int:
    table = WhatsAppAccount._meta.db_table
    return sum(1 for q in queries.captured_queries if q["sql"].startswith("SELECT") and f'FROM "{table}"' in q["sql"])


@pytest.mark.redis
def test_the_drain_looks_an_account_up_once_for_all_its_batches(account: WhatsAppAccount) -> None:
    messages = sent_messages(account, 7)
    for message in messages:
        webhook_event_store(body=status_body(account, message))

    with CaptureQueriesContext(connection) as queries:
        assert webhook_events_drain(batch_size=2) == 7

    assert statuses(messages) == [MessageStatus.DELIVERED] * 7
    assert account_lookups(queries) == 1  # 4 batches, one lookup


@pytest.mark.redis
def test_the_drain_looks_its_accounts_up_again_after_a_while(
    account: WhatsAppAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "DRAIN_ACCOUNTS_SECONDS", 0.0)
    messages = sent_messages(account, 7)
    for message in messages:
        webhook_event_store(body=status_body(account, message))

    with CaptureQueriesContext(connection) as queries:
        assert webhook_events_drain(batch_size=2) == 7

    assert account_lookups(queries) == 4  # one per batch


@pytest.mark.redis
def test_an_account_connected_while_the_drain_runs_gets_its_events_applied(account: WhatsAppAccount) -> None:
    """A WABA without a live account is not remembered as such from one batch to the next: the
    account may be connected meanwhile, and its events must not be dropped for the memo's sake."""
    messages = sent_messages(account, 2)
    live_status = account.status
    WhatsAppAccount.objects.filter(pk=account.pk).update(status=AccountStatus.DISCONNECTED)
    first, second = (webhook_event_store(body=status_body(account, message)) for message in messages)
    real_batch = webhooks._drain_batch

    def batch_then_connect(**kwargs: Any) -> int:
        taken = real_batch(**kwargs)
        WhatsAppAccount.objects.filter(pk=account.pk).update(status=live_status)
        return taken

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(webhooks, "_drain_batch", batch_then_connect)
        assert webhook_events_drain(batch_size=1) == 2

    assert WebhookEvent.objects.get(pk=first).error.startswith("no connected account")
    assert statuses(messages) == [MessageStatus.SENT, MessageStatus.DELIVERED]
    assert WebhookEvent.objects.get(pk=second).state == "processed"


@pytest.mark.redis
def test_a_second_drain_finds_nothing_to_do(account: WhatsAppAccount) -> None:
    message = sent_messages(account, 1)[0]
    webhook_event_store(body=status_body(account, message))
    webhook_events_drain()
    stamped = Message.objects.get(pk=message.pk).updated_at

    assert webhook_events_drain() == 0

    assert Message.objects.get(pk=message.pk).updated_at == stamped
    assert WebhookEvent.objects.get().attempts == 1


@pytest.mark.postgres  # SQLite stores the out-of-range number
@pytest.mark.redis
def test_an_event_the_database_refuses_is_marked_failed_and_does_not_hold_back_the_others(
    account: WhatsAppAccount,
) -> None:
    messages = sent_messages(account, 3)
    poisoned = messages[1]
    bodies = [status_body(account, message) for message in messages]
    # An error code beyond a 32-bit integer: PostgreSQL refuses the row and aborts the transaction.
    bodies[1] = status_body(account, poisoned, status="failed").replace(b"131026", b"99999999999")
    event_ids = [webhook_event_store(body=body) for body in bodies]
    not_json = webhook_event_store(body=b"{not json")

    assert webhook_events_drain() == 4

    assert statuses(messages) == [MessageStatus.DELIVERED, MessageStatus.SENT, MessageStatus.DELIVERED]
    events = {e.pk: e for e in WebhookEvent.objects.all()}
    assert [events[pk].state for pk in event_ids] == ["processed", "failed", "processed"]
    assert "out of range" in events[event_ids[1]].error and events[event_ids[1]].attempts == 1
    assert events[not_json].state == "failed" and "not JSON" in events[not_json].error


@pytest.mark.redis
def test_an_event_whose_handler_raises_is_marked_failed_and_the_rest_of_its_batch_applied(
    account: WhatsAppAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = sent_messages(account, 2)
    template = json.loads((FIXTURES / "template_approved.json").read_text().replace("__WABA_ID__", account.waba_id))

    def broken(*args: Any) -> None:
        raise KeyError("a bug in the template handler")

    monkeypatch.setitem(webhooks.HANDLERS, "message_template_status_update", broken)
    event_ids = [
        webhook_event_store(body=status_body(account, first)),
        webhook_event_store(body=json.dumps(template).encode()),
        webhook_event_store(body=status_body(account, second, status="read")),
    ]

    assert webhook_events_drain() == 3

    assert statuses([first, second]) == [MessageStatus.DELIVERED, MessageStatus.READ]
    events = {e.pk: e for e in WebhookEvent.objects.all()}
    assert [events[pk].state for pk in event_ids] == ["processed", "failed", "processed"]
    assert "a bug in the template handler" in events[event_ids[1]].error


@pytest.mark.redis
def test_statuses_in_one_batch_in_any_order_end_as_applied_one_by_one(account: WhatsAppAccount) -> None:
    names = ["sent", "delivered", "read", "failed"]
    natural = make_message(account, status=MessageStatus.SENDING, wamid="wamid.NATURAL")
    for name in names:  # one drain per status: each a batch of its own
        webhook_event_store(body=status_body(account, natural, status=name))
        webhook_events_drain()
    orders = list(itertools.permutations(names))
    messages = [
        make_message(account, status=MessageStatus.SENDING, wamid=f"wamid.ORDER{n}") for n in range(len(orders))
    ]
    for message, order in zip(messages, orders, strict=True):
        for name in order:
            webhook_event_store(body=status_body(account, message, status=name))

    assert webhook_events_drain() == 4 * len(orders)  # one batch for all of them

    fields = ("status", "sent_at", "delivered_at", "read_at", "failed_at", "error_code", "pricing_category", "billable")
    expected = Message.objects.values_list(*fields).get(pk=natural.pk)
    rows = Message.objects.filter(pk__in=[m.pk for m in messages]).values_list(*fields)
    assert set(rows) == {expected}
    assert expected[0] == MessageStatus.FAILED and expected[3] is not None  # failed is terminal; read was stamped


@pytest.mark.redis
def test_a_status_matched_by_its_callback_data_gives_the_wamid_to_later_statuses_of_the_batch(
    account: WhatsAppAccount,
) -> None:
    message = make_message(account, status=MessageStatus.SENDING, wamid=None)
    early = Message(pk=message.pk, wamid="wamid.RACED")  # the send response has not stored it yet
    webhook_event_store(body=status_body(account, early, status="sent"))
    no_callback = json.loads(status_body(account, early, status="read"))
    del no_callback["entry"][0]["changes"][0]["value"]["statuses"][0]["biz_opaque_callback_data"]
    webhook_event_store(body=json.dumps(no_callback).encode())

    assert webhook_events_drain() == 2

    message.refresh_from_db()
    assert (message.wamid, message.status) == ("wamid.RACED", MessageStatus.READ)
    assert set(WebhookEvent.objects.values_list("state", "attempts")) == {("processed", 1)}  # no retry needed


@pytest.mark.redis
def test_an_unmatched_event_leaves_the_drain_and_is_retried_2_4_8_16_32_seconds_apart_then_closed(
    account: WhatsAppAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed: list[tuple[Any, int]] = []
    retries: list[tuple[int, int]] = []
    task = tasks.webhook_event_process_task
    monkeypatch.setattr(task, "apply_async", lambda args, countdown: handed.append((args, countdown)))
    monkeypatch.setattr(task, "retry", lambda exc, countdown: retries.append((attempts(event_id), countdown)) or exc)
    event_id = webhook_event_store(body=status_body(account, Message(wamid="wamid.LATE", pk=987654321)))
    matched = sent_messages(account, 1)[0]
    webhook_event_store(body=status_body(account, matched))

    webhook_events_drain()

    assert handed == [((event_id,), 2)]  # the drain was attempt 1
    event = WebhookEvent.objects.get(pk=event_id)
    assert (event.state, event.attempts, event.error) == ("pending", 1, "statuses for unknown messages: wamid.LATE")
    assert statuses([matched]) == [MessageStatus.DELIVERED]  # the rest of the batch went on
    for _ in range(UNMATCHED_RETRIES - 1):
        with pytest.raises(webhooks.RetryLater):
            task.apply(args=[event_id], throw=True)
    assert retries == [(2, 4), (3, 8), (4, 16), (5, 32)]

    task.apply(args=[event_id], throw=True)  # the last try closes it as "not ours"

    event = WebhookEvent.objects.get(pk=event_id)
    assert (event.state, event.attempts) == ("processed", UNMATCHED_RETRIES + 1)
    assert "statuses for unknown messages: wamid.LATE" in event.error


def attempts(event_id: int) -> int:
    return WebhookEvent.objects.get(pk=event_id).attempts


# --- Nothing stranded ---------------------------------------------------------------------------


@pytest.mark.redis
def test_an_event_stored_while_the_drain_holds_the_key_is_applied_by_its_last_look(
    client: Client, account: WhatsAppAccount, monkeypatch: pytest.MonkeyPatch, enqueued: list[str]
) -> None:
    first, late = sent_messages(account, 2)
    post(client, status_body(account, first))  # takes the key and enqueues the drain
    assert enqueued == ["drain"]
    drain_until_empty = webhooks._drain_until_empty
    passes: list[int] = []

    def until_empty_then_a_webhook(**kwargs: Any) -> int:
        taken = drain_until_empty(**kwargs)
        if not passes:  # the drain found no more work but still holds the key: a webhook arrives
            assert post(client, status_body(account, late)).status_code == 200
        passes.append(taken)
        return taken

    monkeypatch.setattr(webhooks, "_drain_until_empty", until_empty_then_a_webhook)

    webhook_events_drain()

    assert enqueued == ["drain"]  # the late webhook saw the key held
    assert passes == [1, 1]  # ... and the last look, after the key was released, applied it
    assert statuses([first, late]) == [MessageStatus.DELIVERED] * 2
    assert cache.add(webhooks._drain_key(), 1, timeout=5)  # released


@pytest.mark.redis
def test_a_drain_running_longer_than_its_key_lives_keeps_it_and_no_second_drain_is_enqueued(
    client: Client, account: WhatsAppAccount, monkeypatch: pytest.MonkeyPatch, enqueued: list[str]
) -> None:
    monkeypatch.setattr(webhooks, "DRAIN_KEY_TTL", 1)
    first, *steady = sent_messages(account, 5)
    post(client, status_body(account, first))  # takes the key (1 s) and enqueues the drain
    drain_batch = webhooks._drain_batch
    arrivals = iter(steady)

    def slow_batch_then_a_webhook(**kwargs: Any) -> int:
        taken = drain_batch(**kwargs)
        time.sleep(0.4)  # 4 batches: the drain outlives the key's first second
        if (message := next(arrivals, None)) is not None:
            assert post(client, status_body(account, message)).status_code == 200
        return taken

    monkeypatch.setattr(webhooks, "_drain_batch", slow_batch_then_a_webhook)

    assert webhook_events_drain(batch_size=1) == 5

    assert enqueued == ["drain"]  # every webhook found the key the running drain kept
    assert statuses([first, *steady]) == [MessageStatus.DELIVERED] * 5
    assert cache.add(webhooks._drain_key(), 1, timeout=5)  # released at the end


@pytest.mark.redis
def test_a_lingering_drain_applies_the_next_burst_itself_and_stops_once_nothing_came_for_its_linger(
    client: Client, account: WhatsAppAccount, monkeypatch: pytest.MonkeyPatch, enqueued: list[str]
) -> None:
    first, *later = sent_messages(account, 3)
    burst = list(later)
    post(client, status_body(account, first))  # takes the key and enqueues the drain
    drain_batch = webhooks._drain_batch
    claims: list[tuple[float, int]] = []

    def batch_then_a_burst_when_idle(**kwargs: Any) -> int:
        taken = drain_batch(**kwargs)
        claims.append((time.monotonic(), taken))
        if not taken and burst:  # all applied, the drain lingers: Meta's next burst arrives
            for message in (burst.pop(0), burst.pop(0)):
                assert post(client, status_body(account, message)).status_code == 200
        return taken

    monkeypatch.setattr(webhooks, "_drain_batch", batch_then_a_burst_when_idle)
    started = time.monotonic()

    assert webhook_events_drain(linger=0.5) == 3

    assert enqueued == ["drain"]  # the burst found the key the lingering drain held
    taken = [count for _at, count in claims]
    assert taken[:3] == [1, 0, 2] and not any(taken[3:])  # applied by the drain itself, not its last look
    last_event = claims[2][0]
    assert claims[-1][0] - last_event >= 0.5  # then it waited its linger out
    assert time.monotonic() - started < 5
    assert statuses([first, *later]) == [MessageStatus.DELIVERED] * 3
    assert cache.add(webhooks._drain_key(), 1, timeout=5)  # released at the end


@pytest.mark.redis
def test_a_webhook_applied_inline_is_answered_without_waiting_for_a_linger(
    client: Client, account: WhatsAppAccount, settings: Any
) -> None:
    """With tasks run inline (as throughout this module) the drain runs inside the webhook's
    request: it must not linger there."""
    settings.WHATSAPP_WEBHOOK_DRAIN_LINGER = 5.0
    (message,) = sent_messages(account, 1)

    started = time.monotonic()
    assert post(client, status_body(account, message)).status_code == 200
    elapsed = time.monotonic() - started

    assert statuses([message]) == [MessageStatus.DELIVERED]  # applied within the request
    assert elapsed < 2.5


@pytest.mark.redis
def test_when_the_broker_refuses_the_drain_the_key_is_released_for_the_next_webhook(
    client: Client, account: WhatsAppAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def broker_down() -> None:
        calls.append("drain")
        raise BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.webhook_events_drain_task, "delay", broker_down)
    messages = sent_messages(account, 2)

    assert [post(client, status_body(account, m)).status_code for m in messages] == [200, 200]
    assert calls == ["drain", "drain"]  # each tried, none held the key for nothing


@pytest.mark.redis
def test_with_the_cache_down_the_webhook_is_answered_and_a_drain_enqueued_directly(
    client: Client, account: WhatsAppAccount, settings: Any
) -> None:
    settings.CACHES = _cache_settings(_redis_url(CACHE_DB, port=1))  # nothing listens there
    message = sent_messages(account, 1)[0]

    assert post(client, status_body(account, message)).status_code == 200

    assert statuses([message]) == [MessageStatus.DELIVERED]  # the drain ran (eagerly) without the key


@pytest.mark.redis
def test_with_the_cache_and_the_broker_down_the_webhook_is_answered_and_the_sweeper_applies_it(
    client: Client, account: WhatsAppAccount, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.CACHES = _cache_settings(_redis_url(CACHE_DB, port=1))
    message = sent_messages(account, 1)[0]
    with monkeypatch.context() as outage:
        outage.setattr(tasks.webhook_events_drain_task, "delay", lambda: (_ for _ in ()).throw(BrokerError("down")))

        response = post(client, status_body(account, message))

    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.state, statuses([message])) == ("pending", [MessageStatus.SENT])
    assert webhook_events_sweep() == 0  # not two minutes old yet

    # The broker is back; two minutes later the beat sweeper finds the event.
    WebhookEvent.objects.update(received_at=event.received_at - datetime.timedelta(minutes=3))
    assert webhook_events_sweep() == 1

    assert WebhookEvent.objects.get().state == "processed"
    assert statuses([message]) == [MessageStatus.DELIVERED]


@pytest.mark.redis
def test_the_sweeper_reenqueues_a_lost_retry_on_its_own_task(
    account: WhatsAppAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = sent_messages(account, 1)[0]
    event_id = webhook_event_store(body=status_body(account, message))
    old = WebhookEvent.objects.get().received_at - datetime.timedelta(minutes=3)
    WebhookEvent.objects.update(attempts=2, received_at=old)  # its retry task was lost
    drains: list[str] = []
    monkeypatch.setattr(tasks.webhook_events_drain_task, "delay", lambda: drains.append("drain"))

    assert webhook_events_sweep() == 1

    assert drains == []  # the drain takes only events never tried
    event = WebhookEvent.objects.get(pk=event_id)
    assert (event.state, event.attempts) == ("processed", 3)
    assert statuses([message]) == [MessageStatus.DELIVERED]


# --- Two drains at once -----------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_drains_never_apply_an_event_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    account = make_account(make_organization())
    messages = sent_messages(account, 40)
    for message in messages:
        webhook_event_store(body=status_body(account, message))
    applied: list[str] = []
    apply = StatusBatch.apply
    start = threading.Barrier(2)

    def slow_apply(self: StatusBatch, **kwargs: Any) -> Message | None:
        applied.append(kwargs["update"].wamid)
        threading.Event().wait(0.005)  # long enough for the two drains to overlap
        return apply(self, **kwargs)

    monkeypatch.setattr(StatusBatch, "apply", slow_apply)
    taken: list[int] = []
    errors: list[BaseException] = []

    def drain() -> None:
        try:
            start.wait(timeout=10)
            taken.append(webhook_events_drain(batch_size=5))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors and len(taken) == 2
    assert sum(taken) == 40
    assert Counter(applied) == {message.wamid: 1 for message in messages}
    assert set(WebhookEvent.objects.values_list("state", "attempts")) == {("processed", 1)}
    assert statuses(messages) == [MessageStatus.DELIVERED] * 40


# --- Credits: closed after the batch commits ------------------------------------------------------


def reserve(messages: list[Message], amount: str = "1.00") -> None:
    """Hold credits for ``messages`` as queuing them does (the organization has 100 credits)."""
    organization = messages[0].organization
    fund(organization, "100")
    credits_reserve(
        organization=organization,
        requests=[
            ReservationRequest(
                reference=credits_reference(m.pk), amount=Decimal(amount), category="utility", country_code="91"
            )
            for m in messages
        ],
    )


def holds(messages: list[Message]) -> list[tuple[str, Decimal]]:
    by_reference = {r.reference: (r.status, r.charged) for r in Reservation.objects.all()}
    return [by_reference[credits_reference(m.pk)] for m in messages]


def wait_until(condition: Any, *, seconds: float = 20) -> bool:
    """Poll ``condition`` (a query on this connection) until it holds or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        threading.Event().wait(0.02)
    return False


@pytest.mark.redis
def test_the_drain_settles_delivered_messages_and_releases_failed_ones_once(account: WhatsAppAccount) -> None:
    default_prices()
    delivered, read, failed = [
        make_message(account, status=MessageStatus.SENT, wamid=f"wamid.C{n}", category="utility") for n in range(3)
    ]
    reserve([delivered, read, failed])
    for message, name in ((delivered, "delivered"), (read, "read"), (failed, "failed")):
        webhook_event_store(body=status_body(account, message, status=name))
    webhook_events_drain()
    for message, name in ((delivered, "read"), (read, "delivered"), (failed, "delivered")):  # all too late
        webhook_event_store(body=status_body(account, message, status=name))

    webhook_events_drain()

    assert holds([delivered, read, failed]) == [
        ("settled", Decimal("0.50")),  # utility, as Meta's pricing said
        ("settled", Decimal("0.50")),  # a read comes without pricing: the message's own category
        ("released", Decimal("0")),
    ]
    assert LedgerEntry.objects.filter(kind="settlement").count() == 2
    balance = credit_balance_get(organization=account.organization)
    assert (balance.balance, balance.reserved) == (Decimal("99.00"), Decimal("0"))


@pytest.mark.redis
def test_in_one_batch_the_first_closing_status_of_a_message_decides_its_credits(account: WhatsAppAccount) -> None:
    default_prices()
    failed_first, delivered_first = sent_messages(account, 2)
    reserve([failed_first, delivered_first])
    for message, names in ((failed_first, ("failed", "delivered")), (delivered_first, ("delivered", "failed"))):
        for name in names:
            webhook_event_store(body=status_body(account, message, status=name))

    assert webhook_events_drain() == 4  # one batch

    # As if each status had been closed on its own: the second finds the hold gone.
    assert holds([failed_first, delivered_first]) == [("released", Decimal("0")), ("settled", Decimal("0.50"))]


def credit_closes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many holds each close of the organization's credits ended, one entry per close."""
    from whatsapp.services import charges

    closes: list[int] = []
    real = charges.reservations_close

    def counted(**kwargs: Any) -> int:
        closes.append(len(kwargs["closes"]))
        return real(**kwargs)

    monkeypatch.setattr(charges, "reservations_close", counted)
    return closes


@pytest.mark.redis
@pytest.mark.parametrize(
    ("interval", "closes_expected"),
    [(None, [4]), (0, [1, 1, 1, 1])],
    ids=["four-batches-within-a-second", "every-batch-outlives-the-interval"],
)
def test_the_drain_closes_the_credits_its_batches_gathered_once_per_interval(
    account: WhatsAppAccount, monkeypatch: pytest.MonkeyPatch, interval: float | None, closes_expected: list[int]
) -> None:
    default_prices()
    messages = sent_messages(account, 4)
    reserve(messages)
    for message in messages:
        webhook_event_store(body=status_body(account, message))
    closes = credit_closes(monkeypatch)
    if interval is not None:
        monkeypatch.setattr(webhooks, "DRAIN_CREDITS_SECONDS", interval)

    assert webhook_events_drain(batch_size=1) == 4  # four batches

    assert closes == closes_expected
    assert holds(messages) == [("settled", Decimal("0.50"))] * 4


@pytest.mark.redis
def test_when_a_batch_fails_on_the_database_the_credits_of_the_committed_ones_are_closed(
    account: WhatsAppAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    default_prices()
    first, second = sent_messages(account, 2)
    reserve([first, second])
    for message in (first, second):
        webhook_event_store(body=status_body(account, message))
    real = webhooks._events_apply_together
    calls = itertools.count()

    def second_batch_loses_its_connection(*args: Any, **kwargs: Any) -> Any:
        if next(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(*args, **kwargs)

    monkeypatch.setattr(webhooks, "_events_apply_together", second_batch_loses_its_connection)

    with pytest.raises(OperationalError):
        webhook_events_drain(batch_size=1)

    assert holds([first, second]) == [("settled", Decimal("0.50")), ("reserved", Decimal("0"))]
    assert statuses([first, second]) == [MessageStatus.DELIVERED, MessageStatus.SENT]


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_batch_commits_while_another_transaction_holds_the_credit_lock_and_settles_once_it_is_free() -> None:
    default_prices()
    account = make_account(make_organization())
    messages = sent_messages(account, 3)
    reserve(messages)
    for message in messages:
        webhook_event_store(body=status_body(account, message))
    locked, release = threading.Event(), threading.Event()
    taken: list[int] = []
    errors: list[BaseException] = []

    def hold_the_lock() -> None:
        try:
            with transaction.atomic():
                credit_account_lock(organization=account.organization)
                locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    def drain() -> None:
        try:
            taken.append(webhook_events_drain())
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    assert locked.wait(timeout=10)
    drainer = threading.Thread(target=drain)
    drainer.start()
    try:
        # The statuses are committed (seen from here) while the credits are still locked elsewhere.
        assert wait_until(lambda: statuses(messages) == [MessageStatus.DELIVERED] * 3)
        assert wait_until(lambda: set(WebhookEvent.objects.values_list("state", flat=True)) == {"processed"})
        assert holds(messages) == [("reserved", Decimal("0"))] * 3
    finally:
        release.set()
        holder.join(timeout=30)
        drainer.join(timeout=30)

    assert not errors and taken == [3]
    assert holds(messages) == [("settled", Decimal("0.50"))] * 3


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_drains_settle_every_reservation_exactly_once(monkeypatch: pytest.MonkeyPatch) -> None:
    default_prices()
    account = make_account(make_organization())
    messages = sent_messages(account, 30)
    reserve(messages)
    for name in ("delivered", "read"):  # each message's two statuses land in different batches
        for message in messages:
            webhook_event_store(body=status_body(account, message, status=name))
    apply = StatusBatch.apply

    def slow_apply(self: StatusBatch, **kwargs: Any) -> Message | None:
        threading.Event().wait(0.002)  # long enough for the two drains to overlap
        return apply(self, **kwargs)

    monkeypatch.setattr(StatusBatch, "apply", slow_apply)
    start = threading.Barrier(2)
    taken: list[int] = []
    errors: list[BaseException] = []

    def drain() -> None:
        try:
            start.wait(timeout=10)
            taken.append(webhook_events_drain(batch_size=4))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors and sum(taken) == 60
    assert set(WebhookEvent.objects.values_list("state", "attempts")) == {("processed", 1)}
    assert statuses(messages) == [MessageStatus.READ] * 30
    assert holds(messages) == [("settled", Decimal("0.50"))] * 30
    assert LedgerEntry.objects.filter(kind="settlement").count() == 30
    balance = credit_balance_get(organization=account.organization)
    assert (balance.balance, balance.reserved) == (Decimal("85.00"), Decimal("0"))


@pytest.mark.redis
def test_credits_left_held_by_a_crash_after_the_commit_are_closed_by_the_sweep_once(
    account: WhatsAppAccount, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    default_prices()
    delivered, free, failed, waiting = sent_messages(account, 4)
    reserve([delivered, free, failed, waiting])
    free_body = json.loads(status_body(account, free))
    free_body["entry"][0]["changes"][0]["value"]["statuses"][0]["pricing"] = {
        "billable": False,
        "pricing_model": "PMP",
        "type": "free_customer_service",
        "category": "service",
    }
    for body in (
        status_body(account, delivered),
        json.dumps(free_body).encode(),
        status_body(account, failed, status="failed"),
    ):
        webhook_event_store(body=body)

    def crash(self: CreditsFollow) -> int:
        raise OperationalError("server closed the connection unexpectedly")

    with monkeypatch.context() as patched:
        patched.setattr(CreditsFollow, "close", crash)
        assert webhook_events_drain() == 3

    # The statuses and the events are committed; the holds are not closed, and that is logged.
    assert statuses([delivered, free, failed]) == [MessageStatus.DELIVERED, MessageStatus.DELIVERED, "failed"]
    assert set(WebhookEvent.objects.values_list("state", flat=True)) == {"processed"}
    assert holds([delivered, free, failed, waiting]) == [("reserved", Decimal("0"))] * 4
    assert "the sweeper will close them" in caplog.text
    now = timezone.now()
    assert unsettled_credits_close(now=now) == 0  # a drain may be closing them right now

    assert unsettled_credits_close(now=now + UNSETTLED_AFTER + datetime.timedelta(seconds=1)) == 3

    assert holds([delivered, free, failed, waiting]) == [
        ("settled", Decimal("0.50")),
        ("settled", Decimal("0")),  # the free pricing the message kept
        ("released", Decimal("0")),
        ("reserved", Decimal("0")),  # still only sent: Meta has not delivered it
    ]
    assert unsettled_credits_close(now=now + datetime.timedelta(hours=1)) == 0
    assert LedgerEntry.objects.filter(kind__in=["settlement", "release"]).count() == 3

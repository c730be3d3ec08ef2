"""The webhook drain: the receiver enqueues one drain per burst (Redis ``SET NX``), the drain applies
pending events in batches, each in a savepoint, and nothing is stranded or applied twice.

The cache is a real Redis (database 12, a key prefix of the test's own) because the mechanism is
Redis's ``SET NX``; the concurrency test needs PostgreSQL's ``SKIP LOCKED`` and two connections.
"""

from __future__ import annotations

import datetime
import json
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from kombu.exceptions import OperationalError as BrokerError

from config.celery import app as celery_app
from tests import settings as test_settings
from tests.books.factories import make_organization
from tests.whatsapp.factories import make_account, make_message
from whatsapp import tasks
from whatsapp.choices import MessageStatus
from whatsapp.models import Message, WebhookEvent, WhatsAppAccount
from whatsapp.services import webhooks
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


@pytest.mark.redis
def test_a_second_drain_finds_nothing_to_do(account: WhatsAppAccount) -> None:
    message = sent_messages(account, 1)[0]
    webhook_event_store(body=status_body(account, message))
    webhook_events_drain()
    stamped = Message.objects.get(pk=message.pk).updated_at

    assert webhook_events_drain() == 0

    assert Message.objects.get(pk=message.pk).updated_at == stamped
    assert WebhookEvent.objects.get().attempts == 1


@pytest.mark.redis
def test_a_poisoned_event_is_marked_failed_and_does_not_hold_back_the_others(
    account: WhatsAppAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = sent_messages(account, 3)
    poisoned = messages[1]
    apply = webhooks.message_status_apply

    def apply_or_fail(**kwargs: Any) -> Message | None:
        result = apply(**kwargs)
        if kwargs["update"].wamid == poisoned.wamid:
            with connection.cursor() as cursor:  # a database error: PostgreSQL aborts the transaction
                cursor.execute("SELECT 1 / 0")
        return result

    monkeypatch.setattr(webhooks, "message_status_apply", apply_or_fail)
    event_ids = [webhook_event_store(body=status_body(account, message)) for message in messages]
    not_json = webhook_event_store(body=b"{not json")

    assert webhook_events_drain() == 4

    assert statuses(messages) == [MessageStatus.DELIVERED, MessageStatus.SENT, MessageStatus.DELIVERED]
    events = {e.pk: e for e in WebhookEvent.objects.all()}
    assert [events[pk].state for pk in event_ids] == ["processed", "failed", "processed"]
    assert "division by zero" in events[event_ids[1]].error and events[event_ids[1]].attempts == 1
    assert events[not_json].state == "failed" and "not JSON" in events[not_json].error


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
    apply = webhooks.message_status_apply
    start = threading.Barrier(2)

    def slow_apply(**kwargs: Any) -> Message | None:
        applied.append(kwargs["update"].wamid)
        threading.Event().wait(0.005)  # long enough for the two drains to overlap
        return apply(**kwargs)

    monkeypatch.setattr(webhooks, "message_status_apply", slow_apply)
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

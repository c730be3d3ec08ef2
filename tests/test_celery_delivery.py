"""Celery end to end: a task sent through the real Redis broker runs in a real worker process, which
keeps its database session from task to task and drains stored webhooks.

The worker gets a Redis database of its own (db 14 on the test Redis server) and a queue whose name
is unique to the test run, so parallel runs on one machine cannot take each other's messages.
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from kombu import Exchange, Queue

from books.tasks import worker_ping, worker_ping_key
from config.celery import app
from tests import settings as test_settings
from tests.books.factories import make_organization
from tests.whatsapp.factories import make_account, make_message
from whatsapp.choices import MessageStatus
from whatsapp.models import Message, WebhookEvent
from whatsapp.services.webhooks import webhook_event_store
from whatsapp.tasks import webhook_events_drain_task

BASE_DIR = Path(__file__).resolve().parent.parent
BROKER_DB = 14
DELIVERY_TIMEOUT = 60  # seconds for the worker to boot and run the task


def _broker_url() -> str:
    parts = urlsplit(test_settings.redis_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{BROKER_DB}", "", ""))


def _database_url() -> str:
    """The test database (not the configured one) as a URL the worker's settings can read."""
    db = connection.settings_dict
    if db["ENGINE"] != "django.db.backends.postgresql":
        return "sqlite:///:memory:"  # an in-memory test database cannot be shared; the ping only needs SELECT 1
    user = quote(db["USER"] or "", safe="")
    password = quote(db["PASSWORD"] or "", safe="")
    return f"postgres://{user}:{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(tmp_path: Path, db: None) -> Iterator[tuple[str, str, Path]]:
    """A ``celery -A config worker -P solo`` on a private queue; always stopped, even when the test fails."""
    queue = f"test-delivery-{uuid.uuid4().hex}"
    broker_url = _broker_url()
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "REDIS_URL": broker_url,
        "DATABASE_URL": _database_url(),
        "SECRET_KEY": "test-celery-worker",
        "DEBUG": "false",
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "solo", "-Q", queue]
    command += ["-n", f"{queue}@%h", "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "INFO"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield queue, broker_url, log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        with redis.Redis.from_url(broker_url) as client:  # the queue and kombu's bindings for it
            keys = list(client.scan_iter(match=f"*{queue}*"))
            if keys:
                client.delete(*keys)


def _ping(worker: tuple[str, str, Path]) -> dict[str, str]:
    """Publish a ping to the worker's queue; the answer it leaves in its cache."""
    queue, broker_url, log = worker
    token = uuid.uuid4().hex
    answers = RedisCache(broker_url, {})  # the worker's cache: REDIS_URL serves as broker and cache
    with app.connection_for_write(broker_url) as conn:
        Queue(queue, Exchange(queue), routing_key=queue)(conn.default_channel).declare()
        worker_ping.apply_async(args=[token], queue=queue, connection=conn)
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    answer = None
    while answer is None and time.monotonic() < deadline:
        answer = answers.get(worker_ping_key(token))
        if answer is None:
            time.sleep(0.2)
    answers.delete(worker_ping_key(token))
    assert answer is not None, f"no answer within {DELIVERY_TIMEOUT}s; worker log:\n{log.read_text()}"
    return answer


@pytest.mark.redis
def test_a_task_sent_through_redis_runs_in_a_real_worker(worker: tuple[str, str, Path]) -> None:
    # Given a worker consuming a queue on Redis, when a ping is published to that queue,
    answer = _ping(worker)

    # then the worker runs it: the answer shows up in the worker's cache.
    assert answer["hostname"].startswith(f"{worker[0]}@")
    if connection.vendor == "postgresql":
        assert answer["database"] == connection.settings_dict["NAME"]  # the worker used the test database


def _other_sessions() -> list[int]:
    """Backends connected to the test database other than this test's own (the worker's)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # pg_stat_activity is cached per transaction
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return sorted(pid for (pid,) in cursor.fetchall())


@pytest.mark.postgres
@pytest.mark.redis
def test_a_worker_keeps_its_database_session_from_one_task_to_the_next(worker: tuple[str, str, Path]) -> None:
    # Given a worker that ran a task (Celery's Django fix-up alone would close the session after it),
    _ping(worker)
    after_first = _other_sessions()

    # when it runs another,
    _ping(worker)

    # then the second ran on the first one's session (CONN_MAX_AGE applies to workers too).
    assert len(after_first) == 1
    assert _other_sessions() == after_first


@pytest.mark.postgres
@pytest.mark.redis
def test_a_real_worker_drains_stored_webhooks(worker: tuple[str, str, Path], transactional_db: None) -> None:
    queue, broker_url, log = worker
    account = make_account(make_organization())
    messages = [make_message(account, status=MessageStatus.SENT, wamid=f"wamid.WORKER{n}") for n in range(3)]
    for message in messages:
        status = {"id": message.wamid, "status": "delivered", "timestamp": "1763712005"}
        change = {"field": "messages", "value": {"statuses": [status]}}
        payload = {"object": "whatsapp_business_account", "entry": [{"id": account.waba_id, "changes": [change]}]}
        webhook_event_store(body=json.dumps(payload).encode())

    # Given three stored webhooks (committed: the worker has a session of its own), when a drain
    # is published to the worker's queue,
    with app.connection_for_write(broker_url) as conn:
        Queue(queue, Exchange(queue), routing_key=queue)(conn.default_channel).declare()
        webhook_events_drain_task.apply_async(queue=queue, connection=conn)

    # then the worker applies all three.
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while WebhookEvent.objects.filter(state="pending").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert set(WebhookEvent.objects.values_list("state", flat=True)) == {"processed"}, log.read_text()
    assert set(Message.objects.filter(pk__in=[m.pk for m in messages]).values_list("status", flat=True)) == {
        MessageStatus.DELIVERED
    }


@pytest.mark.django_db
def test_a_redelivered_ping_keeps_the_first_answer() -> None:
    token = uuid.uuid4().hex
    worker_ping.apply(args=[token])
    first = cache.get(worker_ping_key(token))

    worker_ping.apply(args=[token])

    assert cache.get(worker_ping_key(token)) == first
    assert first["database"] == str(settings.DATABASES["default"]["NAME"])
    cache.delete(worker_ping_key(token))


def test_a_worker_loads_its_tasks_without_the_web_urlconf() -> None:
    """Booting as a worker does (Django set up, every app's tasks imported) leaves the URLconf, the
    views and the API schema generator unloaded: Django's system checks are skipped there."""
    web = ("config.urls", "drf_spectacular.views", "whatsapp.views.webhook")
    code = (
        "import sys; from config.celery import app; app.loader.import_default_modules(); import whatsapp.tasks;"
        f"print(sorted(m for m in {web!r} if m in sys.modules))"
    )
    env = {key: value for key, value in os.environ.items() if key != "CELERY_SKIP_CHECKS"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert "whatsapp.tasks.dispatch_pump_task" in app.tasks

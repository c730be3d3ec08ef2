"""Celery end to end: a task sent through the real Redis broker runs in a real worker process.

The worker gets a Redis database of its own (db 14 on the test Redis server) and a queue whose name
is unique to the test run, so parallel runs on one machine cannot take each other's messages.
"""

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


@pytest.mark.redis
def test_a_task_sent_through_redis_runs_in_a_real_worker(worker: tuple[str, str, Path]) -> None:
    queue, broker_url, log = worker
    token = uuid.uuid4().hex
    answers = RedisCache(broker_url, {})  # the worker's cache: REDIS_URL serves as broker and cache

    # Given a worker consuming a queue on Redis, when a ping is published to that queue,
    with app.connection_for_write(broker_url) as conn:
        Queue(queue, Exchange(queue), routing_key=queue)(conn.default_channel).declare()
        worker_ping.apply_async(args=[token], queue=queue, connection=conn)

    # then the worker runs it: the answer shows up in the worker's cache.
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    answer = None
    while answer is None and time.monotonic() < deadline:
        answer = answers.get(worker_ping_key(token))
        if answer is None:
            time.sleep(0.2)
    answers.delete(worker_ping_key(token))
    assert answer is not None, f"no answer within {DELIVERY_TIMEOUT}s; worker log:\n{log.read_text()}"
    assert answer["hostname"].startswith(f"{queue}@")
    if connection.vendor == "postgresql":
        assert answer["database"] == connection.settings_dict["NAME"]  # the worker used the test database


@pytest.mark.django_db
def test_a_redelivered_ping_keeps_the_first_answer() -> None:
    token = uuid.uuid4().hex
    worker_ping.apply(args=[token])
    first = cache.get(worker_ping_key(token))

    worker_ping.apply(args=[token])

    assert cache.get(worker_ping_key(token)) == first
    assert first["database"] == str(settings.DATABASES["default"]["NAME"])
    cache.delete(worker_ping_key(token))

"""No lost and no doubled message: a worker killed mid-batch, Redis gone for a minute, Meta
timing out after it accepted a send, and Meta refusing the access token until it is replaced.

Real parts throughout: PostgreSQL, a Redis server of the test's own (so it can be stopped), a real
Celery worker process (prefork) running the dispatch pumps, and the Cloud API sandbox on a live
server as Meta. "Sent exactly once" is counted where Meta would count it: the sandbox's accepted
messages, by ``biz_opaque_callback_data`` (the hub's message id).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from books.models import Notification
from config.celery import app
from tests.books.factories import make_organization
from tests.whatsapp.factories import make_sandbox_account
from tests.whatsapp.test_end_to_end import APP_ID, TOKEN, WABA_ID, approved_template, invoice_components
from whatsapp import client as client_module
from whatsapp.choices import MessageStatus
from whatsapp.models import Message, WhatsAppAccount
from whatsapp.sandbox import delivery
from whatsapp.sandbox import services as sandbox
from whatsapp.sandbox.models import SandboxBusinessAccount, SandboxMessage
from whatsapp.services import pump as pump_module
from whatsapp.services.accounts import account_token_replace
from whatsapp.services.dispatch import message_template_queue, messages_sweep
from whatsapp.tasks import dispatch_pump_task

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.redis]

BASE_DIR = Path(__file__).resolve().parent.parent.parent
WAIT = 60  # seconds any one stage may take


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A redis-server of the test's own, which the test may stop and start again (empty, like a
    Redis that lost its data)."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = _free_port()
        self.dir = tmp_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _until(lambda: _answers(self.port), "Redis to start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _until(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Worker:
    """``celery -A config worker -P prefork -c 1`` on the test database and the test's Redis,
    sending to the sandbox on the live server. Killable as a whole process group."""

    def __init__(self, *, redis_url: str, graph_url: str, log: Path) -> None:
        db = connection.settings_dict
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "false",
            "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "REDIS_URL": redis_url,
            "WHATSAPP_GRAPH_URL": graph_url,
            "WHATSAPP_SANDBOX_ENABLED": "false",
            # 20 messages a second, so that a batch is still going when the test strikes.
            "WHATSAPP_PACE_HEADROOM": "0.25",
        }
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "prefork", "-c", "1"]
        command += ["--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "INFO"]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, cwd=BASE_DIR, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def signal(self, signum: int) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=15)
        self.kill()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def live(sandbox_live: str, celery_eager: None) -> str:
    return sandbox_live


@pytest.fixture
def account(live: str) -> WhatsAppAccount:
    return make_sandbox_account(make_organization(), waba_id=WABA_ID, app_id=APP_ID, token=TOKEN)


@pytest.fixture
def worker(live: str, redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Worker]:
    """The worker, and this process's wakes sent to its broker (this process runs its own tasks
    inline, so the webhooks the sandbox posts are applied here)."""

    def wake(*, countdown: float = 0, force: bool = False) -> None:
        with app.connection_for_write(redis_server.url) as conn:  # send_task: never run inline
            app.send_task(dispatch_pump_task.name, connection=conn)

    monkeypatch.setattr(pump_module, "dispatch_wake", wake)
    worker = Worker(redis_url=redis_server.url, graph_url=live + "/sandbox/graph", log=tmp_path / "worker.log")
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        if os.environ.get("CI") and worker.log.exists():
            print(worker.log.read_text(errors="replace")[-4000:])


def queue(account: WhatsAppAccount, count: int) -> list[Message]:
    return [
        message_template_queue(
            account=account,
            to=f"+9198201{index:05d}",
            name="invoice_notice",
            language="en",
            components=invoice_components(),
        )
        for index in range(count)
    ]


def accepted() -> Counter[str]:
    """How many times the sandbox ("Meta") accepted each hub message id."""
    return Counter(
        str(request.get("biz_opaque_callback_data"))
        for request in SandboxMessage.objects.filter(direction="outbound").values_list("request", flat=True)
    )


def sweep_later(minutes: int) -> dict[str, int]:
    return messages_sweep(now=timezone.now() + datetime.timedelta(minutes=minutes))


def sweep_until_all_accepted(count: int, *, minutes: int) -> None:
    """The beat's sweeper ``minutes`` later, then its wakes every two seconds (a second sweep at
    that simulated time would take back the live pump's fresh claims too), until the sandbox has
    every message."""
    sweep_later(minutes=minutes)
    deadline = time.monotonic() + WAIT
    while len(accepted()) < count:
        assert time.monotonic() < deadline, f"timed out: {len(accepted())} of {count} at the sandbox"
        time.sleep(2)
        pump_module.dispatch_wake(force=True)


def all_read(messages: list[Message]) -> bool:
    delivery.flush()
    return Message.objects.filter(pk__in=[m.pk for m in messages], status=MessageStatus.READ).count() == len(messages)


def test_a_worker_killed_mid_batch_loses_nothing_and_doubles_nothing(
    live: str, account: WhatsAppAccount, worker: Worker
) -> None:
    approved_template(live)
    sandbox.sandbox_settings_update(latency_ms=1500)  # requests are in flight when the worker dies
    messages = queue(account, 60)
    ids = [m.pk for m in messages]

    # Strike once some messages are out, some claimed and waiting for their slot, some not claimed.
    started = Message.objects.filter(pk__in=ids, sending_at__isnull=False)
    _until(lambda: started.count() >= 10, "the first sends")
    worker.signal(signal.SIGSTOP)
    time.sleep(2.0)  # every request already written reaches the sandbox, past its latency
    worker.kill()
    claimed_not_started = Message.objects.filter(pk__in=ids, status=MessageStatus.SENDING, sending_at__isnull=True)
    assert claimed_not_started.exists(), "the kill should leave claimed rows behind"
    assert Message.objects.filter(pk__in=ids, status=MessageStatus.QUEUED).exists()
    out_before_the_kill = set(accepted())
    assert 10 <= len(out_before_the_kill) < 60
    # Rows marked started whose request had not left when the worker died: Meta never saw them.
    in_the_gap = {str(pk) for pk in started.values_list("pk", flat=True)} - out_before_the_kill

    # The sweeper gives the dead worker's claims back once the lease is over; a new worker sends them.
    worker.start()
    sweep_until_all_accepted(60 - len(in_the_gap), minutes=3)
    _until(lambda: all_read([m for m in messages if str(m.pk) not in in_the_gap]), "the others read")
    # A quarter of an hour on, WhatsApp has reported on later sends of the number and never on
    # those: they are sent again (the others are left alone).
    swept = sweep_later(minutes=20)
    assert (swept["resent"], swept["unconfirmed"]) == (len(in_the_gap), 0)
    _until(lambda: len(accepted()) == 60, "the ones in the gap sent again")
    _until(lambda: all_read(messages), "every message read")
    assert accepted() == Counter({str(pk): 1 for pk in ids})
    assert sweep_later(minutes=40)["unconfirmed"] == 0


def test_redis_gone_for_a_minute_loses_nothing_and_doubles_nothing(
    live: str, account: WhatsAppAccount, worker: Worker, redis_server: RedisServer
) -> None:
    approved_template(live)
    sandbox.sandbox_settings_update(latency_ms=100)
    messages = queue(account, 60)
    ids = [m.pk for m in messages]
    _until(lambda: len(accepted()) >= 10, "the first sends")

    redis_server.stop()  # broker, cache and pacer gone: whatever was queued in Redis is lost
    time.sleep(60)  # a minute: longer than the running and queued keys, and the broker's first reconnects
    assert len(accepted()) < 60, "dispatch must stop without its pacer"
    redis_server.start()  # back, empty

    # Nothing in Redis remembers the rows: the sweeper finds them in PostgreSQL and wakes a pump.
    sweep_until_all_accepted(60, minutes=6)
    assert accepted() == Counter({str(pk): 1 for pk in ids})
    _until(lambda: all_read(messages), "every message read")


def test_a_timeout_after_meta_accepted_is_not_resent_and_the_webhook_completes_it(
    live: str, account: WhatsAppAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    approved_template(live)
    monkeypatch.setattr(client_module, "TIMEOUT", httpx2.Timeout(5.0, read=0.5))
    monkeypatch.setattr(client_module, "_shared_client", None)
    sandbox.sandbox_settings_update(timeout_seconds=1.5)
    sandbox.fault_create(code="timeout", recipient="919820100002", mode="sync", remaining=1)
    monkeypatch.setattr(pump_module, "dispatch_wake", lambda **kwargs: None)  # this test runs the pump itself
    messages = queue(account, 5)
    slow = messages[2]

    result = pump_module.dispatch_pump(run_seconds=5)

    assert (result.sent, result.unanswered, result.retried) == (4, 1, 0)
    slow.refresh_from_db()
    assert slow.status == MessageStatus.SENDING and slow.wamid is None and slow.error_title
    _until(lambda: len(accepted()) == 5, "the late acceptance")  # Meta did take it
    assert pump_module.dispatch_pump(run_seconds=1).sent == 0  # and it is not sent again

    _until(lambda: all_read(messages), "every message read")
    slow.refresh_from_db()
    assert slow.wamid and slow.status == MessageStatus.READ
    assert accepted() == Counter({str(m.pk): 1 for m in messages})
    assert sweep_later(minutes=30)["unconfirmed"] == 0


def test_a_refused_access_token_pauses_the_account_and_a_new_one_sends_every_message_once(
    live: str, account: WhatsAppAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    approved_template(live)
    monkeypatch.setattr(pump_module, "dispatch_wake", lambda **kwargs: None)  # this test runs the pump itself
    messages = queue(account, 5)
    ids = [m.pk for m in messages]
    new_token = "EAAEndToEndTokenIssuedAgain000000000000000"
    # Meta revoked the token the hub holds (a system user's token was regenerated).
    SandboxBusinessAccount.objects.filter(waba_id=account.waba_id).update(access_token=new_token)

    result = pump_module.dispatch_pump(run_seconds=2)

    assert (result.sent, result.failed, result.retried) == (0, 0, 0) and result.paused >= 1
    waiting = Message.objects.filter(pk__in=ids, status=MessageStatus.QUEUED, attempts=0, sending_at__isnull=True)
    assert waiting.count() == 5  # none failed for a token: all wait
    account.refresh_from_db()
    assert account.token_refused_at is not None and account.check_error_code == 190
    notices = Notification.objects.filter(organization=account.organization, kind="whatsapp.token_refused")
    assert notices.count() == 1
    assert pump_module.dispatch_pump(run_seconds=1).paused == 0  # the paused account's rows are not claimed
    assert not accepted()

    with pytest.raises(ValidationError) as refused:  # a wrong token: Meta is asked, nothing is saved
        account_token_replace(account=account, access_token="EAAStillNotTheRightToken00000000000000000")
    assert "access_token" in refused.value.message_dict
    account.refresh_from_db()
    assert account.token_refused_at is not None and account.access_token == TOKEN

    account_token_replace(account=account, access_token=new_token)
    account.refresh_from_db()
    assert (account.token_refused_at, account.check_error, account.access_token) == (None, "", new_token)

    assert pump_module.dispatch_pump(run_seconds=3).sent == 5
    assert accepted() == Counter({str(pk): 1 for pk in ids})
    _until(lambda: all_read(messages), "every message read")
    assert notices.count() == 1

"""Webhook ingestion: signed status webhooks accepted (200) and applied (message delivered) per second.

The hub runs as deployed, on the benchmark's PostgreSQL database: gunicorn serving ``config.wsgi``
on loopback and a Celery worker on Redis, both with production settings (DEBUG off). This process
seeds one organization with a connected account and one outbound message in status "sent" per
webhook, then, at each level of concurrency, posts a "delivered" status for a distinct message
(distinct bodies: the receiver stores a body once, so a repeated one would be a no-op), signed with
``X-Hub-Signature-256`` as Meta signs it, from ``senders`` keep-alive connections at once.

- Accepted: answered 200 (stored, and a drain task enqueued unless one is pending). Latency is
  send → 200 as the sender saw it; accepted per second is requests / the level's wall time.
- Applied: the message is "delivered" in the database. Applied per second is messages / (first
  request → the last message applied, by its ``updated_at``), so it includes the queue's drain
  after the last request; latency is send → applied, per message.
- CPU per webhook, by process (``bench.cpu``): gunicorn, the Celery worker, their PostgreSQL
  backends, the senders (this process) and whatever else kept the machine busy.

The senders share the machine's two cores with the server, the worker and PostgreSQL, so the
figures are the whole pipeline's on one box, and the senders must cost little, as wrk does, not to
take the cores they measure. That is why they are hand-written (``_Connection``, ``_Exchange``):
each request's bytes are built before the level starts, each sender keeps one HTTP/1.1 connection
and parses each answer (status line, headers, a ``Content-Length`` body) as its bytes arrive, and
one watchdog per level enforces the timeout instead of a timer per request. httpx2's AsyncClient,
used before, spent about 1 ms of CPU per webhook, a quarter of the machine at the goal's rate and
more than PostgreSQL; these senders spend about 0.2 ms.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx2
import redis
from django.db import connection
from django.db.models import Count, Max
from django.utils import timezone

from bench.cpu import CpuMeter
from bench.servers import HOST, Servers, free_port, production_env
from bench.timing import Result
from books.services.organizations import organization_create
from whatsapp.choices import AccountStatus, Direction, MessageStatus, MessageType
from whatsapp.models import Message, PhoneNumber, WebhookEvent, WhatsAppAccount
from whatsapp.signature import signature_compute

BASE_DIR = Path(__file__).resolve().parent.parent
FIXTURE = BASE_DIR / "tests" / "whatsapp" / "fixtures" / "webhooks" / "status_delivered.json"
PATH = "/webhooks/whatsapp/"
APP_SECRET = "bench-app-secret"  # noqa: S105 (signs loopback traffic to a throwaway database)
VERIFY_TOKEN = "bench-verify-token"  # noqa: S105
WABA_ID = "109000000000001"
PHONE_NUMBER_ID = "209000000000001"
READY_SECONDS = 60  # for gunicorn to answer, and for the worker to apply the warm-up webhooks
SEND_TIMEOUT = 30.0  # seconds for one request, connecting included
WATCHDOG_SECONDS = 0.5  # how often the senders' timeouts are checked (so, their precision)
MAX_HEAD = 64 * 1024  # bytes of a response's status line and headers
GOAL_PER_SECOND = 600
GOAL_P99_MS = 250
GOAL_SENDERS = 50


@dataclass(frozen=True)
class Level:
    senders: int
    requests: int


@dataclass(frozen=True)
class Options:
    redis_url: str
    levels: tuple[Level, ...] = (Level(1, 300), Level(10, 1500), Level(50, 3000))
    level_seconds: float = 30.0  # no new request after this long; in-flight ones still count
    drain_seconds: float = 120.0  # how long to wait for a level's messages to be applied
    warmup: int = 50
    # gunicorn on 2 cores: 2 processes, one per core (the GIL keeps each on one), gthread with 8
    # threads each so that a request waiting on PostgreSQL's commit or on Redis does not idle its
    # core. gthread keeps connections alive, as Meta's senders do; the sync worker closes each one
    # (~50 % more CPU per request for the senders, and for gunicorn with the 4-6 sync workers it
    # then needs to overlap those waits). Tried at 50 senders: sync 2, 4, 6 workers; gthread 2x4,
    # 2x8, 2x16, 3x4, 3x8, 4x4; 2x8 was at or near the top each time. A gthread process accepts
    # connections up to worker_connections (default 1000): a burst of new keep-alive connections
    # mostly lands on one process, which then saturates its core while the other idles (measured:
    # 60-90 % of the requests on one process). 32 per process spreads 50 senders over both and
    # still leaves room for idle keep-alive connections.
    gunicorn_workers: int = 2
    gunicorn_threads: int = 8
    gunicorn_connections: int = 32
    celery_concurrency: int = 2  # Celery's default on 2 cores (one pool process per core)
    celery_nice: int = 0  # > 0 runs the worker at a lower CPU priority than the web server


@dataclass
class Sent:
    """One request as the sender saw it."""

    message_id: int
    started_at: float  # wall clock (time.time()), to compare with the worker's updated_at
    latency: float
    status: int | str  # the HTTP status, or the transport error's name


@dataclass
class LevelRun:
    level: Level
    sent: list[Sent] = field(default_factory=list)
    wall_seconds: float = 0.0
    capped: bool = False

    @property
    def accepted(self) -> list[Sent]:
        return [s for s in self.sent if s.status == 200]

    @property
    def refused(self) -> list[Sent]:
        return [s for s in self.sent if s.status != 200]


# --- Data -------------------------------------------------------------------------------------


def _seed(*, messages: int) -> list[int]:
    """One organization with a connected account and ``messages`` outbound messages in "sent"."""
    organization = organization_create(name="Bench Webhooks", country="IN", currency="INR", time_zone="Asia/Kolkata")
    account = WhatsAppAccount.objects.create(
        organization=organization,
        waba_id=WABA_ID,
        app_id="309000000000001",
        name="Bench Webhooks WhatsApp",
        access_token="EAABenchAccessToken000000000000000000000",  # noqa: S106 (never sent anywhere)
        status=AccountStatus.CONNECTED,
    )
    number = PhoneNumber.objects.create(
        organization=organization,
        account=account,
        phone_number_id=PHONE_NUMBER_ID,
        display_phone_number="+91 22 4000 0001",
        verified_name=organization.name,
        code_verification_status="VERIFIED",
        quality_rating="GREEN",
        status="CONNECTED",
        synced_at=timezone.now(),
    )
    account.default_phone_number = number
    account.save(update_fields=["default_phone_number"])
    now = timezone.now()
    rows = [
        Message(
            organization=organization,
            account=account,
            phone_number=number,
            direction=Direction.OUTBOUND,
            message_type=MessageType.TEMPLATE,
            phone=f"+9198{n % 100_000_000:08d}",
            status=MessageStatus.SENT,
            wamid=f"wamid.BENCH{n:020d}",
            queued_at=now,
            sent_at=now,
        )
        for n in range(messages)
    ]
    return [message.pk for message in Message.objects.bulk_create(rows, batch_size=1000)]


def _signed_bodies(message_ids: list[int]) -> list[tuple[int, bytes, str]]:
    """``(message id, body, signature)``: a "delivered" status for each message, as Meta sends it."""
    template = FIXTURE.read_text().replace("__WABA_ID__", WABA_ID).replace("__PHONE_NUMBER_ID__", PHONE_NUMBER_ID)
    wamids = dict(Message.objects.filter(pk__in=message_ids).values_list("pk", "wamid"))
    signed = []
    for message_id in message_ids:
        payload = json.loads(
            template.replace("__WAMID__", wamids[message_id]).replace("__MESSAGE_ID__", str(message_id))
        )
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode()
        signed.append((message_id, body, signature_compute(body, APP_SECRET)))
    return signed


# --- The hub's processes ----------------------------------------------------------------------


def _server_env(options: Options) -> dict[str, str]:
    """Production settings pointed at the benchmark's database and Redis database."""
    env = production_env(redis_url=options.redis_url, app_secret=APP_SECRET, verify_token=VERIFY_TOKEN)
    env["WHATSAPP_SANDBOX_ENABLED"] = "false"
    return env


def _gunicorn(options: Options, port: int) -> list[str]:
    worker_class = "gthread" if options.gunicorn_threads > 1 else "sync"
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi",
        f"--bind={HOST}:{port}",
        f"--workers={options.gunicorn_workers}",
        f"--threads={options.gunicorn_threads}",
        f"--worker-class={worker_class}",
        f"--worker-connections={options.gunicorn_connections}",
        "--log-level=warning",
        "--graceful-timeout=5",
    ]


def _celery(options: Options) -> list[str]:
    nice = ["nice", "-n", str(options.celery_nice)] if options.celery_nice else []
    return [
        *nice,
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--loglevel=WARNING",
        f"--concurrency={options.celery_concurrency}",
        f"--hostname=bench-webhooks-{os.getpid()}@%h",
        # Start-up handshakes with other workers; there are none here.
        "--without-mingle",
        "--without-gossip",
    ]


def _wait_for_gunicorn(servers: Servers, base_url: str) -> None:
    """Until the receiver answers Meta's handshake (the app is loaded, the URL is the right one)."""
    params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "ready"}
    deadline = time.monotonic() + READY_SECONDS
    with httpx2.Client(base_url=base_url, timeout=2) as client:
        while True:
            servers.check()
            try:
                response = client.get(PATH, params=params)
                if response.status_code == 200 and response.text == "ready":
                    return
                raise RuntimeError(f"GET {PATH} answered {response.status_code}: {response.text[:300]!r}")
            except httpx2.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not answer within {READY_SECONDS}s") from None
                time.sleep(0.2)


# --- Load -------------------------------------------------------------------------------------


class BadResponse(Exception):
    """The receiver's answer is not HTTP/1.x framed by Content-Length, as this client reads it."""


def _request(port: int, body: bytes, signature: str) -> bytes:
    """The whole POST, as bytes on the wire: built once per body, before any level is timed."""
    head = (
        f"POST {PATH} HTTP/1.1\r\n"
        f"Host: {HOST}:{port}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Hub-Signature-256: {signature}\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body


def _head(head: bytes) -> tuple[int, bool, int]:
    """(status, whether the connection stays open, body length) from a response's status line and headers."""
    lines = head.split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    code = rest[:3]
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or not code.isdigit():
        raise BadResponse(lines[0][:100])
    status = int(code)
    keep_alive = version == b"HTTP/1.1"
    length: int | None = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            if not value.isdigit():
                raise BadResponse(line[:100])
            length = int(value)
        elif name == b"connection":
            options = {option.strip() for option in value.split(b",")}
            keep_alive = b"keep-alive" in options or (keep_alive and b"close" not in options)
    if status in (204, 304) or 100 <= status < 200:
        return status, keep_alive, 0
    if length is None:  # chunked or delimited by the end of the connection: not what the hub sends
        raise BadResponse(f"{status} without Content-Length")
    return status, keep_alive, length


class _Exchange(asyncio.Protocol):
    """One TCP connection: a request written, its response parsed as the bytes arrive."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.answer: asyncio.Future[tuple[int, bool]] | None = None  # (status, keep alive)
        self.head: tuple[int, bool, int] | None = None  # of the response being read

    def reusable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing() and not self.buffer

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bool]]:
        if self.transport is None:
            raise ConnectionResetError("not connected")
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a TCP connection's

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.answer is None or self.answer.done():
            return  # unasked-for bytes: the connection is not reused (see reusable)
        try:
            if self.head is None:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.buffer) > MAX_HEAD:
                        raise BadResponse(f"no end of the headers in {len(self.buffer)} bytes")
                    return
                self.head = _head(bytes(self.buffer[:end]))
                del self.buffer[: end + 4]
            status, keep_alive, length = self.head
            if len(self.buffer) < length:
                return
            del self.buffer[:length]  # the body itself is not needed
        except BadResponse as exc:
            self.fail(exc)
            return
        self.head = None
        self.answer.set_result((status, keep_alive))

    def eof_received(self) -> bool:
        self.fail(asyncio.IncompleteReadError(bytes(self.buffer), None))
        return False  # close the connection

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(exc or ConnectionResetError("the receiver closed the connection"))

    def fail(self, exc: BaseException) -> None:
        """End the request in flight, if any, with ``exc``, and the connection with it."""
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(exc)
        if self.transport is not None:
            self.transport.close()


class _Connection:
    """One sender's keep-alive HTTP/1.1 connection: a request, then its whole response, in turn.

    It opens on first use and again after the receiver answers ``Connection: close``, closes the
    connection, or a request fails (a transport error or the timeout), so one failure costs one
    request, not the sender. The level's watchdog enforces the timeout (:meth:`expire`), which is
    cheaper than a timer per request.
    """

    def __init__(self, port: int, timeout: float) -> None:
        self.port = port
        self.timeout = timeout
        self.exchange: _Exchange | None = None
        self.deadline = math.inf

    async def post(self, request: bytes) -> int | str:
        """The response's status code, or the name of what went wrong."""
        loop = asyncio.get_running_loop()
        try:
            exchange = self.exchange
            if exchange is None or not exchange.reusable():
                self.close()
                connecting = loop.create_connection(_Exchange, HOST, self.port)
                _, exchange = await asyncio.wait_for(connecting, self.timeout)
                self.exchange = exchange
            self.deadline = loop.time() + self.timeout
            status, keep_alive = await exchange.request(request)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, BadResponse) as exc:
            self.close()
            return type(exc).__name__
        finally:
            self.deadline = math.inf
        if not keep_alive:
            self.close()
        return status

    def expire(self, now: float) -> None:
        """Fail the request in flight with TimeoutError if it has outlived the timeout."""
        if now > self.deadline and self.exchange is not None:
            self.exchange.fail(TimeoutError(f"no answer within {self.timeout:g}s"))

    def close(self) -> None:
        if self.exchange is not None and self.exchange.transport is not None:
            self.exchange.transport.close()
        self.exchange = None


async def _send(
    port: int, requests: list[tuple[int, bytes]], level: Level, seconds: float, *, timeout: float = SEND_TIMEOUT
) -> LevelRun:
    """``level.senders`` tasks, each on its own connection, posting the next request as soon as its
    previous one is answered; no new request after ``seconds``, none waited for beyond ``timeout``."""
    run = LevelRun(level=level)
    pending = iter(requests)  # shared: every next() hands a request to exactly one sender
    clients = [_Connection(port, timeout) for _ in range(level.senders)]
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    stop_at = started + seconds

    async def sender(client: _Connection) -> None:
        for message_id, request in pending:
            if time.perf_counter() > stop_at:
                run.capped = True
                return
            wall = time.time()
            begin = time.perf_counter()
            status = await client.post(request)
            run.sent.append(Sent(message_id, wall, time.perf_counter() - begin, status))

    async def watchdog() -> None:
        while True:
            await asyncio.sleep(min(WATCHDOG_SECONDS, timeout / 2))
            now = loop.time()
            for client in clients:
                client.expire(now)

    watching = asyncio.create_task(watchdog())
    try:
        await asyncio.gather(*(sender(client) for client in clients))
    finally:
        watching.cancel()
        for client in clients:
            client.close()
    run.wall_seconds = time.perf_counter() - started
    return run


def _wait_applied(servers: Servers, message_ids: list[int], seconds: float) -> tuple[int, float | None]:
    """Poll until every message is "delivered" or ``seconds`` pass: (how many, when the last was, epoch).

    The polling query covers the id range (cheap, so it does not compete with the worker); the
    final figures come from the exact ids.
    """
    if not message_ids:
        return 0, None
    deadline = time.monotonic() + seconds
    in_range = Message.objects.filter(pk__range=(min(message_ids), max(message_ids)), status=MessageStatus.DELIVERED)
    while in_range.count() < len(message_ids) and time.monotonic() < deadline:
        servers.check()
        time.sleep(0.25)
    found = Message.objects.filter(pk__in=message_ids, status=MessageStatus.DELIVERED).aggregate(
        applied=Count("pk"), last=Max("updated_at")
    )
    return found["applied"], found["last"].timestamp() if found["last"] else None


def _applied_latencies(sent: list[Sent]) -> tuple[float, ...]:
    """Send → applied for each delivered message (the worker's clock is this machine's)."""
    by_id = {s.message_id: s.started_at for s in sent}
    applied = Message.objects.filter(pk__in=by_id, status=MessageStatus.DELIVERED).values_list("pk", "updated_at")
    return tuple(max(0.0, updated_at.timestamp() - by_id[pk]) for pk, updated_at in applied)


# --- The benchmark ----------------------------------------------------------------------------


def _flush(redis_url: str) -> None:
    redis.Redis.from_url(redis_url).flushdb()


def run(options: Options) -> list[Result]:
    """Seed, start gunicorn and the worker, warm up, then two results per level: accepted, applied.

    Raises RuntimeError (``ServerDied`` included) when the servers do not come up or die.
    """
    levels = options.levels
    total = options.warmup + sum(level.requests for level in levels)
    print(f"bench: webhooks: seeding {total} outbound messages in status sent", flush=True)
    message_ids = _seed(messages=total)
    port = free_port()
    requests = [(message_id, _request(port, body, sign)) for message_id, body, sign in _signed_bodies(message_ids)]
    batches, offset = [], options.warmup
    for level in levels:
        batches.append(requests[offset : offset + level.requests])
        offset += level.requests

    _flush(options.redis_url)
    base_url = f"http://{HOST}:{port}"
    env = _server_env(options)
    results: list[Result] = []
    try:
        with Servers(env=env, cwd=BASE_DIR, log_dir=BASE_DIR / "var" / "bench") as servers:
            servers.start("gunicorn", _gunicorn(options, port))
            servers.start("celery", _celery(options))
            _wait_for_gunicorn(servers, base_url)
            print(
                f"bench: webhooks: gunicorn on {base_url} ({options.gunicorn_workers} x"
                f" {options.gunicorn_threads} threads, {options.gunicorn_connections} connections each),"
                f" Celery worker ({options.celery_concurrency} processes"
                + (f", nice {options.celery_nice})" if options.celery_nice else ")"),
                flush=True,
            )
            warmup = asyncio.run(_send(port, requests[: options.warmup], Level(10, options.warmup), READY_SECONDS))
            _check_refused(warmup)
            applied, _ = _wait_applied(servers, [s.message_id for s in warmup.sent], READY_SECONDS)
            if applied != options.warmup:
                raise RuntimeError(
                    f"the worker applied {applied} of {options.warmup} warm-up webhooks in {READY_SECONDS}s;"
                    f" the end of its log:\n{servers.tail('celery')}"
                )
            groups = {name: servers.pgid(name) for name in ("gunicorn", "celery")}
            for level, batch in zip(levels, batches, strict=True):
                servers.check()
                sending, whole = CpuMeter(groups, _backends), CpuMeter(groups, _backends)
                whole.start()
                sending.start()
                sent = asyncio.run(_send(port, batch, level, options.level_seconds))
                sending_cpu = sending.stop()
                results += _level_results(servers, sent, options, sending_cpu=sending_cpu, whole=whole)
    finally:
        _flush(options.redis_url)
    accepted = sum(int(result.extra.get("accepted", 0)) for result in results) + options.warmup
    stored = WebhookEvent.objects.count()
    if stored != accepted:
        print(f"bench: webhooks: WARNING {accepted} webhooks accepted but {stored} events stored", flush=True)
    return results


def _check_refused(run: LevelRun) -> None:
    if run.refused:
        statuses = sorted({str(s.status) for s in run.refused})
        raise RuntimeError(f"{len(run.refused)} warm-up webhooks were not accepted: {', '.join(statuses)}")


def _backends() -> list[int]:
    """The PostgreSQL backends serving the benchmark's database (gunicorn's, the worker's), not this one."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [pid for (pid,) in cursor.fetchall()]


def _per_item_ms(cpu: dict[str, float], count: int) -> dict[str, Any]:
    """CPU milliseconds per item by process, and the machine's average busy cores, for the JSON."""
    if not cpu or not count:
        return {}
    figures = {name: round(seconds * 1000 / count, 3) for name, seconds in cpu.items() if name != "machine_cores_busy"}
    return {"cpu_ms_each": figures, "machine_cores_busy": round(cpu["machine_cores_busy"], 2)}


def _cpu_line(figures: dict[str, Any]) -> str:
    parts = ", ".join(f"{name} {ms:.2f}" for name, ms in figures["cpu_ms_each"].items())
    return f"CPU ms each: {parts}; {figures['machine_cores_busy']} of {os.cpu_count()} cores busy"


def _level_results(
    servers: Servers, sent: LevelRun, options: Options, *, sending_cpu: dict[str, float], whole: CpuMeter
) -> list[Result]:
    level = sent.level
    accepted = sent.accepted
    refused = sent.refused
    last_response = max(s.started_at + s.latency for s in sent.sent)
    ids = [s.message_id for s in accepted]
    applied, last_applied = _wait_applied(servers, ids, options.drain_seconds)
    accepted_cpu = _per_item_ms(sending_cpu, len(sent.sent))
    applied_cpu = _per_item_ms(whole.stop(), applied)
    first_request = min(s.started_at for s in sent.sent)
    drain = max(0.0, (last_applied or last_response) - last_response)
    statuses = sorted({str(s.status) for s in refused})
    capped = f", capped at {options.level_seconds:g}s" if sent.capped else ""
    accepted_result = Result(
        name=f"webhook accepted, {level.senders} sender{'s' if level.senders > 1 else ''}",
        durations=tuple(s.latency for s in sent.sent),
        wall_seconds=sent.wall_seconds,
        note=(
            f"send -> 200 over HTTP keep-alive; {len(refused)} not accepted"
            + (f" ({', '.join(statuses)})" if statuses else "")
            + capped
        ),
        extra={
            "senders": level.senders,
            "requests": len(sent.sent),
            "accepted": len(accepted),
            "not_accepted": len(refused),
            "not_accepted_statuses": statuses,
            "wall_seconds": round(sent.wall_seconds, 3),
            **accepted_cpu,
        },
    )
    applied_seconds = (last_applied - first_request) if last_applied else None
    applied_result = Result(
        name=f"webhook applied, {level.senders} sender{'s' if level.senders > 1 else ''}",
        durations=_applied_latencies(accepted),
        wall_seconds=applied_seconds,
        note=(
            f"send -> message delivered in the database; queue drained {drain:.2f}s after the last response"
            + ("" if applied == len(ids) else f"; {len(ids) - applied} NOT APPLIED after {options.drain_seconds:g}s")
        ),
        extra={
            "senders": level.senders,
            "applied": applied,
            "not_applied": len(ids) - applied,
            "first_request_to_last_applied_seconds": round(applied_seconds or 0.0, 3),
            "drain_seconds": round(drain, 3),
            **applied_cpu,
        },
    )
    print(
        f"bench: webhooks: {level.senders} senders: {accepted_result.per_second:.0f} accepted/s,"
        f" {applied_result.per_second:.0f} applied/s",
        flush=True,
    )
    if accepted_cpu:
        print(f"  sending: {_cpu_line(accepted_cpu)}", flush=True)
        print(f"  sending and applying: {_cpu_line(applied_cpu)}", flush=True)
    return [accepted_result, applied_result]


def failures(results: list[Result]) -> list[str]:
    """What went wrong (not merely slow): webhooks refused, or not applied within the drain time."""
    problems = []
    for result in results:
        if result.extra.get("not_accepted"):
            problems.append(f"{result.name}: {result.extra['not_accepted']} requests not answered 200")
        if result.extra.get("not_applied"):
            problems.append(f"{result.name}: {result.extra['not_applied']} messages not applied")
    return problems


def goal(results: list[Result]) -> str:
    """Issue #3's goal, checked on the level with ``GOAL_SENDERS`` senders."""
    row = next(
        (r for r in results if r.name.startswith("webhook accepted") and r.extra["senders"] == GOAL_SENDERS), None
    )
    if row is None or not row.durations:
        return f"goal ({GOAL_PER_SECOND}/s accepted, p99 <= {GOAL_P99_MS} ms at {GOAL_SENDERS} senders): not measured"
    p99_ms = row.percentile(99) * 1000
    met = row.per_second >= GOAL_PER_SECOND and p99_ms <= GOAL_P99_MS
    return (
        f"goal (>= {GOAL_PER_SECOND}/s accepted with p99 <= {GOAL_P99_MS} ms at {GOAL_SENDERS} senders):"
        f" {'MET' if met else 'MISSED'} ({row.per_second:.0f}/s, p99 {p99_ms:.0f} ms)"
    )

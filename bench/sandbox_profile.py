"""CPU per accepted send of the Cloud API sandbox, status webhooks included: ``python -m bench.sandbox_profile``.

The dispatch benchmark runs the sandbox as Meta in a gunicorn of its own, sharing the cores with
the hub; this measures the sandbox alone, in CPU time rather than wall time, so that other work
on the machine does not skew it. It seeds ``--numbers`` business accounts (one registered number
each, throughput ``HIGH`` so the cap never refuses, and the dispatch benchmark's text-only payment
reminder, approved), then per round:

- sends ``--sends`` template messages, each to a customer of its own, as the hub sends them
  (``POST /sandbox/graph/v25.0/{phone_number_id}/messages``, bearer token, JSON body), through the
  sandbox's WSGI application (what gunicorn calls, request signals and middleware included) from
  ``--concurrency`` threads at ``--rate`` sends a second over all numbers;
- lets the sandbox's background sender (``--delivery-threads`` threads, status webhooks batched in
  windows of ``--batch-ms``) claim, apply and POST every sent, delivered and read status, signed,
  to a trivial receiver in a child process that answers 200 (so its CPU is not counted);
- stops when every status is delivered and every message is ``read``.

It reports, per accepted send:

- Python: ``time.process_time()`` of this process (every thread: the request handling and the
  delivery threads) over the round;
- PostgreSQL: the CPU of the backends serving this process's connections (``/proc/<pid>/stat``,
  so the server must run on this machine), a connection opened during the round counted whole
  (its authentication too), one closed read just before it closes;
- statements: how many the sandbox sent (an ``execute_wrapper`` on each connection), and webhooks
  posted (the receiver's count).

``--profile`` prints cProfile's top functions of the last round (CPU time per thread), over the
request threads and the delivery threads, or one of them (``--profile-part``).

``--server`` measures the sandbox as the dispatch benchmark runs it instead: its own gunicorn
(``--workers`` x ``--threads``, gthread, bench/sandbox_settings.py, ``--latency-ms`` 100), sent
to over HTTP from ``--concurrency`` (64) threads of this process; Python is the CPU of the
gunicorn's process group (the requests, HTTP included, and the delivery threads), PostgreSQL that
of the backends serving the database but this process's, sampled every 0.1 s; no statement
count. The machine's busy cores are given for context: this process's own load is in them.

The run uses its own database, ``<DATABASE_URL's name>_bench``, created and dropped around it
(``bench.database``), and Redis database 10 of ``REDIS_URL``'s server (default 127.0.0.1:6379)
as the cache, for a sandbox that still keeps counters there. Run it under ``flock /tmp/bench.lock``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")
GRAPH_VERSION = "v25.0"
HOST = "127.0.0.1"
APP_SECRET = "bench-sandbox-profile-app-secret"  # noqa: S105 (signs loopback traffic to a throwaway database)
VERIFY_TOKEN = "bench-sandbox-profile-verify-token"  # noqa: S105
PROFILE_REDIS_DB = 10
TEMPLATE_NAME = "bench_payment_reminder"
#: The dispatch benchmark's template (bench/dispatch.py), as the hub submits it.
TEMPLATE_BODY = (
    "Dear {{customer_name}}, this is a friendly reminder that {{invoice_number}} has {{balance_due}} due "
    "since {{due_date}}. Please pay it soon, thank you."
)
TEMPLATE_EXAMPLE = {
    "customer_name": "Asha Rao",
    "invoice_number": "INV-000123",
    "balance_due": "₹11,800.00",
    "due_date": "01/03/2026",
}
DONE_SECONDS = 60.0  # after the last send, for every status to be delivered

#: A webhook receiver that answers 200 and counts what it got: the hub's place, kept out of this process.
RECEIVER = r"""
import sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

count = [0, 0]
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            count[0] += 1
            count[1] += body.count(b'"status":')
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        payload = ("%d %d" % tuple(count)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
"""


# --- Set-up -------------------------------------------------------------------------------------


def _redis_url() -> str:
    base = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379")
    return base._replace(path=f"/{PROFILE_REDIS_DB}").geturl()


def _setup(*, webhook_url: str, delivery_threads: int) -> None:
    """The sandbox's benchmark settings (bench/sandbox_settings.py), as the dispatch benchmark runs it."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.sandbox_settings",
        DEBUG="false",
        REDIS_URL=_redis_url(),
        WHATSAPP_SANDBOX_ENABLED="true",
        WHATSAPP_SANDBOX_WEBHOOK_URL=webhook_url,
        WHATSAPP_APP_SECRET=APP_SECRET,
        BENCH_SANDBOX_DELIVERY_THREADS=str(delivery_threads),
        ALLOWED_HOSTS=HOST,
        LOG_LEVEL="WARNING",
    )
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-serving")
    os.environ.setdefault("FIELD_ENCRYPTION_KEY", "bench-field-encryption-key")
    import django

    django.setup()


def _receiver() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    port = int(process.stdout.readline())
    return process, f"http://{HOST}:{port}/webhooks/whatsapp/"


def _received(url: str) -> tuple[int, int]:
    """(webhooks, statuses) the receiver got so far."""
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback, our receiver)
        posts, statuses = response.read().decode().split()
    return int(posts), int(statuses)


def _seed(numbers: int) -> list[tuple[str, str]]:
    """``numbers`` WABAs with one HIGH-throughput number and the approved reminder; (phone_number_id, token) each."""
    from whatsapp.sandbox import services
    from whatsapp.sandbox.choices import TemplateStatus, ThroughputLevel
    from whatsapp.sandbox.models import SandboxPhoneNumber, SandboxTemplate
    from whatsapp.sandbox.validation import clean_template_definition

    definition = clean_template_definition(
        {
            "name": TEMPLATE_NAME,
            "language": "en",
            "category": "UTILITY",
            "parameter_format": "NAMED",
            "components": [
                {
                    "type": "BODY",
                    "text": TEMPLATE_BODY,
                    "example": {
                        "body_text_named_params": [
                            {"param_name": name, "example": value} for name, value in TEMPLATE_EXAMPLE.items()
                        ]
                    },
                }
            ],
        }
    )
    senders = []
    for n in range(1, numbers + 1):
        token = f"EAABenchSandboxProfile{n:03d}" + "0" * 20
        account = services.business_account_setup(
            waba_id=f"1080000000{n:05d}",
            app_id=f"3080000000{n:05d}",
            access_token=token,
            name=f"Sandbox profile {n}",
            verified_name=f"Sandbox profile {n}",
            numbers=[
                services.NumberSpec(
                    phone_number_id=f"2080000000{n:05d}", display_phone_number=f"+91 22 4200 000{n}", verified=True
                )
            ],
        )
        SandboxPhoneNumber.objects.filter(account=account).update(throughput_level=ThroughputLevel.HIGH)
        SandboxTemplate.objects.create(
            account=account, template_id=services.new_object_id(), status=TemplateStatus.APPROVED, **definition
        )
        senders.append((f"2080000000{n:05d}", token))
    return senders


def _body(n: int, round_no: int) -> bytes:
    """What the hub's client sends for one reminder (``CloudAPI.send_template``), to a customer of its own."""
    parameters = [
        {"type": "text", "parameter_name": "customer_name", "text": f"Customer {round_no}-{n:05d}"},
        {"type": "text", "parameter_name": "invoice_number", "text": f"INV-{round_no}{n:06d}"},
        {"type": "text", "parameter_name": "balance_due", "text": "₹11,800.00"},
        {"type": "text", "parameter_name": "due_date", "text": "01/03/2026"},
    ]
    body = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": f"+9197{round_no:02d}{n:06d}",
        "type": "template",
        "template": {
            "name": TEMPLATE_NAME,
            "language": {"code": "en"},
            "components": [{"type": "body", "parameters": parameters}],
        },
        "biz_opaque_callback_data": f"m:{round_no}{n:08d}",
    }
    return json.dumps(body).encode()


# --- Measuring ----------------------------------------------------------------------------------


def _cpu_of(pid: int) -> float | None:
    """CPU seconds the process ``pid`` used so far (None when it is gone or not on this machine)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


class Meter:
    """Statements and PostgreSQL backend CPU of every connection this process opens, by round.

    Each new connection gets an execute wrapper (counting unless its thread is excluded: the
    poller's) and its backend pid noted; closing one reads its backend's CPU first, since the
    process is gone afterwards.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statements = 0
        self.excluded = threading.local()
        self.seen: dict[int, float] = {}  # backend pid -> CPU at the round's start (0 when opened in the round)
        self.last: dict[int, float] = {}  # backend pid -> CPU when last read (at close, or the round's end)
        self.ignored: set[int] = set()
        self.roles: dict[int, str] = {}  # backend pid -> "requests" or "delivery", by the thread that opened it

    def install(self) -> None:
        from django.db.backends.postgresql.base import DatabaseWrapper
        from django.db.backends.signals import connection_created

        connection_created.connect(self._created, weak=False)
        original = DatabaseWrapper._close
        meter = self

        def _close(wrapper: Any) -> None:
            pid = meter._pid(wrapper)
            if pid is not None and (cpu := _cpu_of(pid)) is not None:
                with meter.lock:
                    meter.last[pid] = cpu
            original(wrapper)

        DatabaseWrapper._close = _close  # type: ignore[method-assign]

    @staticmethod
    def _pid(wrapper: Any) -> int | None:
        raw = getattr(wrapper, "connection", None)
        info = getattr(raw, "info", None)
        return getattr(info, "backend_pid", None)

    def _created(self, sender: Any, connection: Any, **kwargs: Any) -> None:
        if self._count not in connection.execute_wrappers:  # a wrapper reconnecting keeps its list
            connection.execute_wrappers.append(self._count)
        pid = self._pid(connection)
        if pid is None:
            return
        with self.lock:
            if getattr(self.excluded, "yes", False):
                self.ignored.add(pid)
            else:
                self.seen[pid] = 0.0
                self.roles[pid] = "delivery" if threading.current_thread().name.startswith("sandbox-") else "requests"

    def _count(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if not getattr(self.excluded, "yes", False):
            with self.lock:
                self.statements += 1
        return execute(sql, params, many, context)

    def start(self) -> None:
        with self.lock:
            self.statements = 0
            alive = {pid: cpu for pid in self.seen if (cpu := _cpu_of(pid)) is not None}
            self.seen, self.last = alive, {}

    def stop(self) -> tuple[int, dict[str, float]]:
        """(statements, PostgreSQL CPU seconds by the role of the connection's thread) since :meth:`start`."""
        with self.lock:
            used: dict[str, float] = {}
            for pid, before in self.seen.items():
                readings = [value for value in (_cpu_of(pid), self.last.get(pid)) if value is not None]
                role = self.roles.get(pid, "requests")
                used[role] = used.get(role, 0.0) + max(max(readings, default=before) - before, 0.0)
            return self.statements, used


class ThreadCpu:
    """CPU seconds the threads spent inside wrapped functions, by part (requests, delivery)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seconds: dict[str, float] = {}

    def wrap(self, part: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                used = time.thread_time() - started
                with self.lock:
                    self.seconds[part] = self.seconds.get(part, 0.0) + used

        return timed

    def take(self) -> dict[str, float]:
        with self.lock:
            seconds, self.seconds = self.seconds, {}
        return seconds


class Profiles:
    """One cProfile per thread, enabled around each unit of work, merged at the end."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.all: list[cProfile.Profile] = []
        self.lock = threading.Lock()
        self.on = False

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def profiled(*args: Any, **kwargs: Any) -> Any:
            if not self.on:
                return function(*args, **kwargs)
            profile = getattr(self.local, "profile", None)
            if profile is None:
                profile = self.local.profile = cProfile.Profile(time.thread_time)  # CPU, not GIL waits
                with self.lock:
                    self.all.append(profile)
            profile.enable()
            try:
                return function(*args, **kwargs)
            finally:
                profile.disable()

        return profiled

    def report(self, limit: int, dump: str | None = None) -> str:
        out = io.StringIO()
        if not self.all:
            return ""
        stats = pstats.Stats(self.all[0], stream=out)
        for profile in self.all[1:]:
            stats.add(profile)
        if dump:
            stats.dump_stats(dump)
        stats.sort_stats("tottime").print_stats(limit)
        stats.sort_stats("cumulative").print_stats(limit)
        return out.getvalue()


def _environ(path: str, token: str, body: bytes) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": HOST,
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": HOST,
        "HTTP_HOST": HOST,
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "HTTP_USER_AGENT": "python-httpx/bench",
        "HTTP_ACCEPT": "*/*",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def _round(
    *,
    app: Any,
    senders: list[tuple[str, str]],
    options: argparse.Namespace,
    sends: int,
    round_no: int,
    meter: Meter,
    profiles: Profiles,
    thread_cpu: ThreadCpu,
    receiver_url: str,
) -> dict[str, Any]:
    from django.db import connection
    from django.db.models import Count

    from whatsapp.sandbox import services
    from whatsapp.sandbox.models import SandboxMessage, SandboxWebhookDelivery

    services.sandbox_reset()
    services.sandbox_settings_update(latency_ms=0, status_batch_ms=options.batch_ms)
    for pk_table in ("whatsapp_sandbox_sandboxmessage", "whatsapp_sandbox_sandboxwebhookdelivery"):
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {pk_table}")
    posts_before, statuses_before = _received(receiver_url)

    answers: dict[int, int] = {}
    next_index = iter(range(sends))
    index_lock = threading.Lock()
    started = time.perf_counter()

    def handle(n: int) -> None:
        phone_number_id, token = senders[n % len(senders)]
        path = f"/sandbox/graph/{GRAPH_VERSION}/{phone_number_id}/messages"
        status: list[int] = []

        def start_response(line: str, headers: Any, exc_info: Any = None) -> None:
            status.append(int(line.split(" ", 1)[0]))

        response = app(_environ(path, token, _body(n, round_no)), start_response)
        try:
            b"".join(response)
        finally:
            response.close()
        with index_lock:
            answers[status[0]] = answers.get(status[0], 0) + 1

    profiled_handle = thread_cpu.wrap(
        "requests", profiles.wrap(handle) if options.profile_part in ("all", "sends") else handle
    )

    def sender() -> None:
        while True:
            with index_lock:
                n = next(next_index, None)
            if n is None:
                break
            wait = started + n / options.rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            profiled_handle(n)
        connection.close()  # gunicorn's threads would keep it; four reconnections a round cost little

    meter.start()
    thread_cpu.take()
    cpu_before = time.process_time()
    started = time.perf_counter()
    threads = [threading.Thread(target=sender, name=f"sender-{i}") for i in range(options.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent_seconds = time.perf_counter() - started

    # Every message read (or failed) and no webhook left to send, polled from a thread whose
    # statements and backend are not counted.
    outcome: dict[str, Any] = {}

    def poll() -> None:
        meter.excluded.yes = True
        deadline = time.monotonic() + DONE_SECONDS
        try:
            while time.monotonic() < deadline:
                outbound = SandboxMessage.objects.filter(direction="outbound")
                states = dict(SandboxWebhookDelivery.objects.values_list("state").annotate(n=Count("pk")).order_by())
                outcome["states"] = states
                done = outbound.filter(status__in=("read", "failed")).count()
                if done >= outbound.count() and not (states.get("pending") or states.get("sending")):
                    return
                time.sleep(0.25)
        finally:
            connection.close()

    poller = threading.Thread(target=poll, name="poller")
    poller.start()
    poller.join()
    cpu = time.process_time() - cpu_before
    wall = time.perf_counter() - started
    statements, pg_parts = meter.stop()
    pg = sum(pg_parts.values())
    parts = thread_cpu.take()
    posts, statuses = _received(receiver_url)
    accepted = answers.get(200, 0)
    read = SandboxMessage.objects.filter(direction="outbound", status="read").count()
    return {
        "sends": sends,
        "answers": answers,
        "messages_read": read,
        "webhook_states": outcome.get("states"),
        "webhooks_posted": posts - posts_before,
        "statuses_posted": statuses - statuses_before,
        "send_rate": round(sends / sent_seconds, 1),
        "python_cpu_ms_per_send": 1000 * cpu / max(accepted, 1),
        "of_which_requests": round(1000 * parts.get("requests", 0.0) / max(accepted, 1), 3),
        "of_which_delivery": round(1000 * parts.get("delivery", 0.0) / max(accepted, 1), 3),
        "postgres_cpu_ms_per_send": 1000 * pg / max(accepted, 1),
        "of_which_requests_pg": round(1000 * pg_parts.get("requests", 0.0) / max(accepted, 1), 3),
        "of_which_delivery_pg": round(1000 * pg_parts.get("delivery", 0.0) / max(accepted, 1), 3),
        "total_cpu_ms_per_send": 1000 * (cpu + pg) / max(accepted, 1),
        "statements_per_send": statements / max(accepted, 1),
        "wall_seconds": round(wall, 2),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sandbox_profile", description=__doc__)
    parser.add_argument("--sends", type=int, default=2000, help="template sends per round (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds, after one warm-up (default 3)")
    parser.add_argument("--numbers", type=int, default=5, help="business accounts, one number each (default 5)")
    parser.add_argument("--rate", type=float, default=400.0, help="sends a second over all numbers (default 400)")
    parser.add_argument("--concurrency", type=int, default=4, help="threads sending (default 4)")
    parser.add_argument("--batch-ms", type=int, default=200, help="status_batch_ms (default 200, as the benchmark)")
    parser.add_argument("--delivery-threads", type=int, default=2, help="webhook threads (default 2, as the benchmark)")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions of the last round")
    parser.add_argument(
        "--profile-part",
        choices=("all", "sends", "delivery"),
        default="all",
        help="with --profile, what to profile: the requests, the delivery threads, or both (default)",
    )
    parser.add_argument("--profile-dump", metavar="PATH", help="with --profile, also save the stats (pstats) there")
    server = parser.add_argument_group("--server: the sandbox in its own gunicorn, as the dispatch benchmark runs it")
    server.add_argument("--server", action="store_true", help="measure a gunicorn serving the sandbox over HTTP")
    server.add_argument("--workers", type=int, default=2, help="gunicorn processes (default 2, as the benchmark)")
    server.add_argument("--threads", type=int, default=32, help="threads per process (default 32, as the benchmark)")
    server.add_argument(
        "--latency-ms", type=int, default=100, help="the sandbox's latency (default 100, as the benchmark)"
    )
    args = parser.parse_args(argv)
    if args.server and args.profile:
        parser.error("--profile profiles this process: not with --server")
    if args.server and args.concurrency == parser.get_default("concurrency"):
        args.concurrency = 64  # requests in flight: the rate times the latency, and some

    receiver, webhook_url = _receiver()
    try:
        _setup(webhook_url=webhook_url, delivery_threads=args.delivery_threads)
        return _run_server(args, receiver_url=webhook_url) if args.server else _run(args, receiver_url=webhook_url)
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)


def _run(args: argparse.Namespace, *, receiver_url: str) -> int:
    from django.core.wsgi import get_wsgi_application
    from django.db import connections

    from bench.database import bench_database
    from config.gc_tuning import gc_tune
    from whatsapp.sandbox import delivery

    meter = Meter()
    meter.install()
    profiles = Profiles()
    thread_cpu = ThreadCpu()
    for name in ("deliver_one", "deliver_statuses", "deliver_status_batch"):  # what the sender threads call
        if hasattr(delivery, name):
            function = getattr(delivery, name)
            if args.profile_part in ("all", "delivery"):
                function = profiles.wrap(function)
            setattr(delivery, name, thread_cpu.wrap("delivery", function))
    app = get_wsgi_application()
    gc_tune(urlconf=True)  # as config/wsgi.py does in the sandbox's gunicorn
    with bench_database() as where:
        print(f"database: {where}; load before: {Path('/proc/loadavg').read_text().strip()}", file=sys.stderr)
        senders = _seed(args.numbers)
        common = {
            "app": app,
            "senders": senders,
            "options": args,
            "meter": meter,
            "profiles": profiles,
            "thread_cpu": thread_cpu,
        }
        _round(sends=min(300, args.sends), round_no=0, receiver_url=receiver_url, **common)  # warm-up
        results = []
        for n in range(1, args.rounds + 1):
            profiles.on = args.profile and n == args.rounds
            results.append(_round(sends=args.sends, round_no=n, receiver_url=receiver_url, **common))
            profiles.on = False
        print(f"load after: {Path('/proc/loadavg').read_text().strip()}", file=sys.stderr)
        _report(results, profiles if args.profile else None, args.profile_dump)
        connections.close_all()
        _wait_alone()  # the delivery threads give their connections back once idle
    return 0


def _run_server(args: argparse.Namespace, *, receiver_url: str) -> int:
    """The rounds against a gunicorn serving the sandbox, started here as bench/dispatch.py starts Meta's."""
    import httpx2  # noqa: TID251 (the load: HTTP to the sandbox, as bench/dispatch.py)
    from django.db import connections

    from bench.database import bench_database
    from bench.servers import Servers, free_port, production_env

    with bench_database() as where:
        print(f"database: {where}; load before: {Path('/proc/loadavg').read_text().strip()}", file=sys.stderr)
        senders = _seed(args.numbers)
        connections.close_all()  # the children must not inherit a connection
        port = free_port()
        env = production_env(redis_url=_redis_url(), app_secret=APP_SECRET, verify_token=VERIFY_TOKEN) | {
            "DJANGO_SETTINGS_MODULE": "bench.sandbox_settings",
            "WHATSAPP_SANDBOX_ENABLED": "true",
            "WHATSAPP_SANDBOX_WEBHOOK_URL": receiver_url,
            "BENCH_SANDBOX_DELIVERY_THREADS": str(args.delivery_threads),
        }
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            f"--bind={HOST}:{port}",
            f"--workers={args.workers}",
            f"--threads={args.threads}",
            "--worker-class=gthread",
            f"--worker-connections={2 * args.threads}",
            "--log-level=warning",
            "--graceful-timeout=5",
        ]
        base_url = f"http://{HOST}:{port}"
        with Servers(env=env, cwd=BASE_DIR, log_dir=BASE_DIR / "var" / "bench") as servers:
            servers.start("sandbox-profile", command)
            limits = httpx2.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
            with httpx2.Client(base_url=base_url, timeout=30, limits=limits) as client:
                _server_ready(client, servers)
                common = {
                    "client": client,
                    "senders": senders,
                    "options": args,
                    "pgid": servers.pgid("sandbox-profile"),
                }
                _server_round(sends=min(300, args.sends), round_no=0, receiver_url=receiver_url, **common)  # warm-up
                results = [
                    _server_round(sends=args.sends, round_no=n, receiver_url=receiver_url, **common)
                    for n in range(1, args.rounds + 1)
                ]
        print(f"load after: {Path('/proc/loadavg').read_text().strip()}", file=sys.stderr)
        _report(results, None, None)
        connections.close_all()
        _wait_alone()
    return 0


def _server_ready(client: Any, servers: Any, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        servers.check()
        try:
            if client.get("/sandbox/control/settings").status_code == 200:
                return
        except OSError:
            pass
        except Exception as exc:  # httpx2's transport errors: not up yet
            if type(exc).__module__.split(".")[0] != "httpx2":
                raise
        if time.monotonic() > deadline:
            raise RuntimeError(f"the sandbox's gunicorn did not answer within {seconds:.0f}s")
        time.sleep(0.2)


class BackendSampler:
    """CPU of the PostgreSQL backends serving the benchmark database, but for this process's own.

    A thread lists them every 0.1 s (pg_stat_activity) and reads each one's CPU: a backend
    already there at :meth:`start` counts from its reading then, one opened later from zero;
    one closed between two readings loses at most its last 0.1 s.
    """

    def __init__(self, exclude: set[int]) -> None:
        self.exclude = exclude
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="backend-sampler", daemon=True)
        self.started = False

    def start(self) -> None:
        self.thread.start()
        while not self.started:
            time.sleep(0.01)

    def _pids(self, cursor: Any) -> list[int]:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [pid for (pid,) in cursor.fetchall() if pid not in self.exclude]

    def _run(self) -> None:
        from django.db import connection

        try:
            with connection.cursor() as cursor:
                for pid in self._pids(cursor):
                    if (cpu := _cpu_of(pid)) is not None:
                        self.first[pid] = self.last[pid] = cpu
                self.started = True
                while not self.stopping.wait(0.1):
                    self._sample(cursor)
                self._sample(cursor)
        finally:
            self.started = True
            connection.close()

    def _sample(self, cursor: Any) -> None:
        for pid in self._pids(cursor):
            if (cpu := _cpu_of(pid)) is not None:
                self.first.setdefault(pid, 0.0)
                self.last[pid] = cpu

    def stop(self) -> float:
        self.stopping.set()
        self.thread.join()
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


def _server_round(
    *,
    client: Any,
    senders: list[tuple[str, str]],
    options: argparse.Namespace,
    sends: int,
    round_no: int,
    pgid: int,
    receiver_url: str,
) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from bench.cpu import group_seconds, machine_seconds
    from whatsapp.sandbox import services
    from whatsapp.sandbox.models import SandboxMessage, SandboxWebhookDelivery

    services.sandbox_reset()
    services.sandbox_settings_update(latency_ms=options.latency_ms, status_batch_ms=options.batch_ms)
    with connection.cursor() as cursor:
        for table in ("whatsapp_sandbox_sandboxmessage", "whatsapp_sandbox_sandboxwebhookdelivery"):
            cursor.execute(f"ANALYZE {table}")
        cursor.execute("SELECT pg_backend_pid()")
        (own_pid,) = cursor.fetchone()
    time.sleep(1.1)  # the server's processes read the settings again (they keep them a second)
    posts_before, statuses_before = _received(receiver_url)
    answers: dict[int, int] = {}
    lock = threading.Lock()

    def send(n: int) -> None:
        wait = started + n / options.rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        phone_number_id, token = senders[n % len(senders)]
        response = client.post(
            f"/sandbox/graph/{GRAPH_VERSION}/{phone_number_id}/messages",
            content=_body(n, round_no),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with lock:
            answers[response.status_code] = answers.get(response.status_code, 0) + 1

    sampler = BackendSampler(exclude={own_pid})
    sampler.start()
    machine_before = machine_seconds()
    cpu_before = group_seconds(pgid)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=options.concurrency) as pool:
        list(pool.map(send, range(sends)))
    sent_seconds = time.perf_counter() - started
    deadline = time.monotonic() + DONE_SECONDS
    states: dict[str, int] = {}
    while time.monotonic() < deadline:
        outbound = SandboxMessage.objects.filter(direction="outbound")
        states = {state: n for state, n in _delivery_states(SandboxWebhookDelivery)}
        if outbound.filter(status__in=("read", "failed")).count() >= outbound.count() and not (
            states.get("pending") or states.get("sending")
        ):
            break
        time.sleep(0.25)
    cpu = group_seconds(pgid) - cpu_before
    machine_after = machine_seconds()
    wall = time.perf_counter() - started
    pg = sampler.stop()
    busy = machine_after[0] - machine_before[0]
    cores = (machine_after[1] - machine_before[1]) / (os.cpu_count() or 1)
    posts, statuses = _received(receiver_url)
    accepted = answers.get(200, 0)
    return {
        "sends": sends,
        "answers": answers,
        "messages_read": SandboxMessage.objects.filter(direction="outbound", status="read").count(),
        "webhook_states": states,
        "webhooks_posted": posts - posts_before,
        "statuses_posted": statuses - statuses_before,
        "send_rate": round(sends / sent_seconds, 1),
        "python_cpu_ms_per_send": 1000 * cpu / max(accepted, 1),
        "postgres_cpu_ms_per_send": 1000 * pg / max(accepted, 1),
        "total_cpu_ms_per_send": 1000 * (cpu + pg) / max(accepted, 1),
        "machine_cores_busy": round(busy / cores, 2) if cores else None,  # this process's load included
        "wall_seconds": round(wall, 2),
    }


def _delivery_states(model: Any) -> list[tuple[str, int]]:
    from django.db.models import Count

    return list(model.objects.values_list("state").annotate(n=Count("pk")).order_by())


def _wait_alone(seconds: float = 15.0) -> None:
    """Until no other session uses the benchmark database (it is dropped next), or ``seconds`` pass."""
    from django.db import connection

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if not cursor.fetchone()[0]:
                break
        time.sleep(0.25)
    else:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid, state, backend_start, query FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            print("still connected:", cursor.fetchall(), [t.name for t in threading.enumerate()], file=sys.stderr)
    connection.close()


def _report(results: list[dict[str, Any]], profiles: Profiles | None, dump: str | None) -> None:
    for result in results:
        print(json.dumps(result, default=str))
    if profiles is not None:
        print(profiles.report(45, dump))
    keys = (
        "python_cpu_ms_per_send",
        "postgres_cpu_ms_per_send",
        "total_cpu_ms_per_send",
        "statements_per_send",
    )
    best = {key: min(r[key] for r in results) for key in keys if all(key in r for r in results)}
    print("best of rounds:", json.dumps({k: round(v, 3) for k, v in best.items()}), flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Bulk sends and dispatch: a 10,000-invoice bulk request, then the send rate against "Meta".

The whole pipeline runs as deployed, on the benchmark's PostgreSQL database and its own Redis
database: the hub's gunicorn (the REST API and ``/webhooks/whatsapp/``), one Celery worker
(prefork, ``-c 3``) and, as Meta, the sandbox in a gunicorn of its own that the hub reaches
through ``WHATSAPP_GRAPH_URL`` (sharing the database, with tables of its own). The sandbox answers
each send after ``latency_ms`` (100 ms), enforces the per-number throughput caps (130429) and the
pair rate (131056) when it knows them, and sends signed status webhooks (sent, delivered, read).

This process seeds five organizations, each with a sandbox WhatsApp account, one verified number
on its customer utility channel, an approved payment-reminder template (text only: no PDF is
rendered), IM credits and overdue invoices to distinct recipients, then measures:

1. **Bulk request**: ``POST /api/v1/invoices/whatsapp/bulk`` with 10,000 invoice ids: the time
   to the 202, and to the bulk send being written (``finished_at``: every message row and its
   credit reservation committed). Three requests, one after another; the first may be cold.
   What they queue is then cancelled (marked failed) so the phases after start clean: sending
   30,000 reminders from one number at 80/s would take six minutes.
2. **Sustained**: one bulk per organization at once, five numbers at 80/s each: messages sent
   per second (wamid stored, counted every second, between 10 % and 90 % of them), the
   busiest number's peak second and the 130429 refusals as the sandbox counted them, and the
   time until every message is ``read`` (the status webhooks applied).
3. **One number at 1,000/s**: organization 1's number raised to HIGH at the sandbox and in the
   hub, 10,000 reminders from it alone: the rate it reaches.
4. **Naive**: the worker restarted with ``WHATSAPP_DISPATCH_MODE=per_message`` (one task and one
   fresh connection per message), phase 2 again; the ratio of the two rates.

The worker's peak memory (VmHWM of its main process and every pool process) is sampled during
the phases and at their end. Every wait has a time limit; a phase that runs out of time reports
what it reached by then. Without the sandbox's stats endpoint the figures it would give are n/a.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2  # noqa: TID251 (the load: HTTP to the hub and to the sandbox, as bench/webhooks.py)
import redis
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone
from rest_framework.authtoken.models import Token

from bench.cpu import CpuMeter
from bench.servers import HOST, Servers, free_port, production_env
from books.choices import ContactType, DocumentKind, DocumentStatus
from books.models import Contact, ContactPerson, Document, Organization
from books.services.organizations import organization_create
from credits.models import Reservation
from credits.services import credits_adjust
from templates_mgmt.choices import HeaderType, TemplateCategory, TemplateStatus
from templates_mgmt.meta import template_components_build, template_payload_build
from templates_mgmt.services import module_setting_update, template_create, template_set_default
from whatsapp.choices import AccountStatus, Audience, Category, MessageStatus
from whatsapp.models import BulkSend, Channel, Message, PhoneNumber, WhatsAppAccount
from whatsapp.sandbox import services as sandbox
from whatsapp.sandbox.choices import TemplateStatus as SandboxTemplateStatus
from whatsapp.sandbox.models import SandboxBusinessAccount, SandboxPhoneNumber, SandboxTemplate
from whatsapp.sandbox.validation import clean_template_definition
from whatsapp.services.charges import credits_reference

BASE_DIR = Path(__file__).resolve().parent.parent
WEBHOOK_PATH = "/webhooks/whatsapp/"
BULK_PATH = "/api/v1/invoices/whatsapp/bulk"
CONTROL = "/sandbox/control"
APP_SECRET = "bench-dispatch-app-secret"  # noqa: S105 (signs loopback traffic to a throwaway database)
VERIFY_TOKEN = "bench-dispatch-verify-token"  # noqa: S105
MODULE = "payment_reminders"
TEMPLATE_BODY = (
    "Dear {{customer_name}}, this is a friendly reminder that {{invoice_number}} has {{balance_due}} due "
    "since {{due_date}}. Please pay it soon, thank you."
)
ORGANIZATIONS = 5
CREDITS = Decimal("1000000")
READY_SECONDS = 60  # for each gunicorn to answer and the worker to answer a ping
# Counting a phase's messages reads each of its rows (about 50 ms of PostgreSQL's CPU for 10,000):
# every half second, that was a tenth of a core taken from what the phase measures.
POLL_SECONDS = 1.0
PERSIST_POLL_SECONDS = 0.05  # watching one bulk send being written
SETTINGS_CACHE_SECONDS = 1.1  # each sandbox process rereads its settings row at most once a second
CANCELLED = "Cancelled by the benchmark"
STANDARD_CAP = 80
HIGH_CAP = 1000
GOAL_ANSWER_MS = 300
GOAL_PERSISTED_SECONDS = 2.0
GOAL_RATE = 300
GOAL_RSS_MB = 150


@dataclass(frozen=True)
class Options:
    redis_url: str
    invoices: int = 10_000  # the bulk of phases 1 and 3; a fifth of it per organization in 2 and 4
    requests: int = 3  # bulk requests of phase 1, one after another
    latency_ms: int = 100  # the sandbox's answer time for every Graph call
    status_batch_ms: int = 200  # the sandbox groups status webhooks due this close together (when it can)
    phase_seconds: float = 60.0  # time limit of phases 2 and 3: requests → every message read
    naive_seconds: float = 45.0  # time limit of phase 4 (the naive way cannot finish 10,000 at 100 ms)
    persist_seconds: float = 20.0  # time limit for one bulk send of phase 1 to be written
    quiesce_seconds: float = 10.0  # after a phase: its leftovers cancelled, until the broker's queue is empty
    celery_concurrency: int = 3  # a dispatch pump holds one process; the others write bulk sends' parts
    # The hub's web server: the API and the sandbox's status webhooks (a few senders at once).
    # PostgreSQL's max_connections (100 by default) is shared with the sandbox's threads.
    gunicorn_workers: int = 2
    gunicorn_threads: int = 4
    # Meta's stand-in: one process, with threads for the requests in flight (rate × latency: 64 at
    # 100 ms carry 640 msg/s) and as many PostgreSQL connections as the two processes of 32 threads
    # it had. Two processes cost the machine more for the same traffic: each sender thread claims
    # the statuses due in its windows, so two processes sent twice the status webhooks, each
    # smaller (sandbox, hub and drain CPU per message 2.4 / 0.26 / 3.1 ms, against 1.8 / 0.17 /
    # 2.6 with one), and their sends contended for the same per-second throughput rows.
    sandbox_workers: int = 1
    sandbox_threads: int = 64
    sandbox_delivery_threads: int = 2  # per sandbox process, sending status webhooks


@dataclass
class Tenant:
    index: int
    organization_id: int
    phone_number_pk: int
    phone_number_id: str
    invoice_ids: list[int]

    @property
    def label(self) -> str:
        return f"org {self.index + 1}"


@dataclass
class Dataset:
    token: str
    tenants: list[Tenant]


@dataclass
class Posted:
    """One bulk request as the client saw it."""

    organization_id: int
    messages: int
    started_at: float  # wall clock, to compare with the worker's finished_at
    seconds: float
    status: int | str  # the HTTP status, or the transport error's name
    bulk_id: int | None = None
    error: str = ""


@dataclass(frozen=True)
class Sample:
    """A phase's messages counted at one moment."""

    at: float
    rows: int
    completed: int  # the send request was answered: a wamid is stored
    read: int
    failed: int
    failed_unsent: int  # failed without a wamid (refused, or cancelled)
    throttled: int  # error_code 130429 on the row
    pair_limited: int  # error_code 131056 on the row


@dataclass(frozen=True)
class Figure:
    """One line of the table: a value (None: not available), its goal and whether it is met."""

    name: str
    value: float | None
    unit: str
    goal: str = ""
    met: bool | None = None
    note: str = ""


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    phases: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


# --- Data -------------------------------------------------------------------------------------


def _seed(options: Options) -> Dataset:
    """Five organizations, each connected to its own sandbox WABA; invoices written with bulk_create."""
    user = get_user_model().objects.create_user("bench-dispatch", password="bench-password")  # noqa: S106
    token = Token.objects.create(user=user).key
    per_org = max(1, options.invoices // ORGANIZATIONS)
    tenants = []
    for index in range(ORGANIZATIONS):
        organization = organization_create(
            name=f"Bench Dispatch {index + 1}", country="IN", currency="INR", time_zone="Asia/Kolkata", owner=user
        )
        credits_adjust(organization=organization, amount=CREDITS, note="benchmark", user=None)
        account, number, meta_account = _connect(organization, index)
        _approved_template(account, meta_account)
        count = options.invoices if index == 0 else per_org
        tenants.append(
            Tenant(
                index=index,
                organization_id=organization.pk,
                phone_number_pk=number.pk,
                phone_number_id=number.phone_number_id,
                invoice_ids=_invoices(organization, index, count),
            )
        )
    return Dataset(token=token, tenants=tenants)


def _connect(organization: Organization, index: int) -> tuple[WhatsAppAccount, PhoneNumber, SandboxBusinessAccount]:
    """The WABA at "Meta" (the sandbox: a verified, registered number, the app subscribed) and the
    hub's side of it: connected, the number on the customer utility channel, no daily tier limit."""
    n = index + 1
    waba_id, app_id, phone_number_id = f"1090000000{n:05d}", f"3090000000{n:05d}", f"2090000000{n:05d}"
    token = f"EAABenchDispatch{n:03d}" + "0" * 24
    display = f"+91 22 4100 000{n}"
    meta_account = sandbox.business_account_setup(
        waba_id=waba_id,
        app_id=app_id,
        access_token=token,
        name=organization.name,
        verified_name=organization.name,
        numbers=[sandbox.NumberSpec(phone_number_id=phone_number_id, display_phone_number=display, verified=True)],
    )
    account = WhatsAppAccount.objects.create(
        organization=organization,
        waba_id=waba_id,
        app_id=app_id,
        name=f"{organization.name} WhatsApp",
        access_token=token,
        status=AccountStatus.CONNECTED,
    )
    number = PhoneNumber.objects.create(
        organization=organization,
        account=account,
        phone_number_id=phone_number_id,
        display_phone_number=display,
        verified_name=organization.name,
        code_verification_status="VERIFIED",
        quality_rating="GREEN",
        status="CONNECTED",
        throughput_level="STANDARD",
        messaging_limit_tier="TIER_UNLIMITED",
        synced_at=timezone.now(),
    )
    account.default_phone_number = number
    account.save(update_fields=["default_phone_number"])
    Channel.objects.create(
        organization=organization,
        account=account,
        audience=Audience.CUSTOMER,
        category=Category.UTILITY,
        phone_number=number,
    )
    return account, number, meta_account


def _approved_template(account: WhatsAppAccount, meta_account: SandboxBusinessAccount) -> None:
    """A text-only payment reminder, approved on both sides without a review round trip: the
    sandbox gets exactly what the hub would submit, the hub what Meta's approval leaves."""
    template = template_create(
        organization=account.organization,
        waba_id=account.waba_id,
        name="bench_payment_reminder",
        language="en",
        category=TemplateCategory.UTILITY,
        module=MODULE,
        body=TEMPLATE_BODY,
        header_type=HeaderType.NONE,
    )
    meta_template = SandboxTemplate.objects.create(
        account=meta_account,
        template_id=sandbox.new_object_id(),
        status=SandboxTemplateStatus.APPROVED,
        **clean_template_definition(template_payload_build(template)),
    )
    template.components = template_components_build(template)
    template.meta_id = meta_template.template_id
    template.status = TemplateStatus.APPROVED
    template.save()
    template_set_default(template=template)
    module_setting_update(organization=account.organization, module=MODULE, enabled=True, user=None)


def _invoices(organization: Organization, index: int, count: int) -> list[int]:
    """``count`` issued invoices, past due with a balance, each to a customer of its own whose one
    person has WhatsApp and a valid Indian mobile (distinct recipients: the pair rate never binds)."""
    today = organization.today()
    with transaction.atomic():
        contacts = Contact.objects.bulk_create(
            [
                Contact(
                    organization=organization,
                    contact_type=ContactType.CUSTOMER,
                    display_name=f"Customer {index + 1}-{n:05d}",
                    whatsapp_enabled=True,
                )
                for n in range(count)
            ],
            batch_size=2000,
        )
        ContactPerson.objects.bulk_create(
            [
                ContactPerson(
                    contact=contact,
                    first_name="Asha",
                    last_name=f"Rao {n}",
                    mobile=f"+919{index + 1}{n:08d}",
                    is_primary=True,
                    whatsapp_enabled=True,
                )
                for n, contact in enumerate(contacts)
            ],
            batch_size=2000,
        )
        amount = Decimal("11800.00")
        documents = Document.objects.bulk_create(
            [
                Document(
                    organization=organization,
                    kind=DocumentKind.INVOICE,
                    number=f"INV-{n + 1:06d}",
                    contact=contact,
                    date=today - timedelta(days=45),
                    due_date=today - timedelta(days=30),
                    currency=organization.currency,
                    status=DocumentStatus.SENT,
                    subtotal=Decimal("10000.00"),
                    tax_total=Decimal("1800.00"),
                    total=amount,
                    balance=amount,
                )
                for n, contact in enumerate(contacts)
            ],
            batch_size=2000,
        )
    return [document.pk for document in documents]


# --- Processes --------------------------------------------------------------------------------


def _base_env(options: Options) -> dict[str, str]:
    return production_env(redis_url=options.redis_url, app_secret=APP_SECRET, verify_token=VERIFY_TOKEN)


def _hub_env(options: Options, *, meta_port: int, mode: str) -> dict[str, str]:
    return _base_env(options) | {
        "WHATSAPP_SANDBOX_ENABLED": "false",
        "WHATSAPP_GRAPH_URL": f"http://{HOST}:{meta_port}/sandbox/graph",
        "WHATSAPP_DISPATCH_MODE": mode,
    }


def _meta_env(options: Options, *, hub_port: int) -> dict[str, str]:
    return _base_env(options) | {
        "DJANGO_SETTINGS_MODULE": "bench.sandbox_settings",
        "WHATSAPP_SANDBOX_ENABLED": "true",
        "WHATSAPP_SANDBOX_WEBHOOK_URL": f"http://{HOST}:{hub_port}{WEBHOOK_PATH}",
        "BENCH_SANDBOX_DELIVERY_THREADS": str(options.sandbox_delivery_threads),
    }


def _gunicorn(port: int, *, workers: int, threads: int, connections: int, keep_alive: int = 2) -> list[str]:
    """gthread keeps a connection alive only while a process holds fewer than ``connections``
    (more than its threads; at most its threads and gunicorn closes every one, as the naive way
    does). Not many more: a burst of new connections would pile onto one process (see
    bench/webhooks.py). ``keep_alive``: seconds an idle connection is kept (gunicorn's 2 by default)."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi",
        f"--bind={HOST}:{port}",
        f"--workers={workers}",
        f"--threads={threads}",
        f"--worker-class={'gthread' if threads > 1 else 'sync'}",
        f"--worker-connections={max(connections, threads + 1)}",
        "--log-level=warning",
        "--graceful-timeout=5",
        f"--keep-alive={keep_alive}",
    ]


def _celery(options: Options, name: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--loglevel=WARNING",
        f"--concurrency={options.celery_concurrency}",
        f"--hostname={name}-{os.getpid()}@%h",
        "--without-mingle",
        "--without-gossip",
    ]


def _wait_until(servers: Iterable[Servers], what: str, ready: Any) -> None:
    """Call ``ready()`` until it is true; a transport error means "not yet" until READY_SECONDS."""
    deadline = time.monotonic() + READY_SECONDS
    while True:
        for group in servers:
            group.check()
        try:
            if ready():
                return
        except httpx2.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer within {READY_SECONDS}s")
        time.sleep(0.2)


def _hub_ready(base_url: str) -> bool:
    params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "ready"}
    response = httpx2.get(f"{base_url}{WEBHOOK_PATH}", params=params, timeout=2)
    if response.status_code == 200 and response.text == "ready":
        return True
    raise RuntimeError(f"GET {WEBHOOK_PATH} answered {response.status_code}: {response.text[:300]!r}")


def _meta_ready(base_url: str) -> bool:
    response = httpx2.get(f"{base_url}{CONTROL}/settings", timeout=2)
    if response.status_code == 200:
        return True
    raise RuntimeError(f"GET {CONTROL}/settings answered {response.status_code}: {response.text[:300]!r}")


def _worker_ready() -> bool:
    from config.celery import app

    return bool(app.control.ping(timeout=1.0))


def _group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:  # field 5, pgrp (the fields after the command name start at 3)
            pids.append(int(entry.name))
    return pids


def _vm_hwm_kib(pid: int) -> int | None:
    try:
        for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class PeakMemory:
    """The worker's peak resident memory: VmHWM (the kernel's high-water mark) of the main process
    and every pool process, sampled while it runs (a pool process may be replaced) and at the end."""

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid
        self.kib: dict[int, int] = {}

    def sample(self) -> None:
        if not Path("/proc/self/status").exists():
            return
        for pid in _group_pids(self.pgid):
            hwm = _vm_hwm_kib(pid)
            if hwm is not None:
                self.kib[pid] = max(hwm, self.kib.get(pid, 0))

    @property
    def peak_mb(self) -> float | None:
        return round(max(self.kib.values()) / 1024, 1) if self.kib else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "peak_mb": self.peak_mb,
            "main_mb": round(self.kib[self.pgid] / 1024, 1) if self.pgid in self.kib else None,
            "processes_mb": {str(pid): round(kib / 1024, 1) for pid, kib in sorted(self.kib.items())},
        }


class Stack:
    """The running processes (hub web, sandbox web, worker) and what is sampled from them."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.hub_port, self.meta_port = free_port(), free_port()
        self.hub_url = f"http://{HOST}:{self.hub_port}"
        self.meta_url = f"http://{HOST}:{self.meta_port}"
        log_dir = BASE_DIR / "var" / "bench"
        self.web = Servers(env=_hub_env(options, meta_port=self.meta_port, mode="batch"), cwd=BASE_DIR, log_dir=log_dir)
        self.meta = Servers(env=_meta_env(options, hub_port=self.hub_port), cwd=BASE_DIR, log_dir=log_dir)
        self.worker = Servers(
            env=_hub_env(options, meta_port=self.meta_port, mode="batch"), cwd=BASE_DIR, log_dir=log_dir
        )
        self.memory: PeakMemory | None = None
        self.mode = "batch"
        self.connections_peak = 0

    def start(self) -> None:
        options = self.options
        self.meta.start(
            "dispatch-sandbox",
            _gunicorn(
                self.meta_port,
                workers=options.sandbox_workers,
                threads=options.sandbox_threads,
                # Meta keeps an idle connection longer than the hub's pool does (whatsapp.client's
                # keepalive_expiry, 30 s), so the hub is the one to close it. With gunicorn's 2 s, a
                # send written on a connection the stand-in was closing that instant got no answer:
                # Meta may have taken it, so the message waits for a webhook (7 of 10,000 in one run).
                keep_alive=60,
                # And it takes every connection the hub opens: each pool process's pool keeps up to
                # 200 (whatsapp.client's LIMITS). At its limit gthread stops accepting, and a send on a
                # new connection waited in the backlog until the hub gave up on it (20 s, no answer):
                # with 128 and idle connections kept 60 s, one number at 1,000/s fell to 200 msg/s.
                connections=1024,
            ),
        )
        self.web.start(
            "dispatch-gunicorn",
            _gunicorn(
                self.hub_port,
                workers=options.gunicorn_workers,
                threads=options.gunicorn_threads,
                connections=4 * options.gunicorn_threads,
            ),
        )
        self._start_worker("batch")
        _wait_until(self.groups, "the sandbox's gunicorn", lambda: _meta_ready(self.meta_url))
        _wait_until(self.groups, "the hub's gunicorn", lambda: _hub_ready(self.hub_url))

    def _start_worker(self, mode: str) -> None:
        self.mode = mode
        self.worker.env = _hub_env(self.options, meta_port=self.meta_port, mode=mode)
        name = "dispatch-celery" if mode == "batch" else "dispatch-celery-naive"
        self.worker.start(name, _celery(self.options, name))
        self.memory = PeakMemory(self.worker.pgid(name))
        _wait_until(self.groups, f"the Celery worker ({mode})", _worker_ready)

    def restart_worker(self, mode: str) -> PeakMemory | None:
        """Stop the worker (its peak memory is returned) and start one in ``mode``."""
        previous = self.memory
        self.sample()
        self.worker.stop()
        self._start_worker(mode)
        return previous

    def cpu_groups(self) -> dict[str, int]:
        """The process groups whose CPU a phase reports: Meta (the sandbox), the hub's web server, the worker."""
        groups = {"sandbox": self.meta, "hub_web": self.web, "worker": self.worker}
        return {name: servers.pgid(child) for name, servers in groups.items() for child in servers.children}

    @property
    def groups(self) -> list[Servers]:
        return [self.meta, self.web, self.worker]

    def check(self) -> None:
        for group in self.groups:
            group.check()

    def sample(self) -> None:
        if self.memory is not None:
            self.memory.sample()
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
            self.connections_peak = max(self.connections_peak, cursor.fetchone()[0])

    def stop(self) -> None:
        for group in (self.worker, self.web, self.meta):
            group.stop()


# --- The sandbox's control API --------------------------------------------------------------


def _sandbox_prepare(stack: Stack) -> dict[str, Any]:
    """Reset the sandbox (messages, webhooks, faults, counters; the settings go back to their
    defaults) and set the latency and, when the sandbox has it, status webhook batching."""
    options = stack.options
    with httpx2.Client(base_url=stack.meta_url, timeout=30) as client:
        _expect(client.post(f"{CONTROL}/reset", json={}), "reset")
        current = _expect(client.get(f"{CONTROL}/settings"), "settings").json()
        wanted: dict[str, Any] = {"latency_ms": options.latency_ms}
        if "status_batch_ms" in current:
            wanted["status_batch_ms"] = options.status_batch_ms
        applied = _expect(client.post(f"{CONTROL}/settings", json=wanted), "settings").json()
    time.sleep(SETTINGS_CACHE_SECONDS)  # the other sandbox processes' cached settings expire
    return applied


def _sandbox_stats(stack: Stack) -> dict[str, Any] | None:
    """``GET /sandbox/control/stats``'s per-number counters, or None when the sandbox has none."""
    try:
        response = httpx2.get(f"{stack.meta_url}{CONTROL}/stats", timeout=30)
    except httpx2.HTTPError:
        return None
    if response.status_code != 200:
        return None
    try:
        data = response.json()
    except ValueError:
        return None
    return (data.get("phone_numbers") or {}) if isinstance(data, dict) else None


def _expect(response: httpx2.Response, what: str) -> httpx2.Response:
    if response.status_code >= 300:
        raise RuntimeError(f"the sandbox's {what} answered {response.status_code}: {response.text[:300]!r}")
    return response


def _throughput_set(tenant: Tenant, level: str) -> None:
    """The number's throughput level at Meta (the sandbox's row) and as the hub last synced it."""
    SandboxPhoneNumber.objects.filter(phone_number_id=tenant.phone_number_id).update(throughput_level=level)
    PhoneNumber.objects.filter(pk=tenant.phone_number_pk).update(throughput_level=level)


# --- Load -------------------------------------------------------------------------------------


async def _post_bulks(base_url: str, token: str, sends: Sequence[tuple[Tenant, list[int], str]]) -> list[Posted]:
    """The bulk requests at once, each on its own connection."""
    headers = {"Authorization": f"Token {token}"}
    limits = httpx2.Limits(max_connections=len(sends), max_keepalive_connections=len(sends))
    async with httpx2.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=60) as client:

        async def post(tenant: Tenant, ids: list[int], key: str) -> Posted:
            started, begin = time.time(), time.perf_counter()
            posted = Posted(tenant.organization_id, len(ids), started, 0.0, "")
            try:
                response = await client.post(
                    BULK_PATH,
                    params={"organization_id": tenant.organization_id},
                    json={"ids": ids, "module": MODULE},
                    headers={"Idempotency-Key": key},
                )
            except httpx2.HTTPError as exc:
                posted.seconds, posted.status = time.perf_counter() - begin, type(exc).__name__
                return posted
            posted.seconds, posted.status = time.perf_counter() - begin, response.status_code
            if response.status_code == 202:
                posted.bulk_id = int(response.json()["bulk_id"])
            else:
                posted.error = response.text[:300]
            return posted

        return list(await asyncio.gather(*(post(*send) for send in sends)))


def _sample(bulk_ids: Sequence[int]) -> Sample:
    failed = Q(status=MessageStatus.FAILED)
    counts = Message.objects.filter(bulk_id__in=bulk_ids).aggregate(
        rows=Count("pk"),
        completed=Count("pk", filter=Q(wamid__isnull=False)),
        read=Count("pk", filter=Q(status=MessageStatus.READ)),
        failed=Count("pk", filter=failed),
        failed_unsent=Count("pk", filter=failed & Q(wamid__isnull=True)),
        throttled=Count("pk", filter=Q(error_code=130429)),
        pair_limited=Count("pk", filter=Q(error_code=131056)),
    )
    return Sample(at=time.time(), **counts)


def _bulks_written(bulk_ids: Sequence[int]) -> tuple[bool, int]:
    """(whether every bulk send is written, how many messages they queued)."""
    rows = BulkSend.objects.filter(pk__in=bulk_ids).values_list("state", "messages_queued")
    done = [state in (BulkSend.State.DONE, BulkSend.State.FAILED) for state, _queued in rows]
    return len(done) == len(bulk_ids) and all(done), sum(queued for _state, queued in rows)


def _cancel(bulk_ids: Sequence[int]) -> int:
    """Fail what the bulk sends still have queued, so that nothing more of them is sent."""
    return Message.objects.filter(bulk_id__in=bulk_ids, status=MessageStatus.QUEUED).update(
        status=MessageStatus.FAILED, error_title=CANCELLED, failed_at=timezone.now()
    )


def _broker_backlog(redis_url: str) -> int:
    """Tasks waiting in the broker (kombu keeps each queue, and each priority of it, in a list)."""
    client = redis.Redis.from_url(redis_url)
    return sum(client.llen(key) for key in client.scan_iter(match="celery*") if client.type(key) == b"list")


def _in_flight(bulk_ids: Sequence[int]) -> int:
    """Messages claimed for sending whose request has not been answered yet."""
    return Message.objects.filter(bulk_id__in=bulk_ids, status=MessageStatus.SENDING, wamid__isnull=True).count()


def _quiesce(stack: Stack, bulk_ids: Sequence[int]) -> dict[str, Any]:
    """Cancel the bulk sends' leftovers and wait until nothing of them is left to send (a pump
    sends the rows it claimed, a couple of seconds' worth) and the worker has nothing queued
    (per-message tasks, status webhooks to apply): the next phase's figures are its own. What is
    still queued at the time limit is purged."""
    started = time.monotonic()
    deadline = started + stack.options.quiesce_seconds
    cancelled = in_flight = 0
    while True:
        stack.check()
        stack.sample()
        cancelled += _cancel(bulk_ids)
        written, _queued = _bulks_written(bulk_ids)
        in_flight = _in_flight(bulk_ids)
        backlog = _broker_backlog(stack.options.redis_url)
        if written and in_flight == 0 and backlog == 0:
            purged = 0
            break
        if time.monotonic() > deadline:
            from config.celery import app

            purged = (app.control.purge() or 0) if backlog else 0
            cancelled += _cancel(bulk_ids)
            break
        time.sleep(0.25)
    vacuumed = _vacuum()
    return {
        "cancelled": cancelled,
        "in_flight_left": in_flight,
        "purged_tasks": purged,
        "seconds": round(time.monotonic() - started, 2),
        "vacuum_seconds": vacuumed,
    }


def _vacuum() -> float | None:
    """Vacuum and analyze the database after seeding and between phases, as autovacuum would in
    time: a phase's thousands of cancelled rows leave dead entries in the queued-rows index that
    every claim of the next phase would otherwise step over. Seconds it took (None on SQLite)."""
    if connection.vendor != "postgresql":
        return None
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    return round(time.monotonic() - started, 2)


def _crossing(samples: Sequence[Sample], level: float) -> float | None:
    """When ``completed`` reached ``level``, interpolated between the two samples around it."""
    previous: Sample | None = None
    for sample in samples:
        if sample.completed >= level:
            if previous is None or sample.completed == previous.completed:
                return sample.at
            share = (level - previous.completed) / (sample.completed - previous.completed)
            return previous.at + (sample.at - previous.at) * share
        previous = sample
    return None


def steady_rate(samples: Sequence[Sample], target: int) -> tuple[float | None, str]:
    """Messages sent per second over the steady part: from 10 % to 90 % of ``target`` sent. A
    phase that ran out of time before 90 % is measured from 10 % (or its first send) to the end."""
    if not samples or target <= 0:
        return None, "nothing sent"
    low, high = _crossing(samples, 0.1 * target), _crossing(samples, 0.9 * target)
    if low is not None and high is not None and high > low:
        return 0.8 * target / (high - low), "10-90 %"
    start = low if low is not None else next((s.at for s in samples if s.completed > 0), None)
    if start is None:
        return None, "nothing sent"
    before = max((s.completed for s in samples if s.at <= start), default=0)
    last = samples[-1]
    if last.at <= start or last.completed <= before:
        return None, "too few samples"
    return (last.completed - before) / (last.at - start), f"{'10 %' if low is not None else 'first send'} to the end"


def _phase(
    stack: Stack, dataset: Dataset, *, name: str, sends: list[tuple[Tenant, list[int]]], seconds: float
) -> dict[str, Any]:
    """Post one bulk per (tenant, invoices) at once, count their messages every POLL_SECONDS until
    every one is read (or failed) or ``seconds`` pass, then cancel what is left."""
    sandbox_settings = _sandbox_prepare(stack)
    meter = CpuMeter(stack.cpu_groups(), _backends)
    meter.start()
    keyed = [(tenant, ids, f"bench-{name}-{tenant.index + 1}-{time.time_ns()}") for tenant, ids in sends]
    posted = asyncio.run(_post_bulks(stack.hub_url, dataset.token, keyed))
    bulk_ids = [p.bulk_id for p in posted if p.bulk_id is not None]
    expected = sum(p.messages for p in posted if p.bulk_id is not None)
    started = min(p.started_at for p in posted)
    deadline = started + seconds
    samples: list[Sample] = []
    all_sent_at = all_read_at = None
    target = expected
    while bulk_ids:
        stack.check()
        stack.sample()
        sample = _sample(bulk_ids)
        samples.append(sample)
        written, queued = _bulks_written(bulk_ids)
        target = queued if written else expected
        if written and all_sent_at is None and sample.completed + sample.failed_unsent >= target:
            all_sent_at = sample.at
        if written and sample.read + sample.failed >= target:
            all_read_at = sample.at
            break
        if time.time() >= deadline:
            break
        time.sleep(max(0.0, POLL_SECONDS - (time.time() - sample.at)))
    cpu = meter.stop()
    stats = _sandbox_stats(stack)
    bulks = _bulk_timings(bulk_ids, started)
    quiesce = _quiesce(stack, bulk_ids)
    last = samples[-1] if samples else Sample(time.time(), 0, 0, 0, 0, 0, 0, 0)
    rate, method = steady_rate(samples, target)
    sent_seconds = (all_sent_at or last.at) - started
    numbers = {tenant.phone_number_id for tenant, _ids in sends}
    return {
        "name": name,
        "mode": stack.mode,
        "sandbox_settings": sandbox_settings,
        "requests": [asdict(p) for p in posted],
        "messages": target,
        "sent": last.completed,
        "read": last.read,
        "failed": last.failed,
        "rows_130429": last.throttled,
        "rows_131056": last.pair_limited,
        "rate_per_second": round(rate, 1) if rate is not None else None,
        "rate_method": method,
        "overall_per_second": round(last.completed / sent_seconds, 1) if sent_seconds > 0 else None,
        "first_sent_seconds": round(first_sent - started, 2) if (first_sent := _crossing(samples, 1)) else None,
        "written_seconds": None
        if not bulks or any(b["written_seconds"] is None for b in bulks)
        else max(b["written_seconds"] for b in bulks),
        "bulks": bulks,
        "all_sent_seconds": round(all_sent_at - started, 2) if all_sent_at else None,
        "all_read_seconds": round(all_read_at - started, 2) if all_read_at else None,
        "timed_out": all_read_at is None,
        "time_limit_seconds": seconds,
        **_sandbox_totals(stats, numbers),
        "quiesce": quiesce,
        **_per_message_cpu(cpu, last.completed),
        "samples": [(round(s.at - started, 2), s.completed, s.read) for s in samples],
    }


def _backends() -> list[int]:
    """The PostgreSQL backends serving the benchmark's database (the hub's and the sandbox's), not this one."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [pid for (pid,) in cursor.fetchall()]


def _per_message_cpu(cpu: dict[str, float], messages: int) -> dict[str, Any]:
    """CPU milliseconds per message sent, by process (``senders`` is this process: polling and
    the bulk requests), and the machine's average busy cores, for the JSON and the phase line."""
    if not cpu or not messages:
        return {}
    each = {name: round(seconds * 1000 / messages, 2) for name, seconds in cpu.items() if name != "machine_cores_busy"}
    return {"cpu_ms_per_message": each, "machine_cores_busy": round(cpu["machine_cores_busy"], 2)}


def _sandbox_totals(stats: dict[str, Any] | None, numbers: set[str]) -> dict[str, Any]:
    """The phase's numbers in the sandbox's stats: the busiest second of any, the refusals of all."""
    if stats is None:
        return {"sandbox_stats": None, "peak_per_second": None, "refused_130429": None, "refused_131056": None}
    mine = {pid: counters for pid, counters in stats.items() if pid in numbers}

    def total(name: str) -> int:
        return sum(int(counters.get(name) or 0) for counters in mine.values())

    return {
        "sandbox_stats": mine,
        "peak_per_second": max((int(counters.get("peak_per_second") or 0) for counters in mine.values()), default=0),
        "refused_130429": total("refused_130429"),
        "refused_131056": total("refused_131056"),
    }


def _bulk_timings(bulk_ids: Sequence[int], started: float) -> list[dict[str, Any]]:
    """Each bulk send's wait for a pool process, its writing time, and when it was written (from
    the first request): a late first send is told apart from a slow one."""

    def seconds(begin: Any, end: Any) -> float | None:
        return round((end - begin).total_seconds(), 3) if begin and end else None

    rows = BulkSend.objects.filter(pk__in=bulk_ids).order_by("pk")
    return [
        {
            "bulk_id": bulk.pk,
            "queued_seconds": seconds(bulk.created_at, bulk.started_at),
            "writing_seconds": seconds(bulk.started_at, bulk.finished_at),
            "written_seconds": round(bulk.finished_at.timestamp() - started, 3) if bulk.finished_at else None,
        }
        for bulk in rows.only("pk", "created_at", "started_at", "finished_at")
    ]


def _bulk_requests(stack: Stack, dataset: Dataset) -> list[dict[str, Any]]:
    """Phase 1: the same 10,000 invoices of organization 1, ``requests`` times (a key each)."""
    options = stack.options
    tenant = dataset.tenants[0]
    _sandbox_prepare(stack)
    runs = []
    for number in range(1, options.requests + 1):
        key = f"bench-bulk-{number}-{time.time_ns()}"
        (posted,) = asyncio.run(_post_bulks(stack.hub_url, dataset.token, [(tenant, tenant.invoice_ids, key)]))
        run: dict[str, Any] = {"request": asdict(posted), "persisted_seconds": None, "timed_out": False}
        if posted.bulk_id is not None:
            run |= _wait_persisted(stack, posted, options.persist_seconds)
            run["quiesce"] = _quiesce(stack, [posted.bulk_id])
        runs.append(run)
        print(
            f"bench: dispatch: bulk request {number}: {posted.status} after {posted.seconds * 1000:.0f} ms;"
            f" written after {_seconds_text(run['persisted_seconds'])}",
            flush=True,
        )
    return runs


def _wait_persisted(stack: Stack, posted: Posted, seconds: float) -> dict[str, Any]:
    """Until the bulk send is written (its ``finished_at``: the last chunk of messages and
    reservations committed) or ``seconds`` pass; then count its messages and reservations."""
    deadline = time.monotonic() + seconds
    next_sample = 0.0
    finished_at = None
    state = None
    while time.monotonic() < deadline:
        if time.monotonic() >= next_sample:
            stack.check()
            stack.sample()
            next_sample = time.monotonic() + POLL_SECONDS
        state, finished_at = BulkSend.objects.filter(pk=posted.bulk_id).values_list("state", "finished_at").get()
        if finished_at is not None:
            break
        time.sleep(PERSIST_POLL_SECONDS)
    message_ids = list(Message.objects.filter(bulk_id=posted.bulk_id).values_list("pk", flat=True))
    reservations = Reservation.objects.filter(reference__in=[credits_reference(pk) for pk in message_ids]).count()
    created_at, started_at = BulkSend.objects.filter(pk=posted.bulk_id).values_list("created_at", "started_at").get()
    return {
        "state": state,
        "persisted_seconds": round(finished_at.timestamp() - posted.started_at, 3) if finished_at else None,
        # Where the time went: the task waiting for a pool process, then the chunks being written.
        "queued_seconds": round((started_at - created_at).total_seconds(), 3) if started_at else None,
        "writing_seconds": round((finished_at - started_at).total_seconds(), 3) if finished_at and started_at else None,
        "timed_out": finished_at is None,
        "messages": len(message_ids),
        "reservations": reservations,
    }


# --- The benchmark ----------------------------------------------------------------------------


def _flush(redis_url: str) -> None:
    redis.Redis.from_url(redis_url).flushdb()


def _connection_budget(options: Options) -> str:
    """Persistent PostgreSQL connections the servers may hold at most against max_connections."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        limit = int(cursor.fetchone()[0])
    wanted = (
        options.sandbox_workers * (options.sandbox_threads + options.sandbox_delivery_threads)
        + options.gunicorn_workers * options.gunicorn_threads
        + options.celery_concurrency
        + 1
    )
    note = f"servers may hold {wanted} PostgreSQL connections (+ the pumps' own), max_connections {limit}"
    return note + (" - WARNING: too many" if wanted >= limit - 5 else "")


def run(options: Options) -> Report:
    """Seed, start the processes, run the four phases; raises RuntimeError (``ServerDied``
    included) when a process does not come up or dies."""
    per_org = max(1, options.invoices // ORGANIZATIONS)
    total = options.invoices + per_org * (ORGANIZATIONS - 1)
    print(f"bench: dispatch: seeding {ORGANIZATIONS} organizations, {total} overdue invoices", flush=True)
    began = time.perf_counter()
    dataset = _seed(options)
    # The invoices are 45 days old: long vacuumed and analyzed in a database in use. Read fresh, the
    # first bulk request set the hint bits of the 30,000 rows just written and raced autovacuum's
    # analyze (PostgreSQL's CPU over that request: 2.2 core-seconds, against 1.2 for the next).
    _vacuum()
    print(f"bench: dispatch: seeded in {time.perf_counter() - began:.1f}s; {_connection_budget(options)}", flush=True)
    _flush(options.redis_url)
    report = Report()
    stack = Stack(options)
    try:
        stack.start()
        print(
            f"bench: dispatch: hub on {stack.hub_url} ({options.gunicorn_workers} x {options.gunicorn_threads}),"
            f" sandbox on {stack.meta_url} ({options.sandbox_workers} x {options.sandbox_threads},"
            f" {options.latency_ms} ms), Celery worker ({options.celery_concurrency} processes)",
            flush=True,
        )
        report.phases["bulk_requests"] = _bulk_requests(stack, dataset)

        tenants = dataset.tenants
        sustained = [(tenant, tenant.invoice_ids[:per_org]) for tenant in tenants]
        report.phases["sustained"] = _phase(
            stack, dataset, name="sustained", sends=sustained, seconds=options.phase_seconds
        )
        _print_phase(report.phases["sustained"])

        _throughput_set(tenants[0], "HIGH")
        report.phases["high"] = _phase(
            stack, dataset, name="high", sends=[(tenants[0], tenants[0].invoice_ids)], seconds=options.phase_seconds
        )
        _throughput_set(tenants[0], "STANDARD")
        _print_phase(report.phases["high"])

        batch_memory = stack.restart_worker("per_message")
        report.phases["naive"] = _phase(stack, dataset, name="naive", sends=sustained, seconds=options.naive_seconds)
        _print_phase(report.phases["naive"])
        stack.sample()
        report.phases["memory"] = {
            "batch": batch_memory.as_dict() if batch_memory else None,
            "per_message": stack.memory.as_dict() if stack.memory else None,
        }
        report.phases["postgres_connections_peak"] = stack.connections_peak
    finally:
        stack.stop()
        _flush(options.redis_url)
    report.figures = figures(report.phases, options)
    report.failures = failures(report.phases)
    return report


def _seconds_text(value: float | None) -> str:
    return "TIMED OUT" if value is None else f"{value:.2f}s"


def _print_phase(phase: dict[str, Any]) -> None:
    rate = phase["rate_per_second"]
    print(
        f"bench: dispatch: {phase['name']} ({phase['mode']}): {phase['sent']} of {phase['messages']} sent,"
        f" {rate if rate is not None else 'n/a'}/s ({phase['rate_method']}),"
        f" all read after {_seconds_text(phase['all_read_seconds'])}",
        flush=True,
    )
    if each := phase.get("cpu_ms_per_message"):
        parts = ", ".join(f"{name} {ms:.2f}" for name, ms in each.items())
        print(f"  CPU ms per message: {parts}; {phase['machine_cores_busy']} cores busy", flush=True)


# --- Figures ----------------------------------------------------------------------------------


def _at_most(value: float | None, goal: float) -> bool | None:
    return None if value is None else value <= goal


def figures(phases: dict[str, Any], options: Options) -> list[Figure]:
    """The table: each measure with its goal from the issue, where it has one."""
    rows: list[Figure] = []
    for number, run in enumerate(phases.get("bulk_requests", []), start=1):
        request = run["request"]
        answered_ms = request["seconds"] * 1000 if request["status"] == 202 else None
        rows.append(
            Figure(
                f"bulk of {request['messages']}: 202 answered (#{number})",
                answered_ms,
                "ms",
                f"<= {GOAL_ANSWER_MS}",
                _at_most(answered_ms, GOAL_ANSWER_MS),
                "" if request["status"] == 202 else f"answered {request['status']}: {request['error'][:120]}",
            )
        )
        persisted = run["persisted_seconds"]
        rows.append(
            Figure(
                f"bulk of {request['messages']}: rows + reservations (#{number})",
                persisted,
                "s",
                f"<= {GOAL_PERSISTED_SECONDS:g}",
                _at_most(persisted, GOAL_PERSISTED_SECONDS),
                f"{run.get('messages', 0)} messages, {run.get('reservations', 0)} reservations;"
                f" task waited {_seconds_text(run.get('queued_seconds'))} for the worker,"
                f" wrote in {_seconds_text(run.get('writing_seconds'))}"
                + (f"; TIMED OUT after {options.persist_seconds:g}s" if run.get("timed_out") else ""),
            )
        )
    sustained, high, naive = phases.get("sustained"), phases.get("high"), phases.get("naive")
    if sustained:
        rows += _rate_figures(sustained, f"{ORGANIZATIONS} numbers x {STANDARD_CAP}/s", goal=GOAL_RATE)
    if high:
        rows += _rate_figures(high, f"1 number at {HIGH_CAP}/s", goal=None)
    if naive:
        rows += _rate_figures(naive, "naive (per message)", goal=None)
    if sustained and naive:
        batch_rate, naive_rate = sustained["rate_per_second"], naive["rate_per_second"]
        ratio = batch_rate / naive_rate if batch_rate and naive_rate else None
        rows.append(Figure("batch / naive send rate", ratio, "x", note="phase 2's rate over phase 4's"))
    memory = phases.get("memory") or {}
    for mode in ("batch", "per_message"):
        figures_ = memory.get(mode) or {}
        peak = figures_.get("peak_mb")
        rows.append(
            Figure(
                f"worker peak RSS ({mode})",
                peak,
                "MB",
                f"<= {GOAL_RSS_MB}",
                _at_most(peak, GOAL_RSS_MB),
                f"VmHWM, max of the main process ({figures_.get('main_mb')} MB) and"
                f" {max(0, len(figures_.get('processes_mb') or {}) - 1)} pool processes",
            )
        )
    return rows


def _rate_figures(phase: dict[str, Any], label: str, *, goal: float | None) -> list[Figure]:
    cap = HIGH_CAP if phase["name"] == "high" else STANDARD_CAP
    rate = phase["rate_per_second"]
    timed_out = f"; TIMED OUT after {phase['time_limit_seconds']:g}s" if phase["timed_out"] else ""
    rows = [
        Figure(
            f"{label}: sent per second",
            rate,
            "msg/s",
            f">= {goal}" if goal else "",
            None if goal is None or rate is None else rate >= goal,
            f"{phase['sent']} of {phase['messages']} sent, rate {phase['rate_method']};"
            f" overall {phase['overall_per_second']}/s; bulks written after {_seconds_text(phase['written_seconds'])},"
            f" first sent after {_seconds_text(phase['first_sent_seconds'])}{timed_out}",
        ),
        Figure(
            f"{label}: peak second, busiest number",
            phase["peak_per_second"],
            "msg/s",
            f"<= {cap}",
            _at_most(phase["peak_per_second"], cap),
            "sandbox stats" if phase["sandbox_stats"] is not None else "n/a: the sandbox has no stats endpoint",
        ),
    ]
    refused = phase["refused_130429"]
    rows.append(
        Figure(
            f"{label}: 130429 refusals",
            refused if refused is not None else phase["rows_130429"],
            "",
            "0",
            (refused or 0) + phase["rows_130429"] == 0,
            f"sandbox {refused if refused is not None else 'n/a'}, hub rows {phase['rows_130429']};"
            f" 131056: sandbox {phase['refused_131056'] if phase['refused_131056'] is not None else 'n/a'},"
            f" hub rows {phase['rows_131056']}",
        )
    )
    rows.append(
        Figure(
            f"{label}: all read",
            phase["all_read_seconds"],
            "s",
            note=f"{phase['read']} of {phase['messages']} read; requests -> last status applied{timed_out}",
        )
    )
    return rows


def failures(phases: dict[str, Any]) -> list[str]:
    """What went wrong (not merely slow): a bulk request refused, rows without their reservations."""
    problems = []
    for number, run in enumerate(phases.get("bulk_requests", []), start=1):
        request = run["request"]
        if request["status"] != 202:
            problems.append(f"bulk request {number} answered {request['status']}: {request['error'][:200]}")
        elif not run["timed_out"] and run["reservations"] != run["messages"]:
            problems.append(f"bulk request {number}: {run['messages']} messages but {run['reservations']} reservations")
    for name in ("sustained", "high", "naive"):
        for request in (phases.get(name) or {}).get("requests", []):
            if request["status"] != 202:
                problems.append(f"{name}: a bulk request answered {request['status']}: {request['error'][:200]}")
    return problems


def table(report: Report) -> str:
    header = f"{'measure':<52} {'value':>10} {'unit':<6} {'goal':<9} {'':<6}"
    lines = [header, "-" * len(header)]
    for row in report.figures:
        value = "n/a" if row.value is None else f"{row.value:,.2f}" if row.value < 100 else f"{row.value:,.0f}"
        verdict = "" if row.met is None else "MET" if row.met else "MISSED"
        lines.append(f"{row.name:<52} {value:>10} {row.unit:<6} {row.goal:<9} {verdict:<6}".rstrip())
        if row.note:
            lines.append(f"  {row.note}")
    return "\n".join(lines)


def report_dict(report: Report, options: Options) -> dict[str, Any]:
    options_dict = asdict(options)
    options_dict.pop("redis_url")
    return {
        "options": options_dict,
        "figures": [asdict(row) for row in report.figures],
        "failures": report.failures,
        "phases": report.phases,
    }

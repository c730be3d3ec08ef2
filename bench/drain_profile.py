"""CPU per status of the webhook drain, without a web server: ``python -m bench.drain_profile``.

The webhooks benchmark measures the whole pipeline on loopback, where the receiver and the drain
share the cores; this measures the drain alone, in CPU time rather than wall time so that other
work on the machine does not skew it. It seeds one organization with ``--statuses`` outbound
messages in "sent" (each with its credits reserved, unless ``--no-reservations``: the webhooks
benchmark seeds none), stores one signed-shape "delivered" event per message (or ``--mix``: sent,
delivered and read for a third each, plus duplicates), then times ``webhook_events_drain()``:

- Python: ``time.process_time()`` of this process around the drain;
- PostgreSQL: the CPU its backend for this connection used meanwhile (``/proc/<pid>/stat``, so the
  server must run on this machine; reported as absent otherwise);
- statements: how many the drain sent (an ``execute_wrapper``, no query log).

``--profile`` prints cProfile's top functions by cumulative time. The run uses its own database,
``<DATABASE_URL's name>_bench``, created and dropped around it (``bench.database``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
FIXTURES = BASE_DIR / "tests" / "whatsapp" / "fixtures" / "webhooks"
WABA_ID = "109000000000002"
PHONE_NUMBER_ID = "209000000000002"


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    os.environ["REDIS_URL"] = ""  # a local-memory cache and no broker: the drain alone is measured
    import django

    django.setup()
    from config.gc_tuning import gc_tune

    gc_tune()  # as the worker's pool processes are


def _backend_cpu(pid: int | None) -> float | None:
    """CPU seconds the PostgreSQL backend ``pid`` used so far (None when it is not on this machine)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@contextmanager
def _counting(counter: list[int]) -> Iterator[None]:
    from django.db import connection

    def count(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        counter[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        yield


@dataclass
class Measured:
    """One measured call: its value, Python and PostgreSQL CPU seconds, statements, wall seconds."""

    value: Any
    python_cpu: float
    postgres_cpu: float | None
    statements: int
    wall: float
    profile: str | None = None


def measured(call: Callable[[], Any], *, analyze: Sequence[str] = (), profile: bool = False) -> Measured:
    """Run ``call`` once, counting its statements and the CPU it and its PostgreSQL backend used
    (after ``ANALYZE`` of the ``analyze`` tables, so plans match a database in use)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()" if connection.vendor == "postgresql" else "SELECT NULL")
        pid = cursor.fetchone()[0]
        if connection.vendor == "postgresql" and analyze:
            cursor.execute("; ".join(f"ANALYZE {table}" for table in analyze))
    counter = [0]
    profiler = cProfile.Profile() if profile else None
    pg_before = _backend_cpu(pid)
    cpu_before = time.process_time()
    wall_before = time.perf_counter()
    with _counting(counter):
        if profiler:
            profiler.enable()
        value = call()
        if profiler:
            profiler.disable()
    wall = time.perf_counter() - wall_before
    cpu = time.process_time() - cpu_before
    pg_after = _backend_cpu(pid)
    pg = None if pg_before is None or pg_after is None else pg_after - pg_before
    text = None
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(45)
        text = out.getvalue()
    return Measured(value, cpu, pg, counter[0], wall, text)


def _seed(*, statuses: int, reservations: bool, round_no: int) -> tuple[Any, list[Any]]:
    from django.utils import timezone

    from books.services.organizations import organization_create
    from credits.services import ReservationRequest, credits_adjust, credits_reserve
    from whatsapp.choices import AccountStatus, Direction, MessageStatus, MessageType
    from whatsapp.models import Message, PhoneNumber, WhatsAppAccount
    from whatsapp.services.charges import credits_reference

    organization = organization_create(
        name=f"Drain profile {round_no}", country="IN", currency="INR", time_zone="Asia/Kolkata"
    )
    account = WhatsAppAccount.objects.create(
        organization=organization,
        waba_id=f"{WABA_ID}{round_no}",
        app_id="309000000000002",
        name="Drain profile WhatsApp",
        access_token="EAADrainProfileToken00000000000000000000",  # noqa: S106 (never sent anywhere)
        status=AccountStatus.CONNECTED,
    )
    number = PhoneNumber.objects.create(
        organization=organization,
        account=account,
        phone_number_id=f"{PHONE_NUMBER_ID}{round_no}",
        display_phone_number="+91 22 4000 0002",
        verified_name=organization.name,
        status="CONNECTED",
        synced_at=timezone.now(),
    )
    account.default_phone_number = number
    account.save(update_fields=["default_phone_number"])
    now = timezone.now()
    messages = Message.objects.bulk_create(
        [
            Message(
                organization=organization,
                account=account,
                phone_number=number,
                direction=Direction.OUTBOUND,
                message_type=MessageType.TEMPLATE,
                category="utility",
                phone=f"+9198{n % 100_000_000:08d}",
                status=MessageStatus.SENT,
                wamid=f"wamid.PROFILE{round_no}x{n:020d}",
                queued_at=now,
                sent_at=now,
            )
            for n in range(statuses)
        ],
        batch_size=1000,
    )
    if reservations:
        credits_adjust(organization=organization, amount=Decimal(statuses * 2), note="profile", user=None)
        for start in range(0, statuses, 500):
            credits_reserve(
                organization=organization,
                requests=[
                    ReservationRequest(
                        reference=credits_reference(m.pk), amount=Decimal("1.00"), category="utility", country_code="91"
                    )
                    for m in messages[start : start + 500]
                ],
            )
    return account, messages


def _bodies(account: Any, messages: list[Any], *, mix: bool) -> list[bytes]:
    templates = {name: (FIXTURES / f"status_{name}.json").read_text() for name in ("sent", "delivered", "read")}

    def body(name: str, message: Any) -> bytes:
        text = templates[name]
        for key, value in {
            "WABA_ID": account.waba_id,
            "PHONE_NUMBER_ID": account.default_phone_number.phone_number_id,
            "WAMID": message.wamid,
            "MESSAGE_ID": message.pk,
        }.items():
            text = text.replace(f"__{key}__", str(value))
        return json.dumps(json.loads(text), separators=(",", ":")).encode()

    if not mix:
        return [body("delivered", m) for m in messages]
    names = ("read", "delivered", "sent")
    return [body(names[n % 3], m) for n, m in enumerate(messages)]


def _round(*, statuses: int, reservations: bool, mix: bool, round_no: int, profile: bool) -> dict[str, Any]:
    from django.db.models import Count

    from credits.models import Reservation
    from whatsapp.models import Message, WebhookEvent
    from whatsapp.services.webhooks import webhook_event_store, webhook_events_drain

    account, messages = _seed(statuses=statuses, reservations=reservations, round_no=round_no)
    for body in _bodies(account, messages, mix=mix):
        webhook_event_store(body=body)
    tables = ("whatsapp_message", "whatsapp_webhookevent", "credits_reservation")
    run = measured(webhook_events_drain, analyze=tables, profile=profile)
    taken, cpu, pg = run.value, run.python_cpu, run.postgres_cpu
    ids = [m.pk for m in messages]
    states = dict(WebhookEvent.objects.values_list("state").annotate(n=Count("pk")).order_by())
    moved = Message.objects.filter(pk__in=ids).exclude(status="sent").count()
    settled = Reservation.objects.filter(organization=account.organization, status="settled").count()
    result = {
        "events": taken,
        "messages_moved": moved,
        "reservations_settled": settled,
        "event_states": states,
        "python_cpu_ms_per_status": 1000 * cpu / taken,
        "postgres_cpu_ms_per_status": None if pg is None else 1000 * pg / taken,
        "statements_per_status": run.statements / taken,
        "wall_ms_per_status": 1000 * run.wall / taken,
    }
    WebhookEvent.objects.all().delete()
    if run.profile:
        result["profile"] = run.profile
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.drain_profile", description=__doc__)
    parser.add_argument("--statuses", type=int, default=2000, help="status events per round (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds, after one warm-up (default 3)")
    parser.add_argument("--no-reservations", action="store_true", help="seed no credits (the webhooks benchmark)")
    parser.add_argument("--mix", action="store_true", help="sent, delivered and read statuses, not delivered only")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions of the last round")
    args = parser.parse_args(argv)
    _setup()
    from bench.database import bench_database

    with bench_database() as where:
        print(f"database: {where}", file=sys.stderr)
        common = {"reservations": not args.no_reservations, "mix": args.mix}
        _round(statuses=min(200, args.statuses), round_no=0, profile=False, **common)  # warm-up
        results = [
            _round(statuses=args.statuses, round_no=n, profile=args.profile and n == args.rounds, **common)
            for n in range(1, args.rounds + 1)
        ]
    for result in results:
        profile = result.pop("profile", None)
        print(json.dumps(result, default=str))
        if profile:
            print(profile)
    keys = ("python_cpu_ms_per_status", "postgres_cpu_ms_per_status", "statements_per_status", "wall_ms_per_status")
    best = {key: min((r[key] for r in results if r[key] is not None), default=None) for key in keys}
    print("best of rounds:", json.dumps({k: None if v is None else round(v, 3) for k, v in best.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

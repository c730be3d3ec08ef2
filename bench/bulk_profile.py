"""CPU of writing a bulk send, without servers: ``python -m bench.bulk_profile``.

The dispatch benchmark times a 10,000-invoice bulk request end to end, while the worker also
sends, the sandbox answers and the status webhooks arrive on the same two cores. This measures
the writing alone — :func:`~whatsapp.services.bulk.bulk_send_run`: every selected invoice
checked, its reminder rendered, its message row and credit reservation written — in CPU time, so
that other work on the machine does not skew it:

- Python: ``time.process_time()`` of this process around the run;
- PostgreSQL: the CPU its backend for this connection used meanwhile (absent when the server is
  not on this machine);
- statements: how many the run sent.

It seeds one organization as the dispatch benchmark does (a sandbox account, an approved
payment-reminder template, IM credits, ``--invoices`` overdue invoices to distinct customers).
``--profile`` prints cProfile's top functions by cumulative time. The run uses its own database,
``<DATABASE_URL's name>_bench`` (``bench.database``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    os.environ["REDIS_URL"] = ""  # a local-memory cache and no broker: the writing alone is measured
    os.environ["CELERY_BROKER_URL"] = "memory://"
    import django

    django.setup()
    from config.gc_tuning import gc_tune

    gc_tune()  # as the worker's pool processes are


def _round(*, invoices: int, round_no: int, profile: bool) -> dict[str, Any]:
    from django.db.models import Count

    from bench.dispatch import CREDITS, MODULE, _approved_template, _connect, _invoices
    from bench.drain_profile import measured
    from books.services.organizations import organization_create
    from credits.models import Reservation
    from credits.services import credits_adjust
    from templates_mgmt.selectors import template_default_get
    from whatsapp.models import BulkSend, Message
    from whatsapp.services.bulk import bulk_send_run

    organization = organization_create(
        name=f"Bulk profile {round_no}", country="IN", currency="INR", time_zone="Asia/Kolkata"
    )
    credits_adjust(organization=organization, amount=CREDITS, note="profile", user=None)
    account, _number, meta_account = _connect(organization, 100 + round_no)
    _approved_template(account, meta_account)
    ids = _invoices(organization, round_no % 9, invoices)
    bulk = BulkSend.objects.create(
        organization=organization,
        target=BulkSend.Target.DOCUMENTS,
        module=MODULE,
        template=template_default_get(organization=organization, module=MODULE),
        target_ids=ids,
        total=len(ids),
        fingerprint=f"profile-{round_no}",
    )
    tables = ("books_document", "books_contact", "books_contactperson")
    run = measured(lambda: bulk_send_run(bulk_id=bulk.pk), analyze=tables, profile=profile)
    cpu, pg = run.python_cpu, run.postgres_cpu
    bulk.refresh_from_db()
    messages = Message.objects.filter(bulk=bulk).count()
    reservations = dict(
        Reservation.objects.filter(organization=organization).values_list("status").annotate(n=Count("pk")).order_by()
    )
    result = {
        "invoices": invoices,
        "state": bulk.state,
        "messages": messages,
        "skipped": len(bulk.skipped),
        "reservations": reservations,
        "wall_seconds": round(run.wall, 3),
        "python_cpu_ms_per_invoice": 1000 * cpu / invoices,
        "postgres_cpu_ms_per_invoice": None if pg is None else 1000 * pg / invoices,
        "statements_per_invoice": run.statements / invoices,
    }
    if run.profile:
        result["profile"] = run.profile
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bulk_profile", description=__doc__)
    parser.add_argument("--invoices", type=int, default=10_000, help="invoices selected per round (default 10000)")
    parser.add_argument("--rounds", type=int, default=2, help="measured rounds, after one warm-up (default 2)")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions of the last round")
    args = parser.parse_args(argv)
    _setup()
    from bench.cpu import speed_probe
    from bench.database import bench_database

    with bench_database() as where:
        print(f"database: {where}; machine speed probe: {speed_probe()}", file=sys.stderr)
        _round(invoices=min(200, args.invoices), round_no=0, profile=False)  # warm-up
        results = [
            _round(invoices=args.invoices, round_no=n, profile=args.profile and n == args.rounds)
            for n in range(1, args.rounds + 1)
        ]
    for result in results:
        profile = result.pop("profile", None)
        print(json.dumps(result, default=str))
        if profile:
            print(profile)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

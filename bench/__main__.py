"""``python -m bench``: run the benchmarks on their own database and print the figures.

Without ``--only`` every benchmark runs, each in a process of its own (each configures Django for
the database it needs). Figures also go to ``bench-results/<name>.json`` (ignored by git) so that
runs can be compared. Exit status: 0 when every benchmark ran or was skipped for want of a server
(PostgreSQL or Redis, for the webhooks and dispatch benchmarks), 1 when one failed.
"""

import argparse
import dataclasses
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
BENCHMARKS = ("foundation", "webhooks", "dispatch")
DISPATCH_REDIS_DB = 11  # the dispatch benchmark's own Redis database, flushed before and after it


def _counts(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"every number must be at least 1: {text!r}")
    return values


def _bounded(kind: type, low: float, high: float) -> Callable[[str], Any]:
    """An argparse type: a number of ``kind`` between ``low`` and ``high`` (a benchmark must end)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}: {text!r}")
        return value

    return parse


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", choices=BENCHMARKS, help="run this benchmark alone (default: all of them)")
    parser.add_argument("--results-dir", type=Path, default=BASE_DIR / "bench-results", help="where the JSON goes")
    foundation = parser.add_argument_group("foundation")
    foundation.add_argument("--invoices", type=int, default=300, help="invoices to write (and then list)")
    foundation.add_argument("--pdfs", type=int, default=20, help="invoice PDFs to render")
    foundation.add_argument("--requests", type=int, default=200, help="GET /api/v1/invoices requests")
    webhooks = parser.add_argument_group("webhooks (needs PostgreSQL and Redis; skipped without them)")
    webhooks.add_argument("--senders", type=_counts, default=(1, 10, 50), help="concurrency levels (default 1,10,50)")
    webhooks.add_argument(
        "--webhooks", type=_counts, default=(300, 1500, 3000), help="webhooks per level (default 300,1500,3000)"
    )
    webhooks.add_argument("--level-seconds", type=float, default=30.0, help="time limit for sending one level")
    webhooks.add_argument("--drain-seconds", type=float, default=120.0, help="time limit for applying one level")
    webhooks.add_argument("--gunicorn-workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    webhooks.add_argument(
        "--gunicorn-threads", type=int, default=8, help="threads per worker (default 8; 1 = the sync worker)"
    )
    webhooks.add_argument(
        "--gunicorn-connections", type=int, default=32, help="connections one gunicorn worker may hold (default 32)"
    )
    webhooks.add_argument("--celery-concurrency", type=int, default=2, help="Celery pool processes (default 2)")
    webhooks.add_argument("--celery-nice", type=int, default=0, help="run the worker at this niceness (0 = as the web)")
    dispatch = parser.add_argument_group("dispatch (needs PostgreSQL and Redis; skipped without them)")
    dispatch.add_argument(
        "--dispatch-invoices",
        type=_bounded(int, 5, 10_000),
        default=10_000,
        help="the bulk of phases 1 and 3; a fifth per organization in phases 2 and 4 (default 10000)",
    )
    dispatch.add_argument(
        "--dispatch-requests", type=_bounded(int, 1, 5), default=3, help="bulk requests in phase 1 (default 3)"
    )
    dispatch.add_argument(
        "--dispatch-latency-ms", type=_bounded(int, 0, 2000), default=100, help="the sandbox's latency (default 100)"
    )
    dispatch.add_argument(
        "--dispatch-status-batch-ms",
        type=_bounded(int, 0, 5000),
        default=200,
        help="the sandbox's status webhook batching window, where it has one (default 200; 0 = off)",
    )
    dispatch.add_argument(
        "--dispatch-seconds",
        type=_bounded(float, 5, 600),
        default=60.0,
        help="time limit of phases 2 and 3, requests to every message read (default 60)",
    )
    dispatch.add_argument(
        "--dispatch-naive-seconds",
        type=_bounded(float, 5, 600),
        default=45.0,
        help="time limit of phase 4, the naive way (default 45)",
    )
    dispatch.add_argument(
        "--dispatch-persist-seconds",
        type=_bounded(float, 1, 300),
        default=20.0,
        help="time limit for one bulk of phase 1 to be written (default 20)",
    )
    dispatch.add_argument(
        "--dispatch-quiesce-seconds",
        type=_bounded(float, 1, 300),
        default=10.0,
        help="after each phase, time limit for the worker's queue to empty before it is purged (default 10)",
    )
    dispatch.add_argument(
        "--dispatch-celery-concurrency",
        type=_bounded(int, 1, 16),
        default=3,
        help="Celery pool processes (default 3: a dispatch pump holds one while the others write bulk sends)",
    )
    dispatch.add_argument(
        "--dispatch-gunicorn-workers",
        type=_bounded(int, 1, 8),
        default=2,
        help="the hub's gunicorn processes (default 2)",
    )
    dispatch.add_argument(
        "--dispatch-gunicorn-threads", type=_bounded(int, 1, 64), default=4, help="threads per hub process (default 4)"
    )
    dispatch.add_argument(
        "--dispatch-sandbox-workers",
        type=_bounded(int, 1, 8),
        default=1,
        help="the sandbox's gunicorn processes (default 1)",
    )
    dispatch.add_argument(
        "--dispatch-sandbox-threads",
        type=_bounded(int, 1, 128),
        default=64,
        help="threads per sandbox process: requests in flight = rate x latency (default 64)",
    )
    dispatch.add_argument(
        "--dispatch-sandbox-delivery-threads",
        type=_bounded(int, 1, 16),
        default=2,
        help="threads per sandbox process sending status webhooks (default 2)",
    )
    args = parser.parse_args(argv)
    if len(args.webhooks) == 1:
        args.webhooks = args.webhooks * len(args.senders)
    if len(args.webhooks) != len(args.senders):
        parser.error("--webhooks needs one count, or one per --senders level")
    return args


class Terminated(SystemExit):
    """SIGTERM, turned into an exception so that servers are stopped and the database dropped."""


def _on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise Terminated(128 + signum)


def _run_each(argv: list[str]) -> int:
    """Every benchmark in a child process; SIGINT reaches the child from the terminal, SIGTERM is passed on."""
    status = 0
    for name in BENCHMARKS:
        child = subprocess.Popen([sys.executable, "-m", "bench", *argv, "--only", name], cwd=BASE_DIR)  # noqa: S603
        try:
            code = child.wait()
        except KeyboardInterrupt:  # the child got the terminal's SIGINT too and is cleaning up
            child.wait()
            raise
        except SystemExit:  # SIGTERM: pass it on
            child.terminate()
            child.wait()
            raise
        if code != 0:
            print(f"bench: {name} exited with status {code}", file=sys.stderr)
            status = 1
    return status


def _print_table(rows: list[dict[str, object]]) -> None:
    header = f"{'measure':<40} {'n':>5} {'p50 ms':>9} {'p99 ms':>9} {'mean ms':>9} {'per s':>8}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['name']:<40} {row['count']:>5} {row['p50_ms']:>9.2f} {row['p99_ms']:>9.2f}"
            f" {row['mean_ms']:>9.2f} {row['per_second']:>8.1f}"
        )
        print(f"  {row['note']}")


def _write(args: argparse.Namespace, name: str, report: dict[str, object]) -> None:
    output = args.results_dir / f"{name}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"written to {output}")


def _machine() -> dict[str, object]:
    from bench.cpu import speed_probe

    probe = speed_probe()
    print(
        f"bench: machine speed probe: arithmetic {probe['arithmetic_ms']:.0f} ms, objects {probe['objects_ms']:.0f} ms"
        " (CPU, best of 3; compare runs by it)",
        flush=True,
    )
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(n, 2) for n in os.getloadavg()],
        "speed_probe": probe,
    }


def _foundation(args: argparse.Namespace) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()

    from bench import foundation
    from bench.database import bench_database

    machine = _machine()
    started = time.perf_counter()
    with bench_database() as database:
        print(f"bench: foundation on {database} (Python {platform.python_version()}, {os.cpu_count()} CPUs)")
        options = foundation.Options(invoices=args.invoices, pdfs=args.pdfs, requests=args.requests)
        results = foundation.run(options)
    elapsed = time.perf_counter() - started

    rows = [result.as_dict() for result in results]
    _print_table(rows)
    print(f"total {elapsed:.1f}s (including creating, migrating and dropping the database)")
    report = {"benchmark": "foundation", "database": database, **machine, "seconds": round(elapsed, 1)}
    _write(args, "foundation", {**report, "options": dataclasses.asdict(options), "results": rows})
    return 0


def _webhooks(args: argparse.Namespace) -> int:
    from bench.stores import unavailable, webhook_stores

    stores = webhook_stores()
    missing = unavailable(stores)
    if missing:
        print(f"bench: webhooks SKIPPED: it needs PostgreSQL and Redis; not reachable: {'; '.join(missing)}")
        return 0
    os.environ["DATABASE_URL"] = stores.database_url
    os.environ["REDIS_URL"] = stores.redis_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()

    from bench import webhooks
    from bench.database import bench_database

    options = webhooks.Options(
        redis_url=stores.redis_url,
        levels=tuple(webhooks.Level(s, n) for s, n in zip(args.senders, args.webhooks, strict=True)),
        level_seconds=args.level_seconds,
        drain_seconds=args.drain_seconds,
        gunicorn_workers=args.gunicorn_workers,
        gunicorn_threads=args.gunicorn_threads,
        gunicorn_connections=args.gunicorn_connections,
        celery_concurrency=args.celery_concurrency,
        celery_nice=args.celery_nice,
    )
    machine = _machine()
    started = time.perf_counter()
    try:
        with bench_database() as database:
            print(f"bench: webhooks on {database} (Python {platform.python_version()}, {os.cpu_count()} CPUs)")
            results = webhooks.run(options)
    except RuntimeError as exc:
        print(f"bench: webhooks FAILED: {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started

    rows = [result.as_dict() for result in results]
    _print_table(rows)
    print(webhooks.goal(results))
    print(f"total {elapsed:.1f}s (including creating, migrating and dropping the database)")
    problems = webhooks.failures(results)
    report = {"benchmark": "webhooks", "database": database, **machine, "seconds": round(elapsed, 1)}
    options_dict = dataclasses.asdict(options)
    options_dict.pop("redis_url")
    report |= {"options": options_dict, "goal": webhooks.goal(results), "failures": problems, "results": rows}
    _write(args, "webhooks", report)
    for problem in problems:
        print(f"bench: webhooks FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _dispatch(args: argparse.Namespace) -> int:
    from urllib.parse import urlsplit

    from bench.stores import DEFAULT_REDIS_URL, Stores, unavailable, webhook_stores

    # A database name of its own ("<name>_dispatch_bench"), so that it never meets the webhooks
    # benchmark's, and Redis database 11.
    database_url = urlsplit(webhook_stores().database_url)
    redis_url = os.environ.get("BENCH_DISPATCH_REDIS_URL") or (
        urlsplit(os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)._replace(path=f"/{DISPATCH_REDIS_DB}").geturl()
    )
    stores = Stores(
        database_url=database_url._replace(path=f"{database_url.path.rstrip('/') or '/hub'}_dispatch").geturl(),
        redis_url=redis_url,
    )
    missing = unavailable(stores)
    if missing:
        print(f"bench: dispatch SKIPPED: it needs PostgreSQL and Redis; not reachable: {'; '.join(missing)}")
        return 0
    os.environ["DATABASE_URL"] = stores.database_url
    os.environ["REDIS_URL"] = stores.redis_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()

    from bench import dispatch
    from bench.database import bench_database

    options = dispatch.Options(
        redis_url=stores.redis_url,
        invoices=args.dispatch_invoices,
        requests=args.dispatch_requests,
        latency_ms=args.dispatch_latency_ms,
        status_batch_ms=args.dispatch_status_batch_ms,
        phase_seconds=args.dispatch_seconds,
        naive_seconds=args.dispatch_naive_seconds,
        persist_seconds=args.dispatch_persist_seconds,
        quiesce_seconds=args.dispatch_quiesce_seconds,
        celery_concurrency=args.dispatch_celery_concurrency,
        gunicorn_workers=args.dispatch_gunicorn_workers,
        gunicorn_threads=args.dispatch_gunicorn_threads,
        sandbox_workers=args.dispatch_sandbox_workers,
        sandbox_threads=args.dispatch_sandbox_threads,
        sandbox_delivery_threads=args.dispatch_sandbox_delivery_threads,
    )
    machine = _machine()
    started = time.perf_counter()
    try:
        with bench_database() as database:
            print(f"bench: dispatch on {database} (Python {platform.python_version()}, {os.cpu_count()} CPUs)")
            result = dispatch.run(options)
    except RuntimeError as exc:
        print(f"bench: dispatch FAILED: {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started

    print(dispatch.table(result))
    print(f"total {elapsed:.1f}s (including creating, migrating and dropping the database)")
    report = {"benchmark": "dispatch", "database": database, **machine, "seconds": round(elapsed, 1)}
    _write(args, "dispatch", report | dispatch.report_dict(result, options))
    for problem in result.failures:
        print(f"bench: dispatch FAILED: {problem}", file=sys.stderr)
    return 1 if result.failures else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parse(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if args.only is None:
            return _run_each(argv)
        if args.only == "foundation":
            return _foundation(args)
        if args.only == "dispatch":
            return _dispatch(args)
        return _webhooks(args)
    except KeyboardInterrupt:
        print(f"bench: {args.only or 'benchmarks'} interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""``python -m bench``: run the benchmarks on their own database and print the figures.

Without ``--only`` every benchmark runs, each in a process of its own (each configures Django for
the database it needs). Figures also go to ``bench-results/<name>.json`` (ignored by git) so that
runs can be compared. Exit status: 0 when every benchmark ran or was skipped for want of a server
(PostgreSQL or Redis, for the webhooks), 1 when one failed.
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
from pathlib import Path
from types import FrameType

BASE_DIR = Path(__file__).resolve().parent.parent
BENCHMARKS = ("foundation", "webhooks")


def _counts(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"every number must be at least 1: {text!r}")
    return values


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
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(n, 2) for n in os.getloadavg()],
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parse(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if args.only is None:
            return _run_each(argv)
        if args.only == "foundation":
            return _foundation(args)
        return _webhooks(args)
    except KeyboardInterrupt:
        print(f"bench: {args.only or 'benchmarks'} interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

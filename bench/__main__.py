"""``python -m bench``: run the benchmarks on their own database and print the figures.

Figures also go to ``bench-results/<name>.json`` (ignored by git) so that runs can be compared.
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--invoices", type=int, default=300, help="invoices to write (and then list)")
    parser.add_argument("--pdfs", type=int, default=20, help="invoice PDFs to render")
    parser.add_argument("--requests", type=int, default=200, help="GET /api/v1/invoices requests")
    parser.add_argument("--output", type=Path, default=BASE_DIR / "bench-results" / "foundation.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()

    from bench import foundation
    from bench.database import bench_database

    started = time.perf_counter()
    with bench_database() as database:
        print(f"bench: foundation on {database} (Python {platform.python_version()}, {os.cpu_count()} CPUs)")
        options = foundation.Options(invoices=args.invoices, pdfs=args.pdfs, requests=args.requests)
        results = foundation.run(options)
    elapsed = time.perf_counter() - started

    rows = [result.as_dict() for result in results]
    header = f"{'measure':<40} {'n':>5} {'p50 ms':>9} {'p99 ms':>9} {'mean ms':>9} {'per s':>8}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['name']:<40} {row['count']:>5} {row['p50_ms']:>9.2f} {row['p99_ms']:>9.2f}"
            f" {row['mean_ms']:>9.2f} {row['per_second']:>8.1f}"
        )
        print(f"  {row['note']}")
    print(f"total {elapsed:.1f}s (including creating, migrating and dropping the database)")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "foundation",
        "database": database,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "seconds": round(elapsed, 1),
        "results": rows,
    }
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

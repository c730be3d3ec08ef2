"""The benchmarks' own database, created before a run and dropped after it.

It lives beside the configured one and never is it: with DATABASE_URL on PostgreSQL it is
``<name>_bench`` on the same server; otherwise a SQLite file, ``var/bench.sqlite3`` (a file rather
than memory, as ``make run`` uses).
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection


@contextmanager
def bench_database() -> Iterator[str]:
    """Create and migrate the benchmark database; yield a description of it; drop it afterwards."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        path = settings.BASE_DIR / "var" / "bench.sqlite3"
        path.parent.mkdir(parents=True, exist_ok=True)
        db["TEST"]["NAME"] = str(path)
    else:
        db["TEST"]["NAME"] = f"{db['NAME']}_bench"
    original = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield f"{connection.vendor} {connection.settings_dict['NAME']}"
    finally:
        connection.creation.destroy_test_db(original, verbosity=0)

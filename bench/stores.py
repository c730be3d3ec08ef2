"""Which PostgreSQL and Redis the webhooks benchmark uses, and whether they answer.

The webhooks benchmark runs the hub as it is deployed (gunicorn, a Celery worker on Redis,
PostgreSQL), so it needs both servers; without them it is skipped, not failed. PostgreSQL is the
one of ``DATABASE_URL`` when that names one, else the test suite's default; the benchmark works in
``<name>_bench`` on that server (``bench/database.py``). Redis is the server of ``REDIS_URL``
(default 127.0.0.1:6379) but database 13 (the tests use 12, 14 and 15), which the benchmark flushes
before and after a run; ``BENCH_REDIS_URL`` names another one.
"""

import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis

DEFAULT_DATABASE_URL = "postgres://hub:hub@127.0.0.1:5432/hub"  # as tests/settings.py
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
BENCH_REDIS_DB = 13


@dataclass(frozen=True)
class Stores:
    database_url: str
    redis_url: str


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def webhook_stores() -> Stores:
    """The PostgreSQL and Redis URLs for the webhooks benchmark (whether or not they answer)."""
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://", "pgsql://")):
        database_url = DEFAULT_DATABASE_URL
    redis_url = os.environ.get("BENCH_REDIS_URL") or (
        urlsplit(os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)._replace(path=f"/{BENCH_REDIS_DB}").geturl()
    )
    return Stores(database_url=database_url, redis_url=redis_url)


def unavailable(stores: Stores) -> list[str]:
    """What does not answer, described for the reader ([] when both do)."""
    missing = []
    if not _reachable(stores.database_url, 5432):
        missing.append(f"PostgreSQL at {_location(stores.database_url)}")
    try:
        redis.Redis.from_url(stores.redis_url, socket_connect_timeout=2, socket_timeout=2).ping()
    except redis.RedisError as exc:
        missing.append(f"Redis at {_location(stores.redis_url)} ({exc})")
    return missing


def _location(url: str) -> str:
    """``host:port/path`` of a URL, without user or password, for printing."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or ''}{parts.path}"

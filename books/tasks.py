"""Celery tasks of the books app. Tasks stay thin: arguments in, one call, a retry policy."""

from typing import Any

from celery import Task, shared_task
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

WORKER_PING_TTL = 600  # seconds an answer stays readable


def worker_ping_key(token: str) -> str:
    """The cache key under which ``worker_ping`` answers the probe ``token``."""
    return f"books:worker-ping:{token}"


@shared_task(bind=True, ignore_result=True)
def worker_ping(self: Task, token: str) -> None:
    """Answer a liveness probe sent through the queue.

    ``celery inspect ping`` only proves that a worker answers remote control; this proves that a
    worker takes tasks off the broker and reaches the database and the cache. The answer (which
    worker, when, which database) is stored under ``worker_ping_key(token)``, where the prober
    polls for it. ``cache.add`` keeps the first answer: a redelivered ping changes nothing.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    answer: dict[str, Any] = {
        "hostname": self.request.hostname or "",
        "at": timezone.now().isoformat(),
        "database": str(connection.settings_dict["NAME"]),
    }
    cache.add(worker_ping_key(token), answer, timeout=WORKER_PING_TTL)

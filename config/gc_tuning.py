"""Garbage collection for the long-running processes: gunicorn's workers and Celery's.

CPython's cycle collector walks every tracked object of the generation it collects, and its oldest
generation holds everything a process loaded to start — Django, the apps, the URLconf, Babel's and
phonenumbers' data: about 100,000 objects in a worker. A bulk send builds a few thousand model
instances per chunk, so that generation was collected every few chunks and each pass walked the
whole of it again: a fifth of a bulk send's CPU went to the collector (``python -m
bench.bulk_profile``: 2.0 to 2.3 s of about 10 s for 10,000 invoices, measured with
``gc.callbacks``).

:func:`gc_tune`, called once a process has loaded what it keeps, collects what startup left
behind and moves the rest to the permanent generation (``gc.freeze()``): it lives as long as the
process and is never walked again. The same bulk send then spent about 1 s in the collector.

The collection thresholds stay CPython's (700, 10, 10). Raising them saved a little more CPU (the
collector's time fell to 0.5 s at (2_000, 10, 10)) but kept the send threads' garbage longer: the
dispatch benchmark's worker peaked at 143–144 MB instead of 131 (159 at (10_000, 20, 10)), against
a budget of 150.

Called by ``config/wsgi.py`` and ``config/asgi.py`` once the application and its URLconf are
loaded (in each gunicorn worker), and in Celery's worker (before it forks its pool) and in each
pool process.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


def gc_tune(*, urlconf: bool = False) -> None:
    """Freeze what the process has loaded so far out of the collector's walks (idempotent).

    ``urlconf`` (web processes) imports the URLconf and every view first, which Django would
    otherwise import on the first request, after the freeze; and the broker's transport, which the
    first request that enqueues a task would import (Redis's: 0.1 s of that request). Nothing is
    connected."""
    if urlconf:
        from django.urls import get_resolver

        from config.celery import app

        get_resolver().url_patterns  # noqa: B018 (the property imports the URLconf)
        app.connection_for_write().transport_cls  # noqa: B018 (resolving it imports the transport)
    gc.collect()
    gc.freeze()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic cycle collection inside: for work that allocates by the thousand and leaves no
    cycles behind, whose objects reference counting frees (a bulk send writing a part: the
    collector's passes over what a part holds while it is written were a tenth of its CPU). What
    cycles there are wait for the next collection after it. Process-wide; nests."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()

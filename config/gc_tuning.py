"""Garbage collection for the long-running processes: gunicorn's workers and Celery's.

CPython's cycle collector walks every tracked object of the generation it collects, and its oldest
generation holds everything a process loaded to start — Django, the apps, the URLconf, Babel's and
phonenumbers' data: about 100,000 objects in a worker. A bulk send builds a few thousand model
instances per chunk, so that generation was collected every few chunks and each pass walked the
whole of it again: a fifth of a bulk send's CPU went to the collector (``python -m
bench.bulk_profile``: 2.0 to 2.3 s of about 10 s for 10,000 invoices, measured with
``gc.callbacks``).

:func:`gc_tune`, called once a process has loaded what it keeps, collects what startup left
behind, moves the rest to the permanent generation (``gc.freeze()``: never walked again; it lives
as long as the process anyway) and raises the youngest generation's threshold, so a request or a
chunk that allocates tens of thousands of short-lived objects is not interrupted hundreds of times.
Reference cycles are still collected, a little later. The same bulk send then spent about 0.5 s in
the collector, and 20 % less CPU in all (0.53–0.54 ms per invoice against 0.66–0.68, measured in
alternation on the same machine).

Called by ``config/wsgi.py`` and ``config/asgi.py`` once the application and its URLconf are
loaded (in each gunicorn worker), and in Celery's worker (before it forks its pool) and in each
pool process.
"""

from __future__ import annotations

import gc

#: Allocations (minus deallocations) of tracked objects between collections of the youngest
#: generation, and collections of each generation between collections of the next one.
#: CPython's defaults are (700, 10, 10); Python 3.13's youngest threshold is 2,000. Higher saves
#: little more (the freeze is most of the gain) and keeps garbage longer: the dispatch benchmark's
#: worker peaked at 128–131 MB with the defaults, 138 at these, 133–144 at (5_000, 10, 10) and
#: 159 at (10_000, 20, 10).
THRESHOLDS = (2_000, 10, 10)


def gc_tune(*, urlconf: bool = False) -> None:
    """Freeze what the process has loaded so far and space the collections out (idempotent).

    ``urlconf`` (web processes) imports the URLconf and every view first, which Django would
    otherwise import on the first request, after the freeze."""
    if urlconf:
        from django.urls import get_resolver

        get_resolver().url_patterns  # noqa: B018 (the property imports the URLconf)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)

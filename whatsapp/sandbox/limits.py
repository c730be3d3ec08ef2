"""Meta's throughput rules, as the sandbox enforces them on ``POST /{phone_number_id}/messages``.

- **Throughput** (130429): at most 80 accepted sends a second per number, 1,000 once its
  throughput level is ``HIGH``. Counted per wall-clock second in the Django cache (Redis when
  ``REDIS_URL`` is set), so every process of a multi-process sandbox shares the count: one
  ``INCR`` (with its ``EXPIRE``) per send on Redis, ``add`` + ``incr`` on other backends.
- **Pair rate** (131056): a token bucket per (number, customer), 45 tokens refilled one per 6 s,
  kept in :class:`~.models.SandboxPairBucket` and taken by one upsert, atomic across processes.
- **Refusals** of either kind are counted in :class:`~.models.SandboxRefusalCount` for the stats.

Everything here reads the time from :func:`clock`, and so does the accepted message's
``created_at``: tests replace that one function to put sends in the second they want, and the
stats' per-second counts agree with what the cap counted.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Final

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection

from .choices import ThroughputLevel
from .models import SandboxPairBucket, SandboxPhoneNumber, SandboxRefusalCount

#: Messages a second per number (Meta's default, and after the automatic upgrade).
STANDARD_MPS: Final = 80
HIGH_MPS: Final = 1000
#: The pair rate: bursts of up to 45 messages to one customer, paid back at one per 6 s.
PAIR_BURST: Final = 45
PAIR_REFILL_SECONDS: Final = 6.0
#: Seconds a per-second counter outlives its second (only the current one is ever read).
WINDOW_TTL: Final = 5
THROUGHPUT_CODE: Final = 130429
PAIR_RATE_CODE: Final = 131056


def clock() -> float:
    """Seconds since the epoch: the time of the limits and of accepted sends. Tests replace it."""
    return time.time()


# --- Throughput: messages per second per number -------------------------------------------------


def throughput_cap(phone: SandboxPhoneNumber) -> int:
    return HIGH_MPS if phone.throughput_level == ThroughputLevel.HIGH else STANDARD_MPS


def throughput_take(*, phone: SandboxPhoneNumber, now: float) -> bool:
    """Count one send in the number's current second; False (and not counted) when over the cap.

    The count includes sends still being accepted: a send refused later (pair rate, a failed
    insert) gives its place back with :func:`throughput_release`.
    """
    key = _window_key(phone.phone_number_id, now)
    if _incr(key) <= throughput_cap(phone):
        return True
    _decr(key)
    return False


def throughput_release(*, phone: SandboxPhoneNumber, now: float) -> None:
    _decr(_window_key(phone.phone_number_id, now))


def throughput_forget(*, phone_number_ids: list[str], now: float) -> None:
    """Drop the counters of the last few seconds (a reset must not leave a full second behind)."""
    second = int(now)
    keys = [
        _window_key(phone_number_id, second + offset)
        for phone_number_id in phone_number_ids
        for offset in range(-WINDOW_TTL, 2)
    ]
    caches["default"].delete_many(keys)


def _window_key(phone_number_id: str, now: float) -> str:
    # The database name keeps test runs (or two sandboxes) sharing a Redis apart, as the hub's drain key does.
    return f"sandbox:mps:{connection.settings_dict['NAME']}:{phone_number_id}:{math.floor(now)}"


def _incr(key: str) -> int:
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        # Django's incr() asks EXISTS first, and add() is a round trip of its own: on the hot path
        # INCR and EXPIRE go in one pipelined round trip instead, 55 µs against 125 µs measured
        # (the key is Django's, so the cache API still reads and deletes it). No MULTI: INCR is
        # atomic by itself, and both commands leave in the same write.
        raw = cache.make_and_validate_key(key)
        client = cache._cache.get_client(raw, write=True)
        count, _expiry = client.pipeline(transaction=False).incr(raw).expire(raw, WINDOW_TTL).execute()
        return int(count)
    cache.add(key, 0, timeout=WINDOW_TTL)
    return int(cache.incr(key))


def _decr(key: str) -> None:
    with contextlib.suppress(ValueError):  # the second's counter expired: nothing to give back
        caches["default"].decr(key)


# --- Pair rate: a token bucket per (number, customer) -------------------------------------------


def pair_take(*, phone: SandboxPhoneNumber, recipient: str, now: float) -> bool:
    """Take a token from the (number, customer) bucket; False when it has less than one.

    One statement: insert a full bucket minus one, or refill the existing one for the time
    passed (capped at :data:`PAIR_BURST`) and take a token if there is one. Every ``SET``
    expression reads the row as it was, so ``granted`` and ``tokens`` agree.
    """
    table = connection.ops.quote_name(SandboxPairBucket._meta.db_table)
    if connection.vendor == "postgresql":
        least, greatest = "LEAST", "GREATEST"
    else:  # SQLite's scalar MIN and MAX take several arguments
        least, greatest = "MIN", "MAX"
    level = f"{least}(%(burst)s, {table}.tokens + {greatest}(%(now)s - {table}.refilled_at, 0) / %(refill)s)"
    sql = (
        f"INSERT INTO {table} (phone_number_id, recipient, tokens, refilled_at, granted) "  # noqa: S608
        "VALUES (%(phone)s, %(recipient)s, %(burst)s - 1, %(now)s, TRUE) "
        "ON CONFLICT (phone_number_id, recipient) DO UPDATE SET "
        f"tokens = CASE WHEN {level} >= 1 THEN {level} - 1 ELSE {level} END, "
        f"granted = {level} >= 1, "
        f"refilled_at = {greatest}({table}.refilled_at, %(now)s) "
        "RETURNING granted"
    )
    params = {
        "phone": phone.pk,
        "recipient": recipient,
        "burst": float(PAIR_BURST),
        "refill": PAIR_REFILL_SECONDS,
        "now": now,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        (granted,) = cursor.fetchone()
    return bool(granted)


# --- Refusals, for the stats --------------------------------------------------------------------


def refusal_record(*, phone: SandboxPhoneNumber, code: int) -> None:
    """Count one refused send of this number with this code (one upsert)."""
    table = connection.ops.quote_name(SandboxRefusalCount._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (phone_number_id, code, total) VALUES (%s, %s, 1) "  # noqa: S608
            f"ON CONFLICT (phone_number_id, code) DO UPDATE SET total = {table}.total + 1",
            [phone.pk, code],
        )

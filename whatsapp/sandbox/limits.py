"""Meta's throughput rules, as the sandbox enforces them on ``POST /{phone_number_id}/messages``.

- **Throughput** (130429): at most 80 accepted sends a second per number, 1,000 once its
  throughput level is ``HIGH``. Counted per wall-clock second in
  :class:`~.models.SandboxThroughputCount` by one upsert that refuses past the cap.
- **Pair rate** (131056): a token bucket per (number, customer), 45 tokens refilled one per 6 s,
  kept in :class:`~.models.SandboxPairBucket` and taken by one upsert.
- **Refusals** of either kind are counted in :class:`~.models.SandboxRefusalCount` for the stats.

Both limits live in the database, so every process of a multi-process sandbox shares them and
each take is atomic (the row is locked by its upsert). Each is a statement of its own
(:func:`throughput_take`, :func:`pair_take`), or, on PostgreSQL, a ``WITH`` part of the one
statement that also saves the accepted send (:func:`throughput_take_statement` and
:func:`pair_take_statement`, chained by :func:`.services.message_send`): a send is one round trip.

The time a send is counted at is its request's arrival, read from :func:`clock` as the sandbox
first sees the request (:func:`.middleware.arrival_stamp`), not when its statement runs: Meta
counts a send in the second it arrived, and a busy process may reach the statement in the next.
The accepted message's ``created_at`` is that time too: tests replace :func:`clock`, the one
time source, to put sends in the second they want, and the stats' per-second counts agree with
what the cap counted.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any, Final

from django.db import connection
from django.db.models import F

from .choices import ThroughputLevel
from .models import SandboxPairBucket, SandboxPhoneNumber, SandboxRefusalCount, SandboxThroughputCount

#: Messages a second per number (Meta's default, and after the automatic upgrade).
STANDARD_MPS: Final = 80
HIGH_MPS: Final = 1000
#: The pair rate: bursts of up to 45 messages to one customer, paid back at one per 6 s.
PAIR_BURST: Final = 45
PAIR_REFILL_SECONDS: Final = 6.0
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
    sql, params = throughput_take_statement(phone=phone, now=now)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone() is not None


def throughput_take_statement(*, phone: SandboxPhoneNumber, now: float) -> tuple[str, dict[str, Any]]:
    """The upsert that counts the send, ``RETURNING`` a row when it did: its SQL (named parameters) and parameters.

    The second's first send inserts its row; the others add one while the count is under the
    cap (``ON CONFLICT … DO UPDATE … WHERE``), and past it the row is left as it was.
    """
    return _throughput_take_sql(connection.vendor), {
        "phone": phone.pk,
        "second": math.floor(now),
        "cap": throughput_cap(phone),
    }


@functools.cache
def _throughput_take_sql(vendor: str) -> str:
    table = connection.ops.quote_name(SandboxThroughputCount._meta.db_table)
    return (
        f"INSERT INTO {table} (phone_number_id, second, accepted) VALUES (%(phone)s, %(second)s, 1) "  # noqa: S608
        f"ON CONFLICT (phone_number_id, second) DO UPDATE SET accepted = {table}.accepted + 1 "
        f"WHERE {table}.accepted < %(cap)s RETURNING 1"
    )


def throughput_release(*, phone: SandboxPhoneNumber, now: float) -> None:
    """Give back a place :func:`throughput_take` counted, for a send that was not accepted after all."""
    SandboxThroughputCount.objects.filter(phone_number=phone, second=math.floor(now), accepted__gt=0).update(
        accepted=F("accepted") - 1
    )


# --- Pair rate: a token bucket per (number, customer) -------------------------------------------


def pair_take(*, phone: SandboxPhoneNumber, recipient: str, now: float) -> bool:
    """Take a token from the (number, customer) bucket; False when it has less than one."""
    sql, params = pair_take_statement(phone=phone, recipient=recipient, now=now)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        (granted,) = cursor.fetchone()
    return bool(granted)


def pair_take_statement(
    *, phone: SandboxPhoneNumber, recipient: str, now: float, after: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The upsert that takes the token, ``RETURNING granted``: its SQL (named parameters) and parameters.

    One statement: insert a full bucket minus one, or refill the existing one for the time
    passed (capped at :data:`PAIR_BURST`) and take a token if there is one. Every ``SET``
    expression reads the row as it was, so ``granted`` and ``tokens`` agree. With ``after``, the
    name of an earlier ``WITH`` part, the bucket is touched only if that part returned a row (the
    throughput counted the send).
    """
    params = {
        "phone": phone.pk,
        "recipient": recipient,
        "burst": float(PAIR_BURST),
        "refill": PAIR_REFILL_SECONDS,
        "now": now,
    }
    return _pair_take_sql(connection.vendor, after), params


@functools.cache
def _pair_take_sql(vendor: str, after: str | None) -> str:
    table = connection.ops.quote_name(SandboxPairBucket._meta.db_table)
    if vendor == "postgresql":
        least, greatest = "LEAST", "GREATEST"
    else:  # SQLite's scalar MIN and MAX take several arguments
        least, greatest = "MIN", "MAX"
    level = f"{least}(%(burst)s, {table}.tokens + {greatest}(%(now)s - {table}.refilled_at, 0) / %(refill)s)"
    if after is None:
        row = "VALUES (%(phone)s, %(recipient)s, %(burst)s - 1, %(now)s, TRUE)"
    else:  # a SELECT list gives its parameters no column type to take: they are cast
        row = (
            "SELECT %(phone)s::bigint, %(recipient)s::varchar, %(burst)s::float8 - 1, %(now)s::float8, TRUE "  # noqa: S608
            f"FROM {after}"
        )
    return (
        f"INSERT INTO {table} (phone_number_id, recipient, tokens, refilled_at, granted) {row} "
        "ON CONFLICT (phone_number_id, recipient) DO UPDATE SET "
        f"tokens = CASE WHEN {level} >= 1 THEN {level} - 1 ELSE {level} END, "
        f"granted = {level} >= 1, "
        f"refilled_at = {greatest}({table}.refilled_at, %(now)s) "
        "RETURNING granted"
    )


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

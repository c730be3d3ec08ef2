"""Pacing: when each outbound message may leave, shared by every worker.

Meta caps each phone number's send rate (80 msg/s by default, 1,000 once upgraded; over it the
send fails with 130429) and the rate to one recipient (the *pair rate*: one message per 6 s on
average, bursts paid back later; over it, 131056). Every dispatch pump in every worker books its
messages here before sending, so the caps hold for the whole deployment, not per process.

The algorithm is GCRA (the generic cell rate algorithm): each key stores a *theoretical arrival
time* (TAT). A number's messages get consecutive slots ``1 / rate`` apart from ``max(TAT, now)``;
a recipient's pair key allows a message while its TAT is less than ``tolerance`` ahead of now
(a burst of ``PAIR_BURST``), and moves it on by the pair interval. One booking is one Lua script
call for a whole batch, with the clock read from Redis so that workers on different hosts agree.

Without Redis (``make run``'s embedded default: one worker, SQLite) the same algorithm runs in the
process (:class:`LocalPacer`). When Redis does not answer, :class:`PacerUnavailable` is raised and
nothing is sent: pacing blind could break the caps for every worker at once.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from django.conf import settings
from django.db import connection

#: Messages to one recipient from one number: one per 6 s, a burst of this many first (Meta allows
#: 45 that must be paid back; fewer keeps clear of 131056 and of annoying the customer).
PAIR_INTERVAL: Final = 6.0
PAIR_BURST: Final = 10
#: Each 130429 multiplies the number's pace by this (down to :data:`SLOWDOWN_FLOOR`); the pace comes
#: back in full :data:`SLOWDOWN_SECONDS` after the last one. One refusal, often jitter bunching a few
#: requests into one second, costs a quarter of the pace for a few seconds; refusals that keep coming
#: compound (0.75, 0.56, 0.42, …) until they stop.
SLOWDOWN_FACTOR: Final = 0.75
SLOWDOWN_FLOOR: Final = 0.25
SLOWDOWN_SECONDS: Final = 15
#: Keys outlive the longest booking by this much (then an idle number starts fresh).
KEY_TTL: Final = 120


class PacerUnavailable(Exception):
    """The shared limiter (Redis) did not answer: send nothing until it does."""


@dataclass(frozen=True, slots=True)
class Slot:
    """When one message may go: ``delay`` seconds from now, or not in this batch (``defer``
    seconds from now, the recipient's pair rate is used up)."""

    delay: float = 0.0
    defer: float | None = None


class Pacer(Protocol):
    def book(self, *, number: str, rate: float, recipients: Sequence[str]) -> list[Slot]: ...

    def booked_ahead(self, *, number: str) -> float: ...

    def slow_down(self, *, number: str, pause: float = 1.0) -> None: ...

    def pair_hold(self, *, number: str, recipient: str, seconds: float) -> None: ...


def effective_rate(messages_per_second: int) -> float:
    """The rate to pace at: Meta's cap less ``WHATSAPP_PACE_HEADROOM`` (a margin for network jitter,
    which bunches evenly spaced requests at Meta's end)."""
    headroom = float(getattr(settings, "WHATSAPP_PACE_HEADROOM", 0.85))
    return max(1.0, messages_per_second * min(max(headroom, 0.1), 1.0))


def _prefix() -> str:
    # One namespace per database: test runs (or two hubs) sharing a Redis don't pace each other.
    return f"whatsapp:pace:{connection.settings_dict['NAME']}"


# --- Redis --------------------------------------------------------------------------------------

#: KEYS[1] the number's TAT, KEYS[2] its slow-down factor, KEYS[3..] one pair key per message.
#: ARGV: interval, pair interval, pair tolerance, key TTL. Returns one string per message: the
#: delay in seconds, or "d<seconds>" to defer it. Floats travel as strings with six decimals
#: (Redis truncates Lua numbers to integers, and ``tostring`` keeps only 14 digits).
_BOOK: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local factor = tonumber(redis.call('GET', KEYS[2]) or '1')
if factor and factor > 0 and factor < 1 then interval = interval / factor end
local pair_interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local out = {}
for i = 3, #KEYS do
  local ptat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if ptat < now then ptat = now end
  if ptat - now > tolerance + 0.000001 then
    out[#out + 1] = 'd' .. string.format('%.6f', ptat - tolerance - now)
  else
    redis.call('SET', KEYS[i], string.format('%.6f', ptat + pair_interval), 'EX', ttl)
    out[#out + 1] = string.format('%.6f', tat - now)
    tat = tat + interval
  end
end
redis.call('SET', KEYS[1], string.format('%.6f', tat), 'EX', ttl)
return out
"""

#: KEYS[1] the number's TAT. Returns seconds booked ahead of now.
_AHEAD: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then return '0' end
return string.format('%.6f', tat - now)
"""

#: KEYS[1] a TAT key; ARGV[1] seconds from now it must be at least; ARGV[2] TTL.
_PUSH: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local target = now + tonumber(ARGV[1])
if tat < target then redis.call('SET', KEYS[1], string.format('%.6f', target), 'EX', tonumber(ARGV[2])) end
return 1
"""


#: KEYS[1] a number's slow-down factor; ARGV: factor, floor, TTL. The factor, compounded.
_SLOW: Final = """
local f = tonumber(redis.call('GET', KEYS[1]) or '1') * tonumber(ARGV[1])
if f < tonumber(ARGV[2]) then f = tonumber(ARGV[2]) end
redis.call('SET', KEYS[1], string.format('%.6f', f), 'EX', tonumber(ARGV[3]))
return string.format('%.6f', f)
"""


class RedisPacer:
    """The limiter every worker shares, in Redis (one script call per booking)."""

    def __init__(self, url: str) -> None:
        import redis

        self._errors: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._book = self._client.register_script(_BOOK)
        self._ahead = self._client.register_script(_AHEAD)
        self._push = self._client.register_script(_PUSH)
        self._slow = self._client.register_script(_SLOW)

    def _call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return script(keys=keys, args=args)
        except self._errors as exc:
            raise PacerUnavailable(str(exc)) from exc

    def book(self, *, number: str, rate: float, recipients: Sequence[str]) -> list[Slot]:
        if not recipients:
            return []
        prefix = _prefix()
        keys = [f"{prefix}:{number}", f"{prefix}:{number}:slow", *(f"{prefix}:{number}:to:{r}" for r in recipients)]
        tolerance = (PAIR_BURST - 1) * PAIR_INTERVAL
        answer = self._call(self._book, keys, [1.0 / rate, PAIR_INTERVAL, tolerance, KEY_TTL])
        return [_slot(value.decode() if isinstance(value, bytes) else str(value)) for value in answer]

    def booked_ahead(self, *, number: str) -> float:
        return float(self._call(self._ahead, [f"{_prefix()}:{number}"], []))

    def slow_down(self, *, number: str, pause: float = 1.0) -> None:
        prefix = _prefix()
        self._call(self._slow, [f"{prefix}:{number}:slow"], [SLOWDOWN_FACTOR, SLOWDOWN_FLOOR, SLOWDOWN_SECONDS])
        self._call(self._push, [f"{prefix}:{number}"], [pause, KEY_TTL])

    def pair_hold(self, *, number: str, recipient: str, seconds: float) -> None:
        tolerance = (PAIR_BURST - 1) * PAIR_INTERVAL
        key = f"{_prefix()}:{number}:to:{recipient}"
        self._call(self._push, [key], [seconds + tolerance, max(KEY_TTL, math.ceil(seconds + tolerance) + 1)])


def _slot(value: str) -> Slot:
    if value.startswith("d"):
        return Slot(defer=max(float(value[1:]), 0.0))
    return Slot(delay=max(float(value), 0.0))


# --- In process (embedded default) --------------------------------------------------------------


class LocalPacer:
    """The same algorithm in this process, for ``make run`` without Redis (one worker)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tat: dict[str, float] = {}
        self._slow: dict[str, tuple[float, float]] = {}  # number → (factor, until)

    def book(self, *, number: str, rate: float, recipients: Sequence[str]) -> list[Slot]:
        tolerance = (PAIR_BURST - 1) * PAIR_INTERVAL
        with self._lock:
            now = time.time()
            interval = 1.0 / rate
            factor, until = self._slow.get(number, (1.0, 0.0))
            if until > now:
                interval /= factor
            tat = max(self._tat.get(number, 0.0), now)
            slots = []
            for recipient in recipients:
                key = f"{number}:to:{recipient}"
                pair = max(self._tat.get(key, 0.0), now)
                if pair - now > tolerance + 1e-6:
                    slots.append(Slot(defer=pair - tolerance - now))
                    continue
                self._tat[key] = pair + PAIR_INTERVAL
                slots.append(Slot(delay=tat - now))
                tat += interval
            self._tat[number] = tat
            return slots

    def booked_ahead(self, *, number: str) -> float:
        with self._lock:
            return max(self._tat.get(number, 0.0) - time.time(), 0.0)

    def slow_down(self, *, number: str, pause: float = 1.0) -> None:
        with self._lock:
            now = time.time()
            factor, until = self._slow.get(number, (1.0, 0.0))
            factor = max((factor if until > now else 1.0) * SLOWDOWN_FACTOR, SLOWDOWN_FLOOR)
            self._slow[number] = (factor, now + SLOWDOWN_SECONDS)
            self._tat[number] = max(self._tat.get(number, 0.0), now + pause)

    def pair_hold(self, *, number: str, recipient: str, seconds: float) -> None:
        tolerance = (PAIR_BURST - 1) * PAIR_INTERVAL
        key = f"{number}:to:{recipient}"
        with self._lock:
            self._tat[key] = max(self._tat.get(key, 0.0), time.time() + seconds + tolerance)


def pacing_forget() -> None:
    """Forget every booking of this database (tests: phone number ids repeat from test to test)."""
    url = str(getattr(settings, "REDIS_URL", "") or "")
    if not url:
        _pacers.clear()
        return
    import redis

    with redis.Redis.from_url(url) as client:
        keys = list(client.scan_iter(match=_prefix() + ":*"))
        if keys:
            client.delete(*keys)


_pacers: dict[tuple[int, str], Pacer] = {}


def pacer() -> Pacer:
    """This process's pacer: Redis when ``REDIS_URL`` is set, else in-process."""
    url = str(getattr(settings, "REDIS_URL", "") or "")
    key = (os.getpid(), url)  # a forked child builds its own client
    found = _pacers.get(key)
    if found is None:
        found = _pacers[key] = RedisPacer(url) if url else LocalPacer()
    return found

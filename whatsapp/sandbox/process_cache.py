"""Rows every send reads, kept by each process for a second instead of queried each time.

A send to the sandbox needs its number and account (by token), the template, the faults and
whether the customer ever wrote in: four queries that answer the same thing hundreds of times a
second. Each :class:`ProcessCache` keeps what it loaded for ``ttl`` seconds (one, as the settings
row is kept): a change made in this process (a service, the admin, the control API) forgets the
caches at once (:func:`forget_all`); one made in another process of a multi-process sandbox
takes effect there within the second. Only reads whose staleness is harmless for that second
are cached; everything that must be exact (counted faults, the limits) stays a write.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Final, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: Seconds a process trusts what it read.
TTL: Final = 1.0
#: Entries kept at most per cache (a process asked for many tokens or templates starts over).
MAX_ENTRIES: Final = 10_000

_caches: list[ProcessCache] = []


class ProcessCache(Generic[K, V]):
    """Values by key, each loaded at most once per ``ttl`` seconds in this process.

    Safe across threads without a lock: two threads missing at once both load, and the
    dictionary is only ever replaced whole or given one key at a time.
    """

    def __init__(self, name: str, ttl: float = TTL) -> None:
        self.name = name
        self.ttl = ttl
        self._entries: dict[K, tuple[float, V]] = {}
        _caches.append(self)

    def get(self, key: K, load: Callable[[], V]) -> V:
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self.ttl:
            return entry[1]
        value = load()
        self.put(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            self._entries = {}
        self._entries[key] = (time.monotonic(), value)

    def forget(self) -> None:
        self._entries = {}

    def __repr__(self) -> str:
        return f"ProcessCache({self.name!r}, ttl={self.ttl})"


def forget_all() -> None:
    """Forget every cache of this process: after a write, or between tests."""
    for cache in _caches:
        cache.forget()

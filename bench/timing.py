"""Timing helpers: run a callable N times, keep every duration, report percentiles."""

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Result:
    """Durations (seconds) of ``count`` runs of one measured operation.

    Runs one after another make a rate of ``count / sum(durations)``. Runs that overlap (concurrent
    requests) give ``wall_seconds``, the elapsed time of all of them, and the rate is taken from it.
    ``extra`` holds figures particular to one benchmark; they go to the JSON file as they are.
    """

    name: str
    durations: tuple[float, ...]
    note: str = ""
    wall_seconds: float | None = None
    extra: Mapping[str, object] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.durations)

    @property
    def per_second(self) -> float:
        elapsed = self.wall_seconds if self.wall_seconds is not None else sum(self.durations)
        return self.count / elapsed if elapsed > 0 else 0.0

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile (p in 0..100): a duration that was actually observed."""
        ordered = sorted(self.durations)
        rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100), at least 1
        return ordered[int(rank) - 1]

    def as_dict(self) -> dict[str, object]:
        empty = not self.durations
        return {
            "name": self.name,
            "count": self.count,
            "mean_ms": 0.0 if empty else round(statistics.fmean(self.durations) * 1000, 3),
            "p50_ms": 0.0 if empty else round(self.percentile(50) * 1000, 3),
            "p99_ms": 0.0 if empty else round(self.percentile(99) * 1000, 3),
            "max_ms": 0.0 if empty else round(max(self.durations) * 1000, 3),
            "per_second": round(self.per_second, 1),
            "note": self.note,
            **self.extra,
        }


def measure(name: str, operation: Callable[[], object], *, count: int, warmup: int = 1, note: str = "") -> Result:
    """Time ``count`` calls of ``operation`` after ``warmup`` untimed calls (imports, caches, first query)."""
    for _ in range(warmup):
        operation()
    durations = []
    for _ in range(count):
        start = time.perf_counter()
        operation()
        durations.append(time.perf_counter() - start)
    return Result(name=name, durations=tuple(durations), note=note)

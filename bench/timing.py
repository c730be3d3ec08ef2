"""Timing helpers: run a callable N times, keep every duration, report percentiles."""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    """Durations (seconds) of ``count`` runs of one measured operation."""

    name: str
    durations: tuple[float, ...]
    note: str = ""

    @property
    def count(self) -> int:
        return len(self.durations)

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile (p in 0..100): a duration that was actually observed."""
        ordered = sorted(self.durations)
        rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100), at least 1
        return ordered[int(rank) - 1]

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "count": self.count,
            "mean_ms": round(statistics.fmean(self.durations) * 1000, 3),
            "p50_ms": round(self.percentile(50) * 1000, 3),
            "p99_ms": round(self.percentile(99) * 1000, 3),
            "max_ms": round(max(self.durations) * 1000, 3),
            "per_second": round(self.count / sum(self.durations), 1),
            "note": self.note,
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

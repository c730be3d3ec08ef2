"""Where the CPU went during a measurement: per process group, per PostgreSQL backend, machine-wide.

On a shared 2-core machine a throughput figure means little without knowing who used the cores:
the senders, gunicorn, the Celery worker, PostgreSQL, or something else entirely. Read from
``/proc`` (Linux); elsewhere every figure is absent rather than wrong.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def available() -> bool:
    return (PROC / "stat").is_file()


def _stat(pid: int | str) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (field 3 onwards), or None."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _seconds(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def group_seconds(pgid: int) -> float:
    """CPU seconds used so far by the processes alive in process group ``pgid``."""
    total = 0.0
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (fields := _stat(entry.name)) is not None and int(fields[2]) == pgid:
            total += _seconds(fields)
    return total


def pids_seconds(pids: Iterable[int]) -> dict[int, float]:
    return {pid: _seconds(fields) for pid in pids if (fields := _stat(pid)) is not None}


def machine_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    values = [int(v) for v in (PROC / "stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / TICKS, sum(values[:8]) / TICKS


@dataclass
class Snapshot:
    groups: dict[str, float]
    backends: dict[int, float]
    own: float
    machine_busy: float
    machine_total: float


class CpuMeter:
    """CPU seconds used between :meth:`start` and :meth:`stop`, by name.

    ``groups`` names the process groups to follow (gunicorn, the worker); ``backends`` returns the
    pids of the PostgreSQL backends serving the benchmark's database; "senders" is this process and
    "other" whatever else kept the machine busy: other programs, Redis, the kernel, PostgreSQL's own
    processes, and backends that did not live through the measurement (a connection opened and
    closed in between is only seen there).
    """

    def __init__(self, groups: dict[str, int], backends: Callable[[], list[int]]) -> None:
        self.groups = groups
        self.backends = backends
        self.before: Snapshot | None = None

    def _snapshot(self) -> Snapshot:
        busy, total = machine_seconds()
        times = os.times()
        return Snapshot(
            groups={name: group_seconds(pgid) for name, pgid in self.groups.items()},
            backends=pids_seconds(self.backends()),
            own=times.user + times.system,
            machine_busy=busy,
            machine_total=total,
        )

    def start(self) -> None:
        self.before = self._snapshot() if available() else None

    def stop(self) -> dict[str, float]:
        """Seconds of CPU by name, plus "machine_cores_busy" (average cores in use) and "cores"."""
        if self.before is None or not available():
            return {}
        after, before = self._snapshot(), self.before
        used = {name: after.groups[name] - before.groups[name] for name in self.groups}
        used["postgres"] = sum(seconds - before.backends.get(pid, 0.0) for pid, seconds in after.backends.items())
        used["senders"] = after.own - before.own
        busy = after.machine_busy - before.machine_busy
        used["other"] = max(0.0, busy - sum(used.values()))
        cores = os.cpu_count() or 1
        wall = (after.machine_total - before.machine_total) / cores
        used["machine_cores_busy"] = busy / wall if wall > 0 else 0.0
        return used


def speed_probe(rounds: int = 3) -> dict[str, float]:
    """CPU milliseconds (best of ``rounds``) of two fixed workloads, to compare runs made on different
    days: this machine's speed drifts by a third or more from one session to the next, more for
    work that allocates (the probe's "objects") than for plain arithmetic ("arithmetic").
    """

    def timed(work: Callable[[], object]) -> float:
        best = float("inf")
        collecting = gc.isenabled()
        gc.disable()  # the collector's cost depends on what the calling process holds, not on the machine
        try:
            for _round in range(rounds):
                started = time.process_time()
                work()
                best = min(best, time.process_time() - started)
        finally:
            if collecting:
                gc.enable()
        return round(best * 1000, 1)

    def objects() -> int:
        rows = [{"id": n, "name": str(n), "pair": (n, n + 1)} for n in range(200_000)]
        return sum(len(row["name"]) for row in rows)

    return {"arithmetic_ms": timed(lambda: sum(range(10_000_000))), "objects_ms": timed(objects)}

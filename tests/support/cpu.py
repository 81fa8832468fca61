"""CPU time spent by the processes a test starts, read from ``/proc``: what a piece of work really costs.

A process is named by its group (a service's label, a RabbitMQ node, the PostgreSQL backends of one
database). :class:`CpuMeter` reads ``utime + stime`` of every process of every group at each
:meth:`CpuMeter.sample`; a process already running at the first sample counts from there, one that
appears later (a restarted service, a new database connection) counts from its birth. What a process
spent after the last sample before it exited is not seen: sample often (:meth:`CpuMeter.every`) and just
before killing one. Linux only; where ``/proc`` is missing every figure reads 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

PROC: Final = Path("/proc")
TICKS_PER_S: Final = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class ProcStat:
    """The few fields of ``/proc/<pid>/stat`` a meter needs."""

    pid: int
    ppid: int
    #: When the process started, in clock ticks since boot: with the pid, names the process uniquely.
    started: int
    cpu_s: float


def read_stat(pid: int) -> ProcStat | None:
    """``/proc/<pid>/stat`` of ``pid``, or ``None`` if it has gone."""
    try:
        raw = (PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after its closing one.
    fields = raw[raw.rindex(b")") + 2 :].split()
    return ProcStat(
        pid=pid,
        ppid=int(fields[1]),
        started=int(fields[19]),
        cpu_s=(int(fields[11]) + int(fields[12])) / TICKS_PER_S,
    )


def all_stats() -> dict[int, ProcStat]:
    """Every process of the machine now, by pid."""
    found: dict[int, ProcStat] = {}
    with contextlib.suppress(OSError):
        for entry in PROC.iterdir():
            if entry.name.isdigit() and (stat := read_stat(int(entry.name))) is not None:
                found[stat.pid] = stat
    return found


def with_descendants(roots: Iterable[int], stats: dict[int, ProcStat]) -> set[int]:
    """``roots`` and every process below them (a node's ``beam.smp`` under its start script)."""
    children: dict[int, list[int]] = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    found: set[int] = set()
    todo = [pid for pid in roots if pid in stats]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


@dataclass
class PostgresBackends:
    """The PostgreSQL server processes serving connections to ``database`` (their title reads
    ``postgres: [<cluster>:] <user> <database> <client> <state>``). The server's own processes (writer,
    checkpointer, autovacuum) serve every database of the server and are not counted."""

    database: str
    #: Processes that are not PostgreSQL's at all (their title is not read again).
    _strangers: set[tuple[int, int]] = field(default_factory=set)

    def __call__(self, stats: dict[int, ProcStat]) -> set[int]:
        found = set()
        for pid, stat in stats.items():
            key = (pid, stat.started)
            if key in self._strangers:
                continue
            title = self._title(pid)
            if not title or not title[0].startswith(b"postgres"):
                self._strangers.add(key)  # a backend just forked still has the server's title: re-read
            elif title[0] == b"postgres:" and self.database.encode() in title[1:4]:
                found.add(pid)
        return found

    @staticmethod
    def _title(pid: int) -> list[bytes]:
        try:
            return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").split()
        except OSError:
            return []


#: A group's processes, given every process of the machine now.
Finder = Callable[[dict[int, ProcStat]], set[int]]


@dataclass
class CpuMeter:
    """CPU seconds spent by groups of processes since the meter's first sample."""

    groups: dict[str, Finder]
    #: Per (pid, start time): the group, the CPU seconds at first sight (0 if born after the first
    #: sample) and at the last sample.
    _seen: dict[tuple[int, int], tuple[str, float, float]] = field(default_factory=dict)
    _sampled: bool = False

    def sample(self) -> None:
        """Read every group's processes now."""
        stats = all_stats()
        for group, find in self.groups.items():
            for pid in find(stats):
                stat = stats[pid]
                key = (pid, stat.started)
                known = self._seen.get(key)
                first = known[1] if known else (stat.cpu_s if not self._sampled else 0.0)
                self._seen[key] = (known[0] if known else group, first, stat.cpu_s)
        self._sampled = True

    def totals(self) -> dict[str, float]:
        """CPU seconds per group from the first sample to the last."""
        spent = dict.fromkeys(self.groups, 0.0)
        for group, first, last in self._seen.values():
            spent[group] += max(0.0, last - first)
        return spent

    async def every(self, interval: float) -> None:
        """Sample every ``interval`` seconds until cancelled (run it as a task)."""
        while True:
            self.sample()
            await asyncio.sleep(interval)


def spent_since(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds per group between two :meth:`CpuMeter.totals`."""
    return {group: after[group] - before.get(group, 0.0) for group in after}


def per_run_ms(spent: dict[str, float], runs: int) -> dict[str, float]:
    """Milliseconds of CPU per run, per group (empty if no run completed)."""
    return {} if runs <= 0 else {group: 1000.0 * seconds / runs for group, seconds in spent.items()}

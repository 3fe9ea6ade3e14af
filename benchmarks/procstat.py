"""CPU time of whole process groups, read from /proc (no psutil).

Each test-bed process (Asterisk, the engine, Redis) is started in its own session, so its
process group is "that program and anything it spawned". For every process in the group we
read its CPU clock: Linux exposes any process's scheduler CPU time (all threads, live and
exited, in nanoseconds) as the POSIX clock ``((~pid) << 3) | 2`` — the same total that
``utime + stime`` in ``/proc/<pid>/stat`` reports in 10 ms ticks, at full resolution. When
that clock cannot be read we fall back to ``/proc/<pid>/stat`` ticks.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

_TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
_CPUCLOCK_SCHED = 2


def _stat_fields(pid: int, tid: int | None = None) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # the command name may contain spaces and parentheses: split after the last ')'
    return raw.rsplit(") ", 1)[1].split()


def _comm(pid: int, tid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/task/{tid}/comm", "rb") as f:
            return f.read().decode("ascii", "replace").strip()
    except OSError:
        return None


def process_cpu_ns(pid: int) -> int:
    """CPU time (user + system, all threads) of one process, in ns; 0 if it is gone."""
    try:
        return time.clock_gettime_ns(((~pid) << 3) | _CPUCLOCK_SCHED)
    except OSError:
        fields = _stat_fields(pid)
        if fields is None:
            return 0
        return (int(fields[11]) + int(fields[12])) * _TICK_NS  # utime, stime


def group_members(pgid: int) -> list[int]:
    """Pids whose process group is ``pgid``."""
    members = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat_fields(int(name))
            if fields is not None and int(fields[2]) == pgid:  # field 5: pgrp
                members.append(int(name))
    return members


@dataclass
class GroupMeter:
    """Cumulative CPU of one process group (a child that exits between samples is not counted:
    the test bed's processes do not fork per call)."""

    label: str
    pgid: int

    def sample(self) -> int:
        return sum(process_cpu_ns(pid) for pid in group_members(self.pgid)) if self.pgid else 0


class Meters:
    """Samples several groups at once; ``delta(before, after)`` in seconds per label."""

    def __init__(self, groups: dict[str, int]):
        self.meters = [GroupMeter(label, pgid) for label, pgid in groups.items()]

    def sample(self) -> dict[str, int]:
        return {m.label: m.sample() for m in self.meters}

    @staticmethod
    def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
        return {k: (after[k] - before[k]) / 1e9 for k in before}


def thread_cpu_ns(pid: int, name: str | None = None) -> dict[int, int]:
    """CPU time (user + system) of each live thread of ``pid`` (only those called ``name``, if
    given), in ns, by thread id (10 ms ticks)."""
    out: dict[int, int] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        if name is not None and _comm(pid, int(tid)) != name:
            continue
        fields = _stat_fields(pid, int(tid))
        if fields is not None:  # None: it ended between the listing and the read
            out[int(tid)] = (int(fields[11]) + int(fields[12])) * _TICK_NS
    return out

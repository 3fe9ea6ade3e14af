"""A process's resident memory from ``/proc`` (no psutil), for memory assertions in tests:
the peak since a reset, so a spike that came and went is still seen."""

from __future__ import annotations

from pathlib import Path


def reset_peak(pid: int) -> None:
    """Start a new peak (``VmHWM``) at the current RSS (Linux ``clear_refs`` 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def rss_kib(pid: int) -> int:
    return status_kib(pid, "VmRSS")


def peak_kib(pid: int) -> int:
    """The highest RSS since the last :func:`reset_peak` (or the process's start)."""
    return status_kib(pid, "VmHWM")

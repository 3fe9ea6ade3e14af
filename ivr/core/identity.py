"""Who an engine is: unique per host and process, so that leases, statuses and stream consumers
of several engines (on one machine or many) never mix (docs/cluster.md)."""

from __future__ import annotations

import os
import socket


def engine_identity(agi_port: int, pid: int | None = None, hostname: str | None = None) -> str:
    """``host:port:pid``: the host name (not 127.0.0.1, the same on every machine), the FastAGI port
    (two engines on one host) and the process (a restarted engine is another holder)."""
    return f"{hostname or socket.gethostname()}:{agi_port}:{os.getpid() if pid is None else pid}"


def pid_alive(pid: int) -> bool:
    """Whether a process of this host runs under ``pid`` (a zombie counts as dead; a pid reused by
    another process counts as alive: a lease is then taken only after its TTL, the safe side)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False

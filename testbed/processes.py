"""Child processes of a test bed: started in their own session, stopped for sure."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from ivr.core.identity import pid_alive


def spawn(argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session (so it and its children can be killed as a group)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=env, cwd=cwd,
        )


def start_redis(port: int, workdir: Path, log: Path | None = None) -> subprocess.Popen[bytes]:
    """A real redis-server on loopback ``port`` without persistence, ready when this returns
    (raises RuntimeError with its log when it does not start)."""
    log = log or workdir / "redis.log"
    proc = spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                  "--dir", str(workdir)], log)
    if not wait_port(port, 10, proc):
        raise RuntimeError(f"redis-server did not start on port {port}:\n{log_tail(log)}")
    return proc


def stop_group(pid: int, timeout: float = 5.0, sig: int = signal.SIGTERM) -> None:
    """Signal the process group led by ``pid``; SIGKILL whatever is left after ``timeout``."""
    for s in (sig, signal.SIGKILL):
        try:
            os.killpg(pid, s)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _reap(pid)
            if not pid_alive(pid) and not _group_alive(pid):
                return
            time.sleep(0.05)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None, host: str = "127.0.0.1") -> bool:
    """Wait until a TCP port accepts connections (or ``proc`` died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"

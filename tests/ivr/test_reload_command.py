"""`ivr reload` signals only a process that really is `ivr serve` (pid files go stale)."""

from __future__ import annotations

import subprocess
import sys
import time

from ivr.commands.reload import is_engine


def exec_done(pid: int, marker: bytes, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while marker not in open(f"/proc/{pid}/cmdline", "rb").read():
        assert time.monotonic() < deadline, "child did not exec"
        time.sleep(0.01)


def test_only_an_ivr_serve_process_counts_as_the_engine() -> None:
    other = subprocess.Popen(["sleep", "30"])
    engine_like = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "ivr", "serve"])
    try:
        for proc, marker in ((other, b"sleep"), (engine_like, b"time.sleep")):
            exec_done(proc.pid, marker)  # until exec, /proc shows the parent's command line
        assert not is_engine(other.pid)
        assert is_engine(engine_like.pid)
        assert not is_engine(2**22 + 12345)  # no such process
    finally:
        for p in (other, engine_like):
            p.kill()
            p.wait()

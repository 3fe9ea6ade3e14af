"""`ivr reload` signals only a process that really is `ivr serve` (pid files go stale): the engine
of `agi.port`, or another engine of this host when that one is down."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from ivr.commands.reload import is_engine, local_engine


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


def test_the_engine_of_agi_port_is_signalled_else_another_engine_of_this_host(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "30"])
    engines = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "ivr", "serve"]) for _ in range(2)]
    try:
        for proc, marker in ((other, b"sleep"), *((e, b"time.sleep") for e in engines)):
            exec_done(proc.pid, marker)
        mine, stale, second = (tmp_path / f"engine-{port}.pid" for port in (4573, 4572, 4574))
        stale.write_text(str(other.pid))  # a pid file left behind, its pid reused by another process
        second.write_text(str(engines[1].pid))
        assert local_engine(mine) == (4574, engines[1].pid)  # 4573 is not running here
        mine.write_text(str(engines[0].pid))
        assert local_engine(mine) == (4573, engines[0].pid)
        for path in (mine, second):
            path.unlink()
        assert local_engine(mine) is None
    finally:
        for p in (other, *engines):
            p.kill()
            p.wait()

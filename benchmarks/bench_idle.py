"""What two engines cost with no call at all (issue 19): each engine's CPU and wake-ups per second.

The cluster bed of bench_cluster.py (one Asterisk, two engines, Redis master + 2 replicas + 3
Sentinels), left idle. Printed side by side for the engine holding the follow lease and the one
standing by: CPU in ms per second (/proc, benchmarks/procstat.py), the process's wake-ups per
second (voluntary context switches of all its threads: each is the event loop going to sleep in
epoll and being woken by a timer or a socket), and the Redis master's commands per second by
command (INFO commandstats: both engines, the replicas and the sentinels together). The
stand-by's idle CPU is what bench_cluster.py's "net of idle" column takes out; a node spreads it
over its calls, so every wake-up that does no work costs every call a little.

    .venv/bin/python benchmarks/bench_idle.py                 # about 1.5 minutes
    .venv/bin/python benchmarks/bench_idle.py --attach NAME   # a running bed (ivr testbed up --engines 2 --sentinel)

Nothing here asserts; the numbers are the result (these machines are noisy: run it twice).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]  # REPO: the test bed package lives there, not in the install

import redis  # noqa: E402

from procstat import process_cpu_ns  # noqa: E402

from ivr.store import keyspace  # noqa: E402
from testbed.bed import TestBed  # noqa: E402
from testbed.sentinel import master_port  # noqa: E402


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def wakeups(pid: int) -> int:
    """Voluntary context switches of every thread of ``pid`` (0 if it is gone)."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt_switches"))
        except (OSError, StopIteration):
            continue
    return total


def command_counts(r: redis.Redis) -> dict[str, int]:
    stats: dict[str, Any] = r.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def roles(bed: TestBed, r: redis.Redis) -> dict[str, int]:
    """Engine index by role: the follow lease's holder and the stand-by (waits until one holds it)."""
    st = bed.state
    assert st
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for key in r.scan_iter(match=keyspace.lease("follow", "*")):
            holder = (r.get(key) or b"").decode().split(" ", 1)[-1]
            for i in range(st.engines):
                if holder.endswith(f":{bed.engine_pid(i)}"):
                    return {"holder": i, "stand-by": 1 - i}
        time.sleep(0.2)
    raise RuntimeError("no engine holds the follow lease")


def measure(bed: TestBed, r: redis.Redis, seconds: float) -> dict[str, Any]:
    pids = {i: bed.engine_pid(i) for i in range(2)}
    cpu0, wake0, cmd0, t0 = ({i: process_cpu_ns(p) for i, p in pids.items()}, {i: wakeups(p) for i, p in pids.items()},
                             command_counts(r), time.monotonic())
    time.sleep(seconds)
    cpu1, wake1, cmd1, t1 = ({i: process_cpu_ns(p) for i, p in pids.items()}, {i: wakeups(p) for i, p in pids.items()},
                             command_counts(r), time.monotonic())
    wall = t1 - t0
    return {"cpu_ms_per_s": {i: (cpu1[i] - cpu0[i]) / 1e6 / wall for i in pids},
            "wakeups_per_s": {i: (wake1[i] - wake0[i]) / wall for i in pids},
            "redis_per_s": {c: (n - cmd0.get(c, 0)) / wall for c, n in cmd1.items() if n - cmd0.get(c, 0) > 0}}


def run(bed: TestBed, args: argparse.Namespace) -> dict[str, Any]:
    st = bed.state
    assert st
    if args.restart:
        for i in range(st.engines):
            bed.stop_engine(index=i)
        for i in range(st.engines):
            bed.start_engine(index=i)
    r = redis.Redis(port=master_port(st), password=None, socket_timeout=2)
    try:
        time.sleep(args.settle)  # start-up work (imports, console, the agent index) is not idle
        role = roles(bed, r)
        windows = [measure(bed, r, args.seconds) for _ in range(args.windows)]
    finally:
        r.close()
    print(f"\nIdle cluster bed, {args.windows} windows of {args.seconds:.0f} s, load {os.getloadavg()[0]:.2f}")
    print(f"   {'':24s}{'median':>10s}   each window")
    out: dict[str, Any] = {}
    for name, index in role.items():
        for what, unit in (("cpu_ms_per_s", "CPU ms/s"), ("wakeups_per_s", "wake-ups/s")):
            values = [w[what][index] for w in windows]
            out[f"{name} {what}"] = values
            print(f"   {name + ' ' + unit:24s}{statistics.median(values):10.2f}   " + " ".join(f"{v:.2f}" for v in values))
    commands = sorted({c for w in windows for c in w["redis_per_s"]},
                      key=lambda c: -statistics.median(w["redis_per_s"].get(c, 0.0) for w in windows))
    per_command = {c: statistics.median(w["redis_per_s"].get(c, 0.0) for w in windows) for c in commands}
    print("   Redis master, commands/s (both engines, replicas, sentinels): "
          + ", ".join(f"{c} {n:.1f}" for c, n in per_command.items() if n >= 0.05))
    out["redis_per_s"] = per_command
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=20.0, help="length of one window (default 20)")
    p.add_argument("--windows", type=int, default=3, help="windows measured one after the other (default 3)")
    p.add_argument("--settle", type=float, default=10.0, help="s the engines settle first (default 10)")
    p.add_argument("--attach", metavar="NAME", help="measure a running bed instead of starting one")
    p.add_argument("--restart", action="store_true", help="with --attach: restart its engines first (new code)")
    p.add_argument("--config", default=str(REPO / "config"), help="config dir (default: the repo's)")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    if args.attach:
        result = run(TestBed.attach(args.attach), args)
    else:
        bed = TestBed(args.config, name=f"bench-idle-{os.getpid()}", engines=2, sentinel=True, trace_agi=False)
        log(f"starting test bed {bed.name} (Asterisk, two engines, Redis master + 2 replicas + 3 sentinels)")
        try:
            with bed.running(REPO / "build" / "bench-logs" / "idle", progress=log):
                result = run(bed, args)
        finally:
            bed.stop()
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

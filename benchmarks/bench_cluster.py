"""Redundancy on one node (issue 19), one test bed, one run: what it costs and how fast it heals.

The bed: one Asterisk, two engines (``ivr testbed up --engines 2 --sentinel``), Redis as a
master, two replicas and three Sentinels (down-after 1 s). Printed side by side:

1. CPU per call, a node with two engines ÷ the same node with one (target ≤ 1.05×): the typical
   call (greeting heard, key in the menu, general queue) in interleaved ABBA batches. "one":
   engine 1 is stopped and calls are told there is one engine (``IVR_ENGINES=1`` on the channel
   hides the global, so no call knocks on the stopped one first); "two": both engines run and
   the calls alternate between them, one of them holding the leases. CPU = Asterisk + both
   engines + every Redis and Sentinel process, per call (/proc, benchmarks/procstat.py).
2. Seconds from each SIGKILL to recovery, each repeated ``--repeat`` times:
   a. engine takeover: a caller in the main menu of the killed engine is in that menu again
      on the other (the stand-in's resume point is on the channel: it is about to play it);
   b. lease takeover: another engine holds the follow lease (Redis);
   c. Redis promotion: a write through the engines' own client (ivr/store/client.py, Sentinel)
      succeeds again after the master was killed (the killed node then rejoins as a replica).

    .venv/bin/python benchmarks/bench_cluster.py            # about 4 minutes
    .venv/bin/python benchmarks/bench_cluster.py --quick    # about 1.5 minutes, indicative only

Nothing here asserts; the ratios and seconds are the result (these machines are noisy).
"""

from __future__ import annotations

import argparse
import asyncio
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

from bench_ivr import CallDriver, CpuOptions, VariantTotals, interleaved, pause_seats, run_batch  # noqa: E402
from procstat import Meters  # noqa: E402

from ivr.ami.client import AmiClient  # noqa: E402
from ivr.store import keyspace  # noqa: E402
from ivr.store.client import redis_client  # noqa: E402
from testbed.bed import TestBed  # noqa: E402

TARGET_CPU = 1.05
VARIANTS = ("one", "two")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class NodeDriver(CallDriver):
    """bench_ivr's typical call, into [from-pstn] of a node with one or two engines."""

    contexts = {"one": "from-pstn", "two": "from-pstn"}
    codes = {"one": "o", "two": "t"}

    def variables(self, variant: str) -> list[str]:
        return ["_IVR_ENGINES=1"] if variant == "one" else []


def meters(bed: TestBed) -> Meters:
    """Every process a call can cost, by its current pid (a restarted engine is a new group)."""
    st = bed.state
    assert st
    groups = {"asterisk": st.asterisk_pid, **{f"engine{i}": bed.engine_pid(i) for i in range(st.engines)}}
    groups.update({f"redis{i}": pid for i, pid in enumerate(st.redis_pids)})
    groups.update({f"sentinel{i}": pid for i, pid in enumerate(st.sentinel_pids)})
    return Meters(groups)


async def standby_idle(bed: TestBed, seconds: float = 10.0) -> float:
    """ms of CPU per second the stand-by engine (1: engine 0 holds the leases) spends with no call
    at all: heartbeats, lease attempts, its console. A fixed cost per second, not per call."""
    m = Meters({"engine1": bed.engine_pid(1)})
    before, t0 = m.sample(), time.monotonic()
    await asyncio.sleep(seconds)
    return 1000 * Meters.delta(before, m.sample())["engine1"] / (time.monotonic() - t0)


async def cpu_per_call(bed: TestBed, ami: AmiClient, args: argparse.Namespace) -> dict[str, VariantTotals]:
    opts = CpuOptions("typical", "typical call", args.calls, args.batch, args.batch, args.delay, 80, VARIANTS)
    driver = NodeDriver(ami, opts, None)
    totals = {v: VariantTotals() for v in VARIANTS}
    order = interleaved(VARIANTS, max(1, args.calls // args.batch))
    # a warm-up batch of each variant first, not counted: the first calls after a bed starts pay
    # for cold caches and lazy set-up (13 ms more per call here), which would flatter whichever
    # variant comes first; and engine 1, restarted for each "two" batch, warms up again
    warm = [(v, args.warmup) for v in VARIANTS if args.warmup]
    for i, (variant, size) in enumerate([*warm, *((v, args.batch) for v in order)], 1 - len(warm)):
        running = bed.engine_running(1)
        if variant == "one" and running:
            await asyncio.to_thread(bed.stop_engine, index=1)
        elif variant == "two" and not running:
            await asyncio.to_thread(bed.start_engine, index=1)
            await asyncio.sleep(args.settle)  # its start-up work (imports, console, index) is not a call's
            if i > 0 and args.warmup:  # and its first calls' cold start neither: a real stand-in runs warm
                m = meters(bed)
                await run_batch(driver, m, variant, 1000 * (i + len(warm)) + 500, args.warmup, VariantTotals(),
                                tuple(meter.label for meter in m.meters))
        m = meters(bed)
        groups = tuple(meter.label for meter in m.meters)
        t = totals[variant] if i > 0 else VariantTotals()
        await run_batch(driver, m, variant, 1000 * (i + len(warm)), size, t, groups)
        what = f"batch {i:2d}/{len(order)}" if i > 0 else "warm-up  "
        log(f"  {what} {variant}: {size} calls, {1000 * t.batch_cpu[-1]:.1f} ms CPU/call, "
            f"{t.failed} failed so far, load {os.getloadavg()[0]:.2f}")
    if not bed.engine_running(1):
        await asyncio.to_thread(bed.start_engine, index=1)
    return totals


async def getvar(ami: AmiClient, channel: str, name: str) -> str:
    return str((await ami.action({"Action": "Getvar", "Channel": channel, "Variable": name})).get("Value") or "")


async def poll(probe: Any, timeout: float, interval: float = 0.005) -> float:
    """Seconds until ``await probe()`` is true (raises TimeoutError after ``timeout``)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if await probe():
            return time.monotonic() - t0
        await asyncio.sleep(interval)
    raise TimeoutError


async def engine_takeover(bed: TestBed, ami: AmiClient, n: int) -> float:
    """A caller waits in the 12345 main menu; SIGKILL its engine; seconds until the other engine
    has entered that menu again (it leaves a new resume point just before it plays the prompt)."""
    one, two = f"bk{os.getpid()}-{n}-1", f"bk{os.getpid()}-{n}-2"
    created = ami.wait_for("Newchannel", lambda e: e.get("Uniqueid") == two)
    await ami.action({"Action": "Originate", "Channel": "Local/12345@from-pstn", "Context": "ivr-bench-caller",
                      "Exten": "s", "Priority": "1", "CallerID": "13900000099", "ChannelId": one,
                      "OtherChannelId": two, "Async": "true",
                      "Variable": ["BENCH_KEYS=", "BENCH_DELAY=60", "BENCH_DTMF_MS=80", "BENCH_HOLD=60"]}, timeout=15)
    channel = (await asyncio.wait_for(created, 15))["Channel"]

    async def in_menu() -> bool:  # the greeting leaves no point; the main menu (main/menu) does
        return "/menu:" in await getvar(ami, channel, "IVR_RESUME")

    await poll(in_menu, 20, 0.1)
    point, serving = await getvar(ami, channel, "IVR_RESUME"), int(await getvar(ami, channel, "IVR_ENGINE_AT"))
    killed = time.monotonic()
    bed.kill_engine(serving)  # returns once the process is gone (the stand-in may be at work already)

    async def resumed() -> bool:
        return await getvar(ami, channel, "IVR_RESUME") not in ("", point)

    try:
        await poll(resumed, 20)
        return time.monotonic() - killed
    finally:
        await ami.action({"Action": "Hangup", "Channel": channel})
        await asyncio.to_thread(bed.start_engine, index=serving)


async def lease_takeover(bed: TestBed, redis: Any) -> float:
    """SIGKILL the follow lease's holder; seconds until another engine holds it."""
    st = bed.state
    assert st
    keys = [k async for k in redis.scan_iter(match=keyspace.lease("follow", "*"))]
    if len(keys) != 1:
        raise RuntimeError(f"expected one follow lease, found {keys}")
    holder = ""

    async def held_by_a_live_engine() -> bool:  # (a restarted engine takes its dead predecessor's lease)
        nonlocal holder
        holder = (await redis.get(keys[0]) or "").split(" ", 1)[-1]
        return any(holder.endswith(f":{bed.engine_pid(i)}") for i in range(st.engines))

    await poll(held_by_a_live_engine, 30, 0.05)
    index = next(i for i in range(st.engines) if holder.endswith(f":{bed.engine_pid(i)}"))
    killed = time.monotonic()
    bed.kill_engine(index)

    async def taken() -> bool:
        value = await redis.get(keys[0])
        return bool(value) and value.split(" ", 1)[-1] != holder

    try:
        await poll(taken, 30, 0.02)
        return time.monotonic() - killed
    finally:
        await asyncio.to_thread(bed.start_engine, index=index)


async def redis_promotion(bed: TestBed, redis: Any) -> tuple[float, float]:
    """SIGKILL the master; seconds until the sentinels name another, and until a write through
    the engines' client succeeds (it retries across the failover); the killed node rejoins."""
    await redis.set(keyspace.REPLICATION_MARK, "bench")
    t0 = time.monotonic()
    old = bed.kill_redis_master()
    write = asyncio.ensure_future(redis.set(keyspace.REPLICATION_MARK, "bench"))
    await asyncio.to_thread(bed.wait_redis_master, old)
    named = time.monotonic() - t0
    await write
    written = time.monotonic() - t0
    await asyncio.to_thread(bed.restart_redis, old)
    return named, written


def report_cpu(totals: dict[str, VariantTotals], idle: float, rows: list[tuple[str, ...]]) -> dict[str, Any]:
    one, two = totals["one"], totals["two"]
    per_call = {v: 1000 * sum(t.cpu.values()) / max(t.calls, 1) for v, t in totals.items()}
    idle_share = idle * two.wall / max(two.calls, 1)  # ms per call of the stand-by's idle CPU at this call rate
    print(f"\n1. CPU per call, typical call: {one.calls} + {two.calls} calls in ABBA batches")
    print(f"   {'ms CPU/call':28s}{'one engine':>14s}{'two engines':>14s}{'ratio':>8s}")
    labels = sorted({k for t in totals.values() for k in t.cpu})
    for prefix in ("asterisk", "engine", "redis", "sentinel"):
        a, b = (sum(t.cpu.get(k, 0.0) for k in labels if k.startswith(prefix)) * 1000 / max(t.calls, 1) for t in (one, two))
        print(f"   {prefix:28s}{a:14.2f}{b:14.2f}" + (f"{b / a:8.2f}" if a > 0.05 else f"{'-':>8s}"))
    for label in (k for k in labels if k.startswith("engine")):  # engine 0 holds the leases
        a, b = (t.cpu.get(label, 0.0) * 1000 / max(t.calls, 1) for t in (one, two))
        print(f"     {label + (' (lease holder)' if label == 'engine0' else ''):26s}{a:14.2f}{b:14.2f}")
    ratio = per_call["two"] / per_call["one"]
    print(f"   {'total':28s}{per_call['one']:14.2f}{per_call['two']:14.2f}{ratio:8.2f}")
    spread = {v: " ".join(f"{1000 * x:.1f}" for x in t.batch_cpu) for v, t in totals.items()}
    print(f"   batches, ms/call: one {spread['one']}; two {spread['two']}")
    if one.failed or two.failed:
        print(f"   WARNING: failed calls: one {one.failed}, two {two.failed}")
    net = (per_call["two"] - idle_share) / per_call["one"]
    print(f"   the stand-by engine idles at {idle:.2f} ms CPU/s: {idle_share:.2f} ms per call at this rate "
          f"({two.calls / max(two.wall, 1e-9):.2f} calls/s); net of it {per_call['two'] - idle_share:.2f} ms, ratio {net:.2f}")
    rows.append(("CPU/call, two engines vs one", f"{per_call['two']:.2f} ms", f"{per_call['one']:.2f} ms",
                 f"{ratio:.2f}x", f"<= {TARGET_CPU}x", "met" if ratio <= TARGET_CPU else "MISSED"))
    rows.append(("  same, net of the stand-by's idle", f"{per_call['two'] - idle_share:.2f} ms",
                 f"{per_call['one']:.2f} ms", f"{net:.2f}x", "(info)", ""))
    return {"ms_per_call": per_call, "ratio": ratio, "standby_idle_ms_per_s": idle, "ratio_net_of_idle": net,
            "calls_per_s": two.calls / max(two.wall, 1e-9), "failed": {"one": one.failed, "two": two.failed}}


def report_recovery(measured: dict[str, list[float]], rows: list[tuple[str, ...]]) -> dict[str, Any]:
    print("\n2. Seconds from SIGKILL to recovery")
    print(f"   {'':36s}{'median':>8s}{'max':>8s}   each")
    for label, values in measured.items():
        print(f"   {label:36s}{statistics.median(values):8.3f}{max(values):8.3f}   "
              + " ".join(f"{v:.3f}" for v in values))
        rows.append((label, f"{statistics.median(values):.3f} s", "", f"max {max(values):.3f} s", "(info)", ""))
    return {label: values for label, values in measured.items()}


async def run(bed: TestBed, args: argparse.Namespace) -> dict[str, Any]:
    st = bed.state
    assert st
    ami = AmiClient("127.0.0.1", st.ami_port, "testbed", st.testbed_ami_secret, events="call,agent")
    await ami.connect()
    redis = redis_client(bed.settings.redis, timeout=2)
    rows: list[tuple[str, ...]] = []
    out: dict[str, Any] = {"load_before": os.getloadavg()[0]}
    try:
        await pause_seats(bed, ami)
        if args.only in (None, "cpu"):
            log("1. CPU per call, one engine vs two (typical call); first the stand-by's idle CPU")
            await asyncio.sleep(args.settle)
            idle = await standby_idle(bed)
            out["cpu"] = report_cpu(await cpu_per_call(bed, ami, args), idle, rows)
        measured: dict[str, list[float]] = {"engine takeover (menu resumed)": [], "lease takeover (follow)": [],
                                            "Redis promotion (sentinels name it)": [],
                                            "Redis promotion (a write succeeds)": []}
        for n in range(args.repeat if args.only in (None, "recovery") else 0):
            log(f"2. recovery, round {n + 1}/{args.repeat}")
            measured["engine takeover (menu resumed)"].append(await engine_takeover(bed, ami, n))
            measured["lease takeover (follow)"].append(await lease_takeover(bed, redis))
            named, written = await redis_promotion(bed, redis)
            measured["Redis promotion (sentinels name it)"].append(named)
            measured["Redis promotion (a write succeeds)"].append(written)
        if args.only in (None, "recovery"):
            out["recovery_s"] = report_recovery(measured, rows)
    finally:
        await redis.aclose()
        ami.close()
    out["load_after"] = os.getloadavg()[0]
    print(f"\nTargets (issue 19); load average {out['load_before']:.2f} -> {out['load_after']:.2f}")
    print(f"   {'measure':36s}{'two engines':>14s}{'one':>12s}{'ratio':>16s}{'target':>10s}  result")
    for row in rows:
        print(f"   {row[0]:36s}{row[1]:>14s}{row[2]:>12s}{row[3]:>16s}{row[4]:>10s}  {row[5]}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="few calls and one recovery round (indicative only)")
    p.add_argument("--calls", type=int, help="calls per variant (default 96, quick 24)")
    p.add_argument("--batch", type=int, default=24, help="calls per batch, all in flight (default 24)")
    p.add_argument("--warmup", type=int, default=12, help="unmeasured calls per variant first (default 12)")
    p.add_argument("--delay", type=float, default=6.0, help="s after answer before the key (default 6: in the menu)")
    p.add_argument("--settle", type=float, default=3.0, help="s a started engine settles before its batch")
    p.add_argument("--repeat", type=int, help="recovery rounds (default 3, quick 1)")
    p.add_argument("--only", choices=("cpu", "recovery"), help="run one part")
    p.add_argument("--config", default=str(REPO / "config"), help="config dir (default: the repo's)")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    args.calls = args.calls or (24 if args.quick else 96)
    args.repeat = args.repeat or (1 if args.quick else 3)
    started = time.monotonic()
    # production's AMI events (trace_agi=False): a test bed's traced ones are three quarters of a
    # call's events, and every AMI session (the stand-by's too) is woken for each of them
    bed = TestBed(args.config, name=f"bench-cluster-{os.getpid()}", engines=2, sentinel=True, staffed=True,
                  trace_agi=False)
    log(f"starting test bed {bed.name} (Asterisk, two engines, Redis master + 2 replicas + 3 sentinels)")
    try:
        with bed.running(REPO / "build" / "bench-logs" / "cluster", progress=log):
            result = asyncio.run(run(bed, args))
    finally:
        bed.stop()
    result["seconds"] = round(time.monotonic() - started, 1)
    print(f"\n(total {result['seconds']} s; bed logs in build/bench-logs/cluster)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Load held (see README.md, section 4): many citizens at once through the 12345 menu into the
general queue, answered by sipp agents, on one test bed without DNS.

Real SIP and RTP end to end: one sipp places every citizen call from the carrier trunk's
address, each caller presses 1 during the greeting (RFC 2833, as ``testbed/sipp/``
does), the engine walks ``config/flows/main.yaml`` over FastAGI and routes the call to
``q-general``; one sipp per seat answers as that seat's endpoint, talks, and hangs up; the
caller then hears the satisfaction survey and the dialplan hangs up. Prints failed calls
(target 0), Asterisk's and the engine's CPU per call (their process groups, /proc), and the
engine's own AGI round-trip p50/p99 and event-loop lag p99 over the run (``ivr/core/latency.py``).

    .venv/bin/python benchmarks/bench_load.py                 # 200 callers, about 2 minutes
    .venv/bin/python benchmarks/bench_load.py --callers 20 --agents 5 --rate 10   # a smoke run

Nothing here asserts; the exit status is 0 whether or not a target is met: read the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]  # REPO: the test bed package lives there, not in the install

from procstat import Meters  # noqa: E402

from queues.model import serving  # noqa: E402
from ivr.store import keyspace, redis_client  # noqa: E402
from ivr.ami.client import AmiClient  # noqa: E402
from ivr.core.identity import engine_identity  # noqa: E402
from ivr.core.latency import percentile, window  # noqa: E402
from testbed.bed import RTP_PORTS, TestBed  # noqa: E402
from testbed.ports import PortAllocator  # noqa: E402
from testbed.sipp import Sipp, agent_phone, citizen_calls, keys  # noqa: E402

QUEUE = "general"
DIALED = "12345"
KEY = "1"  # consult: the greeting is cut, the menu skipped by type-ahead, then the general queue
FIRST_CALLER = 13700000001


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- the bench's own deployment -----------------------------------------------------------


def make_queue_members(doc: dict[str, Any], queue: str, agents: list[str]) -> None:
    """Make ``agents`` (and only them) the members of ``queue`` in a ``queues.yaml`` document.

    The one place that decides how the bench's seats join the queue: they have the queue's
    skill and every other agent loses it; the bed logs every agent in when it starts (a shift)."""
    skill = doc["queues"][queue].get("skill") or queue
    for agent in doc["agents"].values():
        agent["skills"] = {s: p for s, p in (agent.get("skills") or {skill: 0}).items() if s != skill}
    for name in agents:
        doc["agents"][name]["skills"] = {skill: 0}


def bench_config(root: Path, agents: int) -> Path:
    """A private copy of config/ with ``agents`` seats (``load001``...) serving the general
    queue; prompts/ is shared. Returns the config dir."""
    shutil.copytree(REPO / "config", root / "config")
    (root / "prompts").symlink_to(REPO / "prompts")
    path = root / "config" / "queues.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    names = [f"load{i:03d}" for i in range(1, agents + 1)]
    doc["agents"].update({n: {"name": f"压测座席{n[4:]}"} for n in names})
    make_queue_members(doc, QUEUE, names)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return root / "config"


# --- watching the calls -------------------------------------------------------------------


@dataclass
class CallWatch:
    """Per caller, from AMI: joined the queue, reached a seat; and the queue's high-water marks."""

    callers: set[str]
    joined: set[str] = field(default_factory=set)
    connected: set[str] = field(default_factory=set)
    completed: set[str] = field(default_factory=set)
    waiting: int = 0
    talking: int = 0
    max_waiting: int = 0
    max_talking: int = 0
    holdtimes: list[int] = field(default_factory=list)

    def on_event(self, event: Any) -> None:
        caller = event.get("CallerIDNum")
        if caller not in self.callers:
            return
        name = event.get("Event")
        if name == "QueueCallerJoin":
            self.joined.add(caller)
            self.waiting += 1
            self.max_waiting = max(self.max_waiting, self.waiting)
        elif name == "QueueCallerLeave":
            self.waiting -= 1
        elif name == "AgentConnect":
            self.connected.add(caller)
            self.talking += 1
            self.max_talking = max(self.max_talking, self.talking)
            self.holdtimes.append(int(event.get("HoldTime") or 0))
        elif name == "AgentComplete":
            self.completed.add(caller)
            self.talking -= 1


async def channels_up(ami: AmiClient) -> int:
    listing = await ami.action({"Action": "CoreShowChannels"}, as_list=True)
    return sum(1 for e in listing if e.get("Event") == "CoreShowChannel")


async def latency_snapshot(redis: aioredis.Redis, engine: str, newer_than: str | None = None,
                           timeout: float = 15.0) -> dict[str, Any]:
    """The engine's published latency histograms (a newer publication than ``newer_than``)."""
    deadline = time.monotonic() + timeout
    while True:
        raw = await redis.hget(keyspace.engine(engine), "latency")
        if raw and raw != newer_than:
            return dict(json.loads(raw), raw=raw)
        if time.monotonic() > deadline:
            raise RuntimeError(f"the engine published no (new) latency within {timeout} s")
        await asyncio.sleep(0.2)


async def ivr_records(redis: aioredis.Redis, callers: set[str]) -> Counter[str]:
    """How the engine's call records of the bench's callers ended (route or fallback)."""
    out: Counter[str] = Counter()
    for _id, fields in await redis.xrange(keyspace.CALL_STREAM) or []:
        record = json.loads(fields["record"])
        if record["caller"] in callers:
            route = record["route"]
            out["dialplan fallback" if record["dialplan_fallback"] else
                f"{route['type']} {route.get('queue', '')}".strip()] += 1
    return out


# --- the run ------------------------------------------------------------------------------


async def drive(bed: TestBed, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    st = bed.state
    assert st and bed.dns is not None
    ports = PortAllocator()  # never one the bed holds (its seats' ports, its RTP range)
    seats = serving(QUEUE, bed.settings.agents, bed.settings.queues)
    callers = [str(FIRST_CALLER + i) for i in range(args.callers)]
    watch = CallWatch(set(callers))
    ami = AmiClient("127.0.0.1", st.ami_port, "testbed", st.testbed_ami_secret, events="agent")
    ami.on("*", watch.on_event)
    redis = redis_client(st.redis_url)
    phones: list[Sipp] = []
    engine_name = engine_identity(bed.settings.agi.port, pid=st.engine_pid)  # its status name
    try:
        await ami.connect()
        log(f"starting {len(seats)} seat phones (sipp, one per endpoint)")
        for name in seats:
            phones.append(await agent_phone(workdir, port=st.agent_ports[name], media_port=ports.block(4),
                                            talk_ms=args.talk_ms, name=f"seat-{name}"))
        meters = Meters({"asterisk": st.asterisk_pid, "engine": st.engine_pid})
        idle0, t_idle = meters.sample(), time.monotonic()
        await asyncio.sleep(args.idle)
        idle = {k: v / (time.monotonic() - t_idle) for k, v in Meters.delta(idle0, meters.sample()).items()}
        lat_before = await latency_snapshot(redis, engine_name)
        dns_from = time.time()
        log(f"placing {args.callers} calls at {args.rate:g}/s (key {KEY} after {args.key_ms} ms), "
            f"seats talk {args.talk_ms} ms")
        before, t0, load0 = meters.sample(), time.monotonic(), os.getloadavg()[0]
        citizens = await citizen_calls(workdir, sip_port=st.sip_port, local_port=st.pstn_port,
                                       media_port=ports.block(4), dialed=DIALED, callers=callers,
                                       rate=args.rate, presses=keys(KEY, first_ms=args.key_ms),
                                       hold_ms=args.hold_ms)
        progress = asyncio.create_task(report_progress(watch, citizens))
        try:
            code = await citizens.wait(args.hold_ms / 1000 + 60 + args.callers / args.rate)
        except TimeoutError:
            log("the citizens' sipp is still running past every caller's hold time: stopped")
            await citizens.stop()
            code = -1
        finally:
            progress.cancel()
        deadline = time.monotonic() + 30
        while (up := await channels_up(ami)) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        after, wall, load1 = meters.sample(), time.monotonic() - t0, os.getloadavg()[0]
        lat_after = await latency_snapshot(redis, engine_name, newer_than=lat_before["raw"])
        dns_queries = [str(q) for q in bed.dns.since(dns_from)]
        stats = citizens.statistics()
        seat_stats = [p.statistics() for p in phones]
        records = await ivr_records(redis, set(callers))
    finally:
        for p in phones:
            await p.stop()
        ami.close()
        await redis.aclose()
    cpu = Meters.delta(before, after)
    agi = window(lat_after["agi_roundtrip"], lat_before["agi_roundtrip"])
    lag = window(lat_after["loop_lag"], lat_before["loop_lag"])
    failed = sorted(set(callers) - watch.connected)
    return {
        "callers": args.callers, "rate": args.rate, "agents": len(seats), "talk_ms": args.talk_ms,
        "rtp_ports": st.rtp_ports, "wall_s": wall, "loadavg": [load0, load1],
        "failed": len(failed), "failed_callers": failed[:20],
        "joined_queue": len(watch.joined), "reached_seat": len(watch.connected),
        "seat_hung_up": len(watch.completed),
        "sipp_exit": code, "sipp_successful": stats.get("SuccessfulCall", 0), "sipp_failed": stats.get("FailedCall", 0),
        "seat_calls": sum(s.get("SuccessfulCall", 0) for s in seat_stats),
        "seat_failed": sum(s.get("FailedCall", 0) for s in seat_stats),
        "ivr_records": dict(records), "channels_left": up,
        "max_waiting": watch.max_waiting, "max_talking": watch.max_talking,
        "max_holdtime_s": max(watch.holdtimes, default=0),
        "cpu_s": cpu, "idle_cpu_per_s": idle,
        "agi_roundtrips": sum(agi.values()), "agi_p50_ms": 1000 * percentile(agi, 0.5),
        "agi_p99_ms": 1000 * percentile(agi, 0.99),
        "loop_lag_samples": sum(lag.values()), "loop_lag_p99_ms": 1000 * percentile(lag, 0.99),
        "loop_lag_max_ms": 1000 * percentile(lag, 1.0),
        "dns_queries": dns_queries,
        "sipp_output": citizens.output()[-1500:] if code else "",
    }


async def report_progress(watch: CallWatch, citizens: Sipp) -> None:
    while True:
        await asyncio.sleep(5)
        s = citizens.statistics()
        log(f"  {len(watch.joined)} joined the queue, {len(watch.connected)} reached a seat, "
            f"{watch.waiting} waiting, {watch.talking} talking; sipp: {s.get('SuccessfulCall', 0)} done, "
            f"{s.get('FailedCall', 0)} failed; load {os.getloadavg()[0]:.2f}")


def table(r: dict[str, Any]) -> str:
    calls = max(r["callers"], 1)
    per_call = {k: 1000 * v / calls for k, v in r["cpu_s"].items()}
    net = {k: 1000 * (v - r["idle_cpu_per_s"][k] * r["wall_s"]) / calls for k, v in r["cpu_s"].items()}
    rows = [
        ("failed calls (no seat reached)", f"{r['failed']} of {r['callers']}", "0", "met" if r["failed"] == 0 else "MISSED"),
        ("joined the queue / reached a seat / seat hung up",
         f"{r['joined_queue']} / {r['reached_seat']} / {r['seat_hung_up']}", "all", ""),
        ("sipp citizens: successful / failed (exit code)",
         f"{r['sipp_successful']} / {r['sipp_failed']} ({r['sipp_exit']})", f"{r['callers']} / 0", ""),
        ("sipp seats: calls / failed", f"{r['seat_calls']} / {r['seat_failed']}", "", ""),
        ("engine call records", ", ".join(f"{v} {k}" for k, v in sorted(r["ivr_records"].items())) or "none",
         f"{r['callers']} queue general", ""),
        ("DNS queries by Asterisk during the run", str(len(r["dns_queries"])), "0",
         "met" if not r["dns_queries"] else "MISSED"),
        ("Asterisk CPU per call", f"{per_call['asterisk']:.1f} ms (net of idle {net['asterisk']:.1f} ms)", "", "(info)"),
        ("engine CPU per call", f"{per_call['engine']:.1f} ms (net of idle {net['engine']:.1f} ms)", "", "(info)"),
        ("AGI round trip p50 / p99 (engine, not caller-paced)",
         f"{r['agi_p50_ms']:.2f} / {r['agi_p99_ms']:.2f} ms ({r['agi_roundtrips']} commands)", "", "(info)"),
        ("engine event-loop lag p99 (max)",
         f"{r['loop_lag_p99_ms']:.2f} ms ({r['loop_lag_max_ms']:.1f} ms; {r['loop_lag_samples']} samples)", "", "(info)"),
        ("in the queue at most / talking at most / longest wait",
         f"{r['max_waiting']} / {r['max_talking']} / {r['max_holdtime_s']} s", "", ""),
        ("wall time, load average start → end",
         f"{r['wall_s']:.1f} s, {r['loadavg'][0]:.2f} → {r['loadavg'][1]:.2f}", "", ""),
    ]
    width = max(len(m) for m, *_ in rows)
    lines = [f"{'measure':<{width}}  result  (target)", "-" * (width + 40)]
    for measure, result, target, verdict in rows:
        lines.append(f"{measure:<{width}}  {result}" + (f"  (target {target})" if target else "")
                     + (f"  {verdict}" if verdict else ""))
    return "\n".join(lines)


def describe() -> str:
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the bed (outside any event loop: it waits for Asterisk with its own), drive it."""
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        config = bench_config(Path(tmp), args.agents)
        bed = TestBed(config, name=f"bench-load-{os.getpid()}", trace_agi=False, dns="none", rtp_ports=args.rtp_ports)
        with bed.running(keep_logs=REPO / "build" / "bench-load-logs", progress=log):
            result = asyncio.run(drive(bed, args, Path(tmp) / "sipp"))
        result["commit"] = describe()
        return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--callers", type=int, default=200)
    p.add_argument("--rate", type=float, default=20.0, help="new calls per second")
    p.add_argument("--agents", type=int, default=25, help="seats answering (one sipp each)")
    p.add_argument("--talk-ms", type=int, default=2000, help="how long a seat talks before hanging up")
    p.add_argument("--key-ms", type=int, default=1500, help="when the caller presses 1 after the answer")
    p.add_argument("--hold-ms", type=int, default=180_000, help="a caller hangs up after this if nobody did")
    p.add_argument("--idle", type=float, default=3.0, help="seconds of idle CPU measured before the run")
    p.add_argument("--rtp-ports", type=int, default=RTP_PORTS)
    p.add_argument("--json", type=Path, help="also write the results here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    print(f"\nLoad held: {args.callers} callers at {args.rate:g}/s into q-{QUEUE}, {result['agents']} seats, "
          f"no DNS, {result['rtp_ports']} RTP ports (commit {result['commit']})\n")
    print(table(result))
    if result["failed_callers"]:
        print("\nfirst callers that reached no seat:", ", ".join(result["failed_callers"]))
    if result["dns_queries"]:
        print("\nDNS queries:", ", ".join(result["dns_queries"][:20]))
    if result["sipp_output"]:
        print("\ncitizens' sipp said:\n" + result["sipp_output"])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CPU per AMI event: the engine's call follower against a bare panoramisk event loop reading
the same events, and Redis round trips per ticket write (issue 9; see README.md, section 3).

A loopback fake AMI server (ami_feed.py) plays copies of the four recorded calls of
tests/tracking/recorded/ to one client at a time, each client in its own process, which
measures its own CPU from the moment it asks for the stream until it is done with it:

* **bare**: a plain panoramisk ``Manager`` with one ``register_event("*")`` callback that
  counts events; done when it has counted them all.
* **engine**: what ``ivr serve`` runs for this (ivr/service.py): ``AmiClient`` →
  ``CallFollower`` → ``TicketStore`` (journal + group commit, the production window) on a real
  redis-server; done when every call's ticket writes (opened, its queue visits, closed) are in Redis.

Two loads, each in ABBA-interleaved batches: **paced** (calls arriving at a steady rate, each
event written on its own at its recorded time: how Asterisk sends them; carries the target) and
**burst** (the whole stream written at once: a backlog, the worst case).

    .venv/bin/python benchmarks/bench_ami_events.py           # about 3 minutes
    .venv/bin/python benchmarks/bench_ami_events.py --quick   # about 25 s, indicative only
    .venv/bin/python benchmarks/bench_ami_events.py --profile-engine build/follow.prof

The ratios are the result; absolute numbers depend on the machine. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]

from ami_feed import KINDS, PHASES, FakeAmi, Stream, build_stream  # noqa: E402
from procstat import process_cpu_ns  # noqa: E402

from ivr.store import keyspace, redis_client  # noqa: E402
from testbed.calls import until  # noqa: E402
from testbed.ports import PortAllocator  # noqa: E402
from testbed.processes import wait_port  # noqa: E402

TARGET_CPU = 1.5  # engine / bare, CPU per event
TARGET_TRIPS = 1.0  # Redis round trips per ticket write
VARIANTS = ("engine", "bare")
# --breakdown: the engine's layers one by one, between the two
BREAKDOWN = ("engine", "follower", "client", "bare")
LAYERS = {"engine": "the engine (AmiClient -> CallFollower -> TicketStore -> Redis)",
          "follower": "the same without the Redis round trips (journal only)",
          "client": "AmiClient alone (incremental UTF-8, its dispatch), counting",
          "bare": "bare panoramisk Manager, counting"}
STREAMED_PER_CALL = 2  # ticket events: opened, closed (a queue visit's write streams none)
SCRIPT_COMMANDS = ("evalsha", "evalsha_ro", "eval", "eval_ro")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Load:
    """One way of sending the stream, measured in ``batches`` batches per variant."""

    name: str
    calls: int  # per batch
    calls_per_s: float  # arrivals in event time (the recorded calls last 1.5-13.5 s)
    speed: float  # 1: real time, each event written on its own; 0: all at once
    batches: int
    target: bool  # the row the CPU target is judged on

    def stream(self) -> Stream:
        return build_stream(self.calls, self.calls_per_s)


@dataclass
class Batch:
    variant: str
    cpu_ns: int
    sys_ns: int  # of which in the kernel (rusage: 1 ms ticks, or better)
    events: int
    wall_s: float
    trips: int = 0  # engine: Redis commands sent by the engine process (client side)
    commits: int = 0  # engine: group commits (TicketStore batches) seen by the engine
    script_calls: int = 0  # engine: EVALSHA/EVAL calls Redis counted (server side)
    writes: int = 0  # engine: ticket writes that reached Redis
    redis_cpu_ns: int = 0  # engine: redis-server's CPU over the batch (not in the ratio)
    tickets: "TicketCheck | None" = None

    @property
    def us_per_event(self) -> float:
        return self.cpu_ns / 1000 / max(self.events, 1)


@dataclass
class TicketCheck:
    """What Redis holds after an engine batch, against what the stream's calls must leave."""

    calls: int
    complete: int = 0  # tickets with all their phases and the disposition their call must have
    by_disposition: dict[str, int] = field(default_factory=dict)
    stream_entries: int = 0  # entries in the ticket event stream (two per call)
    wrong: list[str] = field(default_factory=list)  # linkedid: what is off (first few)
    spool_left: int = 0  # journal files not retired (everything should be in Redis)

    @property
    def ok(self) -> bool:
        return (self.complete == self.calls and self.stream_entries == STREAMED_PER_CALL * self.calls
                and not self.wrong and not self.spool_left)


# --- the benchmark's own Redis -------------------------------------------------------------


class BenchRedis:
    """A redis-server of the benchmark's own, on a free port below the ephemeral range."""

    def __init__(self, workdir: Path, port: int):
        self.port = port
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir)], stdout=subprocess.DEVNULL)
        if not wait_port(self.port, 10, self.proc):
            raise RuntimeError("redis-server did not start")
        self.client = redis_client(self.url)

    async def script_calls(self) -> int:
        stats = await self.client.info("commandstats")
        return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in SCRIPT_COMMANDS)

    async def check(self, stream: Stream, spool: Path) -> TicketCheck:
        check = TicketCheck(calls=len(stream.calls))
        async with self.client.pipeline(transaction=False) as pipe:
            for call in stream.calls:
                pipe.hgetall(keyspace.ticket(call.linkedid))
            stored = await pipe.execute()
        for call, fields in zip(stream.calls, stored):
            doc = json.loads(fields.get("doc", "{}"))
            disposition = doc.get("disposition", "")
            check.by_disposition[disposition] = check.by_disposition.get(disposition, 0) + 1
            phases = {k.removeprefix("phase:") for k in fields if k.startswith("phase:")}
            if phases == PHASES[call.kind] and disposition == KINDS[call.kind] and fields.get("number"):
                check.complete += 1
            elif len(check.wrong) < 5:
                check.wrong.append(f"{call.linkedid} ({call.kind}): phases {sorted(phases)}, "
                                   f"disposition {disposition or 'none'}")
        check.stream_entries = await self.client.xlen(keyspace.TICKET_EVENTS)
        check.spool_left = sum(1 for p in spool.glob("tickets-*") if p.stat().st_size) if spool.exists() else 0
        return check

    async def close(self) -> None:
        await self.client.aclose()
        self.proc.kill()
        self.proc.wait()


# --- the driver ----------------------------------------------------------------------------


class Bench:
    def __init__(self, workdir: Path, config: Path):
        self.workdir, self.config = workdir, config
        self.ami = FakeAmi()
        ports = PortAllocator()
        self.ami_port = ports.one()
        self.redis = BenchRedis(workdir, ports.one())
        self.event_batch_ms: int | None = None  # --event-batch-ms: the engine's ami.event_batch_ms instead of the config's

    async def __aenter__(self) -> "Bench":
        await self.ami.start(self.ami_port)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.ami.close()
        await self.redis.close()

    async def batch(self, variant: str, load: Load, stream: Stream, profile: Path | None = None) -> Batch:
        self.ami.stream, self.ami.speed = stream, load.speed
        spool = self.workdir / "spool"
        if variant == "engine":
            shutil.rmtree(spool, ignore_errors=True)
            await self.redis.client.flushall()
            script_calls = await self.redis.script_calls()
            redis_cpu = process_cpu_ns(self.redis.proc.pid)
        argv = [sys.executable, str(Path(__file__).resolve()), "--child", variant, "--ami-port", str(self.ami_port),
                "--redis", self.redis.url, "--spool", str(spool), "--config", str(self.config),
                "--calls", str(load.calls), "--calls-per-s", str(load.calls_per_s),
                "--timeout", str(60 + (stream.span / load.speed if load.speed else 0))]
        if self.event_batch_ms is not None:
            argv += ["--event-batch-ms", str(self.event_batch_ms)]
        if profile:
            argv += ["--profile", str(profile)]
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"{variant} process failed (exit {proc.returncode}); see its output above")
        result = json.loads(out.decode().strip().splitlines()[-1])
        batch = Batch(variant, result["cpu_ns"], result["sys_ns"], result["events"], result["wall_s"],
                      result.get("trips", 0), result.get("commits", 0), writes=result.get("writes", 0))
        if variant == "engine":
            batch.redis_cpu_ns = process_cpu_ns(self.redis.proc.pid) - redis_cpu
            batch.script_calls = await self.redis.script_calls() - script_calls
            batch.tickets = await self.redis.check(stream, spool)
        return batch


def interleaved(variants: tuple[str, ...], batches: int) -> list[str]:
    """engine, bare, bare, engine, ... (ABCD DCBA with --breakdown): each variant's batches sit
    symmetrically in time, which cancels a linear drift in machine load."""
    order: list[str] = []
    for i in range(batches):
        order += variants if i % 2 == 0 else variants[::-1]
    return order


async def measure(bench: Bench, load: Load, variants: tuple[str, ...] = VARIANTS) -> dict[str, list[Batch]]:
    stream = load.stream()
    how = "all at once" if not load.speed else f"each event on its own, {load.speed:g}x real time"
    arrivals = load.calls / load.calls_per_s
    log(f"{load.name}: {load.calls} calls = {len(stream.events)} events per batch; calls arrive at "
        f"{load.calls_per_s:g}/s for {arrivals:.1f} s, the last ends at {stream.span:.1f} s of event time; {how}")
    out: dict[str, list[Batch]] = {v: [] for v in variants}
    order = interleaved(variants, load.batches)
    for i, variant in enumerate(order, 1):
        b = await bench.batch(variant, load, stream)
        out[variant].append(b)
        extra = ""
        if b.tickets is not None:
            extra = (f", {b.trips} Redis round trips ({b.script_calls} EVALSHA) for {b.writes} ticket writes, "
                     f"tickets {'OK' if b.tickets.ok else 'FAIL'}")
        log(f"  batch {i:2d}/{len(order)} {variant:8s} {b.events} events in {b.wall_s:.2f} s: "
            f"{b.us_per_event:.1f} µs CPU/event ({b.sys_ns / max(b.cpu_ns, 1):.0%} system){extra}, "
            f"load {os.getloadavg()[0]:.2f}")
        if b.events != len(stream.events):
            log(f"  WARNING: {variant} saw {b.events} of {len(stream.events)} events")
    return out


# --- the two clients (each run as its own process: --child) ---------------------------------


def child_main(args: argparse.Namespace) -> int:
    """Run one variant against the fake AMI; print its measurement as one JSON line."""
    stream = build_stream(int(args.calls), float(args.calls_per_s))  # the parent's, rebuilt
    clients = {"bare": bare_client, "client": ami_client, "engine": engine_client,
               "follower": lambda a, s: engine_client(a, s, to_redis=False)}
    result = asyncio.run(clients[args.child](args, stream))
    print(json.dumps(result), flush=True)
    return 0


class Window:
    """This process's CPU (user + system, all threads: the kernel's per-process clock) from
    asking for the stream until done with it; optionally under cProfile."""

    def __init__(self, profile: str | None):
        self.profile = profile
        self._profiler: Any = None

    def start(self) -> None:
        if self.profile:
            import cProfile

            self._profiler = cProfile.Profile()
            self._profiler.enable()
        self.sys0 = resource.getrusage(resource.RUSAGE_SELF).ru_stime
        self.cpu0, self.t0 = time.process_time_ns(), time.perf_counter()

    def stop(self) -> dict[str, Any]:
        cpu, wall = time.process_time_ns() - self.cpu0, time.perf_counter() - self.t0
        system = resource.getrusage(resource.RUSAGE_SELF).ru_stime - self.sys0
        if self._profiler is not None:
            self._profiler.disable()
            self._profiler.dump_stats(self.profile)
        return {"cpu_ns": cpu, "sys_ns": int(system * 1e9), "wall_s": wall}


async def bare_client(args: argparse.Namespace, stream: Stream) -> dict[str, Any]:
    """Variant bare: panoramisk's Manager and one callback that counts events."""
    from panoramisk import Manager

    loop = asyncio.get_running_loop()
    logged_in, done = asyncio.Event(), asyncio.Event()
    seen, target = 0, -1

    def count(_manager: Any, _event: Any) -> None:
        nonlocal seen
        seen += 1
        if seen == target:
            done.set()

    manager = Manager(host="127.0.0.1", port=int(args.ami_port), username="bench", secret="bench", events="on",
                      ping_delay=30, loop=loop, on_login=lambda _m: logged_in.set())
    manager.register_event("*", count)
    await manager.connect()
    await asyncio.wait_for(logged_in.wait(), 10)
    await until(lambda: seen >= 1, 10, 0.005)  # FullyBooted (it came with the login response)
    first = seen
    target = first + len(stream.events)
    window = Window(args.profile)
    window.start()
    await manager.send_action({"Action": "BenchStream"})
    await asyncio.wait_for(done.wait(), float(args.timeout))
    result = window.stop()
    manager.close()
    return result | {"events": seen - first}


async def ami_client(args: argparse.Namespace, stream: Stream) -> dict[str, Any]:
    """Breakdown variant client: the engine's AmiClient alone, with one callback that counts."""
    from ivr.ami.client import AmiClient

    done = asyncio.Event()
    seen, target = 0, -1

    def count(_event: Any) -> None:
        nonlocal seen
        seen += 1
        if seen == target:
            done.set()

    ami = AmiClient("127.0.0.1", int(args.ami_port), "bench", "bench", events="call,agent,user,system")
    ami.on("*", count)
    booted = ami.wait_for("FullyBooted")
    await ami.connect()
    await asyncio.wait_for(booted, 10)
    first = seen
    target = first + len(stream.events)
    window = Window(args.profile)
    window.start()
    await ami.action({"Action": "BenchStream"})
    await asyncio.wait_for(done.wait(), float(args.timeout))
    result = window.stop()
    ami.close()
    return result | {"events": seen - first}


async def engine_client(args: argparse.Namespace, stream: Stream, to_redis: bool = True) -> dict[str, Any]:
    """Variant engine: the AMI client, call follower and ticket store as ivr/service.py wires them.
    Breakdown variant follower (``to_redis`` False): the same, but a group commit is not sent
    to Redis (the journal is still written and retired)."""
    from redis.asyncio.connection import AbstractConnection

    from ivr.ami.client import AmiClient
    from ivr.config import load_config
    from ivr.core.calendar import load_calendar
    from ivr.follow import CallFollower
    from tickets.store import SAVE_TICKETS, TicketStore
    from ivr.store import CallStore

    trips = 0
    send = AbstractConnection.send_packed_command

    async def counted(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        nonlocal trips
        trips += 1  # one command or one pipeline: one round trip
        await send(self, command, check_health)

    AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]

    class CountedTicketStore(TicketStore):
        """Says when the expected ticket writes are all in Redis: the end of the measurement."""

        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.expected, self.in_redis, self.commits = -1, 0, 0
            self.all_in = asyncio.Event()

        async def _write(self, batch: list[tuple[str, str]]) -> int | None:
            written = await super()._write(batch) if to_redis else len(batch)
            if written is not None:
                self.commits += 1
                self.in_redis += len(batch)
                if self.in_redis >= self.expected >= 0:
                    self.all_in.set()
            return written

    spool = Path(args.spool)
    # INFO to a file, as `ivr serve` logs (ivr/commands/serve.py; journald takes its stderr):
    # one line per closed ticket is part of what a call costs
    logging.basicConfig(level=logging.INFO, filename=str(spool.parent / "engine.log"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    environ = {"IVR_REDIS_URL": args.redis, "IVR_TRACKING_CDR_FILE": str(spool / "Master.csv")}
    if args.event_batch_ms is not None:
        environ["IVR_AMI_EVENT_BATCH_MS"] = str(args.event_batch_ms)
    settings = load_config(args.config, environ=environ).settings
    flush_delay = settings.redis.record_flush_ms / 1000
    tickets = CountedTicketStore(args.redis, spool, name="bench", retention_days=settings.tickets.retention_days,
                                 flush_delay=flush_delay, caller_key=secrets.token_bytes(32))  # as ivr/service.py
    records = CallStore(args.redis, spool, name="bench", flush_delay=flush_delay,
                        retention_days=settings.tickets.retention_days)
    calendar = load_calendar()
    asterisk = f"127.0.0.1:{args.ami_port}"
    follower = CallFollower(settings, tickets, lambda: calendar, asterisk=asterisk, call_record=records.get_call)
    ami = AmiClient("127.0.0.1", int(args.ami_port), "bench", "bench", events="call,agent,user,system",
                    event_batch=settings.ami.event_batch_ms / 1000)
    ami.on("*", follower.on_event)
    ami.on_login(follower.on_login)
    ami.on_disconnect(follower.on_disconnect)
    tasks = [asyncio.create_task(t) for t in (follower.run(), tickets.run_spool_flusher(), records.run_spool_flusher())]
    booted = ami.wait_for("FullyBooted")
    await ami.connect()
    await asyncio.wait_for(booted, 10)
    await until(lambda: tickets.redis.exists(keyspace.cdr_progress(asterisk)), 10, 0.005)  # reconciled
    await tickets.redis.script_load(SAVE_TICKETS)  # once per engine's life: not in every window
    first, trips0 = follower.events_seen, trips
    tickets.expected = sum(len(PHASES[call.kind]) for call in stream.calls)
    window = Window(args.profile)
    window.start()
    for call in stream.calls:  # the FastAGI side's IVR records (ahead of the calls: kept until they come)
        follower.on_ivr_record(call.record)
    await ami.action({"Action": "BenchStream"})
    await asyncio.wait_for(tickets.all_in.wait(), float(args.timeout))
    await tickets.drain()  # the journal retired: all that a ticket costs
    result = window.stop()
    result |= {"events": follower.events_seen - first, "trips": trips - trips0, "commits": tickets.commits,
               "writes": tickets.in_redis}
    ami.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await tickets.close()
    await records.close()
    return result


# --- the report ----------------------------------------------------------------------------


def per_event(batches: list[Batch]) -> float:
    return sum(b.cpu_ns for b in batches) / 1000 / max(sum(b.events for b in batches), 1)


def verdict(ratio: float, target: float) -> str:
    return "met" if ratio <= target else "MISSED"


def report_load(load: Load, res: dict[str, list[Batch]], rows: list[tuple[str, ...]]) -> dict[str, Any]:
    eng, bare = res["engine"], res["bare"]
    e, b = per_event(eng), per_event(bare)
    ratio = e / b
    groups = [per_event(eng[2 * g:2 * g + 2]) / per_event(bare[2 * g:2 * g + 2])
              for g in range(min(len(eng), len(bare)) // 2)]
    writes = sum(x.writes for x in eng)
    trips, scripts, commits = sum(x.trips for x in eng), sum(x.script_calls for x in eng), sum(x.commits for x in eng)
    checks = [x.tickets for x in eng if x.tickets is not None]
    ok = all(c.ok for c in checks)
    calls = sum(c.calls for c in checks)
    complete = sum(c.complete for c in checks)
    print(f"\n{load.name}: {load.calls} calls, {eng[0].events} events per batch; {len(eng)} batches per variant")
    print(f"   {'':28s}{'engine':>12s}{'bare':>12s}{'ratio':>10s}")
    print(f"   {'CPU µs/event':28s}{e:12.1f}{b:12.1f}{ratio:10.2f}")
    print(f"   {'engine - bare µs/event':28s}{e - b:12.1f}")
    spread = lambda xs: f"{min(x.us_per_event for x in xs):.1f}..{max(x.us_per_event for x in xs):.1f}"  # noqa: E731
    print(f"   {'batch min..max µs/event':28s}{spread(eng):>12s}{spread(bare):>12s}")
    print(f"   {'ratio per ABBA group':28s}" + " ".join(f"{g:.2f}" for g in groups))
    layers = [v for v in BREAKDOWN if v in res and v not in VARIANTS]
    if layers:
        print("   layers, CPU µs/event (over the layer below):")
        below = b
        for v in ("bare", *reversed(layers), "engine"):
            us = per_event(res[v])
            print(f"      {us:8.1f} {f'(+{us - below:.1f})' if v != 'bare' else '':>9s}  {v}: {LAYERS[v]}")
            below = us
    print(f"   {'wall s per batch (median)':28s}{statistics.median(x.wall_s for x in eng):12.2f}"
          f"{statistics.median(x.wall_s for x in bare):12.2f}")
    print(f"   Redis: {trips} round trips from the engine for {writes} ticket writes = "
          f"{trips / max(writes, 1):.3f} per write; {scripts} EVALSHA counted by Redis, "
          f"{commits} group commits ({writes / max(commits, 1):.1f} writes each); redis-server "
          f"{sum(x.redis_cpu_ns for x in eng) / 1000 / max(writes, 1):.1f} µs CPU per write (info)")
    print(f"   tickets in Redis: {complete} of {calls} calls complete "
          f"({', '.join(f'{k} {v}' for k, v in sorted(_sum_dispositions(checks).items()))}) "
          f"{'OK' if ok else 'FAIL'}")
    for c in checks:
        for w in c.wrong:
            print(f"      FAIL {w}")
        if c.spool_left:
            print(f"      FAIL {c.spool_left} journal file(s) not retired")
    if load.target:
        rows.append((f"CPU per AMI event, {load.name}", f"{e:.1f} µs", f"{b:.1f} µs", f"{ratio:.2f}x",
                     f"<= {TARGET_CPU}x", verdict(ratio, TARGET_CPU)))
    else:
        rows.append((f"CPU per AMI event, {load.name}", f"{e:.1f} µs", f"{b:.1f} µs", f"{ratio:.2f}x", "(worst)",
                     f"{'within' if ratio <= TARGET_CPU else 'above'} {TARGET_CPU}x"))
    per_write = trips / max(writes, 1)
    rows.append((f"Redis round trips per ticket write, {load.name}", f"{per_write:.3f}", "", "",
                 f"<= {TARGET_TRIPS:g}", verdict(per_write, TARGET_TRIPS)))
    rows.append((f"tickets in Redis = calls, {load.name}", f"{complete}", f"{calls}", "", "all",
                 "OK" if ok else "FAIL"))
    return {"calls_per_batch": load.calls, "events_per_batch": eng[0].events, "engine_us_per_event": e,
            "bare_us_per_event": b, "ratio": ratio, "ratio_per_group": groups,
            "us_per_event": {v: per_event(xs) for v, xs in res.items()},
            "batches": {v: [vars(x) | {"tickets": vars(x.tickets) if x.tickets else None} for x in xs]
                        for v, xs in res.items()},
            "redis_round_trips": trips, "evalsha": scripts, "group_commits": commits, "ticket_writes": writes,
            "round_trips_per_write": per_write,
            "redis_cpu_us_per_write": sum(x.redis_cpu_ns for x in eng) / 1000 / max(writes, 1),
            "tickets_complete": complete, "calls": calls, "tickets_ok": ok}


def _sum_dispositions(checks: list[TicketCheck]) -> dict[str, int]:
    total: dict[str, int] = {}
    for c in checks:
        for k, v in c.by_disposition.items():
            total[k] = total.get(k, 0) + v
    return total


def code_version() -> str:
    """The commit measured (``-dirty``: with uncommitted changes), for the README's tables."""
    try:
        out = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def report(results: list[tuple[Load, dict[str, list[Batch]]]], quick: bool, code: str) -> dict[str, Any]:
    now = code_version()
    print(f"\nAMI events: engine (AmiClient -> CallFollower -> TicketStore -> Redis) vs bare panoramisk"
          f"{'  (--quick: indicative only)' if quick else ''}; code {code}")
    if now != code:
        print(f"   WARNING: the code changed during the run ({code} -> {now}): batches mix both")
    rows: list[tuple[str, ...]] = []
    out = {load.name: report_load(load, res, rows) for load, res in results}
    print("\nTargets (issue 9)")
    print(f"   {'measure':44s}{'engine':>12s}{'bare':>10s}{'ratio':>8s}{'target':>9s}  result")
    for r in rows:
        print(f"   {r[0]:44s}{r[1]:>12s}{r[2]:>10s}{r[3]:>8s}{r[4]:>9s}  {r[5]}")
    columns = ("measure", "engine", "bare", "ratio", "target", "result")
    return {"code": code if now == code else f"{code} -> {now}", "loads": out, "targets": [dict(zip(columns, r)) for r in rows]}


def loads(args: argparse.Namespace) -> list[Load]:
    return [
        Load("paced", args.calls, args.calls_per_s, args.speed, args.batches, target=True),
        Load("burst", args.burst_calls, args.calls_per_s, 0, args.batches, target=False),
    ]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-ami-"))
    code = code_version()  # every batch is a new process: it runs the code of its moment
    try:
        async with Bench(workdir, args.config) as bench:
            bench.event_batch_ms = args.event_batch_ms
            chosen = [load for load in loads(args) if args.only in (None, load.name)]
            if args.warmup:
                warm = Load("warm-up", 8, args.calls_per_s, 0, 1, target=False)
                for variant in VARIANTS:
                    b = await bench.batch(variant, warm, warm.stream())
                    if b.tickets is not None and not b.tickets.ok:
                        raise SystemExit(f"warm-up: the engine's tickets are wrong: {b.tickets}")
            variants = BREAKDOWN if args.breakdown else VARIANTS
            results = [(load, await measure(bench, load, variants)) for load in chosen]
            out = report(results, args.quick, code)
            if args.profile_engine:
                load = chosen[0]
                log(f"profiling one {load.name} engine batch (not measured) into {args.profile_engine}")
                await bench.batch("engine", load, load.stream(), profile=args.profile_engine.resolve())
            return out
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small batches, paced at 4x (a smoke run, ~25 s)")
    p.add_argument("--calls", type=int, help="paced: calls per batch (default 120, quick 40)")
    p.add_argument("--calls-per-s", type=float, default=24.0,
                   help="calls arriving per second of event time (default 24)")
    p.add_argument("--speed", type=float, help="paced: replay speed, 1 = real time (default 1, quick 4)")
    p.add_argument("--burst-calls", type=int, help="burst: calls per batch (default 800, quick 200)")
    p.add_argument("--batches", type=int, help="batches per variant per load, ABBA order (default 4, quick 2)")
    p.add_argument("--only", choices=("paced", "burst"), help="measure one load")
    p.add_argument("--no-warmup", dest="warmup", action="store_false", help="skip the unmeasured warm-up batches")
    p.add_argument("--config", type=Path, default=REPO / "config", help="config dir (default: the repo's)")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--profile-engine", type=Path, metavar="PROF",
                   help="after the measurement, run one engine batch under cProfile (window only) into PROF")
    p.add_argument("--breakdown", action="store_true",
                   help="also measure the engine's layers (AmiClient alone; no Redis round trips) between the two")
    p.add_argument("--event-batch-ms", type=int, metavar="MS",
                   help="the engine's ami.event_batch_ms instead of the config's (0: no read batching)")
    p.add_argument("--child", choices=BREAKDOWN, help=argparse.SUPPRESS)
    for hidden in ("--ami-port", "--redis", "--spool", "--timeout", "--profile"):
        p.add_argument(hidden, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.calls = args.calls or (40 if args.quick else 120)
    args.burst_calls = args.burst_calls or (200 if args.quick else 800)
    args.batches = args.batches or (2 if args.quick else 4)
    args.speed = args.speed or (4.0 if args.quick else 1.0)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    started = time.monotonic()
    result = asyncio.run(run(args))
    result["seconds"] = round(time.monotonic() - started, 1)
    print(f"\n(total {result['seconds']} s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    if args.profile_engine:
        import pstats

        print(f"\nengine profile ({args.profile_engine}), top 30 by own time:")
        pstats.Stats(str(args.profile_engine)).sort_stats("tottime").print_stats(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What recording costs (issue 21; docs/recording.md): the same calls unrecorded, then recorded,
on one bed in one run, side by side.

Citizens dial 12345, press 1 and speak (a 440 Hz tone, RTP from sipp); seats answer, speak
(1000 Hz) and hang up after ``--talk-ms``. Phases of ``--callers`` calls: with ``recording.default:
never``, and with ``answer`` for each recorder of ``--recorders`` (``recording.recorder``: ivr, our
module; mixmonitor, Asterisk's; the dialplan reloaded in between, as `ivr asterisk-conf apply`
does), ``--rounds`` of each in ABBA order (plain, ivr, mixmonitor, mixmonitor, ivr, plain: this
machine's load drifts more between minutes than recording costs), side by side. CPU is Asterisk's
and the engine's process groups plus the children each waited for (Asterisk's ``mv`` when a
MixMonitor recording ends), from the first call: Asterisk's until its calls are
done (no channel left, every recording finished), the engine's until every recording is on its
ticket; the engine's encoder thread is shown apart. Prints CPU per recorded call ÷ CPU per
unrecorded call (target ≤ 1.15×) and the disk a kept hour of talk takes; ``--threads`` adds
Asterisk's CPU per kind of thread (``core show threads``), to see where a recording's cost lies.
The calls are realistic ones: callers wait for one of the few seats, and stay for the survey
after the seat hangs up; each phase's mean seconds in the queue, talking and after the seat are
printed (from the tickets), since a recording's cost depends on how long its hook is attached.

    .venv/bin/python benchmarks/bench_recording.py                # 2 × (40 + 2 × 40) calls, about 6 minutes
    .venv/bin/python benchmarks/bench_recording.py --callers 10   # a smoke run
    .venv/bin/python benchmarks/bench_recording.py --recorders ivr

Nothing here asserts: read the table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]

from bench_load import QUEUE, bench_config, channels_up, log  # noqa: E402
from procstat import Meters, _comm, _stat_fields, group_members, thread_cpu_ns  # noqa: E402

from ivr.ami.client import AmiClient  # noqa: E402
from queues.model import serving  # noqa: E402
from recording.store import ENCODER_THREAD  # noqa: E402
from testbed.bed import TestBed  # noqa: E402
from testbed.ports import PortAllocator  # noqa: E402
from testbed.sipp import Sipp, agent_phone, citizen_calls, keys  # noqa: E402
from testbed.sipp.peers import agent_scenario  # noqa: E402
from testbed.sipp.tones import tone_pcap  # noqa: E402
from tickets.store import TicketStore  # noqa: E402

_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def waited_children_s(pid: int) -> float:
    """CPU of the children ``pid`` has waited for (cutime + cstime): Asterisk's mv."""
    fields = _stat_fields(pid)
    return (int(fields[13]) + int(fields[14])) * _TICK_S if fields else 0.0


def encoder_s(engine_pid: int) -> float:
    """CPU of the engine's encoder thread (recording/store.py names it)."""
    return sum(sum(thread_cpu_ns(pid, ENCODER_THREAD).values()) for pid in group_members(engine_pid)) / 1e9


def cpu(meters: Meters, pids: dict[str, int]) -> dict[str, float]:
    """Seconds of CPU: each group's own (the engine's without its encoder thread), the encoder, and
    what each leader's children used (Asterisk's ``mv``)."""
    now = meters.sample()
    out = {**{k: now[k] / 1e9 for k in pids}, **{f"{k} children": waited_children_s(pid) for k, pid in pids.items()}}
    out["encoder"] = encoder_s(pids["engine"])
    out["engine"] -= out["encoder"]
    return out


THREAD_LINE = re.compile(r"^0x[0-9a-f]+ (\d+) (\S+) started at \[\s*\d+\] \S+ (\S+)\(\)", re.M)


class AsteriskThreads:
    """Where Asterisk's CPU goes in a phase: each thread's CPU (``/proc/<pid>/task``, every
    ``every`` s) by what started it (``core show threads``: ``mixmonitor_thread``, a channel's
    ``pbx_thread``, a bridged channel's thread...). A thread that ends loses at most ``every`` s
    of its CPU; what no named thread accounts for is in "unnamed"."""

    def __init__(self, ami: AmiClient, pid: int, every: float = 0.5):
        self.ami, self.pid, self.every = ami, pid, every
        self.base = thread_cpu_ns(pid)
        self.last: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self.bridges: dict[str, int] = {}  # technology -> bridges seen using it, summed over samples
        self.listing = ""

    async def run(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(self.every)

    async def sample(self) -> None:
        now = thread_cpu_ns(self.pid)
        if set(now) - set(self.names):
            listing = await self.ami.command("core show threads")
            self.listing = self.listing or listing  # the first, printed for what the names did not match
            for m in THREAD_LINE.finditer(listing):
                self.names[int(m[1])] = f"{m[2]} ({m[3]})"
            for tid in set(now) - set(self.names):  # not Asterisk's (pjproject's own): by /proc name
                self.names[tid] = f"unlisted {_comm(self.pid, tid)}"
        self.last.update(now)
        for line in (await self.ami.command("bridge show all")).splitlines()[1:]:
            cols = line.split()  # Bridge-ID [Name] Chans Type Technology Duration
            chans = next((i for i, c in enumerate(cols[1:3], 1) if c.isdigit()), None)
            if chans is not None and len(cols) > chans + 2:
                self.bridges[cols[chans + 2]] = self.bridges.get(cols[chans + 2], 0) + 1

    def by_kind(self) -> dict[str, float]:
        """Seconds of CPU in the phase per kind of thread."""
        out: dict[str, float] = {}
        for tid, ns in self.last.items():
            kind = self.names.get(tid, "unnamed")
            out[kind] = out.get(kind, 0.0) + (ns - self.base.get(tid, 0)) / 1e9
        return out


RECORDERS = ("ivr", "mixmonitor")  # recording.recorder's values (recording/rules.py)


def set_policy(config: Path, mode: str, recorder: str = "ivr") -> None:
    path = config / "recording.yaml"
    text = re.sub(r"^  default: \w+\n", f"  default: {mode}\n", path.read_text(encoding="utf-8"), flags=re.M)
    text = re.sub(r"^  recorder: \w+\n", f"  recorder: {recorder}\n", text, flags=re.M)
    if f"  recorder: {recorder}\n" not in text:
        text = text.replace(f"  default: {mode}\n", f"  default: {mode}\n  recorder: {recorder}\n")
    path.write_text(text, encoding="utf-8")


def hold_ms(args: argparse.Namespace) -> int:
    """Long enough for the last caller to wait for a seat, talk, and be hung up on: every call of
    both phases has the same talk."""
    return int(args.talk_ms + 20_000 + (args.callers / args.agents + 1) * (args.talk_ms + 5000))


async def phase(bed: TestBed, args: argparse.Namespace, workdir: Path, first: int, recorded: bool) -> dict[str, Any]:
    """One phase's calls. Asterisk's CPU is counted until its part is done (no channel left, every
    recording finished: its ``mv`` ran), the engine's until every recording is on its ticket."""
    st = bed.state
    assert st
    ports = PortAllocator()
    pids = {"asterisk": st.asterisk_pid, "engine": st.engine_pid}
    meters = Meters(pids)
    incoming = Path(st.recording_dir) / "incoming"
    callers = [str(first + i) for i in range(args.callers)]
    ami = AmiClient("127.0.0.1", st.ami_port, "testbed", st.testbed_ami_secret, events="off")
    await ami.connect()
    threads = AsteriskThreads(ami, st.asterisk_pid)
    sampler = asyncio.create_task(threads.run()) if args.threads else None
    try:
        before, t0 = cpu(meters, pids), time.monotonic()
        citizens: Sipp = await citizen_calls(
            workdir, sip_port=st.sip_port, local_port=st.pstn_port, media_port=ports.block(4), dialed="12345",
            callers=callers, rate=args.rate, presses=keys("1", first_ms=1500), hold_ms=hold_ms(args),
            name=f"citizens-{first}", audio=workdir / "citizen.pcap")
        await citizens.wait(hold_ms(args) / 1000 + 60 + args.callers / args.rate)
        while await channels_up(ami) or list(incoming.glob("*.raw")):
            await asyncio.sleep(0.2)
        if sampler:
            sampler.cancel()
            await threads.sample()
        calls_done, calls_wall = cpu(meters, pids), time.monotonic() - t0
        while recorded and list(incoming.glob("*.done")):
            await asyncio.sleep(0.2)  # every recording compressed and on its ticket
        after, wall = cpu(meters, pids), time.monotonic() - t0
    finally:
        ami.close()
    stats = citizens.statistics()
    end = {k: calls_done[k] if k.startswith("asterisk") else after[k] for k in after}
    return {"cpu_s": {k: end[k] - before[k] for k in after}, "wall_s": (calls_wall, wall),
            "threads": threads.by_kind(), "bridges": threads.bridges, "listing": threads.listing, "ok": stats.get("SuccessfulCall", 0),
            "failed": stats.get("FailedCall", 0)}


async def drive(bed: TestBed, config: Path, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    st = bed.state
    assert st
    workdir.mkdir(parents=True, exist_ok=True)
    tone_pcap(workdir / "citizen.pcap", 440, args.talk_ms / 1000 + 15)
    seat_tone = tone_pcap(workdir / "seat.pcap", 1000, args.talk_ms / 1000 + 1)
    ports = PortAllocator()
    phones = [await agent_phone(workdir, port=st.agent_ports[name], media_port=ports.block(4), name=f"seat-{name}",
                                scenario=agent_scenario(200, args.talk_ms, seat_tone))
              for name in serving(QUEUE, bed.settings.agents, bed.settings.queues)]
    firsts = {"plain": 13600000001, **{rec: 13610000001 + 10**7 * i for i, rec in enumerate(args.recorders)}}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in firsts}
    try:
        current = "plain"
        for name in sequence(list(firsts), args.rounds):
            if name != current:  # the dialplan reloaded, as `ivr asterisk-conf apply` does; not measured
                if name == "plain":
                    set_policy(config, "never")
                else:
                    set_policy(config, "answer", name)
                await bed.apply_config()
                current = name
            first = firsts[name] + 100_000 * len(runs[name])  # the same 4-digit prefix: call_shape finds them
            runs[name].append(await phase(bed, args, workdir, first, recorded=name != "plain"))
    finally:
        for p in phones:
            await p.stop()
    phases = {name: merged(r) for name, r in runs.items()}
    files = len(list(Path(st.recording_dir).rglob("*.opus")))
    store = TicketStore(st.redis_url, workdir / "spool", "bench", retention_days=1)
    try:
        deadline = time.monotonic() + 20
        while True:  # the last tickets' writes are in the engine's group-commit window a moment longer
            all_tickets = await store.received_between(0)
            recordings = [r for t in all_tickets for r in t.recordings]
            if len(recordings) >= files or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    finally:
        await store.close()
    for name, ph in phases.items():
        ph["shape"] = call_shape([t for t in all_tickets if t.caller.startswith(str(firsts[name])[:4])])
    return {"phases": phases, "files": len(recordings), "bytes": sum(r.size for r in recordings),
            "talk_s": sum(r.seconds for r in recordings)}


def sequence(kinds: list[str], rounds: int) -> list[str]:
    """The phases in ABBA order (plain, ivr, mixmonitor, mixmonitor, ivr, plain, ...): a load that
    drifts through the run weighs on every kind alike."""
    return [k for r in range(rounds) for k in (kinds if r % 2 == 0 else kinds[::-1])]


def merged(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One kind's phases summed: CPU, wall time, threads, bridges and calls."""
    def total(key: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for r in runs:
            for k, v in r[key].items():
                out[k] = out.get(k, 0) + v
        return out
    return {"cpu_s": total("cpu_s"), "threads": total("threads"), "bridges": total("bridges"),
            "wall_s": tuple(sum(r["wall_s"][i] for r in runs) for i in (0, 1)),
            "listing": runs[-1]["listing"], "ok": sum(r["ok"] for r in runs), "failed": sum(r["failed"] for r in runs)}


def call_shape(tickets: list[Any]) -> tuple[float, float, float]:
    """Mean seconds per answered call of a phase: in the queue, talking, and on the line after the
    seat hung up (the survey): what a recording from answer hooks, and what it no longer does."""
    answered = [t for t in tickets if t.answered and t.ended and t.talk_seconds is not None]
    if not answered:
        return (float("nan"),) * 3
    wait = sum(sum(v.wait_seconds or 0.0 for v in t.queue_visits) for t in answered) / len(answered)
    talk = sum(t.talk_seconds for t in answered) / len(answered)
    span = sum((datetime.fromisoformat(t.ended) - datetime.fromisoformat(t.answered)).total_seconds()
               for t in answered) / len(answered)
    return wait, talk, span - talk


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--callers", type=int, default=40, help="calls per phase")
    p.add_argument("--rounds", type=int, default=2, help="phases of each kind, in ABBA order (2: plain, ivr, "
                   "mixmonitor, mixmonitor, ivr, plain)")
    p.add_argument("--agents", type=int, default=10)
    p.add_argument("--rate", type=float, default=4.0)
    p.add_argument("--talk-ms", type=int, default=10_000)
    p.add_argument("--threads", action="store_true", help="also Asterisk's CPU per kind of thread (core show threads)")
    p.add_argument("--recorders", type=lambda v: v.split(","), default=list(RECORDERS),
                   help=f"recorded phases, in order (comma-separated of {', '.join(RECORDERS)})")
    args = p.parse_args(argv)
    if not args.recorders or set(args.recorders) - set(RECORDERS):
        p.error(f"--recorders: one or more of {', '.join(RECORDERS)}")
    with tempfile.TemporaryDirectory(prefix="bench-recording-") as tmp:
        config = bench_config(Path(tmp), args.agents)
        set_policy(config, "never")
        bed = TestBed(config, name=f"bench-recording-{os.getpid()}", trace_agi=False, rtp_ports=4 * args.agents + 200)
        with bed.running(keep_logs=REPO / "build" / "bench-recording-logs", progress=log):
            r = asyncio.run(drive(bed, config, args, Path(tmp) / "sipp"))
    phases = r["phases"]
    recs = [name for name in phases if name != "plain"]
    calls = max(1, args.callers * args.rounds)
    per = {name: {k: 1000 * v / calls for k, v in ph["cpu_s"].items()} for name, ph in phases.items()}
    total = {name: sum(v.values()) for name, v in per.items()}
    talk_h = r["talk_s"] / 3600
    print(f"\nRecording cost: {args.rounds} × {args.callers} calls unrecorded and as many recorded by each of "
          f"{', '.join(recs)}, in ABBA order ({', '.join(sequence(list(phases), args.rounds))}); "
          f"{args.talk_ms} ms of talk each, {args.agents} seats\n")
    print(f"{'':36}{'unrecorded':>12}" + "".join(f"{name:>14}{'ratio':>8}" for name in recs))

    def row(label: str, values: dict[str, float]) -> str:
        base = values["plain"]
        return f"{label:36}{base:>12.1f}" + "".join(
            f"{values[n]:>14.1f}{(values[n] / base if base else float('nan')):>7.2f}×" for n in recs)

    for k in ("asterisk", "asterisk children", "engine", "encoder", "engine children"):
        print(row(k + " CPU per call (ms)", {n: per[n][k] for n in phases}))
    print(row("all per call (ms)", total) + "   (target ≤ 1.15×)")
    for i, what in enumerate(("in the queue", "talking", "on after the seat")):
        print(f"{'s per call ' + what:36}" + "".join(f"{phases[n]['shape'][i]:>12.1f}  " for n in phases))
    print(f"{'calls ok / failed':36}" + "".join(f"{phases[n]['ok']:>8} / {phases[n]['failed']:<4}" for n in phases))
    print(f"{'wall: calls done / all kept (s)':36}"
          + "".join(f"{phases[n]['wall_s'][0]:>7.0f} / {phases[n]['wall_s'][1]:<4.0f}" for n in phases))
    if args.threads:
        print("\nAsterisk per kind of thread, CPU per call (ms): " + ", ".join(phases))
        kinds = sorted(set().union(*(ph["threads"] for ph in phases.values())),
                       key=lambda k: -max(ph["threads"].get(k, 0) for ph in phases.values()))
        for k in kinds:
            ms = [1000 * ph["threads"].get(k, 0.0) / calls for ph in phases.values()]
            if max(ms) >= 0.5:
                print(f"  {k[:58]:58}" + "".join(f"{v:>10.1f}" for v in ms))
        print("bridge technologies (bridges × samples): " + "; ".join(f"{n} {ph['bridges']}" for n, ph in phases.items()))
        if os.environ.get("BENCH_THREADS_LISTING"):
            print(phases[recs[-1]]["listing"])
    print(f"\nkept: {r['files']} files, {r['bytes'] / 1e6:.2f} MB for {talk_h * 60:.1f} min of talk: "
          f"{r['bytes'] / 1e6 / talk_h if talk_h else float('nan'):.1f} MB per hour (raw while the call lasts: "
          f"{32_000 * 3600 / 1e6:.0f} MB per hour)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

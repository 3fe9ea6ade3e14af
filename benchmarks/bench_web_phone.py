"""What a web-phone seat costs Asterisk (issue 23): CPU per call answered by the desk page's WebRTC
phone ÷ CPU per call answered by a SIP softphone, on one bed in one run, side by side.

Two seats serve the general queue: ``load001``, a SIP softphone (sipp), and ``load002``, whose phone
is the desk page (``phone: web``) in a headless Chromium with fake media devices, signed in as the
seat's agent. Citizens (sipp, G.711 A-law, a 440 Hz tone as their voice) dial 12345 and press 1, one
call at a time; the seat answers, talks ``--talk-ms`` (the softphone plays 1000 Hz, the page's fake
microphone 1200 Hz) and hangs up. The page is driven through WebDriver only: a script put into the
page clicks its own 接听 when it rings and its own 挂断 ``--talk-ms`` after the call is up, the clicks
an agent makes. Batches of ``--calls`` calls go to one seat kind at a time (the other seat paused),
in ABBA order. CPU is read from /proc: Asterisk's process group (the target), the engine's and
Redis's, and Chromium's processes (for information: the agent's PC pays that, not the server).
``--threads`` adds Asterisk's CPU per kind of thread (bench_recording.AsteriskThreads). A warm-up
call of each kind shows the codecs, transcoding and bridge technology of a talking call.

    .venv/bin/python benchmarks/bench_web_phone.py            # 4 × 4 calls per kind, about 6 minutes
    .venv/bin/python benchmarks/bench_web_phone.py --quick    # a smoke run, about 1 minute

Nothing here asserts; the exit status is 0 whether or not the target (≤ 1.3×) is met: read the table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]

from bench_load import bench_config, channels_up, log  # noqa: E402
from bench_recording import AsteriskThreads  # noqa: E402
from procstat import Meters, _stat_fields, process_cpu_ns  # noqa: E402

from ivr.ami.client import AmiClient  # noqa: E402
from ivr.config import load_config  # noqa: E402
from testbed.bed import TestBed  # noqa: E402
from testbed.browser import Browser, start_chromium  # noqa: E402
from testbed.console import add_user, bed_site  # noqa: E402
from testbed.ports import PortAllocator  # noqa: E402
from testbed.sipp import Sipp, agent_phone, agent_scenario, citizen_call, keys  # noqa: E402
from testbed.sipp.tones import tone_pcap  # noqa: E402

SEATS = {"sip": "load001", "web": "load002"}
TARGET = 1.3
FIRST_CALLER = 13900000001

# Put into the desk page through WebDriver: the agent's two clicks, on the page's own buttons.
AUTO_ANSWER = """
const talkMs = arguments[0], panel = document.getElementById('phone');
let answering = false, talking = false;
window.benchCalls = 0;
new MutationObserver(() => {
  const state = panel.dataset.state;
  if (state === 'ringing' && !answering) { answering = true; document.getElementById('phone-answer').click(); }
  if (state === 'talking' && !talking) {
    talking = true; window.benchCalls += 1;
    setTimeout(() => document.getElementById('phone-hangup').click(), talkMs);
  }
  if (state === 'registered') { answering = talking = false; }
}).observe(panel, {attributes: true, attributeFilter: ['data-state']});
"""
FORMAT_LINE = re.compile(r"^\s*(NativeFormats|ReadFormat|WriteFormat|ReadTranscode|WriteTranscode):.*$", re.M)


def web_config(root: Path) -> Path:
    """bench_load's private config/ with the two seats and no satisfaction survey (the same for both
    kinds of seat: it would only dilute the difference)."""
    config = bench_config(root, len(SEATS))
    path = config / "tickets.yaml"
    path.write_text(re.sub(r"(?m)^(\s*satisfaction:) true", r"\1 false", path.read_text(encoding="utf-8")),
                    encoding="utf-8")
    return config


def make_web_seat(config: Path, http_port: int) -> None:
    """The web seat's phone is the desk page's, on Asterisk's HTTP port of this bed (plain ws on
    loopback, as in the test bed)."""
    path = config / "queues.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["agents"][SEATS["web"]]["phone"] = "web"
    doc.setdefault("phones", {})["web"] = {"listen": f"127.0.0.1:{http_port}", "url": f"ws://127.0.0.1:{http_port}/ws"}
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")


def descendants(root: int) -> list[int]:
    """Pids of ``root``'s live descendants (Chromium's processes under its chromedriver)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        fields = _stat_fields(int(name)) if name.isdigit() else None
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(name))  # field 4: ppid
    out, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


@dataclass
class Tally:
    """One seat kind's batches: CPU seconds per group, calls, and what the calls looked like."""

    cpu_s: dict[str, float] = field(default_factory=dict)
    per_batch: list[dict[str, float]] = field(default_factory=list)  # ms per call, per batch
    wall_s: float = 0.0
    calls: int = 0
    failed: int = 0
    wrong_seat: int = 0
    ring_s: list[float] = field(default_factory=list)
    talk_s: list[float] = field(default_factory=list)
    threads: dict[str, float] = field(default_factory=dict)
    probe: list[str] = field(default_factory=list)
    page_answers: int = 0  # calls the page's own 接听 took (web seat)


class Bench:
    """The run on a started bed: its seats, the page, the AMI session, the meters."""

    def __init__(self, bed: TestBed, browser: Browser, args: argparse.Namespace, workdir: Path):
        assert bed.state
        self.bed, self.st, self.browser, self.args, self.workdir = bed, bed.state, browser, args, workdir
        self.meters = Meters({"asterisk": self.st.asterisk_pid, "engine": self.st.engine_pid,
                              "redis": self.st.redis_pid})
        self.driver_pid = browser.driver.service.process.pid
        self.media_port = PortAllocator().block(4)
        self.callers = iter(range(FIRST_CALLER, FIRST_CALLER + 100_000))
        self.tallies = {kind: Tally() for kind in SEATS}
        self.ami: AmiClient | None = None
        self.idle_rate: dict[str, float] = {}

    def cpu_ns(self) -> dict[str, int]:
        now = self.meters.sample()
        now["chromium"] = sum(process_cpu_ns(pid) for pid in descendants(self.driver_pid))
        return now

    async def run(self) -> dict[str, Tally]:
        a = self.args
        self.ami = AmiClient("127.0.0.1", self.st.ami_port, "testbed", self.st.testbed_ami_secret)
        await self.ami.connect()
        seat_tone = tone_pcap(self.workdir / "seat.pcap", 1000, a.talk_ms / 1000 + 1)
        tone_pcap(self.workdir / "citizen.pcap", 440, a.talk_ms / 1000 + 15)
        phone: Sipp = await agent_phone(self.workdir, port=self.st.agent_ports[SEATS["sip"]],
                                        media_port=PortAllocator().block(4), name="seat-sip",
                                        scenario=agent_scenario(200, a.talk_ms, seat_tone))
        try:
            await asyncio.to_thread(self.browser.driver.execute_script, AUTO_ANSWER, a.talk_ms)
            for kind in SEATS:  # warm-up, unmeasured: the codecs and bridge of a talking call
                await self.only(kind)
                await self.call(kind, probe=self.tallies[kind].probe)
            idle = await self.idle(a.idle)
            for group in range(a.batches):
                for kind in (("sip", "web") if group % 2 == 0 else ("web", "sip")):
                    await self.batch(kind)
            self.tallies["web"].page_answers = int(await asyncio.to_thread(
                self.browser.driver.execute_script, "return window.benchCalls") or 0)
        finally:
            await phone.stop()
            self.ami.close()
        self.idle_rate = idle
        return self.tallies

    async def only(self, kind: str) -> None:
        """The other seat paused: the queue rings ``kind``'s seat."""
        assert self.ami
        for k, seat in SEATS.items():
            await self.ami.action({"Action": "QueuePause", "Interface": f"PJSIP/{seat}", "Paused": str(k != kind).lower()})

    async def idle(self, seconds: float) -> dict[str, float]:
        """Each group's CPU with no call, ms per second."""
        before, t0 = self.cpu_ns(), time.monotonic()
        await asyncio.sleep(seconds)
        after, wall = self.cpu_ns(), time.monotonic() - t0
        return {k: (after[k] - before[k]) / 1e6 / wall for k in after}

    async def batch(self, kind: str) -> None:
        """``--calls`` calls, one after the other, to ``kind``'s seat; CPU from before the first
        INVITE until the last call's channels are gone."""
        assert self.ami
        tally = self.tallies[kind]
        await self.only(kind)
        threads = AsteriskThreads(self.ami, self.st.asterisk_pid) if self.args.threads else None
        sampler = asyncio.create_task(threads.run()) if threads else None
        before, t0 = self.cpu_ns(), time.monotonic()
        for _ in range(self.args.calls):
            await self.only(kind)  # again before each call: the engine's seat reconcile may lift an AMI pause
            await self.call(kind)
        if sampler and threads:
            sampler.cancel()
            await threads.sample()
            for k, s in threads.by_kind().items():
                tally.threads[k] = tally.threads.get(k, 0.0) + s
        after, wall = self.cpu_ns(), time.monotonic() - t0
        spent = {k: (after[k] - before[k]) / 1e9 for k in after}
        for k, s in spent.items():
            tally.cpu_s[k] = tally.cpu_s.get(k, 0.0) + s
        tally.per_batch.append({k: 1000 * s / self.args.calls for k, s in spent.items()})
        tally.wall_s += wall
        tally.calls += self.args.calls
        log(f"  {kind} batch: Asterisk {1000 * spent['asterisk'] / self.args.calls:.1f} ms per call")

    async def call(self, kind: str, probe: list[str] | None = None) -> None:
        """One citizen's call to ``kind``'s seat, until every channel of it is gone."""
        assert self.ami
        tally, caller, a = self.tallies[kind], str(next(self.callers)), self.args
        connected = self.ami.wait_for("AgentConnect", lambda e: e.get("CallerIDNum") == caller)
        completed = self.ami.wait_for("AgentComplete", lambda e: e.get("CallerIDNum") == caller)
        sipp = await citizen_call(self.workdir, sip_port=self.st.sip_port, local_port=self.st.pstn_port,
                                  media_port=self.media_port, dialed="12345", caller=caller,
                                  presses=keys("1", first_ms=1500), hold_ms=a.talk_ms + 30_000,
                                  name=f"citizen-{caller}", audio=self.workdir / "citizen.pcap")
        try:
            up = await asyncio.wait_for(connected, 60)
            if probe is not None:
                probe += await self.probe(up)
            done = await asyncio.wait_for(completed, a.talk_ms / 1000 + 30)
            code = await sipp.wait(30)
        except TimeoutError:
            tally.failed += 1
            log(f"  {kind} call from {caller} failed:\n{sipp.output()[-1500:]}")
            return
        finally:
            await sipp.stop()
            await self.until_no_channels()
        tally.failed += code != 0
        tally.wrong_seat += up.get("MemberName") != SEATS[kind] and up.get("Interface") != f"PJSIP/{SEATS[kind]}"
        tally.ring_s.append(float(up.get("RingTime") or 0))
        tally.talk_s.append(float(done.get("TalkTime") or 0))

    async def until_no_channels(self, timeout: float = 30) -> None:
        assert self.ami
        deadline = time.monotonic() + timeout
        while await channels_up(self.ami) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)

    async def probe(self, up: dict[str, Any]) -> list[str]:
        """A talking call's formats on both legs, its bridge and its RTP (``pjsip show channelstats``)."""
        assert self.ami
        await asyncio.sleep(1.5)  # media flowing both ways, ICE and DTLS done
        out = []
        for leg in ("DestChannel", "Channel"):
            text = await self.ami.command(f"core show channel {up.get(leg)}")
            out.append(f"{leg} {up.get(leg)}: " + "; ".join(m[0].strip() for m in FORMAT_LINE.finditer(text)))
        out += [line for line in (await self.ami.command("bridge show all")).splitlines() if line.strip()]
        out += [line for line in (await self.ami.command("pjsip show channelstats")).splitlines() if line.strip()]
        return out


def sign_in_web_seat(bed: TestBed, profile: Path) -> Browser:
    """A headless Chromium signed in as the web seat's agent, on its desk, the phone registered."""
    assert bed.state
    site = bed_site(bed.state)
    account = add_user(bed.state.redis_url, f"bench-{SEATS['web']}", "agent", agent=SEATS["web"])
    browser = Browser(start_chromium(profile))
    try:
        browser.at(site.url).sign_in(account).open(f"/desk/{SEATS['web']}")
        browser.wait_for('#phone[data-state="registered"]', 30)
        browser.wait_text("#desk-message", "已签入", 15)  # the page logged the seat in after registering
    except BaseException:
        quit_chromium(browser)
        raise
    return browser


def quit_chromium(browser: Browser) -> None:
    """Chromium and its driver gone, whatever state they are in (a driver that cannot quit: its
    processes killed by pid)."""
    driver_pid = browser.driver.service.process.pid
    left = descendants(driver_pid)
    try:
        browser.quit()
    except Exception:  # noqa: BLE001 - the driver may be dead already: kill what is left below
        pass
    for pid in [*left, driver_pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@dataclass
class Bed:
    """The bench's one bed, its config made once its ports are known (the web seat's HTTP port)."""

    bed: TestBed
    config: Path

    def __enter__(self) -> TestBed:
        st = self.bed.reserve(log)
        make_web_seat(self.config, st.http_port)
        self.bed.loaded = load_config(self.config)
        try:
            self.bed.launch()
            self.bed.start_engines()
        except BaseException:
            self.bed.stop(keep_logs=REPO / "build" / "bench-web-phone-logs")
            raise
        return self.bed

    def __exit__(self, *_exc: object) -> None:
        self.bed.stop(keep_logs=REPO / "build" / "bench-web-phone-logs")


def measure(args: argparse.Namespace) -> tuple[dict[str, Tally], dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="bench-web-phone-") as tmp:
        config = web_config(Path(tmp))
        bed = TestBed(config, name=f"bench-web-phone-{os.getpid()}", trace_agi=False, rtp_ports=64)
        with Bed(bed, config) as started:
            (Path(tmp) / "chromium").mkdir()
            browser = sign_in_web_seat(started, Path(tmp) / "chromium")
            try:
                bench = Bench(started, browser, args, Path(tmp) / "sipp")
                bench.workdir.mkdir()
                tallies = asyncio.run(bench.run())
            finally:
                quit_chromium(browser)
    return tallies, bench.idle_rate


def per_call(t: Tally, group: str, idle_ms_s: float = 0.0) -> float:
    """ms of ``group``'s CPU per call (``idle_ms_s``: that idle rate over the batches' wall time taken off)."""
    return (1000 * t.cpu_s.get(group, 0.0) - idle_ms_s * t.wall_s) / max(1, t.calls)


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def table(args: argparse.Namespace, tallies: dict[str, Tally], idle: dict[str, float]) -> str:
    sip, web = tallies["sip"], tallies["web"]
    ast_sip, ast_web = per_call(sip, "asterisk"), per_call(web, "asterisk")
    r = ratio(ast_web, ast_sip)
    lines = [f"\nWeb phone vs SIP seat: {args.batches} batches × {args.calls} calls per kind (ABBA), "
             f"{args.talk_ms} ms of talk, G.711 A-law from the citizen\n",
             f"{'':40}{'SIP seat':>10}{'web phone':>11}{'ratio':>9}",
             f"{'Asterisk CPU per call (ms)':40}{ast_sip:>10.1f}{ast_web:>11.1f}{r:>8.2f}×   "
             f"(target ≤ {TARGET}×: {'met' if r <= TARGET else 'MISSED'})"]
    for i, (x, y) in enumerate(zip(sip.per_batch, web.per_batch)):
        lines.append(f"{'  group ' + str(i + 1):40}{x['asterisk']:>10.1f}{y['asterisk']:>11.1f}"
                     f"{ratio(y['asterisk'], x['asterisk']):>8.2f}×")
    net_sip, net_web = per_call(sip, "asterisk", idle["asterisk"]), per_call(web, "asterisk", idle["asterisk"])
    lines.append(f"{'  net of idle (info)':40}{net_sip:>10.1f}{net_web:>11.1f}{ratio(net_web, net_sip):>8.2f}×")
    lines.append(f"{'  web surplus per s of talk (ms)':40}{'':>10}{(ast_web - ast_sip) / (args.talk_ms / 1000):>11.2f}")
    for group, what in (("engine", "engine"), ("redis", "Redis"), ("chromium", "Chromium (info, the agent's PC)")):
        a, b = per_call(sip, group), per_call(web, group)
        lines.append(f"{what + ' CPU per call (ms)':40}{a:>10.1f}{b:>11.1f}{ratio(b, a) if a >= 0.5 else float('nan'):>8.2f}×")
    lines.append(f"{'idle CPU, ms/s (info)':40}" + ", ".join(f"{k} {v:.1f}" for k, v in idle.items()))
    for what, attr in (("s ringing (mean)", "ring_s"), ("s talking (mean)", "talk_s")):
        vals = [getattr(t, attr) for t in (sip, web)]
        lines.append(f"{what:40}" + "".join(f"{sum(v) / len(v) if v else float('nan'):>{w}.1f}"
                                            for v, w in zip(vals, (10, 11))))
    lines.append(f"{'calls / failed / to the wrong seat':40}{sip.calls:>4} / {sip.failed} / {sip.wrong_seat}"
                 f"{web.calls:>6} / {web.failed} / {web.wrong_seat}")
    lines.append(f"{'answered by the page (warm-up included)':40}{'':>10}{web.page_answers:>11}")
    lines.append(f"{'wall seconds of the batches':40}{sip.wall_s:>10.0f}{web.wall_s:>11.0f}")
    for kind, t in tallies.items():
        lines.append(f"\n{kind} seat, a talking call (warm-up):")
        lines += [f"  {line}" for line in t.probe]
    if args.threads:
        lines.append("\nAsterisk per kind of thread, CPU per call (ms):")
        kinds = sorted(set(sip.threads) | set(web.threads), key=lambda k: -web.threads.get(k, 0))
        for k in kinds:
            a, b = (1000 * t.threads.get(k, 0.0) / max(1, t.calls) for t in (sip, web))
            if a >= 0.3 or b >= 0.3:
                lines.append(f"  {k[:58]:58}{a:>8.1f}{b:>10.1f}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=4, help="calls per batch")
    p.add_argument("--batches", type=int, default=4, help="batches per seat kind (ABBA order)")
    p.add_argument("--talk-ms", type=int, default=6000)
    p.add_argument("--idle", type=float, default=3.0, help="seconds of idle CPU measured before the batches")
    p.add_argument("--threads", action="store_true", help="also Asterisk's CPU per kind of thread (core show threads)")
    p.add_argument("--quick", action="store_true", help="a smoke run: 1 batch of 2 calls per kind, 3 s of talk")
    args = p.parse_args(argv)
    if args.quick:
        args.calls, args.batches, args.talk_ms, args.idle = 2, 1, 3000, 1.0
    return args


def interrupted(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM as Ctrl-C: the finally blocks quit Chromium and stop the bed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, interrupted)
    tallies, idle = measure(args)
    print(table(args, tallies, idle))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Draft checks do not starve call handling (issue 17, finding 3; README.md, section 7).

One test bed (real Asterisk 22 + Redis + ``ivr serve``). Calls to 12345 go through the
engine's FastAGI flow into the (paused) general queue and end there, ``--calls`` per phase, a
few at a time, in three phases interleaved over ``--rounds`` rounds, side by side in one run:

- **quiet**: the calls alone;
- **bomb checks**: the same calls while a supervisor's console session posts the issue's 1 KiB
  YAML alias bomb to the flow check, back to back (each refused);
- **draft checks**: the same calls while the unchanged main flow is checked, back to back (a
  full ``ivr check`` of the config per request: the ordinary cost of the console's check).

Prints, per phase, the engine's own AGI round-trip p50/p99 (its histogram, ``ivr/core/latency.py``,
what FastAGI callers wait for) and p99 ratio to quiet, its event-loop lag p99 (did anything block
the loop), the checks completed, and the engine process's peak RSS growth (``VmHWM`` reset at
the phase's start). Nothing here asserts; the exit status is 0 whether or not the ratios are
good: read the table.

    .venv/bin/python benchmarks/bench_draft_check.py              # about 3 minutes
    .venv/bin/python benchmarks/bench_draft_check.py --calls 20 --rounds 1   # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]  # REPO: the test bed package lives there, not in the install

from bench_ivr import CallDriver, CpuOptions, pause_seats  # noqa: E402
from bench_load import latency_snapshot  # noqa: E402

from ivr.ami.client import AmiClient  # noqa: E402
from ivr.core.identity import engine_identity  # noqa: E402
from ivr.core.latency import percentile, window  # noqa: E402
from ivr.store import redis_client  # noqa: E402
from testbed.bed import TestBed  # noqa: E402
from testbed.console import add_user  # noqa: E402
from testbed.hostile import KIB_BOMB  # noqa: E402
from testbed.memory import peak_kib, reset_peak, rss_kib  # noqa: E402

PHASES = ("quiet", "bomb checks", "draft checks")
CSRF = re.compile(r'name="_csrf" value="([^"]+)"')


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class Phase:
    calls: int = 0
    failed: int = 0
    checks: int = 0
    refused: int = 0  # checks whose page said the draft has problems
    buckets: dict[int, int] = field(default_factory=dict)  # AGI round trips
    lag: dict[int, int] = field(default_factory=dict)  # event-loop lag samples
    peak_growth_kib: int = 0


class Supervisor:
    """A signed-in console session that checks one draft of flows/main.yaml again and again."""

    def __init__(self, base: str, http: aiohttp.ClientSession):
        self.base, self.http, self.token = base, http, ""

    async def sign_in(self, redis_url: str) -> None:
        account = await asyncio.to_thread(add_user, redis_url, f"bench-{os.getpid()}", "supervisor")
        async with self.http.get(self.base + "/login") as page:
            token = CSRF.search(await page.text())
        assert token, "no CSRF token on the sign-in page"
        form = {"user": account.name, "password": account.password, "_csrf": token[1], "next": "/flows"}
        async with self.http.post(self.base + "/login", data=form) as page:
            await page.read()
        async with self.http.get(self.base + "/flows/flows/main.yaml") as page:
            token = CSRF.search(await page.text())
        assert token, "not signed in: no form on the flow page"
        self.token = token[1]

    async def check(self, text: str) -> bool:
        """True when the check refused the draft."""
        async with self.http.post(self.base + "/flows/flows/main.yaml/check", data={"text": text, "_csrf": self.token}) as page:
            body = await page.text()
        return 'data-ok="false"' in body

    async def keep_checking(self, text: str, phase: Phase, stop: asyncio.Event) -> None:
        while not stop.is_set():
            phase.refused += await self.check(text)
            phase.checks += 1


async def calls(driver: CallDriver, phase: Phase, first: int, count: int, concurrency: int) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one(n: int) -> None:
        async with sem:
            ok = await driver.call("fastagi", n) is not None
        phase.calls += ok
        phase.failed += not ok

    await asyncio.gather(*(one(first + i) for i in range(count)))


async def drive(bed: TestBed, args: argparse.Namespace) -> dict[str, Phase]:
    assert bed.state
    st = bed.state
    engine = engine_identity(bed.settings.agi.port, pid=st.engine_pid)  # its status name
    redis = redis_client(st.redis_url)
    ami = AmiClient("127.0.0.1", st.ami_port, "testbed", st.testbed_ami_secret, events="call,agent")
    await ami.connect()
    main_flow = (bed.loaded.config_dir / "flows" / "main.yaml").read_text(encoding="utf-8")
    drafts = {"bomb checks": KIB_BOMB, "draft checks": main_flow}
    phases = {name: Phase() for name in PHASES}
    opts = CpuOptions("short", "short", calls=args.calls, batch=args.calls, concurrency=args.concurrency,
                      delay=0.4, dtmf_ms=100)
    try:
        # unsafe: keep cookies of an IP-address host (the console on 127.0.0.1)
        async with aiohttp.ClientSession(f"http://127.0.0.1:{st.web_port}", cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            supervisor = Supervisor("", http)
            await supervisor.sign_in(st.redis_url)
            await pause_seats(bed, ami)
            driver = CallDriver(ami, opts, None)
            await calls(driver, Phase(), 0, 4, args.concurrency)  # warm-up, unmeasured
            n = 100
            for rnd in range(args.rounds):
                for name in PHASES:
                    phase = phases[name]
                    before = await latency_snapshot(redis, engine)
                    reset_peak(st.engine_pid)
                    start_rss = rss_kib(st.engine_pid)
                    stop = asyncio.Event()
                    checker = (asyncio.create_task(supervisor.keep_checking(drafts[name], phase, stop))
                               if name in drafts else None)
                    t0 = time.monotonic()
                    await calls(driver, phase, n, args.calls, args.concurrency)
                    stop.set()
                    if checker:
                        await checker
                    n += args.calls
                    after = await latency_snapshot(redis, engine, newer_than=before["raw"])
                    for histogram, into in (("agi_roundtrip", phase.buckets), ("loop_lag", phase.lag)):
                        for i, c in window(after[histogram], before[histogram]).items():
                            into[i] = into.get(i, 0) + c
                    phase.peak_growth_kib = max(phase.peak_growth_kib, peak_kib(st.engine_pid) - start_rss)
                    log(f"round {rnd + 1}, {name}: {args.calls} calls in {time.monotonic() - t0:.1f} s, "
                        f"{phase.checks} checks so far")
    finally:
        ami.close()
        await redis.aclose()
    return phases


def table(phases: dict[str, Phase]) -> str:
    quiet = percentile(phases["quiet"].buckets, 0.99)
    rows = [("phase", "calls (failed)", "AGI p50", "AGI p99", "p99 / quiet", "loop lag p99", "checks (refused)",
             "engine peak RSS growth")]
    for name, p in phases.items():
        p50, p99 = percentile(p.buckets, 0.5), percentile(p.buckets, 0.99)
        rows.append((name, f"{p.calls} ({p.failed})", f"{1000 * p50:.2f} ms", f"{1000 * p99:.2f} ms",
                     f"{p99 / quiet:.2f}x" if quiet else "-", f"{1000 * percentile(p.lag, 0.99):.2f} ms",
                     f"{p.checks} ({p.refused})" if p.checks else "-",
                     f"{p.peak_growth_kib / 1024:.1f} MiB"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)


def run(args: argparse.Namespace) -> dict[str, Phase]:
    """Start the bed (outside any event loop: it waits for Asterisk with its own), drive it."""
    with tempfile.TemporaryDirectory(prefix="bench-draft-") as tmp:
        shutil.copytree(REPO / "config", Path(tmp) / "config")
        (Path(tmp) / "prompts").symlink_to(REPO / "prompts")
        bed = TestBed(Path(tmp) / "config", name=f"bench-draft-{os.getpid()}", trace_agi=False)
        with bed.running(keep_logs=REPO / "build" / "bench-draft-logs", progress=log):
            return asyncio.run(drive(bed, args))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=60, help="calls per phase and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=4, help="calls in flight")
    args = p.parse_args(argv)
    phases = run(args)
    print(f"\nAGI round trip while console drafts are checked ({args.rounds} rounds x {args.calls} calls per phase; "
          "the engine's own histogram, bucket upper bounds)\n")
    print(table(phases))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""AGI round trips while a console user exports 50,000 tickets (issue 17, finding 8; README.md,
section 6).

One process hosts what ``ivr serve`` hosts on one event loop: the FastAGI server (a call
handler sending 20 ``GET VARIABLE`` commands per call) and the web console (console/app.py)
with a TicketStore on a real redis-server holding 50,000 tickets of the last hours. Outside it,
each in its own process (export_probe.py): a peer playing Asterisk that measures every AGI round
trip as Asterisk sees it, and a browser downloading the CSV export in a loop. Three phases,
interleaved in ABCCBA order over the rounds:

* **idle**: no export;
* **streamed**: ``/tickets/export.csv`` as it is now (tickets/reads.py: a batch of 100 per
  Redis round trip, parsed and written in slices of 20 with a yield to the loop between them);
* **old**: the export as it was before (kept here as the baseline): the whole range read in one
  pipeline, parsed, filtered and written as one response, all on the loop.

    .venv/bin/python benchmarks/bench_ticket_export.py            # about 2 minutes
    .venv/bin/python benchmarks/bench_ticket_export.py --quick    # about 40 s, indicative only

Prints p50/p99 of the AGI round trip per phase and their ratios to idle. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO)]

from aiohttp import web  # noqa: E402

from console.app import create_app  # noqa: E402
from console.auth import SESSION_COOKIE  # noqa: E402
from console.context import Console  # noqa: E402
from ivr.agi.channel import AgiChannel  # noqa: E402
from ivr.agi.fastagi import FastAgiServer  # noqa: E402
from ivr.core.channel import CallInfo  # noqa: E402
from ivr.config import WebSettings, load_config  # noqa: E402
from tickets.store import TicketStore  # noqa: E402
from ivr.store import redis_client  # noqa: E402
from testbed.ports import PortAllocator  # noqa: E402
from testbed.processes import start_redis  # noqa: E402
from tickets import export  # noqa: E402
from tickets.filters import parse_filters  # noqa: E402
from tickets.model import Ticket  # noqa: E402

COMMANDS = 20  # AGI commands per call
PHASES = ("idle", "streamed", "old")
URLS = {"streamed": "/tickets/export.csv", "old": "/bench/old-export.csv"}


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


async def call(_call: CallInfo, channel: AgiChannel) -> None:
    for n in range(COMMANDS):
        await channel.get_variable(f"IVR_BENCH_{n}")


def old_export(console: Console, since: str) -> Any:
    """The export before finding 8 was fixed (tickets/views.py at 988291a), for comparison."""
    async def handler(request: web.Request) -> web.Response:
        filters = parse_filters(since, None, None, None, None, None, option="")
        assert console.tickets is not None
        found = await console.tickets.received_between(filters.since.timestamp(), float("inf"), limit=50_000)
        matching = [t for t in reversed(found) if filters.matches(t)]
        out = io.StringIO()
        export.write_csv(out, [Ticket.from_json(t.view(unmasked=False)) for t in matching])
        return web.Response(body=out.getvalue().encode(export.ENCODING), content_type="text/csv", charset="utf-8")
    return handler


async def fill(store: TicketStore, count: int) -> None:
    start = datetime.now().astimezone() - timedelta(hours=2)
    for i in range(count):
        t = Ticket(linkedid=f"1796160000.{i}", line="12345", caller=f"139{i:08d}",
                   received=(start + timedelta(seconds=i * 7200 / count)).isoformat(), disposition="answered",
                   agent=f"agent{1001 + i % 20}", queue="general", request_type="consult", wait_seconds=12.0)
        store.write_nowait(t, "closed")
        if i % 2000 == 1999:
            await store.drain()
    await store.drain()


async def phase(name: str, agi_port: int, base: str, cookie: str, args: argparse.Namespace) -> dict[str, Any]:
    downloader = None
    if name != "idle":
        downloader = await asyncio.create_subprocess_exec(
            sys.executable, str(HERE / "export_probe.py"), "download", base + URLS[name] + f"?since={args.since}",
            cookie, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        await asyncio.sleep(0.2)  # the first download under way before the calls start
    probe = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / "export_probe.py"), "agi", str(agi_port), str(args.sessions), str(args.concurrency),
        stdout=asyncio.subprocess.PIPE)
    out, _ = await probe.communicate()
    downloads: list[dict[str, float]] = []
    if downloader is not None:
        assert downloader.stdin
        downloader.stdin.close()
        lines, _ = await downloader.communicate()
        downloads = [json.loads(line) for line in lines.splitlines()]
    return {"phase": name, "rtt": json.loads(out), "downloads": downloads}


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def report(results: list[dict[str, Any]], tickets: int) -> None:
    by = {p: [x for r in results if r["phase"] == p for x in r["rtt"]] for p in PHASES}
    idle50, idle99 = pct(by["idle"], 50), pct(by["idle"], 99)
    print(f"\nAGI round trip (ms, as the Asterisk side sees it) while a console user exports {tickets} tickets")
    print(f"   {'phase':34s}{'p50':>8s}{'p99':>8s}{'max':>8s}{'p50/idle':>10s}{'p99/idle':>10s}{'>100 ms':>9s}"
          f"{'exports':>9s}{'s/export':>10s}")
    for p, label in zip(PHASES, ("idle (no export)", "streamed export (now)", "old export (whole range at once)")):
        rtt = by[p]
        downloads = [d for r in results if r["phase"] == p for d in r["downloads"]]
        per = f"{statistics.median(d['s'] for d in downloads):10.2f}" if downloads else f"{'-':>10s}"
        print(f"   {label:34s}{pct(rtt, 50):8.2f}{pct(rtt, 99):8.2f}{max(rtt):8.1f}"
              f"{pct(rtt, 50) / idle50:10.2f}{pct(rtt, 99) / idle99:10.2f}{sum(x > 100 for x in rtt):9d}"
              f"{len(downloads):9d}{per}")
    sizes = {d["bytes"] for r in results for d in r["downloads"]}
    print(f"   round trips per phase: {', '.join(f'{p} {len(by[p])}' for p in PHASES)}; export sizes (bytes): "
          f"{sorted(sizes)}")


async def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-export-"))
    port = PortAllocator().one()
    redis_proc = start_redis(port, work)
    url = f"redis://127.0.0.1:{port}/0"
    store = TicketStore(url, work / "spool", "bench", retention_days=7, caller_key=b"bench-caller-key")
    client = redis_client(url)
    settings = load_config(REPO / "config", environ={}).settings
    console = Console(redis=client, web=WebSettings(), settings=lambda: settings, config_dir=REPO / "config",
                      audit_log=work / "audit.jsonl", tickets=store)
    runner = None
    server = FastAgiServer(header_timeout=5)
    try:
        say(f"writing {args.tickets} tickets ...")
        started = time.perf_counter()
        await fill(store, args.tickets)
        say(f"   {time.perf_counter() - started:.1f} s")
        args.since = (datetime.now() - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")
        app = create_app(console)
        app.router.add_get("/bench/old-export.csv", old_export(console, args.since))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        web_port = PortAllocator().one()
        await web.TCPSite(runner, "127.0.0.1", web_port).start()
        user = await console.users.add("bench", "supervisor", "bench-password-123", agent=None, by="bench")
        cookie = f"{SESSION_COOKIE}={(await console.sessions.create(user)).id}"
        server.route("bench", call)
        await server.start("127.0.0.1", 0)
        assert server._server
        agi_port = server._server.sockets[0].getsockname()[1]
        order = [p for r in range(args.rounds) for p in (PHASES if r % 2 == 0 else PHASES[::-1])]
        results = []
        for i, name in enumerate(order, 1):
            say(f"[{i}/{len(order)}] {name}")
            results.append(await phase(name, agi_port, f"http://127.0.0.1:{web_port}", cookie, args))
        report(results, args.tickets)
    finally:
        await server.stop(grace=1)
        if runner is not None:
            await runner.cleanup()
        await store.close()
        await client.aclose()
        redis_proc.kill()
        redis_proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tickets", type=int, default=50_000)
    p.add_argument("--rounds", type=int, default=2, help="ABC CBA … rounds of the three phases")
    p.add_argument("--sessions", type=int, default=400, help="AGI calls per phase (20 round trips each)")
    p.add_argument("--concurrency", type=int, default=4, help="AGI calls in flight")
    p.add_argument("--quick", action="store_true", help="1 round, 120 calls per phase")
    args = p.parse_args()
    if args.quick:
        args.rounds, args.sessions = 1, 120
    asyncio.run(run(args))


if __name__ == "__main__":
    main()

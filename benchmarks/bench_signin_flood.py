"""Section 5: a flood of anonymous sign-ins against the console, and what it costs the event loop
the engine's calls share (issue 17, finding 6). No test bed: the console on a real Redis in this
process, flooded over real HTTP, while a probe measures how late the loop wakes (a stand-in for
the AGI round trip, which waits on the same loop) and a Redis PING through a pool of its own
(the engine's).

Three phases, one after the other in the same run: idle; the flood with the console's bounded
password checks (``login_workers``, ``login_queue``); the flood with checks as unbounded as
before (``login_workers`` = the default executor's size, no queue limit). Prints p50/p99 of both
probes and the ratios to idle.

    .venv/bin/python benchmarks/bench_signin_flood.py [--sign-ins 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the test bed package lives in the checkout, not in the install

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from console.app import create_app  # noqa: E402
from console.context import Console, console_redis  # noqa: E402
from ivr.config import WebSettings, load_config  # noqa: E402
from queues.store import SeatStore  # noqa: E402
from testbed.ports import PortAllocator  # noqa: E402
from testbed.processes import start_redis  # noqa: E402
TICK = 0.01  # s the probe sleeps


async def probe(stop: asyncio.Event, lag: list[float], ping: list[float], engine: SeatStore) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(TICK)
        lag.append(time.perf_counter() - start - TICK)
        start = time.perf_counter()
        await engine.redis.ping()
        ping.append(time.perf_counter() - start)


Phase = tuple[list[float], list[float], dict[int, int], float, float]  # lag, ping, statuses, CPU s, wall s


async def phase(redis_url: str, web: WebSettings, sign_ins: int, workdir: Path) -> Phase:
    settings = load_config(REPO / "config").settings
    console = Console(redis=console_redis(redis_url, web), web=web, settings=lambda: settings,
                      config_dir=REPO / "config", audit_log=workdir / "audit.jsonl")
    await console.redis.flushdb()
    client = TestClient(TestServer(create_app(console)))
    await client.start_server()
    engine = SeatStore(redis_url)
    lag: list[float] = []
    ping: list[float] = []
    statuses: dict[int, int] = {}
    stop = asyncio.Event()
    measuring = asyncio.ensure_future(probe(stop, lag, ping, engine))
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        if sign_ins:
            form = await (await client.get("/login")).text()
            token = form.split('name="_csrf" value="')[1].split('"')[0]

            async def one(i: int) -> None:
                reply = await client.post("/login", headers={"X-Forwarded-For": f"198.51.{i // 250}.{i % 250}"},
                                          data={"user": f"user{i}", "password": "a wrong password", "_csrf": token})
                await reply.read()
                statuses[reply.status] = statuses.get(reply.status, 0) + 1

            await asyncio.gather(*(one(i) for i in range(sign_ins)))
        else:
            await asyncio.sleep(3.0)
    finally:
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        stop.set()
        await measuring
        await client.close()
        await console.redis.aclose()
        await engine.redis.aclose()
    return lag, ping, statuses, cpu, wall


def quantiles(samples: list[float]) -> tuple[float, float]:
    cut = statistics.quantiles(samples, n=100)
    return cut[49], cut[98]


async def main(sign_ins: int) -> None:
    port = PortAllocator().one()
    with tempfile.TemporaryDirectory() as tmp:
        redis = start_redis(port, Path(tmp))
        url = f"redis://127.0.0.1:{port}/0"
        try:
            common = {"trusted_proxies": ("127.0.0.1/32",), "login_address_attempts": 10_000,
                      "login_global_attempts": 100_000}
            rows = {
                "idle": await phase(url, WebSettings(**common), 0, Path(tmp)),
                "flood, bounded checks": await phase(url, WebSettings(**common), sign_ins, Path(tmp)),
                "flood, unbounded checks": await phase(url, WebSettings(
                    **common, login_workers=min(32, (os.cpu_count() or 1) + 4), login_queue=10_000), sign_ins, Path(tmp)),
            }
        finally:
            redis.kill()
            redis.wait()
    idle_lag, idle_ping = quantiles(rows["idle"][0])[1], quantiles(rows["idle"][1])[1]
    print(f"\n{sign_ins} anonymous sign-ins at once, each from its own address ({os.cpu_count()} cores)")
    print(f"{'phase':24} {'loop lag p50/p99 ms':>20} {'x idle':>7} {'PING p50/p99 ms':>16} {'x idle':>7}"
          f" {'CPU s':>6} {'wall s':>6}  statuses")
    for name, (lag, ping, statuses, cpu, wall) in rows.items():
        l50, l99 = quantiles(lag)
        p50, p99 = quantiles(ping)
        print(f"{name:24} {l50 * 1000:8.2f} / {l99 * 1000:7.2f} {l99 / idle_lag:7.1f} {p50 * 1000:6.2f} / {p99 * 1000:6.2f}"
              f" {p99 / idle_ping:7.1f} {cpu:6.2f} {wall:6.2f}  {dict(sorted(statuses.items()))}")
    bounded, unbounded = rows["flood, bounded checks"], rows["flood, unbounded checks"]
    print(f"CPU of the flood, bounded / unbounded: {bounded[3] / unbounded[3]:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sign-ins", type=int, default=200)
    asyncio.run(main(parser.parse_args().sign_ins))

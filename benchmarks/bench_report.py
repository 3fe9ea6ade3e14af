"""How long a report takes to count, and how much memory it holds (reports/, docs/kpi.md).

Fills a real redis-server with N tickets of one day through the real TicketStore (five request
types, twelve departments, ratings), then times ``reports.read.read_report`` for that day and
the CSV and XLSX files, and counts again under tracemalloc for the memory held.

    .venv/bin/python benchmarks/bench_report.py            # 20,000 tickets
    .venv/bin/python benchmarks/bench_report.py --tickets 2000

Nothing here asserts; the numbers are in docs/kpi.md ("Reports").
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

from ivr.store import redis_client  # noqa: E402
from reports.files import csv_bytes, xlsx_bytes  # noqa: E402
from reports.model import ReportSettings, period  # noqa: E402
from reports.read import read_report  # noqa: E402
from testbed.ports import PortAllocator  # noqa: E402
from testbed.processes import start_redis  # noqa: E402
from tickets.model import Ticket  # noqa: E402
from tickets.store import TicketStore  # noqa: E402

KINDS = ("consult", "help", "complaint", "report", "suggestion")


async def fill(store: TicketStore, count: int, day: datetime) -> None:
    for i in range(count):
        at = (day + timedelta(seconds=i * 86_000 / count)).isoformat()
        t = Ticket(linkedid=f"1796170000.{i}", line="12345" if i % 3 else "12319", caller=f"139{i:08d}", received=at,
                   disposition="answered", agent=f"agent{1001 + i % 20}", queue="general" if i % 4 else "hrss",
                   queued=at, answered=at, request_type=KINDS[i % 5], wait_seconds=float(i % 40),
                   department=f"部门{i % 12}" if i % 2 else "", satisfaction=1 + i % 5, satisfaction_status="rated")
        store.write_nowait(t, "closed")
        if i % 2000 == 1999:
            await store.drain()
    await store.drain()


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-report-"))
    port = PortAllocator().one()
    proc = start_redis(port, work)
    url = f"redis://127.0.0.1:{port}/0"
    day = (datetime.now() - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0).astimezone()
    store = TicketStore(url, work / "spool", "bench", retention_days=7, caller_key=b"bench-caller-key")
    try:
        began = time.perf_counter()
        await fill(store, args.tickets, day)
        print(f"filled {args.tickets} tickets in {time.perf_counter() - began:.1f} s")
        redis = redis_client(url)
        began = time.perf_counter()
        report = await read_report(redis, period("day", day.date()), ReportSettings(), low=2)
        counted = time.perf_counter() - began
        tracemalloc.start()  # a second count under tracemalloc (slower): the memory it holds
        await read_report(redis, period("day", day.date()), ReportSettings(), low=2)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        began = time.perf_counter()
        sizes = len(csv_bytes(report)), len(xlsx_bytes(report))
        print(f"counted {report.tally.total.calls} tickets in {counted:.2f} s, peak {peak / 1e6:.2f} MB; "
              f"CSV {sizes[0]} B and XLSX {sizes[1]} B in {time.perf_counter() - began:.2f} s")
        await redis.aclose()
    finally:
        await store.close()
        proc.kill()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=20_000)
    asyncio.run(main(parser.parse_args()))

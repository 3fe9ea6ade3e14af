"""How long a report takes to count, and how much memory it holds (reports/, docs/kpi.md).

Fills a real redis-server with N tickets of one day (yesterday) through the real TicketStore
(five request types, twelve departments, ratings), then times ``reports.read.read_report`` for
that day and the CSV and XLSX files, and counts again under tracemalloc for the memory held.

Then the year: every other day of yesterday's year gets ``--per-day`` tickets, and the year's
report is timed three ways, side by side: ticket by ticket (what every report did before day
tallies), from tallies the first time (every ended day counted and kept), and from tallies
again (what every later report costs: the stored tallies and today's tickets); then departments
close some tickets of the last 20 days and the year is read once more (those days' tallies
brought up to date from the changed tickets). The ratios and the cost per ticket and per day are
what scale to a big city's year.

Then today: ``--today`` tickets received today, and today's part of a report timed side by side:
ticket by ticket (what every report did before today was tallied), from its tally the first time
(counted and kept), and after a minute's traffic (``--minute`` new calls and as many changed ones:
the tally brought up to date from those, what the engine's minute round or a report then costs).

    .venv/bin/python benchmarks/bench_report.py            # 20,000 tickets, 200 a day for the year
    .venv/bin/python benchmarks/bench_report.py --tickets 2000 --per-day 50 --today 2000

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
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

from ivr.store import keyspace, redis_client  # noqa: E402
from reports.files import csv_bytes, xlsx_bytes  # noqa: E402
from reports.model import Period, ReportSettings, Tally, period  # noqa: E402
from reports.read import read_report  # noqa: E402
from reports.tallies import Tallies, days  # noqa: E402
from testbed.ports import PortAllocator  # noqa: E402
from testbed.processes import start_redis  # noqa: E402
from tickets.model import Ticket  # noqa: E402
from tickets.store import TicketStore  # noqa: E402

KINDS = ("consult", "help", "complaint", "report", "suggestion")


RETENTION = 400  # days: the year's tallies are kept


def made(i: int, count: int, day: datetime, prefix: str) -> Ticket:
    at = (day + timedelta(seconds=i * 86_000 / count)).isoformat()
    return Ticket(linkedid=f"{prefix}.{i}", line="12345" if i % 3 else "12319", caller=f"139{i:08d}", received=at,
                  disposition="answered", agent=f"agent{1001 + i % 20}", queue="general" if i % 4 else "hrss",
                  queued=at, answered=at, request_type=KINDS[i % 5], wait_seconds=float(i % 40),
                  department=f"部门{i % 12}" if i % 2 else "", satisfaction=1 + i % 5, satisfaction_status="rated")


async def fill(store: TicketStore, count: int, day: datetime, prefix: str = "1796170000") -> None:
    for i in range(count):
        store.write_nowait(made(i, count, day, prefix), "closed")
        if i % 2000 == 1999:
            await store.drain()
    await store.drain()


async def write_back(store: TicketStore, count: int, per_day: int, day: datetime, prefix: str) -> None:
    """Departments close ``count`` of a day's dispatched tickets (a later write, as tickets/writeback.py makes)."""
    for i in range(1, 2 * count, 2):
        t = made(i, per_day, day, prefix)
        t.status = "closed"
        t.note(datetime.now().astimezone().isoformat(), "dept closed", f"{t.department}：答复：已处理")
        store.write_nowait(t, f"workflow:21:{i}", 21, fenced=False)
    await store.drain()


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-report-"))
    port = PortAllocator().one()
    proc = start_redis(port, work)
    url = f"redis://127.0.0.1:{port}/0"
    day = (datetime.now() - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0).astimezone()
    store = TicketStore(url, work / "spool", "bench", retention_days=RETENTION, caller_key=b"bench-caller-key")
    try:
        began = time.perf_counter()
        await fill(store, args.tickets, day)
        print(f"filled {args.tickets} tickets in {time.perf_counter() - began:.1f} s")
        redis = redis_client(url)
        began = time.perf_counter()
        report = await read_report(redis, period("day", day.date()), ReportSettings(), low=2, retention_days=RETENTION)
        counted = time.perf_counter() - began
        await redis.delete(keyspace.report_tally(f"{day:%Y%m%d}"))  # counted again, not read from its tally
        tracemalloc.start()  # a second count under tracemalloc (slower): the memory it holds
        await read_report(redis, period("day", day.date()), ReportSettings(), low=2, retention_days=RETENTION)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        began = time.perf_counter()
        sizes = len(csv_bytes(report)), len(xlsx_bytes(report))
        print(f"counted {report.tally.total.calls} tickets in {counted:.2f} s, peak {peak / 1e6:.2f} MB; "
              f"CSV {sizes[0]} B and XLSX {sizes[1]} B in {time.perf_counter() - began:.2f} s")
        if args.per_day:
            await year(store, redis, day, args.per_day)
        if args.today:
            await today(store, redis, args.today, args.minute)
        await redis.aclose()
    finally:
        await store.close()
        proc.kill()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)


async def by_tickets(redis: Any, p: Period, now: datetime) -> Tally:
    """The year ticket by ticket: no tallies (the period and the one before, as a report reads them)."""
    tally = Tally(now, 2)
    for q in (p, p.previous()):
        await Tallies(redis, low=2, retention_days=RETENTION).count_range(tally, q.start, q.end)
    return tally


async def year(store: TicketStore, redis: Any, yesterday: datetime, per_day: int) -> None:
    p = period("year", yesterday.date())
    others = [d for d in days(p) if d.start.date() < yesterday.date()]
    began = time.perf_counter()
    for n, d in enumerate(others):
        await fill(store, per_day, d.start, prefix=f"1796{n:03d}")
    print(f"filled {per_day} tickets on each of {len(others)} other days of {p.title} in {time.perf_counter() - began:.1f} s")
    now = datetime.now().astimezone()
    began = time.perf_counter()
    plain = await by_tickets(redis, p, now)
    from_tickets = time.perf_counter() - began
    timed = []
    for _ in range(2):  # the first counts every ended day and keeps it; the second reads the tallies
        tallies = Tallies(redis, low=2, retention_days=RETENTION)
        began = time.perf_counter()
        tally = await tallies.tally(p, now)
        await tallies.tally(p.previous(), now)
        timed.append((time.perf_counter() - began, tallies.counted_days))
        assert (tally.total, tally.views) == (plain.total, plain.views), "tallies and tickets disagree"
    for n, d in enumerate(others[-20:], start=len(others) - 20):  # write-backs land on the last 20 days
        await write_back(store, max(1, per_day // 20), per_day, d.start, f"1796{n:03d}")
    tallies = Tallies(redis, low=2, retention_days=RETENTION)
    began = time.perf_counter()
    tally = await tallies.tally(p, now)
    await tallies.tally(p.previous(), now)
    changed = time.perf_counter() - began
    plain = await by_tickets(redis, p, now)
    assert (tally.total, tally.views) == (plain.total, plain.views), "updated tallies and tickets disagree"
    (cold, counted), (warm, again) = timed
    ended = len([d for d in days(p) if d.end <= now])
    print(f"year of {plain.total.calls} tickets: ticket by ticket {from_tickets:.2f} s "
          f"({from_tickets / max(plain.total.calls, 1) * 1e6:.0f} µs a ticket); "
          f"tallies first {cold:.2f} s ({counted} days counted and kept, ×{cold / from_tickets:.2f}); "
          f"tallies after {warm:.3f} s ({again} days counted, {warm / max(ended, 1) * 1e3:.2f} ms a day; "
          f"ticket by ticket takes ×{from_tickets / warm:.0f} as long)")
    print(f"after write-backs to {max(1, per_day // 20)} tickets on each of 20 days: {changed:.3f} s "
          f"({tallies.updated_days} tallies brought up to date, {tallies.counted_days} days counted)")


async def today(store: TicketStore, redis: Any, count: int, minute: int) -> None:
    """Today's part of a report: ticket by ticket, then from its tally (first, and after a minute's calls)."""
    now = datetime.now().astimezone()
    d = period("day", now.date())
    await fill(store, count, d.start, prefix="1797")
    began = time.perf_counter()
    plain = Tally(now, 2)
    await Tallies(redis, low=2, retention_days=RETENTION).count_range(plain, d.start, d.end)
    by_tickets = time.perf_counter() - began
    tallies = Tallies(redis, low=2, retention_days=RETENTION)
    began = time.perf_counter()
    first = await tallies.tally(d, now)
    cold = time.perf_counter() - began
    assert (first.total, first.views) == (plain.total, plain.views), "today's tally and its tickets disagree"
    await fill(store, minute, d.start, prefix="1798")  # a minute's new calls …
    for i in range(minute):  # … and as many of the day's calls changed (a rating, a dispatch)
        t = made(i, count, d.start, "1797")
        t.satisfaction, t.department = 1 + (i + 1) % 5, f"部门{(i + 5) % 12}"
        store.write_nowait(t, f"workflow:21:{i}", 21, fenced=False)
    await store.drain()
    tallies = Tallies(redis, low=2, retention_days=RETENTION)
    began = time.perf_counter()
    warm = await tallies.tally(d, now)
    updated = time.perf_counter() - began
    plain = Tally(now, 2)
    await Tallies(redis, low=2, retention_days=RETENTION).count_range(plain, d.start, d.end)
    assert (warm.total, warm.views) == (plain.total, plain.views), "today's updated tally and its tickets disagree"
    print(f"today, {count} tickets: ticket by ticket {by_tickets:.2f} s; from its tally the first time {cold:.2f} s "
          f"(counted and kept); after {minute} new and {minute} changed calls {updated:.3f} s "
          f"({tallies.updated_days} tally brought up to date, {tallies.counted_days} counted; "
          f"ticket by ticket takes ×{by_tickets / updated:.0f} as long)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=20_000, help="tickets of the one day (yesterday)")
    parser.add_argument("--per-day", type=int, default=200, help="tickets on each other day of the year (0: no year)")
    parser.add_argument("--today", type=int, default=20_000, help="tickets received today (0: no today)")
    parser.add_argument("--minute", type=int, default=40, help="new calls, and changed ones, after today's tally")
    asyncio.run(main(parser.parse_args()))

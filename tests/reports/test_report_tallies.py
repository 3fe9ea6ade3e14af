"""Day tallies against a real redis-server on a host clock at UTC+8, with the scripted days of
test_report_cli.py: a day, week, month and year summed from tallies give exactly what counting
every ticket gives (hot spots too); a second report counts no ended day again; a ticket closed
by its department after its day's tally is counted as it is now (that day's tally brought up to
date from the changed tickets alone, no day counted again);
an open case that falls due after the tally is counted 超期 without a recount; two counting at
once store the same tally, kept as long as the day's first tickets."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
import redis.asyncio as aioredis

from ivr.store import keyspace, redis_client
from reports.model import HOT_VIEWS, HotSpot, Period, ReportSettings, Tally, hot_spots, keys, period
from reports.read import read_report
from reports.tallies import KEPT_DAYS, DayTally, Tallies, keep_recent, label
from tests.reports import test_report_cli as scripted
from tests.reports.test_report_cli import CST, D, EXPECTED, at, call, closed_at
from tickets.filters import Filters
from tickets.model import Ticket
from tickets.reads import Selection, TicketReader
from tickets.store import TicketStore

LOW, RETENTION = 2, 30
seeded = scripted.seeded  # the fixture: the CLI test's scripted days, written at UTC+8
SETTINGS = ReportSettings()


@pytest.fixture
async def redis(seeded: None, redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = redis_client(redis_url)
    yield client
    await client.aclose()


def _range(p: Period) -> Selection:
    return Selection(Filters(p.start, p.end, None, None, None, None))


async def by_tickets(redis: aioredis.Redis, p: Period, now: datetime) -> tuple[Tally, list[HotSpot]]:
    """The reference: every ticket of the period and of the one before, one by one."""
    reader, tally = TicketReader(redis), Tally(now, LOW)
    async for batch in reader.batches(_range(p), newest_first=False):
        tally.add(batch)
    before: dict[str, Counter[str]] = {v: Counter() for v in HOT_VIEWS}
    async for batch in reader.batches(_range(p.previous()), newest_first=False):
        for t in batch:
            for view, key in keys(t).items():
                if view in before and key is not None:
                    before[view][key] += 1
    return tally, hot_spots(tally.volumes(), before, SETTINGS)


async def same(redis: aioredis.Redis, kind: str, now: datetime, day: date = D) -> Tally:
    """The report of ``kind`` around ``day`` from tallies, checked against the ticket-by-ticket count."""
    p = period(kind, day)
    report = await read_report(redis, p, SETTINGS, low=LOW, retention_days=RETENTION, now=now)
    tally, hot = await by_tickets(redis, p, now)
    assert (report.tally.total, report.tally.views, report.hot) == (tally.total, tally.views, hot), kind
    return report.tally


async def counted(redis: aioredis.Redis, kind: str, now: datetime, updated: int = 0, day: date = D) -> int:
    """How many days a report of ``kind`` around ``day`` (and its period before) counts from
    tickets now; it brings ``updated`` stale tallies up to date."""
    tallies = Tallies(redis, low=LOW, retention_days=RETENTION)
    p = period(kind, day)
    await tallies.tally(p, now)
    await tallies.tally(p.previous(), now)
    assert tallies.updated_days == updated
    return tallies.counted_days


async def rewrite(redis_url: str, tmp_path: Path, ticket: Ticket, rev: int) -> None:
    """A later write of a ticket, as a department's write-back makes it (unfenced, a higher rev)."""
    store = TicketStore(redis_url, tmp_path / "later-spool", "later", retention_days=RETENTION,
                        caller_key=b"report-cli-test-key")
    try:
        await store.write(ticket, f"workflow:{rev}:t", rev, fenced=False)
        await store.drain()
    finally:
        await store.close()


HAND = EXPECTED["线路"]["合计"]  # calls … satisfied, the CLI test's columns


def hand(row: object) -> tuple[int, ...]:
    names = ("calls", "offered", "answered", "answered_15", "answered_30", "abandoned", "direct", "dispatched",
             "closed_on_time", "closed_late", "overdue", "revisit_due", "revisit_done", "rated", "satisfied")
    return tuple(getattr(row, n) for n in names)


async def test_tallies_give_the_ticket_counts_and_a_later_change_counts_as_it_is_now(
        redis: aioredis.Redis, redis_url: str, tmp_path: Path) -> None:
    now = datetime.now().astimezone()
    assert (await counted(redis, "week", now)) > 0  # the first report of the week counts its days
    for kind in ("day", "week", "month", "year"):
        await same(redis, kind, now)
    assert hand((await same(redis, "day", now)).total) == HAND
    assert await counted(redis, "year", now) == 0  # every ended day is tallied now: none counted again

    # after the tally: the department closes a5 (open and overdue) on time, and a case received on
    # D is dispatched with a deadline still to come
    a5 = call("a5", at(D, "09:40:00"), line="12319", queue="hrss", kind="suggestion", wait=15,
              dept='=HYPERLINK("http://evil.example/","点我")', status="closed", due=(D + timedelta(days=1)).isoformat(),
              rating=4, timeline=closed_at(D + timedelta(days=1)))
    later = datetime.now().astimezone() + timedelta(days=5)
    fresh = call("c1", at(D, "15:00:00"), kind="complaint", wait=3, dept="市城管局", status="dispatched",
                 due=later.date().isoformat())
    await rewrite(redis_url, tmp_path, a5, 21)
    await rewrite(redis_url, tmp_path, fresh, 20)
    assert await redis.hlen(keyspace.report_before(label(D))) == 2  # a5 as it was counted; c1 new
    assert await counted(redis, "week", now, updated=1) == 0  # D's tally brought up to date, no day counted
    assert not await redis.exists(keyspace.report_before(label(D)))
    # c1 handed to another department: its row moves, the old department's row goes with its last ticket
    fresh.department = "市住建局"
    await rewrite(redis_url, tmp_path, fresh, 21)
    assert await counted(redis, "week", now, updated=1) == 0
    assert "市城管局" not in (await same(redis, "day", now)).views["department"]
    total = (await same(redis, "day", now)).total
    assert (total.calls, total.closed_on_time, total.closed_late, total.overdue, total.dispatched) == (
        HAND[0] + 1, HAND[8] + 1, HAND[9], HAND[10] - 1, HAND[7] + 1)

    # a week after its deadline, c1 is 超期 from the same tally: nothing is counted again
    after = later + timedelta(days=2)
    assert (await same(redis, "week", after)).total.overdue == 1
    assert (await same(redis, "day", after)).total.overdue == 1
    assert await counted(redis, "week", after) == 0


async def test_two_counting_at_once_store_one_tally_kept_as_long_as_the_days_tickets(redis: aioredis.Redis) -> None:
    d = period("day", D)
    first, second = Tallies(redis, low=LOW, retention_days=RETENTION), Tallies(redis, low=LOW, retention_days=RETENTION)
    one, two = await asyncio.gather(first.count_day(d), second.count_day(d))
    assert one.to_json() == two.to_json() == await redis.get(keyspace.report_tally(label(D)))
    ttl = await redis.ttl(keyspace.report_tally(label(D)))
    assert abs(ttl - (d.start.timestamp() + RETENTION * 86_400 - time.time())) < 5
    assert await redis.ttl(keyspace.report_changes(label(D))) >= ttl
    # a tally of another satisfaction_low, or one that is not a tally, is counted again
    assert await counted(redis, "day", datetime.now().astimezone()) == 1  # the day before (hot spots); D tallied
    assert await counted(redis, "day", datetime.now().astimezone()) == 0
    [(text, _changes)] = await Tallies(redis, low=LOW, retention_days=RETENTION)._stored([d])
    assert text and DayTally.from_json(text, LOW) is not None and DayTally.from_json(text, LOW + 1) is None
    await redis.set(keyspace.report_tally(label(D)), "{not json")
    assert await counted(redis, "day", datetime.now().astimezone()) == 1


async def test_an_engine_keeps_today_and_the_last_week_tallied(redis: aioredis.Redis) -> None:
    """What the engine's loop does each minute and after midnight (ivr/service.py, the retention lease)."""
    now = datetime.now().astimezone()
    tallies = Tallies(redis, low=LOW, retention_days=RETENTION)
    await keep_recent(tallies, now)
    assert tallies.counted_days == KEPT_DAYS + 1  # D-1, D, D+1 with tickets, the empty days, and today
    assert await redis.exists(*(keyspace.report_tally(label(D + timedelta(days=n))) for n in (-1, 0, 1))) == 3
    assert await redis.exists(keyspace.report_tally(label(now.date())))  # today's too, brought up to date as it goes
    assert await counted(redis, "day", now) == 0
    assert await counted(redis, "day", now, day=now.date()) == 0


def today_call(n: int, **fields: Any) -> Ticket:
    """A call received today, ``n`` s after local midnight (earlier today but for a test run in the first minute)."""
    today = datetime.now(CST).date()
    return call(f"t{n}", (datetime.combine(today, datetime.min.time(), CST) + timedelta(seconds=n)).isoformat(), **fields)


async def test_today_is_kept_from_its_tally_and_counts_as_ticket_by_ticket(
        redis: aioredis.Redis, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Today's tickets keep coming and changing: its report is its tally brought up to date from
    the tickets changed since, never the day counted again, and equals the ticket-by-ticket count."""
    now, today = datetime.now().astimezone(), datetime.now(CST).date()
    name = label(today)
    for n in range(1, 4):
        await rewrite(redis_url, tmp_path, today_call(n, wait=5 * n, rating=n + 2), 1)
    assert await counted(redis, "day", now, day=today) == 2  # today and yesterday (its hot spots), kept
    await same(redis, "day", now, today)
    assert await redis.exists(keyspace.report_tally(name)) and not await redis.exists(keyspace.report_before(name))

    # a new call, and the first dispatched to a department: today's tally brought up to date from those two
    await rewrite(redis_url, tmp_path, today_call(4, queue="", answered=False, disposition="abandoned_ivr"), 1)
    await rewrite(redis_url, tmp_path, today_call(1, wait=5, rating=3, dept="市城管局", status="dispatched",
                                                  due=(today + timedelta(days=3)).isoformat()), 2)
    assert await redis.hlen(keyspace.report_before(name)) == 2
    assert await counted(redis, "day", now, updated=1, day=today) == 0
    total = (await same(redis, "day", now, today)).total
    assert (total.calls, total.dispatched, total.rated) == (4, 1, 3)

    # the tally lost (or of another schema): counted again while calls land in the middle of the
    # count — each ticket taken as it was when the count began, then the day brought up to date
    await redis.delete(keyspace.report_tally(name))
    tallies = Tallies(redis, low=LOW, retention_days=RETENTION)
    reading = tallies.reader.batches

    async def racing(selection: Selection, *, newest_first: bool) -> AsyncIterator[list[Ticket]]:
        async for batch in reading(selection, newest_first=newest_first):
            await rewrite(redis_url, tmp_path, today_call(5, wait=40), 1)  # read before it existed
            await rewrite(redis_url, tmp_path, today_call(2, wait=10, rating=1, dept="市住建局", status="dispatched",
                                                          due=today.isoformat()), 2)  # read as it was
            yield batch

    monkeypatch.setattr(tallies.reader, "batches", racing)
    day = await tallies.count_day(period("day", today))
    assert (tallies.counted_days, tallies.updated_days) == (1, 1)
    assert day.to_json() == await redis.get(keyspace.report_tally(name))
    assert await counted(redis, "day", now, day=today) == 0
    total = (await same(redis, "day", now, today)).total
    assert (total.calls, total.dispatched, total.answered_30) == (5, 2, 3)

    # two counting at once: one keeps the day, the other counts it as it is and keeps nothing
    await redis.delete(keyspace.report_tally(name))
    first, second = Tallies(redis, low=LOW, retention_days=RETENTION), Tallies(redis, low=LOW, retention_days=RETENTION)
    one, two = await asyncio.gather(first.count_day(period("day", today)), second.count_day(period("day", today)))
    assert one.to_json() == two.to_json() == await redis.get(keyspace.report_tally(name))

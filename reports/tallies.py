"""Day tallies: a week, month or year report sums the counts of its ended local days, kept in
Redis, and counts only today (and any day without a valid tally) ticket by ticket.

A day's tally is a function of its tickets alone, so any engine, console or ``ivr stats report``
may count it and two counting at once store the same thing. What changes with time rather than
with the tickets, 超期未办结, is kept as the instants its open cases fall due
(:func:`tickets.workflow.overdue_from`) and resolved when a report is made.

Tickets change after their day: departments close them (按时办结 / 超时办结 is decided by the
closing's time against the deadline, so a write-back that comes later moves the day's count),
callers' ratings arrive, supervisors record 回访. Every write whose doc wins INCRs the received
day's change counter (the ticket script, tickets/store.py); a tally records the counter it was
counted at and is used as it is only while the counter still says that, so a report always
counts every ticket as it is now. While a day has a tally, the script also keeps the doc a ticket
had before its first change since (``ivr:report:before:<day>``): a stale tally is brought up to
date by taking those out and counting the tickets' docs now in, a few tickets instead of the whole
day (department write-backs change days for weeks after them). A tally is stored only when the
counter has not moved during the count (compare and set in one script, which also drops the docs
before), and expires when the day's first tickets do.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterable, cast

import redis.asyncio as aioredis

from ivr.config import Settings
from ivr.store import keyspace
from reports.model import VIEWS, Period, Row, Tally, counts, keys, period
from tickets.filters import Filters
from tickets.model import Ticket
from tickets.reads import Selection, TicketReader
from tickets.workflow import overdue_from

log = logging.getLogger(__name__)
SCHEMA = 1  # bump when what a ticket adds to a tally changes: older tallies are then recounted
FIELDS = tuple(f.name for f in fields(Row))
TOTAL_KEY = ""  # the total's overdue instants, beside the views'

# KEYS[1] the day's change counter, KEYS[2] its tally, KEYS[3] the docs its changed tickets had;
# ARGV[1] the counter's value when the count began, ARGV[2] the tally, ARGV[3] when it expires
# (epoch s). Stored only if no ticket of the day changed meanwhile, and then the docs before are
# done with (the ticket script keeps them anew from the next change); the counter lives at least as
# long as the tally (a counter that expired and counted up again must not meet an old tally).
STORE_TALLY = """
if tonumber(redis.call('GET', KEYS[1]) or '0') ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'EXAT', ARGV[3])
redis.call('DEL', KEYS[3])
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SET', KEYS[1], '0', 'EXAT', ARGV[3])
else
  redis.call('EXPIREAT', KEYS[1], ARGV[3], 'GT')
end
return 1
"""


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _micros(at: datetime) -> int:
    """An aware instant as whole µs since the epoch: exact, so a deadline's instant compares as it does."""
    return (at - EPOCH) // timedelta(microseconds=1)


@dataclass
class DayTally:
    """One day's counts per view, 超期未办结 as instants (µs since the epoch → open cases)."""

    low: int
    changes: int = 0
    views: dict[str, dict[str, Row]] = field(default_factory=lambda: {v: {} for v in VIEWS})
    total: Row = field(default_factory=Row)
    due: dict[str, dict[str, Counter[int]]] = field(default_factory=dict)

    def add(self, tickets: Iterable[Ticket], sign: int = 1) -> None:
        """Count tickets in (``sign`` -1: take out tickets as they were counted, a changed ticket's old doc)."""
        for t in tickets:
            row = counts(t, None, self.low)
            if sign < 0:
                row = Row(**{name: -n for name, n in vars(row).items()})
            since = overdue_from(t)
            self.total.add(row)
            places = [(TOTAL_KEY, TOTAL_KEY)] + [(v, k) for v, k in keys(t).items() if k is not None]
            for view, key in places:
                if view:
                    rows = self.views[view]
                    rows.setdefault(key, Row()).add(row)
                    if not rows[key].calls:  # every ticket counts one call: no ticket left in the row
                        del rows[key]
                if since is not None:
                    due, at = self.due.setdefault(view, {}).setdefault(key, Counter()), _micros(since)
                    due[at] += sign
                    if not due[at]:
                        del due[at]

    def into(self, tally: Tally) -> None:
        """Add this day to a report's tally, 超期未办结 as of the tally's ``now``."""
        now = _micros(tally.now.astimezone())
        tally.total.add(self._resolved(TOTAL_KEY, TOTAL_KEY, self.total, now))
        for view, rows in self.views.items():
            for key, row in rows.items():
                tally.views[view].setdefault(key, Row()).add(self._resolved(view, key, row, now))

    def _resolved(self, view: str, key: str, row: Row, now: int) -> Row:
        due = self.due.get(view, {}).get(key)
        if not due:
            return row
        out = Row(**vars(row))
        out.overdue = sum(n for at, n in due.items() if at <= now)
        return out

    def to_json(self) -> str:
        return json.dumps({
            "schema": SCHEMA, "low": self.low, "changes": self.changes, "total": _row_out(self.total),
            "views": {v: {k: _row_out(r) for k, r in rows.items()} for v, rows in self.views.items() if rows},
            "due": {v: {k: {str(at): n for at, n in c.items()} for k, c in per.items()} for v, per in self.due.items()},
        }, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes, low: int) -> "DayTally | None":
        """The stored tally, or None when it is of another schema or ``low``, or unreadable."""
        try:
            doc = json.loads(text)
            if doc["schema"] != SCHEMA or doc["low"] != low:
                return None
            day = cls(low, int(doc["changes"]), total=_row_in(doc["total"]))
            for view, rows in doc["views"].items():
                if view not in VIEWS:
                    return None
                day.views[view] = {str(k): _row_in(r) for k, r in rows.items()}
            day.due = {str(v): {str(k): Counter({int(at): int(n) for at, n in c.items()}) for k, c in per.items()}
                       for v, per in doc["due"].items()}
            return day
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def _row_out(row: Row) -> list[int]:
    return [getattr(row, name) for name in FIELDS]


def _row_in(values: list[Any]) -> Row:
    if not isinstance(values, list) or len(values) != len(FIELDS):
        raise ValueError("row of another shape")
    return Row(*(int(v) for v in values))


def label(day: date) -> str:
    """A day as the ticket store names it (``yyyymmdd``, the local day a ticket was received)."""
    return f"{day:%Y%m%d}"


def days(p: Period) -> list[Period]:
    """The local days of ``p``, in order."""
    out, day = [], p.start.date()
    while (d := period("day", day, p.start.tzinfo)).start < p.end:
        out.append(d)
        day += timedelta(days=1)
    return out


class Tallies:
    """A report's counts for a period: stored day tallies where valid, tickets otherwise."""

    def __init__(self, redis: aioredis.Redis, *, low: int, retention_days: int):
        self.redis = redis
        self.low = low
        self.retention_s = retention_days * 86_400
        self.reader = TicketReader(redis)
        self._store = redis.register_script(STORE_TALLY)
        self.counted_days = 0  # days counted from tickets by this object (benchmarks, tests)
        self.updated_days = 0  # stale tallies brought up to date from their changed tickets

    async def tally(self, p: Period, now: datetime) -> Tally:
        """The counts of ``p`` as of ``now``: every ended day that may be kept from its tally, the
        rest (days past the retention, today, days to come) from tickets, a range at a time."""
        out = Tally(now, self.low)
        wall = time.time()
        ended = [d for d in days(p) if d.end.timestamp() <= min(now.timestamp(), wall) and self._expiry(d) > wall]
        if not ended:
            await self.count_range(out, p.start, p.end)
            return out
        await self.count_range(out, p.start, ended[0].start)  # too old to keep: their tickets are gone or going
        for d, (text, changes) in zip(ended, await self._stored(ended)):
            day = DayTally.from_json(text, self.low) if text else None  # parsed a day at a time, between yields
            if day is None:
                day = await self.count_day(d)
            elif day.changes != changes:
                day = await self.update_day(d, day)
            day.into(out)
            await asyncio.sleep(0)  # a year is 365 merges: let calls through between days
        await self.count_range(out, ended[-1].end, p.end)
        return out

    async def count_range(self, tally: Tally, since: datetime, until: datetime) -> None:
        """Add the tickets received in [since, until) to ``tally``, one by one."""
        if since < until:
            async for batch in self.reader.batches(_selection(since, until), newest_first=False):
                tally.add(batch)

    def _expiry(self, d: Period) -> int:
        """When a day's tally expires: when its first tickets may (epoch s)."""
        return int(d.start.timestamp()) + self.retention_s

    async def count_day(self, d: Period) -> DayTally:
        """Count an ended day from its tickets and keep it (unless one of them changed meanwhile)."""
        day = DayTally(self.low, await self._changes(d))
        async for batch in self.reader.batches(_selection(d.start, d.end), newest_first=False):
            day.add(batch)
        self.counted_days += 1
        await self._keep(d, day)
        return day

    async def update_day(self, d: Period, day: DayTally) -> DayTally:
        """Bring a stale tally up to date: each ticket changed since is taken out as it was
        counted and counted in as it is now; counted again when the docs before are missing."""
        changes = await self._changes(d)
        before = cast(dict[str, str], await self.redis.hgetall(keyspace.report_before(label(d.start.date()))))
        if not before:  # a change the ticket script could not pin (no tally at that moment)
            return await self.count_day(d)
        ids = sorted(before)
        docs = await self._docs(ids)
        day.add([Ticket.from_json(json.loads(before[i])) for i in ids if before[i]], sign=-1)
        day.add(Ticket.from_json(json.loads(doc)) for doc in docs if doc)
        day.changes = changes
        self.updated_days += 1
        await self._keep(d, day)
        return day

    async def _docs(self, ids: list[str]) -> list[str | None]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for linkedid in ids:
                pipe.hget(keyspace.ticket(linkedid), "doc")
            return cast(list[str | None], await pipe.execute())

    async def _changes(self, d: Period) -> int:
        return int(cast(str | None, await self.redis.get(keyspace.report_changes(label(d.start.date())))) or 0)

    async def _keep(self, d: Period, day: DayTally) -> None:
        """Store a day's tally counted at ``day.changes`` (not for a day still going or too old)."""
        expire_at, name = self._expiry(d), label(d.start.date())
        if expire_at > time.time() and d.end.timestamp() <= time.time():
            await self._store(keys=[keyspace.report_changes(name), keyspace.report_tally(name), keyspace.report_before(name)],
                              args=[day.changes, day.to_json(), expire_at])

    async def _stored(self, ended: list[Period]) -> list[tuple[str | None, int]]:
        """Each day's stored tally (its JSON; None: none) and its change counter now (a tally
        counted at another value is stale): one round trip."""
        if not ended:
            return []
        names = [label(d.start.date()) for d in ended]
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.mget([keyspace.report_tally(n) for n in names])
            pipe.mget([keyspace.report_changes(n) for n in names])
            stored, changes = await pipe.execute()
        return [(cast(str | None, text), int(now or 0)) for text, now in zip(stored, changes)]


def _selection(since: datetime, until: datetime) -> Selection:
    return Selection(Filters(since, until, None, None, None, None))


KEPT_DAYS = 7  # the ended days an engine keeps tallied: yesterday, and the week write-backs change most


async def keep_recent(tallies: Tallies, now: datetime) -> None:
    """Tally the last :data:`KEPT_DAYS` ended days (count a new one, bring a changed one up to date)."""
    today = period("day", now.date(), now.tzinfo)
    await tallies.tally(Period("week", today.start - timedelta(days=KEPT_DAYS), today.start), now)


async def keep_tallies(redis: aioredis.Redis, settings: Callable[[], Settings], interval: float = 3600.0) -> None:
    """The engine's loop (one engine, under the retention lease): just after each local midnight
    and every ``interval`` s, so the office's first report of a morning finds yesterday counted."""
    while True:
        current, now = settings(), datetime.now().astimezone()
        tallies = Tallies(redis, low=current.tickets.satisfaction_low, retention_days=current.tickets.retention_days)
        await keep_recent(tallies, now)
        if tallies.counted_days or tallies.updated_days:
            log.info("report tallies: %d day(s) counted, %d brought up to date", tallies.counted_days, tallies.updated_days)
        midnight = period("day", now.date(), now.tzinfo).end
        await asyncio.sleep(max(1.0, min(interval, (midnight - datetime.now().astimezone()).total_seconds() + 60.0)))

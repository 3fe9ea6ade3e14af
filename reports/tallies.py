"""Day tallies: a week, month or year report sums the counts of its days, kept in Redis, today's
too, and counts ticket by ticket only days past the retention, days to come, and a day no one has
tallied yet (once: the count is kept).

A day's tally is a function of its tickets alone, so any engine, console or ``ivr stats report``
may count it; what changes with time rather than with the tickets, 超期未办结, is kept as the
instants its open cases fall due (:func:`tickets.workflow.overdue_from`) and resolved when a
report is made.

Tickets change after they are tallied: new calls of today, departments closing cases (按时办结 /
超时办结 is decided by the closing's time against the deadline), callers' ratings, 回访. Every write
whose doc wins INCRs the received day's change counter (the ticket script, tickets/store.py); a
tally records the counter it was counted at and is used as it is only while the counter still
says that. While a day's tally key exists, the script also keeps the doc a ticket had before its
first change since (``ivr:report:before:<day>``, '' for a ticket new since): a stale tally is
brought up to date by taking those out and counting the tickets' docs now in — the tickets
changed since, never the whole day again. That is what makes today as cheap as an ended day.

Counting a day while its tickets change (today always does): the counter first puts a
placeholder in the tally key (one script: only over what it found there, so one process counts a
day at a time; it also empties the docs before and reads the counter, ``c0``). From then on the
ticket script pins every changed ticket's doc as it was at ``c0``, so the count reads each ticket
and takes its pinned doc instead where there is one: the day exactly as it was at ``c0``, stored
with ``changes = c0`` over the placeholder (if still ours) and then brought up to date like any
stale tally. Bringing up to date reads the tally, the counter and the docs before in one
transaction and stores only if neither the counter nor the tally moved meanwhile, so two
processes never combine one tally with another's docs before.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
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

# KEYS[1] the day's change counter, KEYS[2] its tally key, KEYS[3] the docs its changed tickets had.
# PIN_DAY: ARGV[1] what the counter found in the tally key ('' nothing), ARGV[2] its placeholder,
# ARGV[3] the placeholder's lifetime (s). Refused (nil) when the key holds anything else (another
# process is counting, or has stored the day); else the counter's value now.
PIN_DAY = """
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[1] then return nil end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
redis.call('DEL', KEYS[3])
return tonumber(redis.call('GET', KEYS[1]) or '0')
"""
# STORE_PINNED: ARGV[1] the placeholder, ARGV[2] the tally (the day at the pin), ARGV[3] when it
# expires (epoch s). The docs before stay (they are what changed since the pin) and live as long.
# STORE_TALLY: ARGV[1] the counter's value the tally is up to date with, ARGV[2] the tally, ARGV[3]
# when it expires, ARGV[4] the tally it was brought up to date from: stored only if neither
# moved, and then the docs before are done with. Both keep the counter at least as long as the
# tally (a counter that expired and counted up again must not meet an old tally).
_COUNTER_LIVES = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SET', KEYS[1], '0', 'EXAT', ARGV[3])
else
  redis.call('EXPIREAT', KEYS[1], ARGV[3], 'GT')
end
return 1
"""
STORE_PINNED = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'EXAT', ARGV[3])
redis.call('EXPIREAT', KEYS[3], ARGV[3])
""" + _COUNTER_LIVES
STORE_TALLY = """
if tonumber(redis.call('GET', KEYS[1]) or '0') ~= tonumber(ARGV[1]) then return 0 end
if redis.call('GET', KEYS[2]) ~= ARGV[4] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'EXAT', ARGV[3])
redis.call('DEL', KEYS[3])
""" + _COUNTER_LIVES
PIN_SECONDS = 900  # a placeholder left by a process that died while counting goes after this


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
        self._pin = redis.register_script(PIN_DAY)
        self._store_pinned = redis.register_script(STORE_PINNED)
        self._store = redis.register_script(STORE_TALLY)
        self.counted_days = 0  # days counted from tickets by this object (benchmarks, tests)
        self.updated_days = 0  # stale tallies brought up to date from their changed tickets

    async def tally(self, p: Period, now: datetime) -> Tally:
        """The counts of ``p`` as of ``now``: every day begun and within the retention from its
        tally (today's too), the rest (days past the retention, days to come) from tickets."""
        out = Tally(now, self.low)
        kept = [d for d in days(p) if self._keeps(d)]
        if not kept:
            await self.count_range(out, p.start, p.end)
            return out
        await self.count_range(out, p.start, kept[0].start)  # too old to keep: their tickets are gone or going
        for d, (text, changes) in zip(kept, await self._stored(kept)):
            day = DayTally.from_json(text, self.low) if text else None  # parsed a day at a time, between yields
            if day is None:
                day = await self.count_day(d, text)
            elif day.changes != changes:
                day = await self.update_day(d)
            day.into(out)
            await asyncio.sleep(0)  # a year is 365 merges: let calls through between days
        await self.count_range(out, kept[-1].end, p.end)
        return out

    async def count_range(self, tally: Tally, since: datetime, until: datetime) -> None:
        """Add the tickets received in [since, until) to ``tally``, one by one."""
        if since < until:
            async for batch in self.reader.batches(_selection(since, until), newest_first=False):
                tally.add(batch)

    def _expiry(self, d: Period) -> int:
        """When a day's tally expires: when its first tickets may (epoch s)."""
        return int(d.start.timestamp()) + self.retention_s

    def _keeps(self, d: Period) -> bool:
        """A day has a tally once it has begun, until its first tickets may expire."""
        return d.start.timestamp() <= time.time() < self._expiry(d)

    async def count_day(self, d: Period, found: str | None = None) -> DayTally:
        """Count a day from its tickets and keep it (``found``: what its tally key held, which
        the count replaces). While another process counts it, count as it is now, keep nothing."""
        name = label(d.start.date())
        keys = [keyspace.report_changes(name), keyspace.report_tally(name), keyspace.report_before(name)]
        placeholder = json.dumps({"counting": uuid.uuid4().hex})
        pinned = await self._pin(keys=keys, args=[found or "", placeholder, PIN_SECONDS]) if self._keeps(d) else None
        self.counted_days += 1
        if pinned is None:
            return await self._count_now(d)
        day = DayTally(self.low, int(pinned))
        async for batch in self.reader.batches(_selection(d.start, d.end), newest_first=False):
            day.add(await self._as_pinned(name, batch))
        if not await self._store_pinned(keys=keys, args=[placeholder, day.to_json(), self._expiry(d)]):
            return await self._count_now(d)  # the placeholder outlived: counted again as it is now
        return await self.update_day(d) if await self._changes(d) != day.changes else day

    async def _count_now(self, d: Period) -> DayTally:
        """A day's tickets as they are now, not kept (another process is counting it)."""
        day = DayTally(self.low, await self._changes(d))
        async for batch in self.reader.batches(_selection(d.start, d.end), newest_first=False):
            day.add(batch)
        return day

    async def _as_pinned(self, name: str, batch: list[Ticket]) -> list[Ticket]:
        """The tickets of a batch as they were at the pin: a doc changed since (read before or
        after its change) gives way to the one the ticket script pinned; one new since is left out."""
        if not batch:
            return batch
        docs = cast(list[str | None], await self.redis.hmget(keyspace.report_before(name), [t.linkedid for t in batch]))
        return [t if doc is None else Ticket.from_json(json.loads(doc)) for t, doc in zip(batch, docs) if doc != ""]

    async def update_day(self, d: Period) -> DayTally:
        """Bring a stale tally up to date: each ticket changed since is taken out as it was
        counted and counted in as it is now; counted again when the docs before are missing."""
        name = label(d.start.date())
        keys = [keyspace.report_changes(name), keyspace.report_tally(name), keyspace.report_before(name)]
        async with self.redis.pipeline(transaction=True) as pipe:  # one moment: the tally with its docs before
            pipe.get(keys[1])
            pipe.get(keys[0])
            pipe.hgetall(keys[2])
            text, now, before = cast(tuple[str | None, str | None, dict[str, str]], await pipe.execute())
        day, changes = DayTally.from_json(text, self.low) if text else None, int(now or 0)
        if day is None or (day.changes != changes and not before):  # a change the ticket script could not pin
            return await self.count_day(d, text)
        if day.changes == changes:
            return day
        ids = sorted(before)
        docs = await self._docs(ids)
        day.add([Ticket.from_json(json.loads(before[i])) for i in ids if before[i]], sign=-1)
        day.add(Ticket.from_json(json.loads(doc)) for doc in docs if doc)
        day.changes = changes
        self.updated_days += 1
        if self._keeps(d):
            await self._store(keys=keys, args=[changes, day.to_json(), self._expiry(d), text or ""])
        return day

    async def _docs(self, ids: list[str]) -> list[str | None]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for linkedid in ids:
                pipe.hget(keyspace.ticket(linkedid), "doc")
            return cast(list[str | None], await pipe.execute())

    async def _changes(self, d: Period) -> int:
        return int(cast(str | None, await self.redis.get(keyspace.report_changes(label(d.start.date())))) or 0)

    async def _stored(self, kept: list[Period]) -> list[tuple[str | None, int]]:
        """Each day's stored tally (its JSON; None: none) and its change counter now (a tally
        counted at another value is stale): one round trip."""
        if not kept:
            return []
        names = [label(d.start.date()) for d in kept]
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.mget([keyspace.report_tally(n) for n in names])
            pipe.mget([keyspace.report_changes(n) for n in names])
            stored, changes = await pipe.execute()
        return [(cast(str | None, text), int(now or 0)) for text, now in zip(stored, changes)]


def _selection(since: datetime, until: datetime) -> Selection:
    return Selection(Filters(since, until, None, None, None, None))


KEPT_DAYS = 7  # the ended days an engine keeps tallied: yesterday, and the week write-backs change most
TODAY_EVERY = 60.0  # s: how often the engine brings today's tally up to date (a report then counts a minute's tickets)


async def keep_recent(tallies: Tallies, now: datetime) -> None:
    """Tally today and the last :data:`KEPT_DAYS` ended days (count a new one, bring a changed one up to date)."""
    today = period("day", now.date(), now.tzinfo)
    await tallies.tally(Period("week", today.start - timedelta(days=KEPT_DAYS), today.end), now)


async def keep_tallies(redis: aioredis.Redis, settings: Callable[[], Settings], interval: float = TODAY_EVERY) -> None:
    """The engine's loop (one engine, under the retention lease): every ``interval`` s and just
    after each local midnight, so a report finds today a minute behind at most and yesterday
    counted (the rest is cheap: a fresh tally is one read)."""
    while True:
        current, now = settings(), datetime.now().astimezone()
        tallies = Tallies(redis, low=current.tickets.satisfaction_low, retention_days=current.tickets.retention_days)
        await keep_recent(tallies, now)
        if tallies.counted_days:
            log.info("report tallies: %d day(s) counted, %d brought up to date", tallies.counted_days, tallies.updated_days)
        midnight = period("day", now.date(), now.tzinfo).end
        await asyncio.sleep(max(1.0, min(interval, (midnight - datetime.now().astimezone()).total_seconds() + 60.0)))

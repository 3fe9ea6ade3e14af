"""Ticket lists and exports read from Redis a batch at a time, never a whole range at once.

The console runs in the engine's process: a list or an export that loaded every ticket of a
month (50,000 and more) and parsed them in one go held the event loop that answers Asterisk's
AGI commands. Here a read walks one index by score (time received), a batch per round trip:
``ivr:tickets:agent:<agent>`` when one seat's tickets are asked for (an agent reads only its
own), else ``ivr:tickets:by-time``; each batch's docs come in one pipeline and are parsed in
small slices with a yield to the loop between them. A page reads one page (and, with filters
the indexes cannot answer — line, type, disposition — only as many batches as fill it); an export
is streamed batch by batch.

The walk's cursor is a score and the ids already seen at that score, so tickets written or
expired meanwhile neither shift nor repeat a row, and tickets received in the same microsecond
are never split between two pages.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import AsyncGenerator, AsyncIterator, cast

import redis.asyncio as aioredis

from ivr.store import keyspace
from tickets.filters import Filters, parse_filters
from tickets.model import Ticket

BATCH = 100  # ids per round trip of an export or a filtered page
PARSE_SLICE = 20  # docs parsed between two yields to the event loop

# The docs of KEYS (ticket hashes) as one JSON array (``null`` for a ticket gone meanwhile): one
# bulk string that json.loads parses at C speed, instead of a reply per ticket parsed in Python
# (a pipeline of 100 HGETs held the loop for milliseconds). The docs are JSON already.
DOCS_AS_JSON = """
local docs = {}
for i, key in ipairs(KEYS) do
  local doc = redis.pcall('HGET', key, 'doc')
  docs[i] = type(doc) == 'string' and doc or 'null'
end
return '[' .. table.concat(docs, ',') .. ']'
"""


@dataclass(frozen=True)
class Selection:
    """What a reader asked for: the filters, and the one seat whose tickets alone are read."""

    filters: Filters
    seat: str | None = None

    @property
    def index(self) -> str:
        return keyspace.agent_tickets(self.seat) if self.seat else keyspace.TICKETS_BY_TIME

    @property
    def by_index_only(self) -> bool:
        """True when the index alone decides (no line, type or disposition to check in the doc)."""
        f = self.filters
        return f.line is None and f.request_type is None and f.disposition is None

    def matches(self, t: Ticket) -> bool:
        # the seat again: an agent's index may still hold a ticket later handed to another seat
        return self.filters.matches(t) and (self.seat is None or t.agent == self.seat)

    def bounds(self) -> tuple[float, float]:
        f = self.filters
        return f.since.timestamp(), f.until.timestamp() if f.until else float("inf")


@dataclass(frozen=True)
class Page:
    """One page, newest first. ``total``: tickets matching in the whole range (None when only
    reading every doc could tell); ``before``: the cursor of the next, older page (None: last)."""

    tickets: list[Ticket]
    total: int | None
    before: float | None


class TicketReader:
    """Paged and streamed reads over the ticket indexes (written by :class:`tickets.store.TicketStore`)."""

    def __init__(self, redis: aioredis.Redis):
        self.redis = redis
        self._docs = redis.register_script(DOCS_AS_JSON)

    async def page(self, selection: Selection, size: int, before: float | None = None) -> Page:
        """The newest ``size`` matching tickets received before ``before`` (or the range's end),
        plus any received in the same instant as the last of them (the next page starts after it)."""
        found: list[tuple[float, Ticket]] = []
        batch = size + 1 if selection.by_index_only else max(BATCH, size + 1)
        walk = self._walk(selection, newest_first=True, batch=batch, before=before)
        async for rows in walk:
            found += rows
            if len(found) >= size:
                break
        await walk.aclose()
        total = await self._total(selection)
        if len(found) <= size:
            return Page([t for _s, t in found], total, None)
        last = found[size - 1][0]
        shown = [(score, t) for score, t in found if score >= last]
        ids = {t.linkedid for _s, t in shown}
        ties = [m for m in cast(list[str], await self.redis.zrangebyscore(selection.index, last, last)) if m not in ids]
        shown += sorted(await self._tickets([(m, last) for m in ties], selection), key=lambda x: x[1].linkedid,
                        reverse=True)
        since = selection.bounds()[0]
        older = await self.redis.zrevrangebyscore(selection.index, f"({last!r}", since, start=0, num=1)
        return Page([t for _s, t in shown], total, last if older else None)

    async def batches(self, selection: Selection, *, newest_first: bool, batch: int = BATCH) -> AsyncIterator[list[Ticket]]:
        """Every matching ticket of the range, a batch at a time (an export)."""
        async for rows in self._walk(selection, newest_first=newest_first, batch=batch):
            yield [t for _s, t in rows]

    async def count(self, selection: Selection) -> tuple[int, int]:
        """(tickets, distinct callers) matching: what an unmasked export will show, for the audit
        line that must be written before its first row."""
        tickets, callers = 0, set[str]()
        async for rows in self.batches(selection, newest_first=False):
            tickets += len(rows)
            callers.update(t.caller for t in rows)
        return tickets, len(callers)

    async def index_agents(self, retention_s: int) -> int:
        """Tickets written before the agent index existed join it: once per Redis (a marker key
        says it is done; new tickets are indexed by the ticket script). How many were added."""
        if await self.redis.exists(keyspace.AGENT_INDEX_BUILT):
            return 0
        everything = Selection(parse_filters("1970-01-02", None, None, None, None, None))
        added = 0
        async for rows in self._walk(everything, newest_first=False, batch=BATCH):
            async with self.redis.pipeline(transaction=False) as pipe:
                for score, t in rows:
                    if t.agent:
                        pipe.zadd(keyspace.agent_tickets(t.agent), {t.linkedid: score})
                        pipe.expire(keyspace.agent_tickets(t.agent), retention_s)
                        added += 1
                await pipe.execute()
        await self.redis.set(keyspace.AGENT_INDEX_BUILT, "1")
        return added

    async def _total(self, selection: Selection) -> int | None:
        if not selection.by_index_only:
            return None
        since, until = selection.bounds()
        return int(await self.redis.zcount(selection.index, since, f"({until!r}" if until != float("inf") else "+inf"))

    async def _walk(self, selection: Selection, *, newest_first: bool, batch: int,
                    before: float | None = None) -> AsyncGenerator[list[tuple[float, Ticket]], None]:
        """(score, ticket) of the matching tickets, one index batch at a time."""
        since, until = selection.bounds()
        if before is not None:
            until = min(until, before)
        # the far end of the walk is fixed; the near end moves: exclusive at first, then the last
        # score seen, inclusive, skipping the ids already seen at that score
        near: str = (f"({until!r}" if until != float("inf") else "+inf") if newest_first else repr(since)
        far: str = repr(since) if newest_first else (f"({until!r}" if until != float("inf") else "+inf")
        seen_at: tuple[float | None, set[str]] = (None, set())
        while True:
            if newest_first:
                raw = await self.redis.zrevrangebyscore(selection.index, near, far, start=0,
                                                        num=batch + len(seen_at[1]), withscores=True)
            else:
                raw = await self.redis.zrangebyscore(selection.index, near, far, start=0,
                                                     num=batch + len(seen_at[1]), withscores=True)
            rows = [(m, float(s)) for m, s in cast(list[tuple[str, float]], raw) if m not in seen_at[1]]
            if not rows:
                return
            last = rows[-1][1]
            ties = {m for m, s in rows if s == last}
            seen_at = (last, ties | seen_at[1] if seen_at[0] == last else ties)
            near = repr(last)
            yield await self._tickets(rows, selection)

    async def _tickets(self, rows: list[tuple[str, float]], selection: Selection) -> list[tuple[float, Ticket]]:
        docs = json.loads(await self._docs(keys=[keyspace.ticket(linkedid) for linkedid, _score in rows]))
        out = []
        for i, ((_id, score), doc) in enumerate(zip(rows, docs)):
            if i and i % PARSE_SLICE == 0:
                await asyncio.sleep(0)  # calls first: parsing a batch must not hold the loop
            if doc:
                ticket = Ticket.from_json(doc)
                if selection.matches(ticket):
                    out.append((score, ticket))
        return out

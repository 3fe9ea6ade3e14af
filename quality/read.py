"""The calls the averages and the sample are made from, read from the tickets in Redis a batch at
a time (tickets/reads.py: the console runs in the engine's process); each ticket is cut down to
what quality/ needs (:class:`quality.model.Call`) at once."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import redis.asyncio as aioredis

from quality.model import Call
from tickets.filters import Filters
from tickets.reads import Selection, TicketReader


async def read_calls(redis: aioredis.Redis, since: datetime, until: datetime) -> list[Call]:
    """The answered calls (a seat took them) received in [since, until)."""
    calls: list[Call] = []
    async for batch in TicketReader(redis).batches(Selection(Filters(since, until, None, None, None, None)),
                                                   newest_first=False):
        calls += [Call.of(t) for t in batch if t.agent]
    return calls


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """A local day as [00:00, next 00:00)."""
    start = datetime.combine(day, time()).astimezone()
    return start, datetime.combine(day + timedelta(days=1), time()).astimezone()

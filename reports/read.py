"""A report counted from the tickets of its period (and the volumes of the period before, for
the hot spots), read from Redis a batch at a time (tickets/reads.py): only counts are kept, so a
month of a big city's tickets never sits in memory at once."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import redis.asyncio as aioredis

from reports.model import HOT_VIEWS, Period, Report, ReportSettings, Tally, hot_spots, keys
from tickets.filters import Filters
from tickets.reads import Selection, TicketReader


def _selection(p: Period) -> Selection:
    return Selection(Filters(p.start, p.end, None, None, None, None))


async def read_report(redis: aioredis.Redis, p: Period, settings: ReportSettings, *, low: int,
                      now: datetime | None = None) -> Report:
    """The report of ``p``; ``low``: the rating at or below which a 回访 is due (tickets.satisfaction_low)."""
    made = now or datetime.now().astimezone()
    reader = TicketReader(redis)
    tally = Tally(made, low)
    async for batch in reader.batches(_selection(p), newest_first=False):
        tally.add(batch)
    before: dict[str, Counter[str]] = {v: Counter() for v in HOT_VIEWS}
    async for batch in reader.batches(_selection(p.previous()), newest_first=False):
        for t in batch:
            for view, key in keys(t).items():
                if view in before and key is not None:
                    before[view][key] += 1
    return Report(p, tally, hot_spots(tally.volumes(), before, settings), made)

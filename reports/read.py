"""A report of a period as of now: its counts from the day tallies of its days, today's too, and
the tickets of the rest (reports/tallies.py), and the volumes of the period before, for the hot
spots, the same way (tallies only, once counted)."""

from __future__ import annotations

from datetime import datetime

import redis.asyncio as aioredis

from reports.model import Period, Report, ReportSettings, hot_spots
from reports.tallies import Tallies


async def read_report(redis: aioredis.Redis, p: Period, settings: ReportSettings, *, low: int, retention_days: int,
                      now: datetime | None = None) -> Report:
    """The report of ``p``; ``low``: the rating at or below which a 回访 is due (tickets.satisfaction_low);
    ``retention_days``: the tickets' (tickets.retention_days), which day tallies are kept as long as."""
    made = now or datetime.now().astimezone()
    tallies = Tallies(redis, low=low, retention_days=retention_days)
    tally = await tallies.tally(p, made)
    before = await tallies.tally(p.previous(), made)
    return Report(p, tally, hot_spots(tally.volumes(), before.volumes(), settings), made)

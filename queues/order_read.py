"""The calls a window's order inversions and collisions are counted from (queues/order.py), read
from the tickets in Redis a batch at a time (tickets/reads.py: the console runs in the engine's
process, and a day of a provincial hotline is tens of thousands of tickets): each batch is cut
down to its queue stays and collisions at once, the tickets themselves are not kept.

An answer can overtake a caller who arrived long before the window, so the read starts
:data:`LOOKBACK` earlier than the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable

import redis.asyncio as aioredis

from queues import order
from tickets.filters import Filters
from tickets.reads import Selection, TicketReader

LOOKBACK = timedelta(hours=3)  # longer than any caller waits in the queues: tickets received this long before count


@dataclass
class Calls:
    """What the counting needs of the tickets read: their queue stays and collisions."""

    stays: list[order.Stay] = field(default_factory=list)
    collisions: list[tuple[str, float]] = field(default_factory=list)

    def report(self, node_names: Iterable[str], since: datetime, until: datetime) -> dict[str, Any]:
        return order.report(self.stays, self.collisions, node_names, since=since, until=until)


async def read_calls(redis: aioredis.Redis, since: datetime, until: datetime, node_names: Iterable[str]) -> Calls:
    """The stays and collisions of the calls that can count in [since, until)."""
    node_of = order.node_by_prefix(node_names)
    selection = Selection(Filters(since - LOOKBACK, until, None, None, None, None))
    calls = Calls()
    async for batch in TicketReader(redis).batches(selection, newest_first=False):
        for t in batch:
            node = node_of(t.linkedid)
            if node:
                calls.stays += order.stays(t, node)
            calls.collisions += order.collisions_of(t)
    return calls

"""Agents' seats in Redis, as the seat follower publishes them."""

from __future__ import annotations

import json
from typing import Any, cast

from ivr.store import keyspace
from ivr.store.client import redis_client
from ivr.store.failover import RedisTarget

class SeatStore:
    """Where agents' seats are published for ``ivr agents`` and the wallboard. Not journaled:
    Asterisk holds the truth and the seat follower rewrites it all after every reconnect."""

    def __init__(self, target: RedisTarget, *, timeout: float = 2.0):
        self.redis = redis_client(target, timeout=timeout)

    async def save(self, seats: dict[str, dict[str, Any]]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(keyspace.SEATS, mapping={a: json.dumps(s, ensure_ascii=False) for a, s in seats.items()})
            for agent in seats:
                pipe.publish(keyspace.SEATS_CHANGED, agent)
            await pipe.execute()

    async def replace(self, seats: dict[str, dict[str, Any]]) -> None:
        """All seats at once (after a reconcile): agents no longer configured disappear."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keyspace.SEATS)
            if seats:
                pipe.hset(keyspace.SEATS, mapping={a: json.dumps(s, ensure_ascii=False) for a, s in seats.items()})
            pipe.publish(keyspace.SEATS_CHANGED, "*")
            await pipe.execute()

    async def all(self) -> dict[str, dict[str, Any]]:
        raw = cast(dict[str, str], await self.redis.hgetall(keyspace.SEATS))
        return {agent: json.loads(text) for agent, text in sorted(raw.items())}

    async def close(self) -> None:
        await self.redis.aclose()

"""Agents' seats in Redis, as the seat followers publish them: each node's follower writes its
own node's view (``ivr:seats:node:<asterisk>``, expiring unless rewritten, so a node that is
gone drops out), and the seats everyone reads (``ivr:seats``) are composed from every node's
(:func:`queues.agents.compose`: the busiest view, and which node the seat talks on)."""

from __future__ import annotations

import json
import time
from typing import Any, cast

from ivr.store import keyspace
from ivr.store.client import redis_client
from ivr.store.failover import RedisTarget
from queues.agents import compose

NODE_VIEW_TTL = 25  # s: a node's view outlives two of its follower's full rewrites (every 10 s)


class SeatStore:
    """Where agents' seats are published for ``ivr agents`` and the wallboard. Not journaled:
    Asterisk holds the truth and the seat follower rewrites it all after every reconnect.
    ``node``: the Asterisk whose view this follower writes ("" for a reader)."""

    def __init__(self, target: RedisTarget, *, timeout: float = 2.0, node: str = ""):
        self.redis = redis_client(target, timeout=timeout)
        self.node = node or "-"

    async def save(self, seats: dict[str, dict[str, Any]]) -> None:
        await self._write_view(seats, whole=False)
        await self._compose(list(seats), whole=False)

    async def replace(self, seats: dict[str, dict[str, Any]]) -> None:
        """All of this node's seats at once (after a reconcile): agents no longer configured
        disappear once no node has them."""
        await self._write_view(seats, whole=True)
        await self._compose(None, whole=True)

    async def drop_node(self, node: str | None = None) -> None:
        """Take a node's view out of the seats (this store's node by default): its engine stops
        following it, or the node is gone; the seats are composed again without it."""
        gone = node or self.node
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keyspace.seats_of_node(gone))
            pipe.srem(keyspace.SEAT_NODES, gone)
            await pipe.execute()
        await self._compose(None, whole=True)

    async def _write_view(self, seats: dict[str, dict[str, Any]], whole: bool) -> None:
        key = keyspace.seats_of_node(self.node)
        async with self.redis.pipeline(transaction=True) as pipe:
            if whole:
                pipe.delete(key)
            if seats:
                pipe.hset(key, mapping={a: json.dumps(s, ensure_ascii=False) for a, s in seats.items()})
            pipe.expire(key, NODE_VIEW_TTL)
            pipe.sadd(keyspace.SEAT_NODES, self.node)
            await pipe.execute()

    async def _compose(self, agents: list[str] | None, whole: bool) -> None:
        """Compose ``agents`` (None: every one any node has) from every live node's view."""
        nodes = sorted(cast(set[str], await self.redis.smembers(keyspace.SEAT_NODES)))
        views: dict[str, dict[str, Any]] = {}
        gone = []
        for node in nodes:
            key = keyspace.seats_of_node(node)
            if agents is None:
                raw = cast(dict[str, str], await self.redis.hgetall(key))
            else:
                raw = {a: v for a, v in zip(agents, cast(list[str | None], await self.redis.hmget(key, agents))) if v}
            if not raw and not await self.redis.exists(key):
                gone.append(node)
            for agent, text in raw.items():
                views.setdefault(agent, {})[node] = json.loads(text)
        now = time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            if gone:
                pipe.srem(keyspace.SEAT_NODES, *gone)
            if whole:
                pipe.delete(keyspace.SEATS)
            if views:
                pipe.hset(keyspace.SEATS, mapping={a: json.dumps(compose(v, now), ensure_ascii=False)
                                                   for a, v in views.items()})
            if whole:
                pipe.publish(keyspace.SEATS_CHANGED, "*")
            else:
                for agent in views:
                    pipe.publish(keyspace.SEATS_CHANGED, agent)
            await pipe.execute()

    async def all(self) -> dict[str, dict[str, Any]]:
        raw = cast(dict[str, str], await self.redis.hgetall(keyspace.SEATS))
        return {agent: json.loads(text) for agent, text in sorted(raw.items())}

    async def close(self) -> None:
        await self.redis.aclose()

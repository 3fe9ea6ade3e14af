"""Seat wishes in Redis (:mod:`queues.wish`): one hash, agent → JSON, and a pub/sub notice per
change for the appliers of every node (:mod:`queues.seat_applier`).

A change is read, decided by :func:`queues.wish.apply` and written only if nobody wrote the
seat in between (its ``seq`` is still the one read: compare-and-set in one script), else it is
decided again on the newer wish. So ``seq`` grows by one per accepted change, and two writers
(two nodes' followers, the CLI, the desk) never lose each other's changes.
"""

from __future__ import annotations

import json
from typing import cast

from ivr.store import keyspace
from ivr.store.client import redis_client
from ivr.store.failover import RedisTarget
from queues.wish import Change, SeatWish, apply

# KEYS[1] the wishes; ARGV agent, the seq read, the new doc, the notice channel. 1 written, 0 not.
SET_IF_SEQ = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local seq = 0
if cur then seq = tonumber(cjson.decode(cur)['seq']) or 0 end
if seq ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[1])
return 1
"""
TRIES = 20  # concurrent writers of one seat are a handful; each retry sees a newer wish


class SeatWishes:
    """The seat wishes in Redis; writes are compare-and-set on the seat's ``seq``."""

    def __init__(self, target: RedisTarget, *, timeout: float = 2.0):
        self.redis = redis_client(target, timeout=timeout)
        self._set = self.redis.register_script(SET_IF_SEQ)

    async def get(self, agent: str) -> SeatWish:
        raw = cast(str | None, await self.redis.hget(keyspace.SEAT_WISHES, agent))
        return SeatWish.from_json(json.loads(raw)) if raw else SeatWish(agent)

    async def all(self) -> dict[str, SeatWish]:
        raw = cast(dict[str, str], await self.redis.hgetall(keyspace.SEAT_WISHES))
        return {agent: SeatWish.from_json(json.loads(text)) for agent, text in sorted(raw.items())}

    async def change(self, agent: str, change: Change) -> SeatWish | None:
        """Apply ``change`` to the agent's wish; the new wish, or None if the stored one is newer
        or already says so. :class:`queues.wish.Refused` passes through."""
        for _ in range(TRIES):
            wish = await self.get(agent)
            new = apply(wish, change)
            if new is None:
                return None
            doc = json.dumps(new.to_json(), ensure_ascii=False, sort_keys=True)
            if await self._set(keys=[keyspace.SEAT_WISHES], args=[agent, wish.seq, doc, keyspace.SEAT_WISH_CHANGED]):
                return new
        raise RuntimeError(f"{agent}: the seat wish kept changing under {TRIES} writes")

    async def close(self) -> None:
        await self.redis.aclose()

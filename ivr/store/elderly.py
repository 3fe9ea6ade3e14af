"""The registered elderly list (:mod:`queues.elderly`) in Redis."""

from __future__ import annotations

import json
from typing import cast

from ivr.store import keyspace
from ivr.store.client import redis_client
from ivr.store.failover import RedisTarget
from queues.elderly import ElderlyEntry

ENTRY_ID_CHARS = 12  # of a digest, shown by `ivr elderly list`: tells entries apart, reveals nothing


class ElderlyList:
    """The elderly register (:mod:`queues.elderly`) in Redis: one hash, digest → JSON of when,
    by whom and why it was added. Numbers are given normalised; only their keyed digests are
    stored, so the hash is useless without ``caller_key``."""

    def __init__(self, target: RedisTarget, caller_key: bytes, *, pool_size: int = 10, timeout: float = 2.0):
        self.redis = redis_client(target, pool_size, timeout)
        self.caller_key = caller_key

    def _digest(self, number: str) -> str:
        return keyspace.caller_digest(number, self.caller_key)

    async def add(self, numbers: list[str], *, added: str, by: str, reason: str) -> int:
        """Register ``numbers``; how many were new (one already there keeps its first entry)."""
        meta = json.dumps({"added": added, "by": by, "reason": reason}, ensure_ascii=False)
        async with self.redis.pipeline(transaction=True) as pipe:
            for number in numbers:
                pipe.hsetnx(keyspace.ELDERLY, self._digest(number), meta)
            return sum(int(r) for r in await pipe.execute())

    async def remove(self, numbers: list[str]) -> int:
        """How many of ``numbers`` were registered (and are no longer)."""
        if not numbers:
            return 0
        return int(await self.redis.hdel(keyspace.ELDERLY, *(self._digest(n) for n in numbers)))

    async def remove_ids(self, ids: list[str]) -> list[str]:
        """Remove entries by the id ``entries`` shows (a number nobody has any more); the full
        digests removed. ValueError, and nothing removed, if an id matches none or several."""
        digests = cast(list[str], await self.redis.hkeys(keyspace.ELDERLY))
        chosen = []
        for entry_id in ids:
            matches = [d for d in digests if d.startswith(entry_id.lower())]
            if len(matches) != 1:
                raise ValueError(f"id {entry_id!r} matches {len(matches) or 'no'} entries" + (": give more of it" if matches else ""))
            chosen.append(matches[0])
        if chosen:
            await self.redis.hdel(keyspace.ELDERLY, *chosen)
        return chosen

    async def contains(self, number: str) -> bool:
        return bool(await self.redis.hexists(keyspace.ELDERLY, self._digest(number)))

    async def entry(self, number: str) -> ElderlyEntry | None:
        raw = cast(str | None, await self.redis.hget(keyspace.ELDERLY, self._digest(number)))
        return _elderly_entry(self._digest(number), raw) if raw else None

    async def count(self) -> int:
        return int(await self.redis.hlen(keyspace.ELDERLY))

    async def entries(self) -> list[ElderlyEntry]:
        """Every entry, oldest first, as :class:`ElderlyEntry` shows it."""
        raw = cast(dict[str, str], await self.redis.hgetall(keyspace.ELDERLY))
        return sorted((_elderly_entry(d, v) for d, v in raw.items()), key=lambda e: (e.added, e.id))

    async def close(self) -> None:
        await self.redis.aclose()


def _elderly_entry(digest: str, value: str) -> ElderlyEntry:
    meta = json.loads(value)
    return ElderlyEntry(digest[:ENTRY_ID_CHARS], str(meta.get("added", "")), str(meta.get("by", "")),
                        str(meta.get("reason", "")))


"""Console users' records in Redis: one hash, user name → JSON (role, seat, argon2 hash), and a
notice on every change so that each console process ends that user's open event streams.

What a user is, and how a password is checked, is the console's (:mod:`console.users`); this
repository only keeps the records, like the sessions beside it (:mod:`ivr.store.sessions`).
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import redis.asyncio as aioredis

from ivr.store import keyspace


class UserRecords:
    """Users by name in one Redis hash (:data:`ivr.store.keyspace.CONSOLE_USERS`)."""

    def __init__(self, redis: aioredis.Redis):
        self.redis = redis

    async def save(self, name: str, record: Mapping[str, Any]) -> None:
        await self.redis.hset(keyspace.CONSOLE_USERS, name, json.dumps(dict(record), ensure_ascii=False))
        await self.changed(name)

    async def get(self, name: str) -> dict[str, Any] | None:
        raw = await self.redis.hget(keyspace.CONSOLE_USERS, name)
        return json.loads(raw) if raw else None

    async def all(self) -> list[dict[str, Any]]:
        return [json.loads(v) for v in (await self.redis.hgetall(keyspace.CONSOLE_USERS)).values()]

    async def remove(self, name: str) -> bool:
        removed = bool(await self.redis.hdel(keyspace.CONSOLE_USERS, name))
        await self.changed(name)
        return removed

    async def changed(self, name: str) -> None:
        """Tell every console process: the user's open event streams end (their sessions no
        longer match, or they signed out); a browser that may still reconnects on its own."""
        await self.redis.publish(keyspace.CONSOLE_USERS_CHANGED, name)

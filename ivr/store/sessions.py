"""Signed-in sessions, in Redis (so several engines share them); the sign-in limits are
console/guard.py's.

A session id is 32 random bytes in an HttpOnly cookie; Redis keeps only its digest
(:func:`ivr.store.keyspace.console_session`) with the user, the session's CSRF token, when it started
and the user's :attr:`~console.users.User.stamp` at sign-in. It ends after ``web.idle_minutes``
unused (the key's TTL, renewed on use), ``web.max_hours`` after sign-in, or as soon as the user
it signed in is no longer the same (password reset, role change, removed and made again).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis

from ivr.config import WebSettings
from ivr.store import keyspace


class SignedIn(Protocol):
    """What a session needs of a user (:class:`console.users.User`): the store sits below the console."""

    @property
    def name(self) -> str: ...

    @property
    def stamp(self) -> str: ...


@dataclass(frozen=True)
class Session:
    id: str  # the cookie value (never stored)
    user: str
    csrf: str
    started: float
    stamp: str = ""  # the user's stamp at sign-in


class SessionStore:
    def __init__(self, redis: aioredis.Redis, web: WebSettings):
        self.redis = redis
        self.idle = web.idle_minutes * 60
        self.max_age = web.max_hours * 3600

    async def create(self, user: SignedIn) -> Session:
        session = Session(secrets.token_urlsafe(32), user.name, secrets.token_urlsafe(32), time.time(), user.stamp)
        key = keyspace.console_session(session.id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"user": session.user, "csrf": session.csrf, "started": str(session.started),
                                    "stamp": session.stamp})
            pipe.expire(key, self.idle)
            await pipe.execute()
        return session

    async def get(self, session_id: str, now: float | None = None) -> Session | None:
        """The live session of that cookie (its idle timer renewed), or None."""
        key = keyspace.console_session(session_id)
        raw: dict[str, str] = await self.redis.hgetall(key)  # type: ignore[assignment]  # decode_responses=True
        if not raw:
            return None
        started = float(raw["started"])
        if (now or time.time()) - started > self.max_age:
            await self.redis.delete(key)
            return None
        await self.redis.expire(key, self.idle)
        return Session(session_id, raw["user"], raw["csrf"], started, raw.get("stamp", ""))

    async def delete(self, session_id: str) -> None:
        await self.redis.delete(keyspace.console_session(session_id))

"""Signed-in sessions and the sign-in rate limit, both in Redis (so several engines share them).

A session id is 32 random bytes in an HttpOnly cookie; Redis keeps only its digest
(:func:`ivr.keyspace.console_session`) with the user, the session's CSRF token and when it
started. It ends after ``web.idle_minutes`` unused (the key's TTL, renewed on use) or
``web.max_hours`` after sign-in, whichever is first.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from ivr import keyspace
from ivr.config import WebSettings


@dataclass(frozen=True)
class Session:
    id: str  # the cookie value (never stored)
    user: str
    csrf: str
    started: float


class SessionStore:
    def __init__(self, redis: aioredis.Redis, web: WebSettings):
        self.redis = redis
        self.idle = web.idle_minutes * 60
        self.max_age = web.max_hours * 3600

    async def create(self, user: str) -> Session:
        session = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32), time.time())
        key = keyspace.console_session(session.id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"user": session.user, "csrf": session.csrf, "started": str(session.started)})
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
        return Session(session_id, raw["user"], raw["csrf"], started)

    async def delete(self, session_id: str) -> None:
        await self.redis.delete(keyspace.console_session(session_id))


class LoginLimiter:
    """At most ``web.login_attempts`` failed sign-ins per user and address in ``web.login_lockout``
    seconds; then that pair is refused until the window ends (a success clears it)."""

    def __init__(self, redis: aioredis.Redis, web: WebSettings):
        self.redis = redis
        self.attempts = web.login_attempts
        self.window = web.login_lockout

    async def locked(self, user: str, address: str) -> bool:
        count = await self.redis.get(keyspace.console_login_fails(user, address))
        return int(count or 0) >= self.attempts

    async def failed(self, user: str, address: str) -> None:
        key = keyspace.console_login_fails(user, address)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, self.window, nx=True)  # the window starts at the first failure
            await pipe.execute()

    async def clear(self, user: str, address: str) -> None:
        await self.redis.delete(keyspace.console_login_fails(user, address))

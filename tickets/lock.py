"""One person's read-change-write of a stored ticket at a time, across every console of a cluster.

A department's write-back and a supervisor's quality score each read a closed ticket, change it and
write it back as the next revision. Two of them at once would both name the same revision and one
change would be lost, so each holds this Redis lock (``ivr:tickets:lock:<linkedid>``, with a token:
freed only by its holder, and by itself after LOCK_MS if its console dies). Such writes are made
without the follow lease's token (``fenced=False``), so a stand-by engine's console can make them."""

from __future__ import annotations

import asyncio
import secrets
import time

import redis.asyncio as aioredis

from ivr.store import keyspace

LOCK_MS = 10_000  # a console that dies holding a ticket's lock frees it after this
LOCK_WAIT = 3.0  # s a writer waits for another's change of the same ticket

# KEYS[1] the lock; ARGV its token: delete only if still ours.
UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class TicketBusy(RuntimeError):
    """Another console kept the ticket longer than LOCK_WAIT: the caller answers 'try again'."""


class TicketLock:
    """``async with TicketLock(redis, linkedid):`` the ticket is this writer's until the block ends."""

    def __init__(self, redis: aioredis.Redis, linkedid: str):
        self.redis, self.key, self.token = redis, keyspace.ticket_lock(linkedid), secrets.token_hex(8)

    async def __aenter__(self) -> None:
        deadline = time.monotonic() + LOCK_WAIT
        while not await self.redis.set(self.key, self.token, nx=True, px=LOCK_MS):
            if time.monotonic() > deadline:
                raise TicketBusy(self.key)
            await asyncio.sleep(0.05)

    async def __aexit__(self, *exc: object) -> None:
        await self.redis.eval(UNLOCK, 1, self.key, self.token)

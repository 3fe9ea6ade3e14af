"""A write that is not the call follower's (a department's write-back) lands through a store
whose engine holds no follow lease; the follower's own writes through it are still fenced out
(real redis-server)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis.asyncio as aioredis

from tickets.model import Ticket
from tickets.store import TicketStore


def test_a_store_without_the_lease_refuses_fenced_writes_and_takes_unfenced_ones(redis_url: str, tmp_path: Path) -> None:
    async def go() -> tuple[str, str]:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        await client.set("test:fence", 5)  # another engine holds the lease with token 5
        store = TicketStore(redis_url, tmp_path, "standby", retention_days=1, caller_key=b"k" * 16, timeout=1.0)
        store.fenced_by("test:fence", lambda: 0)  # this engine holds none
        t = Ticket(linkedid="1.9", line="12345", caller="13900000009", received="2026-12-07T09:00:00+08:00")
        try:
            t.status = "handling"
            await store.write(t, "workflow:21:aa", 21)
            await store.drain()
            refused = await store.get("1.9")
            await store.write(t, "workflow:21:bb", 21, fenced=False)
            await store.drain()
            stored = await store.get("1.9")
            return refused.status if refused else "none", stored.status if stored else "none"
        finally:
            await store.close()
            await client.aclose()

    assert asyncio.run(go()) == ("none", "handling")

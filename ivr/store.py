"""The one place that talks to Redis and owns its key schema.

Keys:
  ``ivr:call:<unique_id>``  JSON call record (what the caller heard and pressed, the route)
  ``ivr:calls``             stream of call records in arrival order (for the ticket workflow)
  ``ivr:engine:<host:port>`` hash: the flow version live in that engine, last reload outcome

A dead Redis must never lose a record: writes that fail go to an append-only spool file and
are replayed, in order, once Redis answers again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CALL_KEY = "ivr:call:{}"
CALL_STREAM = "ivr:calls"
STREAM_MAXLEN = 1_000_000
ENGINE_KEY = "ivr:engine:{}"


class CallStore:
    def __init__(self, url: str, spool: Path, *, pool_size: int = 20, timeout: float = 2.0):
        self.redis = aioredis.Redis.from_url(
            url, max_connections=pool_size, socket_timeout=timeout, socket_connect_timeout=timeout,
            decode_responses=True,
        )
        self.spool = spool
        self._lock = asyncio.Lock()

    async def save_call(self, record: dict[str, Any]) -> None:
        """Persist a call record; on Redis failure keep it in the spool."""
        line = json.dumps(record, ensure_ascii=False, default=str)
        async with self._lock:
            if self.spool.exists() or not await self._write(line):
                self._append_spool(line)

    async def _write(self, line: str) -> bool:
        record = json.loads(line)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:  # one round trip, no MULTI
                pipe.set(CALL_KEY.format(record["unique_id"]), line)
                pipe.xadd(CALL_STREAM, {"record": line}, maxlen=STREAM_MAXLEN, approximate=True)
                await pipe.execute()
            return True
        except (RedisError, OSError) as exc:
            log.warning("Redis unavailable, spooling call record %s: %s", record.get("unique_id"), exc)
            return False

    def _append_spool(self, line: str) -> None:
        self.spool.parent.mkdir(parents=True, exist_ok=True)
        with open(self.spool, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    async def flush_spool(self) -> int:
        """Replay spooled records in order; return how many reached Redis."""
        async with self._lock:
            if not self.spool.exists():
                return 0
            lines = [ln for ln in self.spool.read_text(encoding="utf-8").splitlines() if ln.strip()]
            done = 0
            for line in lines:
                if not await self._write(line):
                    break
                done += 1
            rest = lines[done:]
            if rest:
                self.spool.write_text("".join(ln + "\n" for ln in rest), encoding="utf-8")
            else:
                self.spool.unlink()
            return done

    async def run_spool_flusher(self, interval: float = 2.0) -> None:
        while True:
            await asyncio.sleep(interval)
            if self.spool.exists():
                n = await self.flush_spool()
                if n:
                    log.info("replayed %d spooled call records into Redis", n)

    async def publish_engine_status(self, engine: str, status: dict[str, str]) -> None:
        """Which flow version an engine runs, so admins (and `ivr reload`) can see it."""
        try:
            await self.redis.hset(ENGINE_KEY.format(engine), mapping=dict(status))  # type: ignore[arg-type]
        except (RedisError, OSError) as exc:
            log.warning("could not publish engine status: %s", exc)

    async def engine_status(self, engine: str) -> dict[str, str]:
        status = await self.redis.hgetall(ENGINE_KEY.format(engine))
        return cast(dict[str, str], status)  # decode_responses=True: keys and values are str

    async def engine_status_or_none(self, engine: str) -> dict[str, str] | None:
        """The published status, or None when Redis does not answer."""
        try:
            return await self.engine_status(engine)
        except (RedisError, OSError):
            return None

    async def get_call(self, unique_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(CALL_KEY.format(unique_id))
        return json.loads(raw) if raw else None

    async def close(self) -> None:
        await self.redis.aclose()

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
    """Call records and engine status in Redis.

    Each writer spools to its own file in ``spool_dir`` (``calls-<name>.jsonl``): the engine
    server, and every process-AGI process. The server's flusher replays all of them; a line
    that is not a record (a write cut short by a crash) goes to ``calls.bad`` for a human,
    never stopping the replay.
    """

    def __init__(self, url: str, spool_dir: Path, name: str, *, pool_size: int = 20, timeout: float = 2.0):
        self.redis = aioredis.Redis.from_url(
            url, max_connections=pool_size, socket_timeout=timeout, socket_connect_timeout=timeout,
            decode_responses=True,
        )
        self.spool_dir = spool_dir
        self.spool = spool_dir / f"calls-{name}.jsonl"
        self._lock = asyncio.Lock()

    async def save_call(self, record: dict[str, Any]) -> None:
        """Persist a call record; on Redis failure keep it in the spool."""
        line = json.dumps(record, ensure_ascii=False, default=str)
        async with self._lock:
            # while older records wait in the spool, newer ones queue behind them (order)
            if self.spool.exists() or not await self._write(line):
                self._append(self.spool, line)

    async def _write(self, line: str) -> bool:
        """One record into Redis; False when Redis is unavailable. ``line`` must be a record."""
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

    @staticmethod
    def _append(path: Path, line: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    async def flush_spool(self) -> int:
        """Replay every spool file (this writer's and others'); return how many reached Redis."""
        done = 0
        async with self._lock:
            if self.spool.exists():
                n, rest = await self._replay(self.spool.read_text(encoding="utf-8").splitlines())
                done += n
                if rest:
                    self.spool.write_text("".join(ln + "\n" for ln in rest), encoding="utf-8")
                else:
                    self.spool.unlink()
        for other in sorted(self.spool_dir.glob("calls-*.jsonl"), key=lambda p: p.stat().st_mtime):
            if other == self.spool:
                continue
            claimed = other.with_name(other.name + f".{os.getpid()}.replaying")
            try:
                other.rename(claimed)  # atomic: no second flusher replays it too
            except FileNotFoundError:
                continue
            n, rest = await self._replay(claimed.read_text(encoding="utf-8").splitlines())
            done += n
            for line in rest:  # Redis went away again: they wait in our own spool
                async with self._lock:
                    self._append(self.spool, line)
            claimed.unlink()
        return done

    async def _replay(self, lines: list[str]) -> tuple[int, list[str]]:
        """Write lines in order until Redis fails; return (written, the lines not written)."""
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                json.loads(line)["unique_id"]
            except (ValueError, TypeError, KeyError):
                log.error("spooled line is not a call record; kept in %s", self.spool_dir / "calls.bad")
                self._append(self.spool_dir / "calls.bad", line)
                continue
            if not await self._write(line):
                return i, lines[i:]
        return len(lines), []

    async def run_spool_flusher(self, interval: float = 2.0) -> None:
        while True:
            await asyncio.sleep(interval)
            if any(self.spool_dir.glob("calls-*.jsonl")):
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

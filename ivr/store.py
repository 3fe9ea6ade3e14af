"""The one place that talks to Redis and owns its key schema.

Keys:
  ``ivr:call:<unique_id>``  JSON call record (what the caller heard and pressed, the route)
  ``ivr:calls``             stream of call records in arrival order (for the ticket workflow)
  ``ivr:engine:<host:port>`` hash: the flow version live in that engine, last reload outcome

No record is ever lost to a dead Redis or a dead writer: every record is first appended to the
writer's journal file (a plain ``write``: it survives the writer's own crash), then written to
Redis in a group commit (all records of a short window share one round trip, which is most of
what a record costs the engine). The journal goes once Redis holds everything in it. While
Redis is down records only go to the journal, and are replayed from it, in order, once Redis
answers again; journals left by writers that died (an engine crash, a process-AGI call) are
replayed the same way by the engine server.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CALL_KEY = "ivr:call:{}"
CALL_STREAM = "ivr:calls"
STREAM_MAXLEN = 1_000_000
ENGINE_KEY = "ivr:engine:{}"
MAX_BATCH = 500  # records per script call: a long backlog goes in several, never one huge one
STALE_EMPTY_JOURNAL = 60.0  # s: an empty journal this old was left by a writer that died at once

# A batch of records in one script call (one command and one reply per group commit, the
# script sent by its SHA): KEYS[1] the stream, KEYS[2..] the records' keys, ARGV[1] the
# stream's MAXLEN, ARGV[2..] the records. Each record is stored under its key and added to
# the stream; per record 1 stored, 0 already there, -1 its key holds another type (that record
# is refused). A lone -2 instead of the list: the stream key holds another type, nothing was
# written. A record replayed after it already reached Redis (the writer died between the write
# and removing its journal) finds its identical copy and is not streamed twice; a different
# record under the same id is.
SAVE_RECORDS = """
local stream_type = redis.call('TYPE', KEYS[1]).ok
if stream_type ~= 'none' and stream_type ~= 'stream' then return -2 end
local results = {}
for i = 2, #KEYS do
  local key, record = KEYS[i], ARGV[i]
  local key_type = redis.call('TYPE', key).ok
  if key_type ~= 'none' and key_type ~= 'string' then
    results[i - 1] = -1
  elseif key_type == 'string' and redis.call('GET', key) == record then
    results[i - 1] = 0
  else
    redis.call('SET', key, record)
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'record', record)
    results[i - 1] = 1
  end
end
return results
"""
REFUSED, STREAM_BROKEN = -1, -2


class CallStore:
    """Call records and engine status in Redis.

    Each writer (the engine server, every process-AGI process) journals to its own file,
    ``calls-<name>.<pid>.<random>.jsonl`` in ``spool_dir`` (unique across pid reuse and
    containers sharing the directory), and holds an exclusive ``flock`` on it while it is
    open: a flusher replays only journals it can lock, i.e. whose writer is gone, and holds the
    lock while it does. ``flush_delay`` is the group-commit window in seconds (0: write each
    record at once). A journal line that is not a record (a write cut short by a crash) goes to
    ``calls.bad`` for a human, never stopping a replay.
    """

    def __init__(self, url: str, spool_dir: Path, name: str, *, pool_size: int = 20, timeout: float = 2.0,
                 flush_delay: float = 0.0):
        self.redis = aioredis.Redis.from_url(
            url, max_connections=pool_size, socket_timeout=timeout, socket_connect_timeout=timeout,
            decode_responses=True,
        )
        self._save_records = self.redis.register_script(SAVE_RECORDS)
        self.spool_dir = spool_dir
        self.journal = spool_dir / f"calls-{name}.{os.getpid()}.{secrets.token_hex(4)}.jsonl"
        self.flush_delay = flush_delay
        self._fd: int | None = None
        self._pending: list[tuple[str, str]] = []  # (unique_id, line): journaled, not yet in Redis
        # True while the journal holds records Redis does not have (an outage): new records
        # then only queue behind them on disk, and the flusher replays them in order.
        self._journal_only = False
        self._lock = asyncio.Lock()  # one writer to Redis at a time: records keep their order
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    async def save_call(self, record: dict[str, Any]) -> None:
        """Journal the record and queue it for Redis; returns without waiting for Redis."""
        line = json.dumps(record, ensure_ascii=False, default=str)
        self._append_journal(line, record["unique_id"])
        if self._journal_only:
            return  # the flusher replays it behind the older ones
        self._pending.append((record["unique_id"], line))
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._run_writer())
        self._wake.set()

    def _append_journal(self, line: str, unique_id: str) -> None:
        try:
            if self._fd is None:
                self.spool_dir.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    # ours alone: flushers leave it be (one may hold a new empty journal for an
                    # fstat, never longer, so this waits at most that long)
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except OSError:
                    os.close(fd)
                    raise
                self._fd = fd
            os.write(self._fd, (line + "\n").encode("utf-8"))  # one append: whole, or an error
            if self._journal_only:
                os.fsync(self._fd)  # Redis is down: the disk is the only copy
        except OSError as exc:  # Redis may still take it; if not, the log says which record
            log.error("cannot journal call record %s in %s: %s", unique_id, self.journal, exc)

    def _retire_journal(self) -> None:
        """Redis holds everything the journal holds: remove it (never awaited: no record can
        be journaled between the check that led here and the unlink)."""
        self.journal.unlink(missing_ok=True)  # before letting go of the lock: nobody claims it
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._journal_only = False

    async def _run_writer(self) -> None:
        while True:
            await self._wake.wait()
            if self.flush_delay > 0:
                await asyncio.sleep(self.flush_delay)  # the window: later records share the trip
            self._wake.clear()
            try:
                await self.drain()
            except Exception:  # noqa: BLE001 - the writer must outlive any one failure
                log.exception("call record writer failed; records stay in %s for the flusher", self.journal)
                self._journal_only, self._pending = True, []

    async def drain(self) -> None:
        """Write every queued record to Redis now; if Redis fails they wait in the journal."""
        async with self._lock:
            while self._pending and not self._journal_only:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                try:
                    written = await self._write(batch)
                except BaseException:  # cancelled (shutdown) mid-write: the batch is still due
                    self._pending[:0] = batch
                    raise
                if written is None:
                    self._journal_only = True  # all of them are in the journal, in order
                    self._pending = []
            if not self._pending and not self._journal_only and self._fd is not None:
                self._retire_journal()

    async def _write(self, batch: list[tuple[str, str]]) -> int | None:
        """Records into Redis in one round trip; how many were new, or None when Redis fails
        (down, out of memory, read-only, ...: the records stay in their journal).

        A record whose own key holds another type is set aside in ``calls.bad`` with an
        error, so that one bad key cannot hold up every later record."""
        keys = [CALL_STREAM, *(CALL_KEY.format(unique_id) for unique_id, _line in batch)]
        args: list[str | int] = [STREAM_MAXLEN, *(line for _unique_id, line in batch)]
        try:
            results = await self._save_records(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            log.warning("Redis unavailable, %d call record(s) kept in %s: %s", len(batch), self.spool_dir, exc)
            return None
        if results == STREAM_BROKEN:
            log.error("%s in Redis is not a stream; %d call record(s) kept in %s", CALL_STREAM, len(batch), self.spool_dir)
            return None
        refused = [(unique_id, line) for (unique_id, line), r in zip(batch, results) if r == REFUSED]
        for unique_id, _line in refused:
            log.error("%s in Redis is not a string: call record %s kept in %s",
                      CALL_KEY.format(unique_id), unique_id, self.spool_dir / "calls.bad")
        self._set_aside([line for _unique_id, line in refused])
        return sum(1 for r in results if r == 1)

    async def flush_spool(self) -> int:
        """Replay journals into Redis: ours after an outage, then those of writers that are
        gone. Returns how many records reached Redis."""
        await self.drain()
        done = 0
        async with self._lock:
            if self._journal_only:
                n = await self._replay_own_journal()
                if n is None:
                    return done
                done += n
            for path in self._other_journals():
                n = await self._replay_orphan(path)
                if n is None:
                    return done
                done += n
        return done

    async def _replay_own_journal(self) -> int | None:
        done, offset = 0, 0
        while True:
            try:
                with open(self.journal, "rb") as f:
                    f.seek(offset)
                    data = f.read()
            except FileNotFoundError:
                data = b""
            if not data:  # caught up; nothing was awaited since the read
                self._retire_journal()
                return done
            n = await self._replay(data)
            if n is None:
                return None
            done, offset = done + n, offset + len(data)

    def _other_journals(self) -> list[Path]:
        """Other writers' journals and claims, oldest first (whether their writer is gone is
        decided by the lock, when each is replayed)."""
        found = [p for p in self.spool_dir.glob("calls-*") if p != self.journal
                 and (p.name.endswith(".jsonl") or p.name.endswith(".replaying"))]
        return sorted(found, key=_mtime)

    async def _replay_orphan(self, path: Path) -> int | None:
        """Replay one journal whose writer is gone (0 if it is still alive); None if Redis fails."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return 0
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # its writer (or another flusher) holds it
            stat = os.fstat(fd)
            if stat.st_nlink == 0:
                return 0  # replayed and removed while we waited for it
            if stat.st_size == 0 and time.time() - stat.st_mtime < STALE_EMPTY_JOURNAL:
                return 0  # a writer between creating and locking it
            claimed = path if path.name.endswith(".replaying") else path.with_name(path.name + ".replaying")
            try:
                path.rename(claimed)  # a crash from here on leaves a claim, replayed the same way
            except FileNotFoundError:
                return 0  # another flusher claimed it between our open and our lock
            with os.fdopen(os.dup(fd), "rb") as f:
                n = await self._replay(f.read())
            if n is not None:
                claimed.unlink()
            return n
        finally:
            os.close(fd)

    async def _replay(self, data: bytes) -> int | None:
        """Write journal lines in order; None when Redis fails (they stay in their file)."""
        batch, bad = [], []
        for line in data.decode("utf-8", errors="replace").split("\n"):
            if not line.strip():
                continue
            try:
                unique_id = json.loads(line)["unique_id"]
                batch.append((str(unique_id), line))
            except (ValueError, TypeError, KeyError):
                bad.append(line)
        done = 0
        for start in range(0, len(batch), MAX_BATCH):
            n = await self._write(batch[start:start + MAX_BATCH])
            if n is None:
                return None
            done += n
        if bad:
            log.error("%d journal line(s) are not call records; kept in %s", len(bad), self.spool_dir / "calls.bad")
            self._set_aside(bad)
        return done

    def _set_aside(self, lines: list[str]) -> None:
        if lines:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            with open(self.spool_dir / "calls.bad", "a", encoding="utf-8") as f:
                f.writelines(line + "\n" for line in lines)

    async def run_spool_flusher(self, interval: float = 2.0) -> None:
        """Replay journals now (those a crashed predecessor left), then every ``interval`` s."""
        while True:
            if self._journal_only or self._other_journals():
                n = await self.flush_spool()
                if n:
                    log.info("replayed %d journaled call records into Redis", n)
            await asyncio.sleep(interval)

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
        """Write what is queued (what Redis does not take stays journaled), then let go."""
        await self.drain()
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        await self.redis.aclose()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0

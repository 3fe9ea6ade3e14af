"""Records that must never be lost: journaled on disk first, then group-committed to Redis.

No record is ever lost to a dead Redis or a dead writer: every record is first appended to the
writer's journal file (a plain ``write``: it survives the writer's own crash), then written to
Redis in a group commit (all records of a short window share one round trip, which is most of
what a record costs the engine). The journal goes once Redis holds everything in it. While
Redis is down records only go to the journal, and are replayed from it, in order, once Redis
answers again; journals left by writers that died (an engine crash, a process-AGI call) are
replayed the same way by the engine server.

:class:`JournaledWriter` is the mechanism; :mod:`ivr.store` says what a record is (a call
record, a ticket write) and how a batch reaches Redis. Replays must be idempotent there: a
writer may die between its write and removing its journal.
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
from typing import Any

log = logging.getLogger(__name__)

MAX_BATCH = 500  # records per write: a long backlog goes in several, never one huge one
STALE_EMPTY_JOURNAL = 60.0  # s: an empty journal this old was left by a writer that died at once


class JournaledWriter:
    """Records journaled on disk first, then group-committed by :meth:`_write` (a subclass's).

    Each writer (the engine server, every process-AGI process) journals to its own file,
    ``<kind>-<name>.<pid>.<random>.jsonl`` in ``spool_dir`` (unique across pid reuse and
    containers sharing the directory), and holds an exclusive ``flock`` on it while it is
    open: a flusher replays only journals it can lock, i.e. whose writer is gone, and holds the
    lock while it does. ``flush_delay`` is the group-commit window in seconds (0: write each
    record at once). A journal line that is not a record (a write cut short by a crash) goes to
    ``<kind>.bad`` for a human, never stopping a replay.
    """

    kind = "records"  # journal file prefix, and the name of the set-aside file
    id_field = "id"  # the field that names a record in logs

    def __init__(self, spool_dir: Path, name: str, *, flush_delay: float = 0.0):
        self.spool_dir = spool_dir
        self.journal = spool_dir / f"{self.kind}-{name}.{os.getpid()}.{secrets.token_hex(4)}.jsonl"
        self.flush_delay = flush_delay
        self._fd: int | None = None
        # (unique_id, line): journaled, not yet in Redis; a line is its journal bytes (UTF-8,
        # without the newline), encoded once: the group commit sends those very bytes
        self._pending: list[tuple[str, bytes]] = []
        # True while the journal holds records Redis does not have (an outage): new records
        # then only queue behind them on disk, and the flusher replays them in order.
        self._journal_only = False
        self._lock = asyncio.Lock()  # one writer to Redis at a time: records keep their order
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    @property
    def backlog(self) -> int:
        """Records journaled and queued for Redis, not yet written there (for /metrics)."""
        return len(self._pending)

    @property
    def journal_only(self) -> bool:
        """Redis is out: new records wait on disk only, for the flusher to replay."""
        return self._journal_only

    async def save(self, record: dict[str, Any]) -> None:
        """Journal the record and queue it for Redis; returns without waiting for Redis."""
        self.save_nowait(record)

    def save_nowait(self, record: dict[str, Any]) -> None:
        """:meth:`save` for callbacks that cannot await (it never waits anyway): the journal
        append is one ``write``, the Redis write is the writer task's."""
        self.save_line(json.dumps(record, ensure_ascii=False, default=str), str(record[self.id_field]))

    def save_line(self, line: str, record_id: str) -> None:
        """:meth:`save_nowait` of a record its writer encoded itself (one JSON object, one line)."""
        data = line.encode("utf-8")
        self._append_journal(data, record_id)
        if self._journal_only:
            return  # the flusher replays it behind the older ones
        self._pending.append((record_id, data))
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._run_writer())
        self._wake.set()

    def _append_journal(self, line: bytes, unique_id: str) -> None:
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
            os.write(self._fd, line + b"\n")  # one append: whole, or an error
            if self._journal_only:
                os.fsync(self._fd)  # Redis is down: the disk is the only copy
        except OSError as exc:  # Redis may still take it; if not, the log says which record
            log.error("cannot journal %s record %s in %s: %s", self.kind, unique_id, self.journal, exc)

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
            except Exception:
                log.exception("%s writer failed; records stay in %s for the flusher", self.kind, self.journal)
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

    async def _write(self, batch: list[tuple[str, bytes]]) -> int | None:
        """Write (id, line) records to Redis in one round trip; how many were new, or None when
        Redis fails (the records stay in their journal). A record Redis refuses for good goes
        to :meth:`_set_aside`, so that it cannot hold up every later one."""
        raise NotImplementedError

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
        found = [p for p in self.spool_dir.glob(f"{self.kind}-*") if p != self.journal
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
        batch: list[tuple[str, bytes]] = []
        bad: list[bytes] = []
        for line in data.decode("utf-8", errors="replace").split("\n"):
            if not line.strip():
                continue
            try:
                unique_id = json.loads(line)[self.id_field]
                batch.append((str(unique_id), line.encode("utf-8")))
            except (ValueError, TypeError, KeyError):
                bad.append(line.encode("utf-8"))
        done = 0
        for start in range(0, len(batch), MAX_BATCH):
            n = await self._write(batch[start:start + MAX_BATCH])
            if n is None:
                return None
            done += n
        if bad:
            log.error("%d journal line(s) are not %s records; kept in %s", len(bad), self.kind, self.bad_file)
            self._set_aside(bad)
        return done

    @property
    def bad_file(self) -> Path:
        return self.spool_dir / f"{self.kind}.bad"

    def _set_aside(self, lines: list[bytes]) -> None:
        if lines:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            with open(self.bad_file, "ab") as f:
                f.writelines(line + b"\n" for line in lines)

    async def run_spool_flusher(self, interval: float = 2.0) -> None:
        """Replay journals now (those a crashed predecessor left), then every ``interval`` s."""
        while True:
            if self._journal_only or self._other_journals():
                n = await self.flush_spool()
                if n:
                    log.info("replayed %d journaled %s records into Redis", n, self.kind)
            await asyncio.sleep(interval)

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


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0

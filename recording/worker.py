"""The engine's recording worker: after a call, its recording is compressed, named by the
ticket number and put on the ticket (length, size, SHA-256); once an hour retention runs.

Only the holder of the ``follow`` lease runs it (ivr/duties.py: one engine per Asterisk), so a
file is compressed once. The work queue is the incoming directory itself: a ``.done`` file stays
until its ticket says it is kept, so a crash, a restart or Redis being away loses nothing; the
next sweep (every ``SWEEP`` s) takes it up again. A recording from answer ends as the seat hangs
up, while the caller still rates the call: its ticket closes later, and that close (``poke``)
sweeps the files of the calls that closed, not every file waiting through its survey. The encoder
(libopus, recording/opus.py) runs in a niced thread of its own, a file at a time: calls never
wait for it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from datetime import datetime
from pathlib import Path
from typing import Callable, cast

from redis.exceptions import RedisError

from ivr.core.convert import epoch
from ivr.store import keyspace
from recording.expect import cut_short, expected_mode, should_have_file, talk_expected
from recording.store import EncodeError, Finished, digest, disk, encode, finished, incoming, purge, stale_files
from recording.rules import (DISCARD_SUFFIX, FAILED_DISK_FULL, FAILED_NO_AUDIO, FAILED_NO_FILE, FAILED_WHY, MIN_TALK,
                             RecordingSettings, call_id_ok, numbered, raw_seconds, stored_path)
from tickets.model import Recording, Ticket
from tickets.store import TicketStore

log = logging.getLogger("ivr.recording")

SWEEP = 10.0  # s between sweeps of the incoming directory when no call closed
AGAIN = 2.0  # s until a closed call's file is looked at again while its ticket's close has not landed
RECHECK = 60.0  # s a sweep leaves a file alone once its ticket was open (its call's close sweeps it sooner)
AFTER_CLOSE = 1.0  # s after a close is journaled: its group commit has reached Redis by then
MIN_SECONDS = 0.1  # a raw file shorter than this holds no talk (a caller who never reached a seat)
FULL_BELOW = 1 << 20  # bytes free under which an empty recording is put down to the full disk
EMPTY_WAIT = 600.0  # s an empty recording waits for its ticket before it is deleted without one
ORPHAN_AFTER = 86_400.0  # s a finished file waits for a ticket before the log says so (once)
RETENTION_EVERY = 3600.0  # s between retention passes
UNCLOSED_TRIES = 30  # looks (AGAIN s apart) for the close of a call that left no file before it is let go
HANDLED = 4096  # calls whose files this worker handled, remembered (their ticket writes may not have landed)
PAGE = 1000  # tickets read at a time by a retention pass
OVERLAP = 86_400.0  # s a pass reads back before where the last one got to (a ticket written late)


class RecordingWorker:
    def __init__(self, settings: Callable[[], RecordingSettings], tickets: TicketStore):
        self.settings = settings
        self.tickets = tickets
        self._wake = asyncio.Event()
        self._warned: set[str] = set()
        self.stored = 0  # recordings put on tickets by this engine (for tests and logs)
        self._alarm: tuple[bool, str] | None = None  # the disk alarm (and its problem) last published
        self._closed: set[str] = set()  # calls closed since the last sweep (their files are looked at)
        self.waiting_calls: set[str] = set()  # calls of the young files the last sweep left waiting
        self._open: dict[str, float] = {}  # call → when a sweep last found its ticket open (monotonic)
        self._handled: dict[str, None] = {}  # calls whose file this worker kept or dropped (oldest first)
        self._unclosed: dict[str, int] = {}  # closed calls with no file whose ticket's close has not landed: looks

    def poke(self, linkedid: str) -> None:
        """A call closed: sweep its file once its ticket is in Redis rather than at the next tick."""
        self._closed.add(linkedid)
        asyncio.get_running_loop().call_later(AFTER_CLOSE, self._wake.set)

    async def run(self) -> None:
        last_retention, last_full = 0.0, -SWEEP
        while True:
            full = time.monotonic() - last_full >= SWEEP
            if full:
                last_full = time.monotonic()
            self._wake.clear()  # a close told from here on wakes the wait below at once
            calls, self._closed = self._closed, set()
            await self.sweep(None if full else calls, closed=calls)
            try:
                unclosed = await self.missing(calls)
            except (RedisError, OSError) as exc:
                log.warning("recordings of closed calls not checked (%s); next close", exc)
                unclosed = set()
            lagging = (self.waiting_calls & calls) | unclosed  # closed, but the close is not in Redis yet
            self._closed |= lagging
            if full:
                await self.publish_disk()
            if time.monotonic() - last_retention >= RETENTION_EVERY:
                last_retention = time.monotonic()
                try:
                    await retention(self.settings(), self.tickets, datetime.now().astimezone())
                except (RedisError, OSError) as exc:
                    log.warning("recording retention did not run (%s); next hour", exc)
            try:
                await asyncio.wait_for(self._wake.wait(),
                                       AGAIN if lagging else max(0.1, SWEEP - (time.monotonic() - last_full)))
            except TimeoutError:
                pass

    async def sweep(self, only: set[str] | None = None, closed: set[str] | frozenset[str] = frozenset()) -> int:
        """Keep every finished recording (of the calls ``only``, when given) whose ticket is closed;
        returns how many still wait for their ticket (a young file only: one without a ticket for
        long is swept at the usual pace), their calls in ``waiting_calls``. A file whose ticket was
        open less than RECHECK s ago is left alone unless its call is among those ``closed``."""
        s = self.settings()
        self.waiting_calls = set()
        items, now = await asyncio.to_thread(finished, s), time.monotonic()
        if only is None:  # forget the calls whose files are gone
            present = {i.call_id for i in items}
            self._open = {c: at for c, at in self._open.items() if c in present}
        for item in items:
            if only is not None and item.call_id not in only:
                continue
            if item.call_id not in closed and now - self._open.get(item.call_id, -RECHECK) < RECHECK:
                continue  # still in its survey a moment ago: its close sweeps it
            try:
                if await self.keep(item, s) is None:
                    self._open[item.call_id] = now
                    if time.time() - item.path.stat().st_mtime < 60:
                        self.waiting_calls.add(item.call_id)
                else:
                    self._open.pop(item.call_id, None)
            except EncodeError as exc:
                log.error("recording %s not compressed: %s", item.path.name, exc)
            except (RedisError, OSError) as exc:
                log.warning("recording %s waits (%s)", item.path.name, exc)
                self.waiting_calls = set()
                return 0
        return len(self.waiting_calls)

    async def keep(self, item: Finished, s: RecordingSettings) -> bool | None:
        """Compress one finished recording and put it on its ticket (True), drop it when discarded
        or empty (False), or leave it for a later sweep while its ticket is not closed yet (None)."""
        size = item.path.stat().st_size
        self._handle(item.call_id)
        if item.discarded:
            item.path.unlink(missing_ok=True)
            item.path.with_name(item.base + DISCARD_SUFFIX).unlink(missing_ok=True)
            return False
        ticket = await self.tickets.get(item.call_id)
        if raw_seconds(size) < MIN_SECONDS and (ticket is None or not ticket.closed or not ticket.number):
            if time.time() - item.path.stat().st_mtime > EMPTY_WAIT:  # no ticket to tell: nothing to keep
                item.path.unlink(missing_ok=True)
                return False
            return None
        if raw_seconds(size) < MIN_SECONDS:
            return await self._empty(item, cast(Ticket, ticket), s)
        if ticket is None or not ticket.closed or not ticket.number:
            if time.time() - item.path.stat().st_mtime > ORPHAN_AFTER and item.base not in self._warned:
                self._warned.add(item.base)
                log.warning("recording %s has no closed ticket after a day; it stays in %s", item.path.name,
                            item.path.parent)
            return None
        if any(r.source == item.base for r in ticket.recordings):  # kept before a crash: only its raw file was left
            item.path.unlink(missing_ok=True)
            return False
        root = Path(s.dir)
        relative = numbered(stored_path(ticket.number, ticket.received), len(ticket.recordings) + 1)
        dest = root / relative
        await encode(item.path, dest, s.bitrate_kbps)
        sha, stored_size = await asyncio.to_thread(digest, dest)
        now = datetime.now().astimezone().isoformat(timespec="milliseconds")
        rec = Recording(file=str(relative), mode=item.mode, stored=now, seconds=round(raw_seconds(size), 3),
                        size=stored_size, sha256=sha, source=item.base)
        expected = talk_expected(ticket, item.mode, item.base)
        if cut_short(rec.seconds, expected):  # the disk filled during the call: MixMonitor wrote what it could
            rec.expected = round(cast(float, expected), 3)
        await self._put_on_ticket(item.call_id, rec, now)
        item.path.unlink(missing_ok=True)
        self.stored += 1
        log.info("recording of ticket %s kept: %s (%.1f s, %d bytes)", ticket.number, relative, rec.seconds, stored_size)
        return True

    async def _empty(self, item: Finished, ticket: Ticket, s: RecordingSettings) -> bool:
        """A recording with no audio. A call that never reached a seat (``b``: nothing bridged)
        leaves one: deleted. A call that talked (or was recorded from the start) must have
        audio: the ticket says its recording failed and why (a full disk, most often), rather
        than showing none as if the call had not been recorded (False: nothing kept)."""
        if item.mode == "answer" and not (ticket.answered and (ticket.talk_seconds or 0.0) >= MIN_TALK):
            item.path.unlink(missing_ok=True)
            return False
        d = await asyncio.to_thread(disk, s)
        full = d is not None and d.free < FULL_BELOW
        why = (f"no audio written: the recordings disk was full ({d.free // 2**10} kB free)" if full and d
               else "no audio written (see Asterisk's log)")
        now = datetime.now().astimezone().isoformat(timespec="milliseconds")
        if not any(r.source == item.base for r in ticket.recordings):
            rec = Recording(file="", mode=item.mode, stored=now, source=item.base,
                            failed=FAILED_DISK_FULL if full else FAILED_NO_AUDIO)
            await self._put_on_ticket(item.call_id, rec, now, why)
            log.error("recording of ticket %s failed: %s", ticket.number, why)
        item.path.unlink(missing_ok=True)
        return False

    async def _put_on_ticket(self, linkedid: str, rec: Recording, now: str, why: str = "") -> None:
        """Read the ticket again just before the write (a desk amend or a callback may have come);
        ``why``: a failed one's reason in full, for the timeline."""
        ticket, rev = await self.tickets.get(linkedid), await self.tickets.revision(linkedid)
        if ticket is None:
            raise OSError(f"ticket of {linkedid} vanished")
        ticket.recordings.append(rec)
        if rec.failed:
            ticket.note(now, "recording failed", why or rec.failed)
        else:
            ticket.note(now, "recording stored", f"{rec.file} {rec.seconds:.1f} s")
        if rec.incomplete:
            ticket.note(now, "recording incomplete", f"{rec.file}: {rec.seconds:.1f} s recorded of {rec.expected:.1f} s "
                        "talk (the file was cut short: the recordings disk filled during the call?)")
        await write_after_close(self.tickets, ticket, "recording", rev)

    def _handle(self, call: str) -> None:
        self._handled[call] = None
        while len(self._handled) > HANDLED:
            del self._handled[next(iter(self._handled))]

    async def missing(self, calls: set[str]) -> set[str]:
        """Closed calls the policy recorded that talked yet left no file at all (MixMonitor could not
        create it: no inode, a directory it may not write): the ticket says the recording failed and
        why, as the disk is now. Returns the calls whose ticket's close has not landed (looked at again)."""
        s, later = self.settings(), set()
        for call in calls:
            if call in self._handled or not call_id_ok(call) or any(incoming(s).glob(f"{call}.*")):
                self._unclosed.pop(call, None)
                continue
            ticket = await self.tickets.get(call)
            if ticket is not None and not ticket.closed:
                tries = self._unclosed[call] = self._unclosed.get(call, 0) + 1
                if tries < UNCLOSED_TRIES:
                    later.add(call)
                    continue
            self._unclosed.pop(call, None)
            if ticket is None or not ticket.closed or not ticket.number or not should_have_file(s, ticket) \
                    or any(r.source.rpartition(".")[0] == call for r in ticket.recordings):
                continue
            d = await asyncio.to_thread(disk, s)
            code = d.problem if d and d.problem else FAILED_DISK_FULL if d and d.free < FULL_BELOW else FAILED_NO_FILE
            why = FAILED_WHY.get(code, "no file created: the recordings disk was full")
            now = datetime.now().astimezone().isoformat(timespec="milliseconds")
            mode = expected_mode(s, ticket)
            await self._put_on_ticket(call, Recording(file="", mode=mode, stored=now, source=f"{call}.{mode}",
                                                      failed=code), now, why)
            self._handle(call)
            log.error("recording of ticket %s failed: %s", ticket.number, why)
        return later

    async def publish_disk(self) -> None:
        """The disk's headroom for the wallboard and /metrics (every engine's console reads it)."""
        s = self.settings()
        d = await asyncio.to_thread(disk, s)
        if d is None:
            return
        try:
            await self.tickets.redis.hset(keyspace.RECORDING_DISK, mapping={
                "total": d.total, "free": d.free, "alarm": int(d.alarm), "problem": d.problem, "at": f"{time.time():.0f}"})
            if (d.alarm, d.problem) != self._alarm:  # the wallboard turns red (or back) now, not at its next refresh
                await self.tickets.redis.publish(keyspace.LIVE_CHANGED, "recording-disk")
                self._alarm = (d.alarm, d.problem)
        except (RedisError, OSError):
            pass
        if d.problem:
            log.error("recordings directory %s: %s: calls are not recorded (they are answered)", s.dir,
                      FAILED_WHY[d.problem])
        elif d.alarm:
            log.warning("recordings disk %.0f %% used, %d MB free: raise it or purge (calls go on)",
                        100 * d.used_ratio, d.free // 2**20)


async def write_after_close(tickets: TicketStore, ticket: Ticket, what: str, rev: int) -> None:
    """A write onto a closed ticket: its rev follows the stored one (phase ``<what>:<rev>:<id>``)."""
    await tickets.write(ticket, f"{what}:{rev + 1}:{secrets.token_hex(4)}", rev + 1)


async def retention(s: RecordingSettings, tickets: TicketStore, now: datetime, why: str = "retention") -> list[Ticket]:
    """Delete the recordings of tickets received more than ``retention_days`` ago, saying so on
    each ticket; then files older than that whose ticket has expired too. Returns the tickets changed.

    Tickets are read from where the last pass got to (``ivr:recording:purged-until``, less a day
    of overlap), a page at a time: an hourly pass reads about an hour of tickets, not months."""
    root, changed, seen = Path(s.dir), [], set()
    until = now.timestamp() - s.retention_days * 86_400
    mark = cast(str | None, await tickets.redis.get(keyspace.RECORDING_PURGED))
    since = max(0.0, float(mark) - OVERLAP) if mark else 0.0
    while True:
        page = await tickets.received_between(since, until, limit=PAGE)
        for ticket in page:
            if ticket.linkedid in seen or all(r.deleted or r.failed for r in ticket.recordings):
                continue
            seen.add(ticket.linkedid)
            rev = await tickets.revision(ticket.linkedid)
            if await asyncio.to_thread(purge, ticket, root, now, s.retention_days, why):
                await write_after_close(tickets, ticket, "recording-deleted", rev)
                changed.append(ticket)
        if len(page) < PAGE:
            break
        since = epoch(page[-1].received)  # the next page starts there (equal times: seen once)
    await tickets.redis.set(keyspace.RECORDING_PURGED, f"{until:.3f}")
    for path in await asyncio.to_thread(stale_files, root, now.timestamp(), s.retention_days):
        path.unlink(missing_ok=True)
    return changed

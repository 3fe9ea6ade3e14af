"""The engine follows every call over AMI and writes its ticket: the adapter around
:class:`tracking.tracker.CallTracker`.

AMI events and the engine's own IVR records go to the tracker as they come (in the AMI
client's callback); what it returns is written to the :class:`~tickets.store.TicketStore`
(journaled first: a dead Redis loses nothing). After every AMI login — the first, a reconnect,
an engine restart — it reconciles with Asterisk instead of trusting memory:

1. ``CoreStatus``: did Asterisk restart meanwhile?
2. ``CoreShowChannels``: calls still up are picked up again (with their stored ticket);
   followed calls that are gone *vanished* while nobody listened;
3. the CDR file: vanished calls, and calls that ran entirely while no engine followed, are
   finished from their CDR rows; a vanished call without any is closed as lost (at once when
   Asterisk restarted, else after ``tracking.lost_after`` seconds, the CDR may lag).

How far the CDR has been covered is kept in Redis (``followed_until``), so the next engine
knows where the gap began. Every ticket write is idempotent per phase, so reading a CDR row
twice, or two engines following one Asterisk, still gives one ticket per call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping, cast

from redis.exceptions import RedisError

from ivr.store import keyspace
from ivr.ami.client import AmiClient, AmiError
from ivr.config import Settings
from ivr.core.calendar import HolidayCalendar
from tickets.store import TicketStore
from queues.kpi import SURVEY_PHASE, survey_increments, visit_increments
from tickets.deadline import handling_deadline
from tickets.model import Deadline, Ticket
from tracking import cdr
from tracking.retention import cdr_files
from tracking.tracker import CallTracker, Change, Directory

log = logging.getLogger(__name__)

SWEEP_INTERVAL = 1.0  # s: closing calls whose IVR record never came, vanished calls' CDR
MARK_INTERVAL = 5.0  # s: how often "followed until now" is saved
CLOSED_PER_LINE = 50  # closed tickets named in one log line
FIRST_START_WINDOW = 3600.0  # s of CDR a first-ever engine finishes (not the whole history)
RESTART_CAUSE = "cut by an Asterisk restart"


class CallFollower:
    def __init__(self, settings: Settings, tickets: TicketStore, calendar: Callable[[], HolidayCalendar],
                 asterisk: str = "default",
                 call_record: Callable[[str], Awaitable[dict[str, Any] | None]] | None = None,
                 live_settings: Callable[[], Settings] | None = None):
        """``call_record`` reads a call's IVR record from Redis, for calls whose record did not
        come from this engine (process AGI). ``live_settings`` is the config live now (a reload
        switches crisis mode, deadlines, the number plan, agents); default: ``settings``."""
        self.settings = settings
        self.live_settings = live_settings or (lambda: settings)
        self.tickets = tickets
        self.call_record = call_record
        self.asterisk = asterisk  # names this Asterisk's CDR progress in Redis
        self._calendar = calendar
        self._deadlines: dict[tuple[int, int, str, str], Deadline] = {}
        self.tracker = CallTracker(Directory.from_settings(settings), self._deadline)
        # Events are handled inline, in the AMI client's callback: a hop through a queue to
        # another task would cost each event a second wake-up of the loop. Only logins (to
        # reconcile) and the once-a-second sweep run in :meth:`run`. While a reconcile waits for
        # Asterisk's answers, events are held back and replayed after it, in order.
        self._logins: asyncio.Queue[AmiClient] = asyncio.Queue()
        self._held: list[Mapping[str, str]] | None = None
        self._vanished: dict[str, float] = {}  # linkedid → when it is given up as lost
        self._restarted = False
        self._startup: str | None = None
        self._connected_since: float | None = None
        self._closed: list[str] = []  # closed tickets not yet logged
        self.events_seen = 0
        self._work = asyncio.Event()  # a call came while the loop waited with nothing to sweep
        self.on_closed: Callable[[str], None] | None = None  # told a call's linkedid when its ticket's close is journaled (recordings)

    def _deadline(self, t: Ticket) -> Deadline:
        """A working-day deadline depends only on the day received and the type: computed once a
        day per type (twice a call otherwise), on the calendar live now (a reload may change it)."""
        calendar, rules = self._calendar(), self.live_settings().tickets
        if rules.crisis:
            return handling_deadline(datetime.fromisoformat(t.received), t.request_type, rules, calendar)
        key = (id(calendar), id(rules), t.received[:10], t.request_type)
        deadline = self._deadlines.get(key)
        if deadline is None:
            if len(self._deadlines) > 64:
                self._deadlines.clear()
            deadline = handling_deadline(datetime.fromisoformat(t.received), t.request_type, rules, calendar)
            self._deadlines[key] = deadline
        return Deadline(deadline.due, deadline.rule, deadline.provisional)  # each ticket its own

    # --- inputs (callbacks: never block, never raise) --------------------------------------

    def on_event(self, event: Mapping[str, str]) -> None:
        self.events_seen += 1
        self._work.set()
        if self._held is not None:
            self._held.append(event)
            return
        try:
            changes = self.tracker.handle(event)
        except Exception:
            log.exception("call tracker failed on a %s event", event.get("Event"))
            return
        if changes:
            self._write(changes)

    def on_login(self, ami: AmiClient) -> None:
        self._held = self._held if self._held is not None else []
        self._logins.put_nowait(ami)

    def on_ivr_record(self, record: dict[str, Any]) -> None:
        self._work.set()
        self._write(self.tracker.ivr_record(record, time.time()))

    def channel_seen(self, unique_id: str, channel: str) -> bool:
        """Whether AMI showed this caller channel live under this uniqueid (the engine marks
        such a call record ``confirmed``: ivr/agi/call_guard.py)."""
        call = self.tracker.calls.get(unique_id)
        return call is not None and call.channel == channel and unique_id in call.live

    def on_disconnect(self) -> None:
        self._connected_since = None

    def forget(self) -> None:
        """This engine stopped following (it lost its lease, ivr/duties.py): drop the calls it
        had in memory; whoever follows next reconciles them from Asterisk (this engine too)."""
        self.tracker.calls.clear()
        self._vanished.clear()
        self._held, self._connected_since = None, None
        while not self._logins.empty():
            self._logins.get_nowait()

    # --- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        last_mark = 0.0
        while True:
            ami = await self._next_login()
            now = time.time()
            if ami is not None:
                try:
                    await self._reconcile(ami, now)
                finally:
                    self._release_held()
            live = self.live_settings()
            if live is not self.settings:  # reloaded: who is who may have changed
                self.settings, self.tracker.directory = live, Directory.from_settings(live)
            await self._fetch_records(now)
            self._write(self.tracker.sweep(now))
            if self._vanished:
                await self._finish_vanished(now)
            if self._connected_since is not None and now - last_mark >= MARK_INTERVAL:
                last_mark = now
                await self._mark_followed(now)

    async def _next_login(self) -> AmiClient | None:
        """The next AMI login to reconcile, or None after ``SWEEP_INTERVAL``. With nothing to sweep
        or mark (no session followed, no call: an engine standing by, ivr/duties.py) there is no
        timeout: it waits for a login or a call, instead of waking every second for nothing."""
        if self._connected_since is not None or self.tracker.calls or self._vanished:
            try:
                return await asyncio.wait_for(self._logins.get(), SWEEP_INTERVAL)
            except TimeoutError:
                return None
        self._work.clear()
        login, work = asyncio.ensure_future(self._logins.get()), asyncio.ensure_future(self._work.wait())
        try:
            await asyncio.wait((login, work), return_when=asyncio.FIRST_COMPLETED)
        finally:
            work.cancel()
            if not login.done():
                login.cancel()  # (a cancelled get takes nothing from the queue)
        return login.result() if login.done() and not login.cancelled() else None

    def _release_held(self) -> None:
        held, self._held = self._held or [], None
        if not self._logins.empty():
            self._held = []  # another login is queued: keep holding until it has reconciled
        for event in held:
            self.events_seen -= 1  # counted when it arrived
            self.on_event(event)

    async def _fetch_records(self, now: float) -> None:
        if self.call_record is None:
            return
        for linkedid in self.tracker.awaiting_ivr_record():
            try:
                record = await self.call_record(linkedid)
            except (RedisError, OSError):
                return  # Redis down: the sweep closes the call without its path after the grace
            if record is not None:
                self._write(self.tracker.ivr_record(record, now))

    def _write(self, changes: list[Change]) -> None:
        for change in changes:
            if change.visit is not None:  # a queue visit ended: its service-level counts
                increments = visit_increments(change.ticket, change.visit, final=change.final,
                                              keep_days=self.live_settings().tickets.kpi_retention_days)
                self.tickets.write_visit_nowait(change.ticket.linkedid, change.phase, increments)
                continue
            self.tickets.write_nowait(change.ticket, change.phase)
            if change.phase == "closed":
                t = change.ticket
                self._count_survey(t)
                if not self._closed:  # once the events at hand are handled: one log record for all
                    asyncio.get_running_loop().call_soon(self._log_closed)
                self._closed.append(f"call {t.linkedid} {t.disposition} ({t.closed_by})")
                if self.on_closed is not None:
                    self.on_closed(t.linkedid)

    def _count_survey(self, t: Ticket) -> None:
        """The closed call's satisfaction survey, counted for its queue, line and agent (its own
        phase: a close written again counts once)."""
        rules = self.live_settings().tickets
        increments = survey_increments(t, low=rules.satisfaction_low, keep_days=rules.kpi_retention_days)
        if increments:
            self.tickets.write_visit_nowait(t.linkedid, SURVEY_PHASE, increments)

    def _log_closed(self) -> None:
        """Name every ticket closed since the last line: one record per batch of events (a log
        record costs as much as the rest of a ticket write), each ticket as before."""
        closed, self._closed = self._closed, []
        for start in range(0, len(closed), CLOSED_PER_LINE):
            part = closed[start:start + CLOSED_PER_LINE]
            log.info("%d ticket(s) closed: %s", len(part), ", ".join(part))

    # --- reconciliation ----------------------------------------------------------------------

    async def _reconcile(self, ami: AmiClient, now: float) -> None:
        try:
            status = await ami.action({"Action": "CoreStatus"})
            listing = await ami.action({"Action": "CoreShowChannels"}, as_list=True)
        except (AmiError, TimeoutError) as exc:
            log.warning("reconcile with Asterisk failed (%s); it runs again at the next login", exc)
            return
        startup = f"{status.get('CoreStartupDate', '')} {status.get('CoreStartupTime', '')}"
        saved = await self._progress()
        known_startup = self._startup or saved.get("startup")
        self._restarted = bool(known_startup) and known_startup != startup
        self._startup = startup
        channels = [dict(e) for e in listing if e.get("Event") == "CoreShowChannel"]
        fresh = {c.get("Linkedid", "") for c in channels} - set(self.tracker.calls)
        known = await self._stored_tickets(fresh)
        changes, vanished = self.tracker.adopt(channels, known, now)
        self._write(changes)
        await self._adopted_records(fresh, now)
        for linkedid in vanished:
            self._vanished.setdefault(linkedid, now + self.settings.tracking.lost_after)
        live = {c.get("Linkedid", "") for c in channels}
        followed_until = float(saved.get("followed_until") or now - FIRST_START_WINDOW)
        await self._finish_from_cdr(since=followed_until - MARK_INTERVAL, live=live, now=now, unseen=True,
                                    cause=RESTART_CAUSE if self._restarted else "")
        if self._restarted:
            for linkedid in list(self._vanished):
                self._write(self.tracker.lose(linkedid, now, RESTART_CAUSE))
                self._vanished.pop(linkedid, None)
        log.info("reconciled with Asterisk: %d call(s) up, %d picked up again, %d vanished%s",
                 len(live), len(changes), len(vanished), " (Asterisk restarted)" if self._restarted else "")
        self._connected_since = now
        await self._mark_followed(now)

    async def _finish_vanished(self, now: float) -> None:
        await self._finish_from_cdr(since=now - 86_400, live=set(), now=now, unseen=False)
        for linkedid, give_up in list(self._vanished.items()):
            if now >= give_up:
                self._vanished.pop(linkedid)
                self._write(self.tracker.lose(linkedid, now, "ended while the engine was not following it (no CDR)"))

    async def _finish_from_cdr(self, since: float, live: set[str], now: float, unseen: bool, cause: str = "") -> None:
        """Finish vanished calls from their CDR rows; with ``unseen``, also calls that ended
        after ``since`` without the tracker ever seeing them (written idempotently)."""
        wanted = set(self._vanished)
        if not wanted and not unseen:
            return
        rows = await asyncio.to_thread(_read_cdr, self.settings.tracking.cdr_file, since)
        for linkedid, call_rows in cdr.by_call(rows).items():
            if linkedid in live or not any(r.ivr_line for r in call_rows):
                continue  # still up (rows of its earlier legs), or not a citizen's call
            if linkedid in wanted or (unseen and linkedid not in self.tracker.calls):
                self._vanished.pop(linkedid, None)
                call = self.tracker.calls.get(linkedid)
                record = await self._record_of(linkedid) if call is None or not call.ivr_seen else None
                self._write(self.tracker.finish(linkedid, call_rows, now, cause if linkedid in wanted else "", record))

    async def _adopted_records(self, adopted: set[str], now: float) -> None:
        """Calls picked up past their IVR (another engine served their FastAGI, or this one before
        it followed them): their IVR path from the record in Redis."""
        for linkedid in adopted:
            call = self.tracker.calls.get(linkedid)
            if call is not None and not call.ticket.ivr.flow and (record := await self._record_of(linkedid)):
                self._write(self.tracker.ivr_record(record, now))

    async def _record_of(self, linkedid: str) -> dict[str, Any] | None:
        """A call's IVR record from Redis, whichever engine served it (None: none, or Redis down)."""
        if self.call_record is None:
            return None
        try:
            return await self.call_record(linkedid)
        except (RedisError, OSError):
            return None

    async def _stored_tickets(self, linkedids: set[str]) -> dict[str, Ticket]:
        out: dict[str, Ticket] = {}
        for linkedid in linkedids:
            try:
                ticket = await self.tickets.get(linkedid)
            except (RedisError, OSError):
                return out  # Redis down: adopted calls start a fresh ticket (same linkedid: merged)
            if ticket is not None:
                out[linkedid] = ticket
        return out

    async def _progress(self) -> dict[str, str]:
        try:
            return cast(dict[str, str], await self.tickets.redis.hgetall(keyspace.cdr_progress(self.asterisk)))
        except (RedisError, OSError):
            return {}

    async def _mark_followed(self, now: float) -> None:
        try:
            await self.tickets.redis.hset(keyspace.cdr_progress(self.asterisk),
                                          mapping={"followed_until": f"{now:.3f}", "startup": self._startup or ""})
        except (RedisError, OSError):
            pass  # the next reconcile reads a little more CDR; writes are idempotent


def _read_cdr(cdr_file: str, since: float) -> list[cdr.CdrRow]:
    """CDR rows of calls that ended after ``since`` (epoch s), from the file and its rotated days."""
    cutoff = datetime.fromtimestamp(since).strftime("%Y-%m-%d %H:%M:%S")
    rows: list[cdr.CdrRow] = []
    for path in cdr_files(cdr_file):
        try:
            if path.stat().st_mtime < since:
                continue
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        rows += [r for r in cdr.parse(text) if r.end >= cutoff]
    return rows

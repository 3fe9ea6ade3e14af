"""The live follower: AMI facts the wallboard and the agent desk need, published in Redis.

It listens on the engine's AMI session, after the call follower (so the tracker already knows
what the event says), and writes two things (:mod:`queues.waiting`, keys in :mod:`ivr.store.keyspace`):

- callers waiting now (``QueueCallerJoin`` … ``Leave`` / ``Abandon`` / ``Hangup``), rebuilt from
  ``QueueStatus`` after every login and every :data:`RECONCILE_INTERVAL`: Asterisk is the truth;
- each agent's desk: the call offered to it (``AgentCalled``, before the agent answers) with its
  ticket stub, then connected, ended or missed — with a pub/sub notice, so every console (on
  any host) pops the ticket whichever engine saw the event. Two engines following one Asterisk
  write the same record; a record older than the stored one is dropped (event timestamps).

The other way round, it applies what agents set on tickets from the desk (the
``ivr:desk:amends`` stream) to the calls this engine follows, so the ticket written when the
call closes keeps it. Nothing here may hold up a call: writes are coalesced and retried.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import time
from datetime import datetime
from typing import Any, Callable, Mapping, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ivr.store import keyspace
from ivr.ami.client import AmiClient, AmiError
from ivr.asterisk_conf import config_queue
from ivr.config import Settings
from ivr.core.calendar import HolidayCalendar
from tickets.store import PHASE_REV, TicketStore
from ivr.store import RedisTarget, redis_client
from queues.waiting import DESK_TTL, Amend, Waiting, desk_stub
from tickets.deadline import handling_deadline
from tickets.model import Deadline, Ticket
from ivr.core.channel import endpoint_of

log = logging.getLogger("ivr.queue_follower")  # the name log configs filter on, from before the move

REPAIR_AFTER = 2.0  # s: a call closed just before its amend came: its closing write has landed by then
REPAIR_TRIES = 5
HUNG_UP_KEPT = 120.0  # s a call's hang-up is remembered (an amend may come just after its close)
RECONCILE_INTERVAL = 15.0  # s: waiting callers are checked against Asterisk's QueueStatus this often
RETRY = 1.0  # s after a Redis failure
AMENDS_KEPT = 10_000  # entries of the amends stream (each is applied within a moment)
LIVE_EVENTS = frozenset({"QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "AgentCalled",
                         "AgentRingNoAnswer", "AgentConnect", "AgentComplete", "Hangup", "UserEvent"})

# KEYS[1] the desk; ARGV doc, at (ms), ttl, channel, agent, linkedid, state. A record older than
# the stored one is dropped (another engine, or a replay, was first with something newer); an
# offer of another call keeps the record it replaces as ``prev``, which a withdrawn offer (ARGV[7]
# "withdrawn": the seat never rang for it) puts back if the desk still shows that offer. 1 written.
SAVE_DESK = """
local doc = redis.call('HGET', KEYS[1], 'doc')
local at = redis.call('HGET', KEYS[1], 'at')
if ARGV[7] == 'withdrawn' then
  if not doc then return 0 end
  local shown = cjson.decode(doc)
  if shown['linkedid'] ~= ARGV[6] or shown['state'] ~= 'offered' then return 0 end
  local prev = redis.call('HGET', KEYS[1], 'prev')
  if not prev then
    redis.call('DEL', KEYS[1])
  else
    redis.call('HSET', KEYS[1], 'doc', prev, 'at', redis.call('HGET', KEYS[1], 'prev_at'))
    redis.call('HDEL', KEYS[1], 'prev', 'prev_at')
  end
  redis.call('PUBLISH', ARGV[4], ARGV[5])
  return 1
end
if at and tonumber(at) > tonumber(ARGV[2]) then
  -- an older offer of another call, behind one it may outlive: kept as the one to put back
  local prev_at = redis.call('HGET', KEYS[1], 'prev_at')
  if ARGV[7] == 'offered' and cjson.decode(doc)['state'] == 'offered' and cjson.decode(doc)['linkedid'] ~= ARGV[6]
     and (not prev_at or tonumber(prev_at) < tonumber(ARGV[2])) then
    redis.call('HSET', KEYS[1], 'prev', ARGV[1], 'prev_at', ARGV[2])
  end
  return 0
end
if at and tonumber(at) == tonumber(ARGV[2]) and doc == ARGV[1] then return 0 end
if doc and ARGV[7] == 'offered' and cjson.decode(doc)['linkedid'] ~= ARGV[6] then
  redis.call('HSET', KEYS[1], 'prev', doc, 'prev_at', at)
elseif ARGV[7] ~= 'offered' then
  redis.call('HDEL', KEYS[1], 'prev', 'prev_at')
end
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'at', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
"""
# A ring that ended within app_queue's first second (RingTime counts whole seconds: 0 or 1000 ms)
# never reached the seat: the proxy answered 486 because the seat is taking another node's call
# (docs/cluster.md, collisions), or the phone refused at once. Its stub leaves the desk again.
WITHDRAWN_WITHIN_MS = 1000


def _rang_ms(event: Mapping[str, str]) -> float:
    """How long app_queue says the seat rang (no ``RingTime``: as if for ever)."""
    try:
        return float(event["RingTime"])
    except (KeyError, ValueError):
        return math.inf


def event_epoch(event: Mapping[str, str]) -> float:
    try:
        return float(event.get("Timestamp") or time.time())
    except ValueError:
        return time.time()


class LiveFollower:
    def __init__(self, redis: RedisTarget, asterisk: str, ticket_of: Callable[[str], Ticket | None],
                 agents: Callable[[], Any], *, tickets: TicketStore | None = None,
                 deadline: Callable[[Ticket], Deadline] | None = None, timeout: float = 2.0):
        """``ticket_of``: the call follower's ticket of a linkedid (None: not followed);
        ``agents``: the configured agents live now (only their desks are written); ``tickets``
        and ``deadline``: to write an amend that came just after its call closed."""
        self.redis = redis_client(redis, timeout=timeout)
        self.asterisk = asterisk
        self.ticket_of = ticket_of
        self.agents = agents
        self._save_desk = self.redis.register_script(SAVE_DESK)
        self._waiting: dict[str, Waiting | None] = {}  # uniqueid → to write (None: to delete)
        self._desks: dict[str, dict[str, Any]] = {}  # agent → its desk record (the last one written)
        self._dirty_desks: set[str] = set()
        self._offers: dict[str, set[str]] = {}  # linkedid → agents its call was offered to
        self._logins: asyncio.Queue[AmiClient] = asyncio.Queue()
        self._ami: AmiClient | None = None
        self._callbacks_changed = False
        self._wake = asyncio.Event()
        self._in_queue: set[str] = set()  # uniqueids this engine saw join a queue and not leave
        self._hung_up: dict[str, float] = {}  # linkedid → when its caller hung up (recent ones)
        self._repairs: set[asyncio.Task[None]] = set()
        self.tickets, self.deadline = tickets, deadline
        self.amends_applied = 0

    # --- inputs (AMI callbacks: never block, never raise) ------------------------------------

    def on_login(self, ami: AmiClient) -> None:
        self._ami = ami
        self._logins.put_nowait(ami)
        self._wake.set()

    def on_event(self, event: Mapping[str, str]) -> None:
        name = event.get("Event", "")
        if name not in LIVE_EVENTS:
            return
        try:
            self._handle(name, event)
        except Exception:
            log.exception("live follower failed on a %s event", name)
        self._wake.set()

    def _handle(self, name: str, event: Mapping[str, str]) -> None:
        linkedid, uniqueid = event.get("Linkedid", ""), event.get("Uniqueid", "")
        at = event_epoch(event)
        if name == "QueueCallerJoin":
            ticket = self.ticket_of(linkedid)
            self._waiting[uniqueid] = Waiting(uniqueid, config_queue(event.get("Queue", "")),
                                              ticket.line if ticket else "", at, self.asterisk)
            self._in_queue.add(uniqueid)
        elif name in ("QueueCallerLeave", "QueueCallerAbandon"):
            self._waiting[uniqueid] = None
            self._in_queue.discard(uniqueid)
        elif name == "UserEvent":
            if event.get("UserEvent") == "IvrCallback":
                self._callbacks_changed = True
        elif name == "Hangup":
            if uniqueid in self._in_queue:
                self._waiting[uniqueid] = None
                self._in_queue.discard(uniqueid)
            if uniqueid == linkedid:  # the caller is gone: offers still ringing were missed
                self._hung_up = {k: t for k, t in self._hung_up.items() if t > at - HUNG_UP_KEPT}
                self._hung_up[linkedid] = at
                for agent in self._offers.pop(linkedid, set()):
                    desk = self._desks.get(agent)
                    if desk and desk["linkedid"] == linkedid and desk["state"] in ("offered", "connected"):
                        self._set_desk(agent, "missed" if desk["state"] == "offered" else "ended", at)
        else:
            self._agent_event(name, event, linkedid, at)

    def _agent_event(self, name: str, event: Mapping[str, str], linkedid: str, at: float) -> None:
        agent = endpoint_of(event.get("Interface", "") or event.get("DestChannel", ""))
        if agent not in self.agents():
            return
        if name == "AgentCalled":
            queue = config_queue(event.get("Queue", ""))
            self._offers.setdefault(linkedid, set()).add(agent)
            self._desks[agent] = {"agent": agent, "linkedid": linkedid, "state": "offered", "at": at,
                                  "offered_at": at, "stub": desk_stub(self.ticket_of(linkedid), linkedid, queue, at)}
            self._dirty_desks.add(agent)
            return
        desk = self._desks.get(agent)
        if desk is None or desk["linkedid"] != linkedid:
            return  # offered while this engine was away: the console shows the stored ticket
        state = {"AgentRingNoAnswer": "missed", "AgentConnect": "connected", "AgentComplete": "ended"}[name]
        if name == "AgentRingNoAnswer" and _rang_ms(event) <= WITHDRAWN_WITHIN_MS and desk["state"] == "offered":
            state = "withdrawn"
        self._set_desk(agent, state, at)
        if state != "connected":
            self._offers.get(linkedid, set()).discard(agent)
            return
        for other in self._offers.get(linkedid, set()) - {agent}:  # rung together (ringall): another answered
            desk = self._desks.get(other)
            if desk and desk["linkedid"] == linkedid and desk["state"] == "offered":
                self._set_desk(other, "missed", at)
        self._offers[linkedid] = {agent}

    def _set_desk(self, agent: str, state: str, at: float) -> None:
        self._desks[agent] = dict(self._desks[agent], state=state, at=at)
        self._dirty_desks.add(agent)

    # --- the loop ------------------------------------------------------------------------------

    async def run(self) -> None:
        last_reconcile = time.monotonic()
        amends = asyncio.create_task(self._follow_amends())
        try:
            while True:
                try:
                    await asyncio.wait_for(self._wake.wait(), RECONCILE_INTERVAL)
                except TimeoutError:
                    pass
                self._wake.clear()
                while not self._logins.empty():
                    self._logins.get_nowait()
                    last_reconcile = 0.0
                if self._ami is not None and time.monotonic() - last_reconcile >= RECONCILE_INTERVAL:
                    last_reconcile = time.monotonic()
                    await self._reconcile(self._ami)
                if not await self._flush():
                    await asyncio.sleep(RETRY)
                    self._wake.set()
        finally:
            amends.cancel()

    async def _flush(self) -> bool:
        """Write what changed; False when Redis failed (it stays to be written)."""
        waiting, self._waiting = self._waiting, {}
        desks, self._dirty_desks = self._dirty_desks, set()
        callbacks, self._callbacks_changed = self._callbacks_changed, False
        try:
            if waiting or callbacks:
                async with self.redis.pipeline(transaction=False) as pipe:
                    gone = [u for u, w in waiting.items() if w is None]
                    if gone:
                        pipe.hdel(keyspace.QUEUE_WAITING, *gone)
                    fresh = {u: json.dumps(w.to_json()) for u, w in waiting.items() if w is not None}
                    if fresh:
                        pipe.hset(keyspace.QUEUE_WAITING, mapping=fresh)  # type: ignore[arg-type]
                    pipe.publish(keyspace.LIVE_CHANGED, "waiting" if waiting else "callbacks")
                    await pipe.execute()
                waiting = {}
            while desks:
                agent = next(iter(desks))
                desk = self._desks[agent]
                await self._save_desk(keys=[keyspace.desk(agent)],
                                      args=[json.dumps(desk, ensure_ascii=False, sort_keys=True),
                                            int(desk["at"] * 1000), DESK_TTL, keyspace.DESK_CHANGED, agent,
                                            desk["linkedid"], desk["state"]])
                desks.discard(agent)
            return True
        except (RedisError, OSError) as exc:
            log.warning("live: Redis unavailable (%s); retrying", exc)
            self._waiting = {**waiting, **self._waiting}
            self._dirty_desks |= desks
            self._callbacks_changed |= callbacks
            return False

    async def _reconcile(self, ami: AmiClient) -> None:
        """Callers waiting on this Asterisk, as its QueueStatus lists them: entries missed while
        no engine listened appear, entries whose end was missed go."""
        try:
            listing = await ami.action({"Action": "QueueStatus"}, as_list=True)
        except (AmiError, TimeoutError) as exc:
            log.warning("live: QueueStatus failed (%s); retried later", exc)
            return
        now = time.time()
        rows = [dict(e) for e in listing if e.get("Event") == "QueueEntry"]
        fresh = {}
        for row in rows:
            uniqueid = row.get("Uniqueid", "")
            ticket = self.ticket_of(row.get("LinkedID") or row.get("Linkedid") or uniqueid)
            try:
                wait = float(row.get("Wait") or 0)
            except ValueError:
                wait = 0.0
            self._in_queue.add(uniqueid)
            fresh[uniqueid] = Waiting(uniqueid, config_queue(row.get("Queue", "")), ticket.line if ticket else "",
                                      now - wait, self.asterisk)
        try:
            raw = cast(dict[str, str], await self.redis.hgetall(keyspace.QUEUE_WAITING))
            stored = {u: Waiting.from_json(json.loads(v)) for u, v in raw.items()}
        except (RedisError, OSError, ValueError) as exc:
            log.warning("live: cannot read waiting callers (%s)", exc)
            return
        for uniqueid, w in stored.items():
            gone = w.asterisk == self.asterisk and uniqueid not in fresh
            if (gone or w.stale(now)) and uniqueid not in self._waiting:
                self._waiting[uniqueid] = None
        for uniqueid, w in fresh.items():
            known = stored.get(uniqueid)
            if known is None:  # keep the join time an event gave: QueueStatus counts whole seconds
                self._waiting.setdefault(uniqueid, w)

    async def _follow_amends(self) -> None:
        """Apply agents' ticket changes to the calls this engine follows (their closing write
        then keeps them); the console has already written them to the stored ticket."""
        since: str | None = None
        while True:
            try:
                if since is None:  # from now on: what came before was for calls long closed
                    last = cast(list[tuple[str, Any]], await self.redis.xrevrange(keyspace.DESK_AMENDS, count=1))
                    since = last[0][0] if last else "0-0"
                entries = cast(list[tuple[str, list[tuple[str, dict[str, str]]]]],
                               await self.redis.xread({keyspace.DESK_AMENDS: since}, block=1500, count=100))
            except (RedisError, OSError) as exc:
                log.warning("live: cannot read desk amends (%s)", exc)
                await asyncio.sleep(RETRY)
                continue
            for _stream, items in entries or []:
                for entry_id, fields in items:
                    since = entry_id
                    try:
                        amend = Amend.from_json(json.loads(fields.get("amend", "{}")))
                    except ValueError:
                        continue
                    ticket = self.ticket_of(amend.linkedid)
                    if ticket is not None:
                        amend.apply(ticket)
                        self.amends_applied += 1
                    elif amend.linkedid in self._hung_up and self.tickets is not None:
                        task = asyncio.create_task(self._repair(amend, self.tickets))
                        self._repairs.add(task)
                        task.add_done_callback(self._repairs.discard)

    async def _repair(self, amend: Amend, tickets: TicketStore) -> None:
        """The call closed an instant before the amend reached this engine: its closing write
        (which lacks it) replaced the console's; write it again on top, once that has landed."""
        for _ in range(REPAIR_TRIES):
            await asyncio.sleep(REPAIR_AFTER)
            try:
                stored, rev = await tickets.get(amend.linkedid), await tickets.revision(amend.linkedid)
            except (RedisError, OSError):
                continue
            if stored is None or not stored.closed:
                continue  # the closing write is still on its way
            if amend.missing_from(stored):
                await write_amend(tickets, stored, amend, rev, self.deadline)
                self.amends_applied += 1
            return

    async def close(self) -> None:
        await self.redis.aclose()


async def write_amend(tickets: TicketStore, ticket: Ticket, amend: Amend, rev: int,
                      deadline: Callable[[Ticket], Deadline] | None) -> None:
    """Write ``amend`` onto the stored ``ticket`` (whose doc is at ``rev``), journaled like every
    ticket write (phase ``updated:<rev>:<id>``). While the call is up the rev stays below the
    closing write's, which carries the amend (the engine following the call applies it); after
    the close it follows the last one, and a type given then recomputes the deadline."""
    amend.apply(ticket)
    if ticket.closed and amend.request_type and deadline is not None:
        ticket.deadline = deadline(ticket)
    ticket.note(datetime.now().astimezone().isoformat(timespec="milliseconds"), "desk updated",
                f"{amend.agent}: {amend.request_type or '-'} / {amend.department or '-'}")
    new_rev = rev + 1 if ticket.closed else min(rev + 1, PHASE_REV["closed"] - 1)
    await tickets.write(ticket, f"updated:{new_rev}:{secrets.token_hex(4)}", new_rev)


async def send_amend(redis: aioredis.Redis, amend: Amend) -> None:
    """Tell the engines (the one following the call keeps it in the ticket it writes at close)."""
    await redis.xadd(keyspace.DESK_AMENDS, {"amend": json.dumps(amend.to_json(), ensure_ascii=False)},
                     maxlen=AMENDS_KEPT, approximate=True)


def deadline_on(settings: Callable[[], Settings], calendar: Callable[[], HolidayCalendar]) -> Callable[[Ticket], Deadline]:
    """A ticket's handling deadline by the rules and calendar live now (after an agent types it)."""
    return lambda t: handling_deadline(datetime.fromisoformat(t.received), t.request_type, settings().tickets,
                                       calendar())

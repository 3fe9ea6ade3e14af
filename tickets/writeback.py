"""Department write-back onto tickets: the Redis side of the signed inbound API (tickets/dept_api.py).

Every console of the cluster may take a department's request, so nothing here is per process:

- **Idempotency** by the department's event id (``ivr:dept:event:<dept>:<id>``, kept the tickets'
  retention): the first request claims the id with the digest of what it asks (ticket number and
  event); a repeat with the same digest gets the answer stored for it, and changes nothing; the
  same id with another digest is a replay and refused. A claim whose request was refused by the
  rules or did not reach Redis is let go, so a corrected retry is judged afresh.
- **One writer per ticket**: the read–change–write of a ticket is held under a short Redis lock
  (tickets/lock.py) so two consoles never apply two events on the same revision; the
  write itself is an ordinary journaled ticket write (phase ``workflow:<rev>:<id>``, rev after the
  stored one: tickets/store.py), streamed as a ``workflow`` ticket event to the webhooks.
- **Counters** of applied and refused write-backs for /metrics (hashes, shared by every console).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, cast

import redis.asyncio as aioredis

from ivr.core.calendar import HolidayCalendar
from ivr.store import keyspace
from tickets.settings import Department, TicketSettings
from tickets.lock import TicketBusy, TicketLock
from tickets.model import Ticket
from tickets.store import TicketStore
from tickets.workflow import STATUS_LABELS, Change, DeptEvent, apply, closed_on_time

PENDING_S = 60  # a claim whose console died mid-request expires after this
REFUSALS_PER_MINUTE = 30  # per client address: beyond it requests get 429 unread (one audit line says so)

# KEYS[1] the event's key; ARGV the digest, the pending expiry. The stored record, or "" when
# this request claimed the id (then it must finish or release it).
CLAIM = """
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], cjson.encode({digest = ARGV[1], pending = true}), 'EX', ARGV[2])
return ''
"""



@dataclass(frozen=True)
class Answer:
    """What the API answers: HTTP status and JSON body (``repeat``: an idempotent repeat)."""

    status: int
    body: dict[str, Any]
    repeat: bool = False


class Conflict(Exception):
    """The event id is in use: ``reason`` says whether with another body or still in progress."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class NotStored(RuntimeError):
    """Redis did not take the ticket write: the department must retry (503)."""


class TicketUnknown(LookupError):
    """No ticket with that number (expired, or never there)."""


def digest(number: str, event: DeptEvent) -> str:
    return hashlib.sha256(f"{number}\n{event.model_dump_json()}".encode()).hexdigest()


class WriteBack:
    def __init__(self, redis: aioredis.Redis, tickets: TicketStore, settings: Callable[[], TicketSettings],
                 calendar: Callable[[], HolidayCalendar]):
        self.redis, self.tickets, self.settings, self.calendar = redis, tickets, settings, calendar
        self._claim = redis.register_script(CLAIM)

    async def submit(self, name: str, department: Department, number: str, event: DeptEvent) -> Answer:
        """Apply ``event`` of department ``name`` to ticket ``number`` once. Conflict (id reused
        or in progress), TicketUnknown, Refused (the rules), NotStored (Redis did not take it)."""
        key, mine = keyspace.dept_event(name, event.id), digest(number, event)
        stored = cast(str, await self._claim(keys=[key], args=[mine, PENDING_S]))
        if stored:
            record = json.loads(stored)
            if record.get("digest") != mine:
                raise Conflict("event id reused with a different body")
            if record.get("pending"):
                raise Conflict("event id in progress")
            return Answer(int(record["status"]), record["body"], repeat=True)
        try:
            answer = await self._apply(name, department, number, event)
        except NotStored:
            raise  # the write waits in the journal: the claim stays pending (PENDING_S), no second apply meanwhile
        except BaseException:
            await self.redis.delete(key)  # judged afresh on a retry
            raise
        record = {"digest": mine, "status": answer.status, "body": answer.body}
        ttl = self.settings().retention_days * 86_400
        await self.redis.set(key, json.dumps(record, ensure_ascii=False), ex=ttl)
        await self.redis.hincrby(keyspace.DEPT_APPLIED, f"{name}|{event.event}", 1)
        return answer

    async def _apply(self, name: str, department: Department, number: str, event: DeptEvent) -> Answer:
        found = await self.tickets.by_number(number)
        if found is None:
            raise TicketUnknown(number)
        try:
            async with TicketLock(self.redis, found.linkedid):
                ticket, change = await self._change(found.linkedid, number, department, event)
        except TicketBusy:
            raise Conflict("ticket busy with another change") from None
        return Answer(200, {"id": event.id, "number": ticket.number, "status": change.status,
                            "status_label": STATUS_LABELS.get(change.status, change.status), "due": change.due})

    async def _change(self, linkedid: str, number: str, department: Department,
                      event: DeptEvent) -> tuple[Ticket, Change]:
        """Under the ticket's lock: read it, apply ``event``, write it as the next revision (without
        the lease's token: any console may), and check that Redis has it."""
        ticket, rev = await self.tickets.get(linkedid), await self.tickets.revision(linkedid)
        if ticket is None:
            raise TicketUnknown(number)
        s = self.settings()
        change = apply(ticket, event, department.title, datetime.now().astimezone(), calendar=self.calendar(),
                       max_extension_days=s.max_extension_days)
        mark = ticket.timeline[-1]
        await self.tickets.write(ticket, f"workflow:{rev + 1}:{secrets.token_hex(4)}", rev + 1, fenced=False)
        await self.tickets.drain()
        after = await self.tickets.get(linkedid)
        if after is None or not any(e.at == mark.at and e.event == mark.event for e in after.timeline):
            raise NotStored(number)
        if event.event == "closed":  # the on-time share (KPIs): counted once, the event is applied once
            on_time = closed_on_time(after)
            if on_time is not None:
                await self.redis.hincrby(keyspace.TICKETS_CLOSED_ON_TIME, "on_time" if on_time else "late", 1)
        return ticket, change

    async def refused(self, name: str, reason: str, peer: str) -> int:
        """Count one refusal (``name``: the department, or "unknown"); how many this peer had
        this minute, this one included."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(keyspace.DEPT_REFUSED, f"{name}|{reason}", 1)
            pipe.incr(keyspace.dept_refused_peer(peer))
            pipe.expire(keyspace.dept_refused_peer(peer), 60, nx=True)
            results = await pipe.execute()
        return int(results[1])

    async def flooding(self, peer: str) -> bool:
        """The peer was refused more than :data:`REFUSALS_PER_MINUTE` times this minute."""
        return int(cast(str | None, await self.redis.get(keyspace.dept_refused_peer(peer))) or 0) > REFUSALS_PER_MINUTE


async def counters(redis: aioredis.Redis) -> tuple[dict[str, int], dict[str, int]]:
    """(applied, refused) counters: ``"<department>|<event or reason>"`` → count."""
    applied = cast(dict[str, str], await redis.hgetall(keyspace.DEPT_APPLIED))
    refused = cast(dict[str, str], await redis.hgetall(keyspace.DEPT_REFUSED))
    return {k: int(v) for k, v in applied.items()}, {k: int(v) for k, v in refused.items()}


async def workflow_kpis(redis: aioredis.Redis, now: float | None = None) -> dict[str, float]:
    """Open cases past their deadline now (超期) and the cases closed on time / late so far."""
    overdue = await redis.zcount(keyspace.TICKETS_OPEN_BY_DUE, "-inf", f"({time.time() if now is None else now}")
    closed = cast(dict[str, str], await redis.hgetall(keyspace.TICKETS_CLOSED_ON_TIME))
    on_time, late = int(closed.get("on_time", 0)), int(closed.get("late", 0))
    return {"overdue": int(overdue), "closed_on_time": on_time, "closed_late": late,
            "on_time_share": on_time / (on_time + late) if on_time + late else 0.0}

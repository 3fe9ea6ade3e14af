"""Tickets in Redis: journaled, idempotent phase writes (one script per group commit that also
gives out ticket numbers and counts queue visits), and the reads the CLI, the progress query,
repeat callers and the tracker's reconciliation need."""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta
from datetime import time as dtime
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping, cast

from ivr.core.convert import epoch
from ivr.store import keyspace
from ivr.store.client import HASHES_AS_JSON, json_encoder, oldest_kept_id
from ivr.store.failover import RedisTarget
from ivr.store.redis_journal import RedisJournal
from queues import kpi
from queues.kpi import Increment
from tickets.model import Ticket

# Ticket writes in one script call. KEYS[1] the ticket event stream, KEYS[2] the by-time index,
# KEYS[3] the set of KPI dimensions, KEYS[4] the fencing counter of the follow lease
# (ivr/store/lease.py; '' when the store is not fenced); ARGV[1] the stream's oldest id to keep, ARGV[2] the number
# index prefix, ARGV[3] the indexes' oldest score to keep, ARGV[4] the tickets' TTL (s). Then two
# ARGV per write, its journal line (:meth:`TicketStore.write_nowait`) cut in two: the write's
# fields as one JSON object (phase, linkedid, and either rev, line, day, received — epoch s —,
# agent or a queue visit's ``kpi``), read by the script with ``cjson`` (a field each would cost the
# engine an argument to pack), and the doc's text. A ticket's KEYS are its hash, its line's sequence
# of the day, the caller's index, its agent's index, its received day's change counter (INCR when its
# doc wins), that day's report tally and the hash of docs before a change (reports/tallies.py: while the
# day has a tally, a winning doc first keeps the doc it replaces there, once per ticket) (written when the winning doc names an agent,
# so that an agent's list reads only its own tickets; a ticket handed to another agent leaves the
# first one's index, named from the hash's ``agent`` field); a queue visit's (its doc is ``null``) its ticket's hash and the
# two bucket hashes of each KPI increment, ``kpi`` holding per increment its dimension
# (``queue:general``), its fields (``offered 1 answered 1 …``; ``max_*`` keep the larger value),
# its bucket keys and when its 5-minute and its day bucket expire (epoch s).
# The doc's first field is ``"number": ""``; the script fills in the number (an existing ticket
# keeps its own; a new one takes the next of its line's day). A phase already recorded changes
# nothing (a replay); the stored doc is replaced only by a doc of the same or a later rev (a late
# ``opened`` never overwrites ``closed``). A queue visit records its phase and its increments
# only: no number, no event, no index. A bucket key of another type is skipped (pcall): counts
# must never hold up tickets. A batch that counted a visit tells the wallboards (a pub/sub notice
# on ``ivr:live:changed``). A write that carries a lease ``token`` older than the fencing
# counter's is refused (-4, nothing written): its engine lost the lease, the holder reconciles
# that call. A doc that wins also keeps the overdue index (``due``: an open case's deadline;
# without it the ticket leaves the index). Per write two results: 1 new, 0 phase already there, -1 the ticket key holds another
# type (refused), -4 fenced; and the number.
SAVE_TICKETS = """
local stream_type = redis.call('TYPE', KEYS[1]).ok
if stream_type ~= 'none' and stream_type ~= 'stream' then return -2 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[3])
redis.call('ZREMRANGEBYSCORE', '""" + keyspace.TICKETS_OPEN_BY_DUE + """', '-inf', '(' .. ARGV[3])
local ttl = ARGV[4]
local results = {}
local counted = false
local fence = KEYS[4] ~= '' and tonumber(redis.pcall('GET', KEYS[4])) or 0
local k, i = 5, 0
while k <= #KEYS do
  local w = cjson.decode(ARGV[5 + 2 * i])
  local tkey, phase, linkedid, doc = KEYS[k], w.phase, w.linkedid, ARGV[6 + 2 * i]
  local visit = doc == 'null'
  local m = visit and #w.kpi or 0
  local key_type = redis.call('TYPE', tkey).ok
  if type(w.token) == 'number' and w.token < fence then
    results[2 * i + 1], results[2 * i + 2] = -4, ''
  elseif key_type ~= 'none' and key_type ~= 'hash' then
    results[2 * i + 1], results[2 * i + 2] = -1, ''
  elseif redis.call('HEXISTS', tkey, 'phase:' .. phase) == 1 then
    results[2 * i + 1], results[2 * i + 2] = 0, redis.call('HGET', tkey, 'number') or ''
  elseif visit then
    redis.call('HSET', tkey, 'phase:' .. phase, '1')
    redis.call('EXPIRE', tkey, ttl)
    for j = 1, m do
      local inc = w.kpi[j]  -- dimension, fields, the two bucket keys, their two expiries
      redis.pcall('SADD', KEYS[3], inc[1])
      for n = 0, 1 do
        local bkey = KEYS[k + 2 * j - 1 + n]
        for field, value in string.gmatch(inc[2], '(%S+) (%S+)') do
          if string.sub(field, 1, 4) == 'max_' then
            local current = redis.pcall('HGET', bkey, field)
            if type(current) ~= 'string' or tonumber(value) > tonumber(current) then
              redis.pcall('HSET', bkey, field, value)
            end
          else
            redis.pcall('HINCRBY', bkey, field, value)
          end
        end
        redis.pcall('EXPIREAT', bkey, inc[5 + n])
      end
    end
    counted = counted or m > 0
    results[2 * i + 1], results[2 * i + 2] = 1, redis.call('HGET', tkey, 'number') or ''
  else
    local seqkey, ckey, akey, changes = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]
    local tallied, beforekey = redis.call('TTL', KEYS[k + 5]), KEYS[k + 6]
    local rev, line, day, received = w.rev, w.line, w.day, w.received
    local number = redis.call('HGET', tkey, 'number')
    if not number then
      number = day .. '-' .. line .. '-' .. string.format('%05d', redis.call('INCR', seqkey))
      redis.call('EXPIRE', seqkey, 2 * 86400)
    end
    doc = string.gsub(doc, '^{"number": ""', '{"number": "' .. number .. '"', 1)
    local wins = tonumber(rev) >= tonumber(redis.call('HGET', tkey, 'rev') or '0')
    if wins then
      if tallied > 0 then
        redis.pcall('HSETNX', beforekey, linkedid, redis.call('HGET', tkey, 'doc') or '')
        redis.pcall('EXPIRE', beforekey, tallied)
      end
      redis.call('HSET', tkey, 'doc', doc, 'rev', rev)
      redis.pcall('INCR', changes)
      redis.pcall('EXPIRE', changes, ttl)
      if type(w.due) == 'number' then
        redis.call('ZADD', '""" + keyspace.TICKETS_OPEN_BY_DUE + """', w.due, linkedid)
      else
        redis.call('ZREM', '""" + keyspace.TICKETS_OPEN_BY_DUE + """', linkedid)
      end
    end
    redis.call('HSET', tkey, 'number', number, 'phase:' .. phase, '1')
    redis.call('EXPIRE', tkey, ttl)
    redis.call('SET', ARGV[2] .. (string.gsub(number, '-', '')), linkedid, 'EX', ttl)
    redis.call('ZADD', KEYS[2], received, linkedid)
    redis.call('ZREMRANGEBYSCORE', ckey, '-inf', '(' .. ARGV[3])
    redis.call('ZADD', ckey, received, linkedid)
    redis.call('EXPIRE', ckey, ttl)
    local before = redis.call('HGET', tkey, 'agent')
    if wins and type(w.agent) == 'string' and w.agent ~= '' and w.agent ~= before then
      if before then redis.call('ZREM', '""" + keyspace.agent_tickets("") + """' .. before, linkedid) end
      redis.call('HSET', tkey, 'agent', w.agent)
      redis.call('ZREMRANGEBYSCORE', akey, '-inf', '(' .. ARGV[3])
      redis.call('ZADD', akey, received, linkedid)
      redis.call('EXPIRE', akey, ttl)
    end
    redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[1], '*', 'event', phase, 'linkedid', linkedid,
               'number', number, 'line', line, 'ticket', doc)
    results[2 * i + 1], results[2 * i + 2] = 1, number
  end
  if visit then
    k = k + 1 + 2 * m
  else
    k = k + 7
  end
  i = i + 1
end
if counted then redis.call('PUBLISH', '""" + keyspace.LIVE_CHANGED + """', 'kpi') end
return results
"""


PHASE_REV = {"opened": 10, "closed": 20}  # a later phase's doc wins; updates after close count up

class TicketStore(RedisJournal):
    """Tickets by ``linkedid``: written as journaled, idempotent phase writes; read for the CLI,
    the progress query, repeat callers and the tracker's reconciliation.

    ``caller_key`` keys the caller index (:func:`ivr.store.keyspace.caller_digest`): a store that
    writes tickets or looks them up by caller needs it; a reader by number or time does not."""

    kind = "tickets"
    id_field = "linkedid"
    SCRIPT = SAVE_TICKETS
    stream = keyspace.TICKET_EVENTS
    results_per_record = 2  # status, number

    def __init__(self, target: RedisTarget, spool_dir: Path, name: str, *, retention_days: int, pool_size: int = 20,
                 timeout: float = 2.0, flush_delay: float = 0.0, caller_key: bytes | None = None):
        super().__init__(target, spool_dir, name, retention_days=retention_days, pool_size=pool_size, timeout=timeout,
                         flush_delay=flush_delay)
        self.caller_key = caller_key
        # the follow lease's counter and the token a write carries now (ivr/store/lease.py):
        # set by the engine (:meth:`fenced_by`); a store without it writes unfenced (CLI, tests)
        self.fence_key = ""
        self.fence: Callable[[], int] | None = None
        self._hashes = self.redis.register_script(HASHES_AS_JSON)
        self._receipts: dict[str, tuple[float, str]] = {}
        self._caller_indexes: dict[str, str] = {}

    def fenced_by(self, fence_key: str, token: Callable[[], int]) -> None:
        """Stamp every later write with ``token()`` (0 when this engine holds no lease): Redis
        refuses a write whose token is older than the counter at ``fence_key``."""
        self.fence_key, self.fence = fence_key, token

    def _key(self) -> bytes:
        if self.caller_key is None:
            raise ValueError("this ticket store has no caller_key: it cannot index or find tickets by caller")
        return self.caller_key

    async def write(self, ticket: Ticket, phase: str, rev: int | None = None, *, fenced: bool = True) -> None:
        """Journal one phase of a ticket and queue it for Redis (returns without waiting).
        ``fenced=False``: a write that is not the call follower's (a department's write-back,
        made under its own per-ticket lock) carries no lease token, so any engine's console may make it."""
        self.write_nowait(ticket, phase, rev, fenced=fenced)

    def write_nowait(self, ticket: Ticket, phase: str, rev: int | None = None, *, fenced: bool = True) -> None:
        """:meth:`write` from a callback (the call follower handles AMI events inline)."""
        self._key()  # refused here, in the writer's stack, not later in the group commit
        received, day = self._received(ticket.received)
        doc = ticket.to_json()  # a fresh dict: the number goes first (the script fills it in)
        doc = {"number": doc.pop("number"), **doc}
        meta = _encode({
            "linkedid": ticket.linkedid, "phase": phase, "rev": rev or PHASE_REV.get(phase, 30),
            "line": ticket.line or "0", "day": day, "received": received, "caller": ticket.caller,
            "agent": ticket.agent, **(self._token() if fenced else {}), **_open_until(ticket),
        })
        # The doc is encoded once and goes into the journal line as an object, last: the group
        # commit takes its text back with one partition (no second encoding, no parse of it).
        self.save_line(f"{meta[:-1]}{DOC_SEPARATOR}{_encode(doc)}}}", ticket.linkedid)

    def _received(self, received: str) -> tuple[float, str]:
        """(epoch s, local day ``YYYYMMDD``) of a ticket's receipt: asked at every write of the
        call, so kept for the calls in progress."""
        known = self._receipts.get(received)
        if known is None:
            if len(self._receipts) >= 4096:
                self._receipts.clear()
            epoch_s = epoch(received)
            known = self._receipts[received] = (epoch_s, time.strftime("%Y%m%d", time.localtime(epoch_s)))
        return known

    def _caller_index(self, caller: str) -> str:
        """The caller index's key (a keyed hash of the number): every write of a call needs it,
        so it is kept for the calls in progress."""
        if not caller:
            return keyspace.NO_CALLER_TICKETS
        key = self._caller_indexes.get(caller)
        if key is None:
            if len(self._caller_indexes) >= 4096:
                self._caller_indexes.clear()
            key = self._caller_indexes[caller] = keyspace.caller_tickets(caller, self._key())
        return key

    def write_visit_nowait(self, linkedid: str, phase: str, increments: list[Increment]) -> None:
        """Journal the end of one queue visit (phase ``queue:<queue>:<n>``) with its KPI
        increments; no doc: the ticket's doc is written at ``closed``, and this write is cheap."""
        kpi = [[f"{inc.scope}:{inc.name}", inc.fields(), *(keyspace.kpi_bucket(inc.scope, inc.name, b.label)
                                                         for b in inc.buckets), *(b.expire_at for b in inc.buckets)]
               for inc in increments]
        meta = _encode({"linkedid": linkedid, "phase": phase, "kpi": kpi, **self._token()})
        self.save_line(f"{meta[:-1]}{DOC_SEPARATOR}null}}", linkedid)

    def _token(self) -> dict[str, int]:
        """The lease token a write carries, taken when it is journaled (not when it is committed)."""
        return {} if self.fence is None else {"token": self.fence()}

    async def _write(self, batch: list[tuple[str, bytes]]) -> int | None:
        keys = [keyspace.TICKET_EVENTS, keyspace.TICKETS_BY_TIME, keyspace.KPI_DIMENSIONS, self.fence_key]
        args: list[str | int | float | bytes] = [oldest_kept_id(self.retention_s), keyspace.TICKET_NUMBER_PREFIX,
                                                 time.time() - self.retention_s, int(self.retention_s)]
        for _id, line in batch:
            w, fields, doc = _ticket_write(line)
            keys.append(keyspace.ticket(w["linkedid"]))
            args += [fields, doc]
            kpi = w.get("kpi")
            if kpi is None:
                keys += [keyspace.ticket_sequence(w["day"], w["line"]), self._caller_index(w["caller"]),
                         keyspace.agent_tickets(w.get("agent") or ""), keyspace.report_changes(w["day"]),
                         keyspace.report_tally(w["day"]), keyspace.report_before(w["day"])]
            else:  # a queue visit: the two bucket keys of each of its KPI increments
                keys += [key for increment in kpi for key in increment[2:4]]
        statuses = await self._commit(batch, keys, args)
        return None if statuses is None else statuses.count(1)

    async def get(self, linkedid: str) -> Ticket | None:
        doc = await self.redis.hget(keyspace.ticket(linkedid), "doc")
        return Ticket.from_json(json.loads(doc)) if doc else None

    async def overdue(self, limit: int = 200) -> list[Ticket]:
        """Open cases past their deadline now (超期), the longest overdue first, from the index."""
        linkedids = await self.redis.zrangebyscore(keyspace.TICKETS_OPEN_BY_DUE, "-inf", f"({time.time()}", start=0, num=limit)
        return await self._many(cast(list[str], linkedids))

    async def revision(self, linkedid: str) -> int:
        """The rev of the stored doc (0: none): a later write must name a higher one to replace it."""
        return int(cast(str | None, await self.redis.hget(keyspace.ticket(linkedid), "rev")) or 0)

    async def phases(self, linkedid: str) -> set[str]:
        fields = cast(list[str], await self.redis.hkeys(keyspace.ticket(linkedid)))
        return {f.removeprefix("phase:") for f in fields if f.startswith("phase:")}

    async def by_number(self, number: str) -> Ticket | None:
        """The ticket of a number as printed (``20261201-12345-00017``) or keyed (digits only)."""
        linkedid = cast(str | None, await self.redis.get(keyspace.ticket_number(number.strip())))
        return await self.get(linkedid) if linkedid else None

    async def find(self, number: str) -> Ticket | None:
        """The progress query's lookup (:class:`ivr.flows.base.TicketLookup`)."""
        return await self.by_number(number)

    async def recent_for_caller(self, caller: str, since: float) -> list[Ticket]:
        """The caller's tickets received since ``since`` (epoch s), oldest first."""
        linkedids = await self.redis.zrangebyscore(keyspace.caller_tickets(caller, self._key()), since, "+inf")
        return await self._many(cast(list[str], linkedids))

    async def received_between(self, since: float, until: float = float("inf"), limit: int = 10_000) -> list[Ticket]:
        linkedids = await self.redis.zrangebyscore(keyspace.TICKETS_BY_TIME, since, until, start=0, num=limit)
        return await self._many(cast(list[str], linkedids))

    async def kpi_report(self, win: kpi.Window) -> dict[str, Any]:
        """The service-level report of one window (:func:`queues.kpi.build_report`): every
        queue and line that ever counted a call, its buckets in the window, one round trip;
        under ``satisfaction`` the survey's figures per queue, line and agent from the same buckets."""
        buckets = await self.kpi_buckets(win.labels)
        return {**kpi.build_report(win, buckets), "satisfaction": kpi.satisfaction_report(win, buckets)}

    async def kpi_buckets(self, labels: tuple[str, ...] | list[str],
                          narrow: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, dict[str, dict[str, str]]]:
        """Dimension (``queue:general``) → bucket label → its counters (text), for every
        dimension that ever counted a call; one round trip (the wallboard's trend charts).
        ``narrow``: scope → the labels read for that scope instead (the wallboard reads an
        agent's day only: there are many agents, and no agent has a trend chart)."""
        dimensions = sorted(cast(set[str], await self.redis.smembers(keyspace.KPI_DIMENSIONS)))
        wanted = [(d, (narrow or {}).get(d.partition(":")[0], tuple(labels))) for d in dimensions]
        keys = [keyspace.kpi_bucket(*d.partition(":")[::2], label) for d, mine in wanted for label in mine]
        found = json.loads(await self._hashes(keys=keys)) if keys else {}
        out: dict[str, dict[str, dict[str, str]]] = {}
        i = 0
        for d, mine in wanted:
            out[d] = {label: found.get(str(i + j + 1), {}) for j, label in enumerate(mine)}
            i += len(mine)
        return out

    async def _many(self, linkedids: list[str]) -> list[Ticket]:
        if not linkedids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for linkedid in linkedids:
                pipe.hget(keyspace.ticket(linkedid), "doc")
            docs = await pipe.execute()
        return [Ticket.from_json(json.loads(d)) for d in docs if d]


def _open_until(ticket: Ticket) -> dict[str, float]:
    """``due``: the end of an open case's deadline (epoch s), for the overdue index; none when the
    case is closed (办结) or has no deadline (the script then drops it from the index)."""
    if not ticket.case_open or ticket.deadline is None or not ticket.deadline.due:
        return {}
    due = _due_epoch(ticket.deadline.due)
    return {} if due is None else {"due": due}


@lru_cache(maxsize=1024)
def _due_epoch(due: str) -> float | None:
    """A deadline's end as epoch s (a date: its local midnight after); asked at every write."""
    try:
        if "T" in due:
            return datetime.fromisoformat(due).timestamp()
        return datetime.combine(date.fromisoformat(due) + timedelta(days=1), dtime()).astimezone().timestamp()
    except ValueError:
        return None


DOC_SEPARATOR = ', "doc": '  # cannot occur earlier in a line: JSON escapes every quote inside a value


def _ticket_write(line: bytes) -> tuple[dict[str, Any], bytes, bytes]:
    """A journaled ticket write: its fields, the same as JSON text (for the script), and its doc's
    text (only the script reads it)."""
    cut = line.index(_DOC_SEPARATOR)
    fields = line[:cut] + b"}"
    return cast(dict[str, Any], json.loads(fields)), fields, line[cut + len(_DOC_SEPARATOR):-1]


_DOC_SEPARATOR = DOC_SEPARATOR.encode()

_encode = json_encoder()

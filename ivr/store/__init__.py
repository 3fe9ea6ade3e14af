"""The Redis repository: call records, tickets and engine status (key names: :mod:`ivr.store.keyspace`).

Both kinds of record are journaled on disk first and group-committed (:mod:`ivr.store.journal`), so
neither a dead Redis nor a dead writer loses one. Every write is idempotent, because a journal
may be replayed after its records already reached Redis:

- a call record already stored identically is not streamed twice;
- a ticket write names its phase (``opened``, ``closed``, …); a phase already recorded for that
  ``linkedid`` changes nothing, so one call has one ticket and each event is streamed once;
- a queue visit's write (phase ``queue:<queue>:<n>``, no doc) adds its service-level counts
  (:mod:`queues.kpi`) to their time buckets in the same script, only when its phase is new:
  each visit is counted exactly once, whoever writes it and however often.

Ticket numbers are given out by Redis in the same script (a per-day, per-line sequence), so
they are unique across every engine sharing this Redis. Personal data expires: call records,
tickets and their indexes carry the retention as a TTL, and streams are trimmed by age.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ivr.store import keyspace
from ivr.store.journal import JournaledWriter
from queues import kpi
from queues.kpi import Increment
from queues.elderly import ElderlyEntry
from tickets.model import Ticket

log = logging.getLogger(__name__)

DAY = 86_400

# A batch of records in one script call (one command and one reply per group commit, the
# script sent by its SHA): KEYS[1] the stream, KEYS[2..] the records' keys, ARGV[1] the
# stream's oldest id to keep (its age limit), ARGV[2] the records' TTL in seconds, ARGV[3..]
# the records. Each record is stored under its key and added to the stream; per record 1
# stored, 0 already there, -1 its key holds another type (that record is refused), -3 another
# record holds its id (refused: one record per call, the first; only a record the engine
# ``confirmed`` from AMI replaces one that was not — ivr/agi/call_guard.py). A lone -2 instead of
# the list: the stream key holds another type, nothing was written. A record replayed after it
# already reached Redis (the writer died between the write and removing its journal) finds its
# identical copy and is not streamed twice.
SAVE_RECORDS = """
local stream_type = redis.call('TYPE', KEYS[1]).ok
if stream_type ~= 'none' and stream_type ~= 'stream' then return -2 end
local results = {}
for i = 2, #KEYS do
  local key, record = KEYS[i], ARGV[i + 1]
  local key_type = redis.call('TYPE', key).ok
  if key_type ~= 'none' and key_type ~= 'string' then
    results[i - 1] = -1
  elseif key_type == 'string' and redis.call('GET', key) == record then
    results[i - 1] = 0
  elseif key_type == 'string' and (cjson.decode(record).confirmed ~= true
                                   or cjson.decode(redis.call('GET', key)).confirmed == true) then
    results[i - 1] = -3
  else
    redis.call('SET', key, record, 'EX', ARGV[2])
    redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[1], '*', 'record', record)
    results[i - 1] = 1
  end
end
return results
"""
REFUSED, STREAM_BROKEN, TAKEN = -1, -2, -3

# Ticket writes in one script call. KEYS[1] the ticket event stream, KEYS[2] the by-time index,
# KEYS[3] the set of KPI dimensions; ARGV[1] the stream's oldest id to keep, ARGV[2] the number
# index prefix, ARGV[3] the indexes' oldest score to keep, ARGV[4] the tickets' TTL (s). Then two
# ARGV per write, its journal line (:meth:`TicketStore.write_nowait`) cut in two: the write's
# fields as one JSON object (phase, linkedid, and either rev, line, day, received — epoch s —,
# agent or a queue visit's ``kpi``), read by the script with ``cjson`` (a field each would cost the
# engine an argument to pack), and the doc's text. A ticket's KEYS are its hash, its line's sequence
# of the day, the caller's index, its agent's index (written when the winning doc names an agent,
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
# on ``ivr:live:changed``). Per write two results: 1 new, 0 phase already there, -1 the ticket
# key holds another type (refused); and the number.
SAVE_TICKETS = """
local stream_type = redis.call('TYPE', KEYS[1]).ok
if stream_type ~= 'none' and stream_type ~= 'stream' then return -2 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[3])
local ttl = ARGV[4]
local results = {}
local counted = false
local k, i = 4, 0
while k <= #KEYS do
  local w = cjson.decode(ARGV[5 + 2 * i])
  local tkey, phase, linkedid, doc = KEYS[k], w.phase, w.linkedid, ARGV[6 + 2 * i]
  local visit = doc == 'null'
  local m = visit and #w.kpi or 0
  local key_type = redis.call('TYPE', tkey).ok
  if key_type ~= 'none' and key_type ~= 'hash' then
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
    local seqkey, ckey, akey = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
    local rev, line, day, received = w.rev, w.line, w.day, w.received
    local number = redis.call('HGET', tkey, 'number')
    if not number then
      number = day .. '-' .. line .. '-' .. string.format('%05d', redis.call('INCR', seqkey))
      redis.call('EXPIRE', seqkey, 2 * 86400)
    end
    doc = string.gsub(doc, '^{"number": ""', '{"number": "' .. number .. '"', 1)
    local wins = tonumber(rev) >= tonumber(redis.call('HGET', tkey, 'rev') or '0')
    if wins then
      redis.call('HSET', tkey, 'doc', doc, 'rev', rev)
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
    k = k + 4
  end
  i = i + 1
end
if counted then redis.call('PUBLISH', '""" + keyspace.LIVE_CHANGED + """', 'kpi') end
return results
"""


# Many small hashes in one reply (the KPI buckets of a report or a wallboard: dimensions ×
# buckets, most of them empty): KEYS the hashes; a JSON object, key's 1-based position → its
# fields, for the non-empty ones (a key of another type counts nothing). One bulk string to
# parse instead of thousands of reply elements.
HASHES_AS_JSON = """
local out = {}
for i, key in ipairs(KEYS) do
  local flat = redis.pcall('HGETALL', key)
  if type(flat) == 'table' and flat.err == nil and #flat > 0 then
    local fields = {}
    for j = 1, #flat, 2 do fields[flat[j]] = flat[j + 1] end
    out[tostring(i)] = fields
  end
end
if next(out) == nil then return '{}' end
return cjson.encode(out)
"""


def _oldest_kept_id(retention_s: float) -> str:
    """A stream id below which entries are older than the retention (``MINID`` trimming)."""
    return str(int((time.time() - retention_s) * 1000))


def redis_client(url: str, pool_size: int, timeout: float, *, wait: float | None = None,
                 name: str | None = None) -> aioredis.Redis:
    """A client with a bounded pool. ``wait``: a caller waits that long for a free connection
    (then redis ConnectionError) instead of failing at once: back-pressure for the console, whose
    requests come from outside. ``name``: CLIENT SETNAME, to tell the pools apart in CLIENT LIST."""
    options: dict[str, Any] = {"client_name": name} if name else {}
    if wait is not None:
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=pool_size, timeout=wait, socket_timeout=timeout, socket_connect_timeout=timeout,
            decode_responses=True, **options)
        return aioredis.Redis.from_pool(pool)  # closed with the client
    return aioredis.Redis.from_url(
        url, max_connections=pool_size, socket_timeout=timeout, socket_connect_timeout=timeout,
        decode_responses=True, **options,
    )


class _RedisJournal(JournaledWriter):
    """A journaled writer whose group commit is one call of its ``script`` (:attr:`SCRIPT`)."""

    SCRIPT = ""
    stream = ""  # the stream the script appends to (named in errors)
    results_per_record = 1  # the script's results per record; the first is the record's status

    def __init__(self, url: str, spool_dir: Path, name: str, *, retention_days: int, pool_size: int = 20,
                 timeout: float = 2.0, flush_delay: float = 0.0):
        super().__init__(spool_dir, name, flush_delay=flush_delay)
        self.redis = redis_client(url, pool_size, timeout)
        self.retention_s = retention_days * DAY
        self._script = self.redis.register_script(self.SCRIPT)

    async def _commit(self, batch: list[tuple[str, bytes]], keys: list[str], args: list[Any]) -> list[int] | None:
        """Run the script for ``batch``; its per-record statuses, or None when Redis fails (the
        records stay journaled). Records Redis refuses for good (:data:`REFUSED`: their key holds
        another type) are set aside, so that one bad key cannot hold up every later record."""
        try:
            results = await self._script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            log.warning("Redis unavailable, %d %s record(s) kept in %s: %s", len(batch), self.kind, self.spool_dir, exc)
            return None
        if results == STREAM_BROKEN:
            log.error("%s in Redis is not a stream; %d %s record(s) kept in %s", self.stream, len(batch), self.kind,
                      self.spool_dir)
            return None
        statuses = [int(r) for r in results[::self.results_per_record]]
        for (record_id, _line), status in zip(batch, statuses):
            if status == REFUSED:
                log.error("the Redis key of %s record %s holds another type: kept in %s", self.kind, record_id,
                          self.bad_file)
            elif status == TAKEN:
                log.warning("%s record %.64r refused: another record holds that id", self.kind, record_id)
        self._set_aside([line for (_id, line), status in zip(batch, statuses) if status == REFUSED])
        return statuses

    async def close(self) -> None:
        await super().close()
        await self.redis.aclose()


class CallStore(_RedisJournal):
    """The engine's call records (what the caller heard and pressed, the route) and status."""

    kind = "calls"
    id_field = "unique_id"
    SCRIPT = SAVE_RECORDS
    stream = keyspace.CALL_STREAM

    def __init__(self, url: str, spool_dir: Path, name: str, *, pool_size: int = 20, timeout: float = 2.0,
                 flush_delay: float = 0.0, retention_days: int = 180):
        super().__init__(url, spool_dir, name, retention_days=retention_days, pool_size=pool_size, timeout=timeout,
                         flush_delay=flush_delay)

    async def save_call(self, record: dict[str, Any]) -> None:
        await self.save(record)

    async def _write(self, batch: list[tuple[str, bytes]]) -> int | None:
        keys = [keyspace.CALL_STREAM, *(keyspace.call(unique_id) for unique_id, _line in batch)]
        args: list[str | int | bytes] = [_oldest_kept_id(self.retention_s), int(self.retention_s),
                                 *(line for _unique_id, line in batch)]
        statuses = await self._commit(batch, keys, args)
        return None if statuses is None else statuses.count(1)

    async def publish_engine_status(self, engine: str, status: dict[str, str]) -> None:
        """Which flow version an engine runs, so admins (and `ivr reload`) can see it."""
        try:
            await self.redis.hset(keyspace.engine(engine), mapping=dict(status))  # type: ignore[arg-type]
        except (RedisError, OSError) as exc:
            log.warning("could not publish engine status: %s", exc)

    async def engine_status(self, engine: str) -> dict[str, str]:
        status = await self.redis.hgetall(keyspace.engine(engine))
        return cast(dict[str, str], status)  # decode_responses=True: keys and values are str

    async def engine_status_or_none(self, engine: str) -> dict[str, str] | None:
        """The published status, or None when Redis does not answer."""
        try:
            return await self.engine_status(engine)
        except (RedisError, OSError):
            return None

    async def get_call(self, unique_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(keyspace.call(unique_id))
        return json.loads(raw) if raw else None

# --- tickets ---------------------------------------------------------------------------------

PHASE_REV = {"opened": 10, "closed": 20}  # a later phase's doc wins; updates after close count up


class TicketStore(_RedisJournal):
    """Tickets by ``linkedid``: written as journaled, idempotent phase writes; read for the CLI,
    the progress query, repeat callers and the tracker's reconciliation.

    ``caller_key`` keys the caller index (:func:`ivr.store.keyspace.caller_digest`): a store that
    writes tickets or looks them up by caller needs it; a reader by number or time does not."""

    kind = "tickets"
    id_field = "linkedid"
    SCRIPT = SAVE_TICKETS
    stream = keyspace.TICKET_EVENTS
    results_per_record = 2  # status, number

    def __init__(self, url: str, spool_dir: Path, name: str, *, retention_days: int, pool_size: int = 20,
                 timeout: float = 2.0, flush_delay: float = 0.0, caller_key: bytes | None = None):
        super().__init__(url, spool_dir, name, retention_days=retention_days, pool_size=pool_size, timeout=timeout,
                         flush_delay=flush_delay)
        self.caller_key = caller_key
        self._hashes = self.redis.register_script(HASHES_AS_JSON)
        self._receipts: dict[str, tuple[float, str]] = {}
        self._caller_indexes: dict[str, str] = {}

    def _key(self) -> bytes:
        if self.caller_key is None:
            raise ValueError("this ticket store has no caller_key: it cannot index or find tickets by caller")
        return self.caller_key

    async def write(self, ticket: Ticket, phase: str, rev: int | None = None) -> None:
        """Journal one phase of a ticket and queue it for Redis (returns without waiting)."""
        self.write_nowait(ticket, phase, rev)

    def write_nowait(self, ticket: Ticket, phase: str, rev: int | None = None) -> None:
        """:meth:`write` from a callback (the call follower handles AMI events inline)."""
        self._key()  # refused here, in the writer's stack, not later in the group commit
        received, day = self._received(ticket.received)
        doc = ticket.to_json()  # a fresh dict: the number goes first (the script fills it in)
        doc = {"number": doc.pop("number"), **doc}
        meta = _encode({
            "linkedid": ticket.linkedid, "phase": phase, "rev": rev or PHASE_REV.get(phase, 30),
            "line": ticket.line or "0", "day": day, "received": received, "caller": ticket.caller,
            "agent": ticket.agent,
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
            epoch = _epoch(received)
            known = self._receipts[received] = (epoch, time.strftime("%Y%m%d", time.localtime(epoch)))
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
        meta = _encode({"linkedid": linkedid, "phase": phase, "kpi": kpi})
        self.save_line(f"{meta[:-1]}{DOC_SEPARATOR}null}}", linkedid)

    async def _write(self, batch: list[tuple[str, bytes]]) -> int | None:
        keys = [keyspace.TICKET_EVENTS, keyspace.TICKETS_BY_TIME, keyspace.KPI_DIMENSIONS]
        args: list[str | int | float | bytes] = [_oldest_kept_id(self.retention_s), keyspace.TICKET_NUMBER_PREFIX,
                                                 time.time() - self.retention_s, int(self.retention_s)]
        for _id, line in batch:
            w, fields, doc = _ticket_write(line)
            keys.append(keyspace.ticket(w["linkedid"]))
            args += [fields, doc]
            kpi = w.get("kpi")
            if kpi is None:
                keys += [keyspace.ticket_sequence(w["day"], w["line"]), self._caller_index(w["caller"]),
                         keyspace.agent_tickets(w.get("agent") or "")]
            else:  # a queue visit: the two bucket keys of each of its KPI increments
                keys += [key for increment in kpi for key in increment[2:4]]
        statuses = await self._commit(batch, keys, args)
        return None if statuses is None else statuses.count(1)

    async def get(self, linkedid: str) -> Ticket | None:
        doc = await self.redis.hget(keyspace.ticket(linkedid), "doc")
        return Ticket.from_json(json.loads(doc)) if doc else None

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
        queue and line that ever counted a call, its buckets in the window, one round trip."""
        return kpi.build_report(win, await self.kpi_buckets(win.labels))

    async def kpi_buckets(self, labels: tuple[str, ...] | list[str]) -> dict[str, dict[str, dict[str, str]]]:
        """Dimension (``queue:general``) → bucket label → its counters (text), for every
        dimension that ever counted a call; one round trip (the wallboard's trend charts)."""
        dimensions = sorted(cast(set[str], await self.redis.smembers(keyspace.KPI_DIMENSIONS)))
        keys = [keyspace.kpi_bucket(*dimension.partition(":")[::2], label) for dimension in dimensions for label in labels]
        found = json.loads(await self._hashes(keys=keys)) if keys else {}
        per = len(labels)
        return {d: {label: found.get(str(i * per + j + 1), {}) for j, label in enumerate(labels)}
                for i, d in enumerate(dimensions)}

    async def _many(self, linkedids: list[str]) -> list[Ticket]:
        if not linkedids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for linkedid in linkedids:
                pipe.hget(keyspace.ticket(linkedid), "doc")
            docs = await pipe.execute()
        return [Ticket.from_json(json.loads(d)) for d in docs if d]



# --- the registered elderly list -------------------------------------------------------------

ENTRY_ID_CHARS = 12  # of a digest, shown by `ivr elderly list`: tells entries apart, reveals nothing


class ElderlyList:
    """The elderly register (:mod:`queues.elderly`) in Redis: one hash, digest → JSON of when,
    by whom and why it was added. Numbers are given normalised; only their keyed digests are
    stored, so the hash is useless without ``caller_key``."""

    def __init__(self, url: str, caller_key: bytes, *, pool_size: int = 10, timeout: float = 2.0):
        self.redis = redis_client(url, pool_size, timeout)
        self.caller_key = caller_key

    def _digest(self, number: str) -> str:
        return keyspace.caller_digest(number, self.caller_key)

    async def add(self, numbers: list[str], *, added: str, by: str, reason: str) -> int:
        """Register ``numbers``; how many were new (one already there keeps its first entry)."""
        meta = json.dumps({"added": added, "by": by, "reason": reason}, ensure_ascii=False)
        async with self.redis.pipeline(transaction=True) as pipe:
            for number in numbers:
                pipe.hsetnx(keyspace.ELDERLY, self._digest(number), meta)
            return sum(int(r) for r in await pipe.execute())

    async def remove(self, numbers: list[str]) -> int:
        """How many of ``numbers`` were registered (and are no longer)."""
        if not numbers:
            return 0
        return int(await self.redis.hdel(keyspace.ELDERLY, *(self._digest(n) for n in numbers)))

    async def remove_ids(self, ids: list[str]) -> list[str]:
        """Remove entries by the id ``entries`` shows (a number nobody has any more); the full
        digests removed. ValueError, and nothing removed, if an id matches none or several."""
        digests = cast(list[str], await self.redis.hkeys(keyspace.ELDERLY))
        chosen = []
        for entry_id in ids:
            matches = [d for d in digests if d.startswith(entry_id.lower())]
            if len(matches) != 1:
                raise ValueError(f"id {entry_id!r} matches {len(matches) or 'no'} entries" + (": give more of it" if matches else ""))
            chosen.append(matches[0])
        if chosen:
            await self.redis.hdel(keyspace.ELDERLY, *chosen)
        return chosen

    async def contains(self, number: str) -> bool:
        return bool(await self.redis.hexists(keyspace.ELDERLY, self._digest(number)))

    async def entry(self, number: str) -> ElderlyEntry | None:
        raw = cast(str | None, await self.redis.hget(keyspace.ELDERLY, self._digest(number)))
        return _elderly_entry(self._digest(number), raw) if raw else None

    async def count(self) -> int:
        return int(await self.redis.hlen(keyspace.ELDERLY))

    async def entries(self) -> list[ElderlyEntry]:
        """Every entry, oldest first, as :class:`ElderlyEntry` shows it."""
        raw = cast(dict[str, str], await self.redis.hgetall(keyspace.ELDERLY))
        return sorted((_elderly_entry(d, v) for d, v in raw.items()), key=lambda e: (e.added, e.id))

    async def close(self) -> None:
        await self.redis.aclose()


def _elderly_entry(digest: str, value: str) -> ElderlyEntry:
    meta = json.loads(value)
    return ElderlyEntry(digest[:ENTRY_ID_CHARS], str(meta.get("added", "")), str(meta.get("by", "")),
                        str(meta.get("reason", "")))


DOC_SEPARATOR = ', "doc": '  # cannot occur earlier in a line: JSON escapes every quote inside a value


def _ticket_write(line: bytes) -> tuple[dict[str, Any], bytes, bytes]:
    """A journaled ticket write: its fields, the same as JSON text (for the script), and its doc's
    text (only the script reads it)."""
    cut = line.index(_DOC_SEPARATOR)
    fields = line[:cut] + b"}"
    return cast(dict[str, Any], json.loads(fields)), fields, line[cut + len(_DOC_SEPARATOR):-1]


_DOC_SEPARATOR = DOC_SEPARATOR.encode()


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _json_encoder() -> Callable[[Any], str]:
    """``json.dumps(value, ensure_ascii=False)`` (separators ``, `` and ``: ``) for the ticket
    writes, made once: ``dumps`` builds an encoder on every call. Values are plain data from
    :meth:`Ticket.to_json` (no cycles to check, nothing but JSON types)."""
    from json import encoder

    make = getattr(encoder, "c_make_encoder", None)
    if make is None:  # not CPython's C accelerator
        return json.JSONEncoder(ensure_ascii=False, check_circular=False).encode
    iterencode = make(None, json.JSONEncoder().default, encoder.encode_basestring, None, ": ", ", ", False, False,
                      True)
    return lambda value: "".join(iterencode(value, 0))


_encode = _json_encoder()


class SeatStore:
    """Where agents' seats are published for ``ivr agents`` and the wallboard. Not journaled:
    Asterisk holds the truth and the seat follower rewrites it all after every reconnect."""

    def __init__(self, url: str, *, timeout: float = 2.0):
        self.redis = aioredis.Redis.from_url(url, decode_responses=True, socket_timeout=timeout,
                                             socket_connect_timeout=timeout)

    async def save(self, seats: dict[str, dict[str, Any]]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(keyspace.SEATS, mapping={a: json.dumps(s, ensure_ascii=False) for a, s in seats.items()})
            for agent in seats:
                pipe.publish(keyspace.SEATS_CHANGED, agent)
            await pipe.execute()

    async def replace(self, seats: dict[str, dict[str, Any]]) -> None:
        """All seats at once (after a reconcile): agents no longer configured disappear."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keyspace.SEATS)
            if seats:
                pipe.hset(keyspace.SEATS, mapping={a: json.dumps(s, ensure_ascii=False) for a, s in seats.items()})
            pipe.publish(keyspace.SEATS_CHANGED, "*")
            await pipe.execute()

    async def all(self) -> dict[str, dict[str, Any]]:
        raw = cast(dict[str, str], await self.redis.hgetall(keyspace.SEATS))
        return {agent: json.loads(text) for agent, text in sorted(raw.items())}

    async def close(self) -> None:
        await self.redis.aclose()

"""Call records (what the caller heard and pressed, the route) in Redis (the engines' status: engines.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ivr.store import keyspace
from ivr.store.client import oldest_kept_id
from ivr.store.failover import RedisTarget
from ivr.store.redis_journal import RedisJournal

# A batch of records in one script call (one command and one reply per group commit, the
# script sent by its SHA): KEYS[1] the stream, KEYS[2..] the records' keys, ARGV[1] the
# stream's oldest id to keep (its age limit), ARGV[2] the records' TTL in seconds, ARGV[3..]
# the records. Each record is stored under its key and added to the stream; per record 1
# stored, 0 already there, -1 its key holds another type (that record is refused), -3 another
# record holds its id (refused: one record per call, the first; only a record the engine
# ``confirmed`` from AMI replaces one that was not, or a confirmed one of an earlier session of the
# call — a stand-in engine's, which carries the whole path: ivr/agi/call_guard.py). A lone -2 instead of
# the list: the stream key holds another type, nothing was written. A record replayed after it
# already reached Redis (the writer died between the write and removing its journal) finds its
# identical copy and is not streamed twice.
SAVE_RECORDS = """
local function session(r) return tonumber(r.resumed) or 0 end
local function replaces(new, old)
  return new.confirmed == true and (old.confirmed ~= true or session(new) > session(old))
end
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
  elseif key_type == 'string' and not replaces(cjson.decode(record), cjson.decode(redis.call('GET', key))) then
    results[i - 1] = -3
  else
    redis.call('SET', key, record, 'EX', ARGV[2])
    redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[1], '*', 'record', record)
    results[i - 1] = 1
  end
end
return results
"""


class CallStore(RedisJournal):
    """The engine's call records (what the caller heard and pressed, the route) and status."""

    kind = "calls"
    id_field = "unique_id"
    SCRIPT = SAVE_RECORDS
    stream = keyspace.CALL_STREAM

    def __init__(self, target: RedisTarget, spool_dir: Path, name: str, *, pool_size: int = 20, timeout: float = 2.0,
                 flush_delay: float = 0.0, retention_days: int = 180):
        super().__init__(target, spool_dir, name, retention_days=retention_days, pool_size=pool_size, timeout=timeout,
                         flush_delay=flush_delay)

    async def save_call(self, record: dict[str, Any]) -> None:
        await self.save(record)

    async def _write(self, batch: list[tuple[str, bytes]]) -> int | None:
        keys = [keyspace.CALL_STREAM, *(keyspace.call(unique_id) for unique_id, _line in batch)]
        args: list[str | int | bytes] = [oldest_kept_id(self.retention_s), int(self.retention_s),
                                 *(line for _unique_id, line in batch)]
        statuses = await self._commit(batch, keys, args)
        return None if statuses is None else statuses.count(1)

    async def get_call(self, unique_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(keyspace.call(unique_id))
        return json.loads(raw) if raw else None

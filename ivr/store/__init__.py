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

Modules: :mod:`~ivr.store.client` (``redis_client``, the one way to a Redis client, and shared
helpers), :mod:`~ivr.store.failover` (Redis behind Sentinel: retries across a failover, writes
confirmed by replicas), :mod:`~ivr.store.redis_journal` (the journaled writer's Redis commit),
:mod:`~ivr.store.calls`, :mod:`~ivr.store.elderly`, the console's :mod:`~ivr.store.sessions` and
:mod:`~ivr.store.users`; this package re-exports their public names, so
importers need not know. The tickets' and the seats' repositories are in their feature folders
(:mod:`tickets.store`, :mod:`queues.store`).
"""

from ivr.store import keyspace
from ivr.store.calls import SAVE_RECORDS, CallStore
from ivr.store.client import DAY, HASHES_AS_JSON, redis_client
from ivr.store.elderly import ENTRY_ID_CHARS, ElderlyList
from ivr.store.failover import RedisTarget, confirm, where
from ivr.store.redis_journal import REFUSED, STREAM_BROKEN, TAKEN

__all__ = [
    "DAY", "ENTRY_ID_CHARS", "HASHES_AS_JSON", "REFUSED", "SAVE_RECORDS",
    "STREAM_BROKEN", "TAKEN", "CallStore", "ElderlyList", "RedisTarget", "confirm", "keyspace", "redis_client",
    "where",
]

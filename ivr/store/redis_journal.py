"""The journaled writers whose group commit is one Lua script call (:mod:`ivr.store.calls`,
:mod:`tickets.store`); the journal itself (:mod:`ivr.store.journal`) knows nothing of Redis."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from ivr.store.client import DAY, redis_client
from ivr.store.failover import RedisTarget, confirm, confirm_replicas
from ivr.store.journal import JournaledWriter

log = logging.getLogger("ivr.store")  # the name the records' warnings had before the split

# A script's per-record status: its key holds another type (refused for good), the stream key
# holds another type (a lone status instead of the list: nothing written), another record holds
# its id (refused), the record was written under a lease token older than the lease's (fenced:
# dropped, never retried; the lease's holder reconciles its call). 1 and 0 (stored, already
# there) are the normal ones.
REFUSED, STREAM_BROKEN, TAKEN, FENCED = -1, -2, -3, -4


class RedisJournal(JournaledWriter):
    """A journaled writer whose group commit is one call of its ``script`` (:attr:`SCRIPT`)."""

    SCRIPT = ""
    stream = ""  # the stream the script appends to (named in errors)
    results_per_record = 1  # the script's results per record; the first is the record's status

    def __init__(self, target: RedisTarget, spool_dir: Path, name: str, *, retention_days: int, pool_size: int = 20,
                 timeout: float = 2.0, flush_delay: float = 0.0):
        super().__init__(spool_dir, name, flush_delay=flush_delay)
        self.redis = redis_client(target, pool_size, timeout)
        self.confirm_replicas, self.confirm_timeout_ms = confirm_replicas(target)
        self.retention_s = retention_days * DAY
        self._script = self.redis.register_script(self.SCRIPT)

    async def _commit(self, batch: list[tuple[str, bytes]], keys: list[str], args: list[Any]) -> list[int] | None:
        """Run the script for ``batch``; its per-record statuses, or None when Redis fails or the
        replicas do not confirm it (the records stay journaled and are replayed). Records Redis
        refuses for good (:data:`REFUSED`: their key holds another type) are set aside, so that one
        bad key cannot hold up every later record."""
        try:
            results = await self._script(keys=keys, args=args)
            # through Sentinel a batch is written once replicas hold it: a master that dies before
            # replicating takes nothing the journal has let go (nor a ticket number pushed out)
            await confirm(self.redis, self.confirm_replicas, self.confirm_timeout_ms)
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
            elif status == FENCED:
                log.warning("%s record %.64r refused: written under an older lease token (another engine "
                            "follows the call now); dropped", self.kind, record_id)
        self._set_aside([line for (_id, line), status in zip(batch, statuses) if status == REFUSED])
        return statuses

    async def close(self) -> None:
        await super().close()
        await self.redis.aclose()


"""How the engine, its workers, the CLI and the console reach Redis: one client factory and the
helpers every repository shares (the retention of streams, one reply for many hashes)."""

from __future__ import annotations

import json
import time
from typing import Any, Callable

import redis.asyncio as aioredis

from ivr.config import RedisSettings
from ivr.store.failover import RedisTarget, sentinel_client

DAY = 86_400

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


def oldest_kept_id(retention_s: float) -> str:
    """A stream id below which entries are older than the retention (``MINID`` trimming)."""
    return str(int((time.time() - retention_s) * 1000))


def redis_client(target: RedisTarget, pool_size: int | None = None, timeout: float | None = None, *,
                 connect_timeout: float | None = None, wait: float | None = None,
                 name: str | None = None) -> aioredis.Redis:
    """The one way to a Redis client (``decode_responses=True``: keys and values are str).

    ``target``: a URL, or the ``redis:`` settings: their URL, or the master their Sentinel service
    names, followed across a failover (:mod:`ivr.store.failover`). ``pool_size``: at most that
    many connections (None: redis-py's default pool). ``timeout``: the socket timeout (None:
    none), also the connect timeout unless ``connect_timeout`` says otherwise. ``wait``: a caller
    waits that long for a free connection (then redis ConnectionError) instead of failing at once:
    back-pressure for the console, whose requests come from outside. ``name``: CLIENT SETNAME, to
    tell the pools apart in CLIENT LIST. Options left None are not passed, so a call site gets
    exactly redis-py's defaults for them."""
    options: dict[str, Any] = {"decode_responses": True}
    if pool_size is not None:
        options["max_connections"] = pool_size
    if timeout is not None:
        options["socket_timeout"] = timeout
    if connect_timeout is not None or timeout is not None:
        options["socket_connect_timeout"] = connect_timeout if connect_timeout is not None else timeout
    if name:
        options["client_name"] = name
    if isinstance(target, RedisSettings):
        if target.sentinel_service is not None:
            return sentinel_client(target, options, wait)
        if target.password is not None:  # a password in the URL wins
            options["password"] = target.password.get_secret_value()
        target = target.url
    if wait is not None:
        pool = aioredis.BlockingConnectionPool.from_url(target, timeout=wait, **options)
        return aioredis.Redis.from_pool(pool)  # closed with the client
    return aioredis.Redis.from_url(target, **options)


def json_encoder() -> Callable[[Any], str]:
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


"""Dead letters (``ivr:push:dead:<endpoint>``): read, replayed and dropped, for ``ivr push dead``
and the console's page.

A letter names a ticket event the worker gave up on (tickets.webhooks ``_park``): endpoint,
event id, ticket number, tries, last error, the stream entry it came from; never a caller.

Replay puts a copy of that stream entry back on the ticket event stream with one more field,
:data:`REPLAY_FOR` = the endpoint. The copy has the same ``linkedid`` and event, hence the same
event id (``X-Ivr-Event-Id``), so a receiver that did get it after all drops it; the
endpoint's consumer group delivers it like any entry, the other endpoints' groups acknowledge it
unread. The letter stays on the list until the copy is delivered: the worker that delivers it
removes it in the same transaction as the done mark (:data:`FORGET`), and a replay that fails
again replaces the letter rather than adding a second one. Cluster-safe as push itself is: the
stream's consumer group hands the copy to exactly one worker of the endpoint, whichever engine
it runs in; a copy replayed twice is posted once (the second finds the done mark).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis

from ivr.store import keyspace
from tickets.push import stable_id

REPLAY_FOR = "for"  # stream field of a replayed copy: the one endpoint it is for
EVENT_ID = re.compile(r"[0-9A-Za-z._-]{1,64}:[a-z]{1,16}")  # <linkedid>:<event>, as stable_id makes it

# Remove every letter of one event id from a dead list: KEYS[1] the list, ARGV[1] the event id.
# Returns how many were removed. Letters are JSON objects with an "id" (a line that is not is kept).
FORGET = """
local removed = 0
for _, raw in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local ok, letter = pcall(cjson.decode, raw)
  if ok and type(letter) == 'table' and letter['id'] == ARGV[1] then
    removed = removed + redis.call('LREM', KEYS[1], 0, raw)
  end
end
return removed
"""


class NoSuchLetter(LookupError):
    """No dead letter of that event id for that endpoint (delivered meanwhile, dropped, expired)."""


class EntryGone(LookupError):
    """The letter's stream entry is no longer in the stream (past the retention): it cannot be replayed."""


@dataclass(frozen=True)
class DeadLetter:
    endpoint: str
    id: str  # the event id receivers dedupe on
    event: str
    number: str  # the ticket number
    line: str
    linkedid: str
    tries: int
    error: str
    at: str  # when it was parked, UTC ISO 8601
    entry: str  # the stream entry it came from

    @classmethod
    def parse(cls, endpoint: str, raw: str) -> "DeadLetter | None":
        """None for a list element that is not a letter (edited by hand)."""
        try:
            data: Any = json.loads(raw)
            return cls(endpoint, str(data["id"]), str(data.get("event", "")), str(data.get("number", "")),
                       str(data.get("line", "")), str(data.get("linkedid", "")), int(data.get("tries", 0)),
                       str(data.get("error", "")), str(data.get("at", "")), str(data.get("entry", "")))
        except (ValueError, TypeError, KeyError):
            return None


def check_event_id(text: str) -> str:
    """The event id as typed or posted; ValueError unless it has the shape event ids have."""
    text = text.strip()
    if not EVENT_ID.fullmatch(text):
        raise ValueError(f"bad event id {text[:80]!r}: expected <linkedid>:<event>, e.g. 1764552600.17:closed")
    return text


def check_endpoint(name: str, endpoints: list[str]) -> str:
    """A configured endpoint's name; ValueError naming the configured ones otherwise."""
    if name not in endpoints:
        known = ", ".join(endpoints) or "none configured"
        raise ValueError(f"no webhook endpoint {name[:40]!r} (tickets.webhooks: {known})")
    return name


async def letters(redis: aioredis.Redis, endpoints: list[str]) -> list[DeadLetter]:
    """Every dead letter of these endpoints, oldest first per endpoint."""
    found = []
    for endpoint in endpoints:
        for raw in await redis.lrange(keyspace.push_dead(endpoint), 0, -1):
            letter = DeadLetter.parse(endpoint, str(raw))  # the client decodes (ivr.store.redis_client)
            if letter is not None:
                found.append(letter)
    return found


async def letter(redis: aioredis.Redis, endpoint: str, event_id: str) -> DeadLetter:
    """The newest letter of ``event_id`` at ``endpoint``; NoSuchLetter if there is none."""
    mine = [x for x in await letters(redis, [endpoint]) if x.id == event_id]
    if not mine:
        raise NoSuchLetter(f"no dead letter {event_id} for endpoint {endpoint}")
    return mine[-1]


async def replay(redis: aioredis.Redis, endpoint: str, event_id: str) -> str:
    """Queue the letter's event again for ``endpoint`` only, under the same event id; returns the
    new stream entry's id. NoSuchLetter, or EntryGone when the stream no longer holds the event."""
    parked = await letter(redis, endpoint, event_id)
    entries = await redis.xrange(keyspace.TICKET_EVENTS, parked.entry, parked.entry) if parked.entry else []
    fields = cast(dict[str, str], dict(entries[0][1] or {})) if entries else {}
    if stable_id(fields.get("linkedid", ""), fields.get("event", "")) != event_id:
        raise EntryGone(f"event {event_id} is no longer in the ticket event stream (kept for the retention)")
    copy: dict[Any, Any] = {**fields, REPLAY_FOR: endpoint}  # redis-py's stubs want its own key type
    return str(await redis.xadd(keyspace.TICKET_EVENTS, copy))


async def drop(redis: aioredis.Redis, endpoint: str, event_id: str) -> int:
    """Remove the letter(s) of ``event_id`` at ``endpoint``; how many; NoSuchLetter if none."""
    removed = int(await redis.eval(FORGET, 1, keyspace.push_dead(endpoint), event_id))
    if not removed:
        raise NoSuchLetter(f"no dead letter {event_id} for endpoint {endpoint}")
    return removed

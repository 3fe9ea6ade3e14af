"""The agent's call as the seat follower wrote it (``ivr:desk:<agent>``), and the notice a
supervised agent's desk shows (docs/supervision.md).

The notice sits in the desk's own hash beside the follower's ``doc`` and names the call's
linkedid: the desk shows it only while that call is the one on the desk, so it ends with the
call without anybody having to clear it.
"""

from __future__ import annotations

import json
import time
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ivr.store import keyspace
from supervision.model import SupervisionError, SupervisionRequest

NOTICE_FIELD = "supervision"


async def talking_call(redis: aioredis.Redis, agent: str) -> str:
    """The linkedid of the call ``agent`` is talking on; SupervisionError when none (nothing to spy on)."""
    try:
        raw = cast(str | None, await redis.hget(keyspace.desk(agent), "doc"))
    except (RedisError, OSError) as exc:
        raise SupervisionError(f"cannot read agent {agent}'s call: {exc}") from None
    record = json.loads(raw) if raw else {}
    if record.get("state") != "connected" or not record.get("linkedid"):
        raise SupervisionError(f"agent {agent} is not talking to a caller")
    return str(record["linkedid"])


async def tell_agent(redis: aioredis.Redis, request: SupervisionRequest, linkedid: str, supervisor_name: str) -> None:
    """The agent's desk shows who joined its call and how (``supervision.notify_agent``)."""
    notice = {"linkedid": linkedid, "mode": request.mode, "label": request.label, "supervisor": supervisor_name,
              "at": time.time()}
    await redis.hset(keyspace.desk(request.agent), NOTICE_FIELD, json.dumps(notice, ensure_ascii=False))
    await redis.publish(keyspace.DESK_CHANGED, request.agent)


def notice_for(raw: str | None, call: dict[str, Any] | None) -> dict[str, Any] | None:
    """The stored notice when it is about the call on the desk now (connected), else None."""
    if not raw or not call or call.get("state") != "connected":
        return None
    notice = json.loads(raw)
    return notice if isinstance(notice, dict) and notice.get("linkedid") == call.get("linkedid") else None

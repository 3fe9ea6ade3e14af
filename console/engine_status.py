"""The engines of the cluster as the console shows them (the flows page): each engine's version,
last reload, heartbeat and leases, and whether all run the announced version — what
`ivr reload --status` prints, in Mandarin with local times (docs/cluster.md)."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ivr.store.engines import EngineRegistry, content_of, local_time, out_of_step, seconds_since

LAG_TEXT = {"unconfirmed": "尚未确认最新发布", "refused": "加载被拒绝，仍运行旧版本", "other": "配置文件与发布的不同"}


@dataclass(frozen=True)
class EngineRow:
    name: str
    version: str
    reload: str  # 成功 / 被拒绝, with its local time
    heartbeat: str  # seconds since the last heartbeat
    leases: str
    lag: str  # why it does not run the announced version ("" when it does)


@dataclass(frozen=True)
class EngineTable:
    rows: list[EngineRow]
    wanted: str  # the announced content hash ("" when nothing was announced)
    in_step: bool


async def engine_table(redis: aioredis.Redis) -> EngineTable | None:
    """The live engines, or None when Redis does not answer (the page says so)."""
    registry = EngineRegistry(redis)
    try:
        statuses, wanted = await registry.statuses(), await registry.wanted()
    except (RedisError, OSError):
        return None
    behind = out_of_step(wanted, statuses)
    rows = [EngineRow(name, st.get("version", "?"),
                      f"{'成功' if st.get('last_reload') == 'ok' else '被拒绝'} {local_time(st.get('at', ''))}",
                      _ago(seconds_since(st.get("heartbeat", ""))), st.get("leases") or "—",
                      LAG_TEXT[behind[name].why] if name in behind else "")
            for name, st in statuses.items()]
    return EngineTable(rows, content_of(wanted.version) if wanted else "", not behind)


def _ago(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.0f} 秒前"

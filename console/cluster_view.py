"""The cluster as the console's 集群 page shows it: the nodes (reachable, calls and cap, who follows
them) and the proxies (each one's view of every node), from the same data as `ivr cluster status`
(ivr/cluster_status.py), in Mandarin with local times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import redis.asyncio as aioredis

from ivr.asterisk_conf.kamctl import RUN_DIR
from ivr.cluster_status import LeaseView, gather
from ivr.config import Settings

STATE_TEXT = {"active": "正常", "probing": "探测中", "inactive": "已停用（探测不通）", "disabled": "已禁用"}


@dataclass(frozen=True)
class NodeRow:
    name: str
    ami: str
    reachable: bool
    calls: str  # "3 / 200": calls in progress and the node's cap
    follow: str  # the engine that follows the node's calls
    why: str  # why it is unreachable ("" when it answers)


@dataclass(frozen=True)
class ProxyRow:
    name: str
    sip: str
    up: bool
    states: list[str]  # its view of each node, in the order of the nodes' table
    why: str


@dataclass(frozen=True)
class ClusterView:
    nodes: list[NodeRow]
    proxies: list[ProxyRow]
    at: str  # local time of the snapshot
    redis_ok: bool
    nodes_lease: str


async def cluster_view(settings: Settings, redis: aioredis.Redis, run_dir: str = RUN_DIR) -> ClusterView:
    status = await gather(settings, redis, run_dir)
    names = [n.name for n in status.nodes]
    nodes = [NodeRow(n.name, n.ami, n.reachable,
                     f"{'—' if n.calls is None else n.calls} / {'不限' if n.maxcalls is None else n.maxcalls}",
                     _holder(n.leases.get("follow")), n.why) for n in status.nodes]
    proxies = [ProxyRow(p.name, p.sip, p.up, [STATE_TEXT.get(p.nodes.get(n, ""), "—") for n in names], p.why)
               for p in status.proxies]
    return ClusterView(nodes, proxies, datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                       not status.redis_error, _holder(status.nodes_lease))


def _holder(lease: LeaseView | None) -> str:
    return lease.holder if lease is not None and lease.holder else "无"

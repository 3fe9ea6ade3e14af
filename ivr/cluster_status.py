"""What ``ivr cluster status`` shows (issue 20 item 5): the proxies and their dispatcher's view of
each node, the nodes (calls in progress, their cap, reachable or not), the engines and the leases.

Each part is asked where it is known best, each with a bound, and one part that does not answer
never hides the others: a proxy over its control socket (``dispatcher.list``, ivr/kamrpc.py), a
node over its AMI as the read-only status user (``CoreShowChannels``), the engines and leases in
Redis. Without a cluster section there is one node (``ami:``) and no proxy.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ivr.ami.client import AmiClient, AmiError
from ivr.asterisk_conf import kamtext
from ivr.asterisk_conf.dispatcher import NODES_SET
from ivr.asterisk_conf.kamctl import ctl_socket
from ivr.config import Settings
from ivr.core.conftext import split_ip_port
from ivr.kamrpc import KamRpcError, call
from ivr.store.engines import EngineRegistry
from ivr.store.lease import DUTIES, lease_status

SINGLE_NODE = "ivr12345"  # a node without a cluster section: Asterisk's systemname as rendered (options.py)
NODES_SCOPE = "cluster"  # the nodes lease is one for the cluster (ivr/node_watch.py)
AMI_TIMEOUT_S = 3.0
# a dispatcher destination's first flag: A active, T trying (failed once, probed: not yet given up),
# I inactive (probed down), D disabled (by an operator); the second says whether it is probed
STATES = {"A": "active", "T": "probing", "I": "inactive", "D": "disabled"}


@dataclass
class ProxyStatus:
    name: str
    sip: str
    up: bool
    why: str = ""  # when down: what the control socket said
    nodes: dict[str, str] = field(default_factory=dict)  # node (or destination URI) -> active/probing/inactive/disabled


@dataclass
class LeaseView:
    holder: str  # engine identity; "" when free
    token: int
    ttl_s: float


@dataclass
class NodeStatus:
    name: str
    ami: str
    reachable: bool
    calls: int | None = None  # calls in progress (distinct linkedids of its channels)
    channels: int | None = None
    maxcalls: int | None = None  # None: no cap rendered (a single node)
    why: str = ""
    leases: dict[str, LeaseView] = field(default_factory=dict)


@dataclass
class ClusterStatus:
    proxies: list[ProxyStatus]
    nodes: list[NodeStatus]
    engines: dict[str, dict[str, str]]
    nodes_lease: LeaseView | None
    redis_error: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def node_addresses(s: Settings) -> dict[str, tuple[str, int | None]]:
    """Each node's AMI ``host:port`` (also the scope of its leases, as the engines name it) and
    ``maxcalls``; the one node of ``ami:`` without a cluster (no cap rendered)."""
    if s.cluster is None or not s.cluster.nodes:
        return {SINGLE_NODE: (f"{s.ami.host}:{s.ami.port}", None)}
    return {name: ("{}:{}".format(*split_ip_port(node.ami)), node.maxcalls) for name, node in s.cluster.nodes.items()}


def dispatcher_view(reply: list[Any], nodes: dict[str, str]) -> dict[str, str]:
    """A proxy's ``dispatcher.list`` reply as node -> state; ``nodes`` maps each node's SIP URI
    (``sip:address:port``) to its name. A destination that is no node keeps its URI."""
    out: dict[str, str] = {}
    for dest in destinations(reply, NODES_SET):  # not the carrier's gateways (set 2, cluster.carrier)
        uri, flags = str(dest.get("URI", "")), str(dest.get("FLAGS", ""))
        out[nodes.get(uri, uri)] = STATES.get(flags[:1], f"unknown ({flags})")
    return out


def destinations(reply: list[Any], set_id: int) -> list[dict[str, Any]]:
    """Every DEST of the SET ``set_id`` (a name that appears once is a struct, several times a list)."""
    def each(value: Any) -> list[Any]:
        return value if isinstance(value, list) else [value]

    found: list[dict[str, Any]] = []
    for top in reply:
        records = top.get("RECORDS", {}) if isinstance(top, dict) else {}
        sets = records.get("SET", []) if isinstance(records, dict) else []
        for one in each(sets):
            if not isinstance(one, dict) or one.get("ID") != set_id:
                continue
            targets = one.get("TARGETS", {})
            dests = targets.get("DEST", []) if isinstance(targets, dict) else []
            found += [d for d in each(dests) if isinstance(d, dict)]
    return found


def node_uris(s: Settings) -> dict[str, str]:
    """``sip:address:port`` of each node as the dispatcher lists it -> the node's name."""
    if s.cluster is None:
        return {}
    return {f"sip:{kamtext.socket(node.sip)}": name for name, node in s.cluster.nodes.items()}


async def proxy_status(s: Settings, run_dir: str) -> list[ProxyStatus]:
    if s.cluster is None or not s.cluster.proxies:
        return []
    uris = node_uris(s)

    async def one(name: str, sip: str) -> ProxyStatus:
        try:
            reply = await call(ctl_socket(run_dir, name), "dispatcher.list")
        except KamRpcError as exc:
            return ProxyStatus(name, sip, False, str(exc))
        return ProxyStatus(name, sip, True, nodes=dispatcher_view(reply, uris))

    return list(await asyncio.gather(*(one(name, p.sip) for name, p in s.cluster.proxies.items())))


async def node_calls(s: Settings, name: str, ami: str, maxcalls: int | None) -> NodeStatus:
    """Calls on one node, asked as the status user; unreachable (and why) when it does not answer."""
    secret = s.ami.status_secret
    if secret is None:
        return NodeStatus(name, ami, False, maxcalls=maxcalls, why="IVR_AMI_STATUS_SECRET is not set")
    host, port = split_ip_port(ami)
    client = AmiClient(host, port, s.ami.status_username, secret.get_secret_value(), events="off")
    try:
        await client.connect(timeout=AMI_TIMEOUT_S)
        listing = await client.action({"Action": "CoreShowChannels"}, as_list=True, timeout=AMI_TIMEOUT_S)
    except (AmiError, TimeoutError, OSError) as exc:
        return NodeStatus(name, ami, False, maxcalls=maxcalls, why=str(exc) or type(exc).__name__)
    finally:
        client.close()
    channels = [e for e in listing if e.get("Event") == "CoreShowChannel"]
    calls = {e.get("Linkedid") or e.get("Uniqueid") for e in channels}
    return NodeStatus(name, ami, True, calls=len(calls), channels=len(channels), maxcalls=maxcalls)


async def lease_views(redis: aioredis.Redis, scope: str, duties: tuple[str, ...]) -> dict[str, LeaseView]:
    found = await lease_status(redis, scope, duties)
    return {duty: LeaseView(st.holder, st.token, st.ttl) for duty, st in found.items()}


async def gather(s: Settings, redis: aioredis.Redis, run_dir: str) -> ClusterStatus:
    """The whole picture; Redis unreachable leaves engines and leases empty and says so."""
    addresses = node_addresses(s)
    proxies, nodes = await asyncio.gather(
        proxy_status(s, run_dir),
        asyncio.gather(*(node_calls(s, name, ami, cap) for name, (ami, cap) in addresses.items())))
    status = ClusterStatus(proxies, list(nodes), {}, None)
    try:
        status.engines = await EngineRegistry(redis).statuses()
        for node in status.nodes:
            node.leases = await lease_views(redis, node.ami, DUTIES)
        status.nodes_lease = (await lease_views(redis, NODES_SCOPE, ("nodes",)))["nodes"]
    except (RedisError, OSError) as exc:
        status.redis_error = str(exc)
    return status

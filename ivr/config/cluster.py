"""The cluster topology (issue 20): SIP proxies in front, Asterisk nodes behind them, the engines
of each node. Absent (the default) means today's single node and nothing changes.

Every address is an IP literal with its port (:data:`~ivr.core.conftext.IpPort`): the proxies and
the nodes route every call by these, and nothing on the call path may wait for DNS. The checks that
need the whole topology (:func:`cluster_problems`) return config paths, so that the loader names
file and line like every other error of ``config/``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal, Mapping

from pydantic import Field

from ivr.core.conftext import IpPort, split_ip_port
from ivr.config.cluster_out import carrier_problems
from ivr.core.strict import NAME, Strict
from queues.model import Agent

__all__ = ["NODE_DEAD_AFTER_S", "ClusterSettings", "Node", "Proxy", "cluster_problems", "proxy_matches",
           "seat_problems"]

NODE_DEAD_AFTER_S = 5.0
"""Seconds a node's AMI must refuse us before its calls are given up (docs/cluster.md, "When a node
dies"): above an AMI reconnect or a short network blip, and above Asterisk's own restart under systemd
(cold start about 1 s, ``RestartSec`` 1 s), whose calls the follower closes itself; short enough that
callers are called back while they still remember the call. With no cluster section: the one node."""

Problem = tuple[tuple[str | int, ...], str]


class Proxy(Strict):
    """A SIP proxy (Kamailio) the carrier sends citizens' calls to."""

    sip: IpPort = Field(description="address:port it listens on for SIP (UDP)")
    seat_sip: IpPort | None = Field(
        None, description="address:port of a second socket it forwards the seats' own calls (feature codes, "
        "transfers) from, so that a node tells them from the carrier's by address; none: they are refused")
    ws: IpPort | None = Field(
        None, description="address:port of its WebSocket listener (TCP, plain: loopback behind the console's TLS "
        "proxy) where the desk pages' web phones register (phone: web); none: no web phone registers here")


class Node(Strict):
    """An Asterisk node: where the proxies send calls, and what it may carry."""

    sip: IpPort = Field(description="address:port of its PJSIP transport; RTP binds to the same address")
    ami: IpPort = Field(description="address:port of its AMI (manager.conf)")
    rtp_start: int = Field(ge=1024, le=65535)
    rtp_end: int = Field(ge=1024, le=65535)
    maxcalls: int = Field(200, ge=1, le=100_000, description="calls this node takes at once (asterisk.conf maxcalls)")
    weight: int = Field(1, ge=1, le=100, description="its share of calls when balance is weight (dispatcher algorithm 9)")
    engines: tuple[IpPort, ...] = Field((), description="address:port of each engine's FastAGI server for this node")


class ClusterSettings(Strict):
    balance: Literal["load", "weight"] = Field(
        "load", description="load: each call to the node with the fewest calls in progress (dispatcher algorithm 10); "
        "weight: by the nodes' weights (algorithm 9)")
    proxies: dict[str, Proxy] = Field({}, description="none (the carrier reaches the nodes directly) or two or more")
    nodes: dict[str, Node] = {}
    control_group: str | None = Field(
        None, pattern=r"^[a-z_][a-z0-9_-]{0,31}$", description="the group that may open the proxies' control "
        "sockets (mode 0660; the proxy's user must be in it): the engines' for the console's 集群 page; none: "
        "0600, the proxy's own user and root only")
    node_dead_after_s: float = Field(NODE_DEAD_AFTER_S, ge=1, le=600, description="seconds a node's AMI refuses "
                                     "us, with nobody following its calls, before they are closed as lost to the node")
    carrier: tuple[IpPort, ...] = Field(
        (), description="the carrier's gateways for calls out (callbacks), primary first; with it the nodes send "
        "them through the proxies, which try each in turn (docs/cluster.md, \"Calls out\"); none: each node dials "
        "sip.pstn_contact itself")


def cluster_problems(cluster: ClusterSettings, pstn_match: tuple[str, ...]) -> list[Problem]:
    """What is wrong with the topology as a whole, as (path in the config, reason)."""
    out: list[Problem] = []
    if not cluster.nodes:
        out.append((("cluster", "nodes"), "a cluster needs at least one Asterisk node"))
    if len(cluster.proxies) == 1:
        out.append((("cluster", "proxies"), "one proxy would be a single point of failure in front of every node: "
                    "name two or more (the carrier's primary and secondary destinations), or none (the carrier "
                    "reaches the nodes directly)"))
    for section in ("proxies", "nodes"):
        for name in getattr(cluster, section):
            if not re.fullmatch(NAME, name):
                out.append((("cluster", section, name), f"name {name!r} must match {NAME}"))
    for name in set(cluster.proxies) & set(cluster.nodes):
        out.append((("cluster", "nodes", name), f"{name!r} already names a proxy"))
    out += _addresses(cluster) + _rtp_ranges(cluster)
    out += carrier_problems(cluster, pstn_match)
    if cluster.proxies:
        for i, match in enumerate(pstn_match):
            try:
                ipaddress.ip_network(match.rpartition(":")[0] if match.count(":") == 1 else match, strict=False)
            except ValueError:
                out.append((("sip", "pstn_match", i), f"{match!r}: the proxies check the carrier by address: an IP "
                            "address or network here, not a host name (no DNS on the call path)"))
    return out


def _addresses(cluster: ClusterSettings) -> list[Problem]:
    """Every listening address:port once (two things bound to one port cannot both start), and
    never a wildcard."""
    seen: dict[tuple[str, int], str] = {}
    out: list[Problem] = []
    listeners: list[tuple[tuple[str | int, ...], str]] = [
        (("cluster", "proxies", name, "sip"), p.sip) for name, p in cluster.proxies.items()]
    listeners += [(("cluster", "proxies", name, field), address) for name, p in cluster.proxies.items()
                  for field, address in (("seat_sip", p.seat_sip), ("ws", p.ws)) if address]
    for name, node in cluster.nodes.items():
        listeners += [(("cluster", "nodes", name, "sip"), node.sip), (("cluster", "nodes", name, "ami"), node.ami)]
        listeners += [(("cluster", "nodes", name, "engines", i), e) for i, e in enumerate(node.engines)]
    for path, address in listeners:
        key = split_ip_port(address)
        what = " ".join(str(p) for p in path[1:])
        if ipaddress.ip_address(key[0]).is_unspecified:
            out.append((path, f"{address}: name the address itself, not a wildcard (the proxies and the "
                        "nodes send to it, and RTP is announced on it)"))
        elif key in seen:
            out.append((path, f"{address} is already {seen[key]}"))
        else:
            seen[key] = what
    return out


def _rtp_ranges(cluster: ClusterSettings) -> list[Problem]:
    """Ranges that are empty or overlap. Disjoint even across hosts: a test bed puts every node on
    loopback, and a packet capture then says which node a media stream belongs to."""
    out: list[Problem] = []
    taken: list[tuple[int, int, str]] = []
    for name, node in cluster.nodes.items():
        if node.rtp_start >= node.rtp_end:
            out.append((("cluster", "nodes", name, "rtp_start"), "rtp_start must be below rtp_end"))
            continue
        for start, end, other in taken:
            if node.rtp_start <= end and start <= node.rtp_end:
                out.append((("cluster", "nodes", name, "rtp_start"),
                            f"RTP ports {node.rtp_start}-{node.rtp_end} overlap node {other}'s {start}-{end}"))
        taken.append((node.rtp_start, node.rtp_end, name))
    return out


def seat_problems(cluster: ClusterSettings, agents: Mapping[str, Agent]) -> list[Problem]:
    """A seat with a fixed contact behind proxies: the nodes would ring that phone directly, past
    the seat's lock at the proxies (docs/cluster.md, agents across nodes)."""
    if not cluster.proxies:
        return []
    return [(("agents", name, "contact"), "with proxies in front, the seat's phone registers at them (the seat's "
             "lock is there): remove the fixed contact") for name, agent in agents.items() if agent.contact]


def proxy_matches(cluster: ClusterSettings) -> tuple[str, ...]:
    """What a node's PJSIP identifies as the carrier when proxies stand in front: the proxies'
    address:port (IPv6 in brackets, as PJSIP's ``match`` takes it)."""
    return tuple(p.sip for p in cluster.proxies.values())

"""``ivr reload --asterisk`` on a cluster (issue 20 item 5): every node's files rendered, written and
reloaded over that node's AMI, and the proxies' dispatcher list reloaded when it changed.

All nodes are rendered before any file is written, so a config the renderer refuses changes no
node (the flows were compiled before that: a broken ``config/`` is refused with file:line). Then
each node on its own: a node whose directory cannot be written or whose AMI does not answer is
reported and the others go on. A proxy reloads its list (``dispatcher.reload`` over its control
socket) only when what it runs differs from the topology: the nodes' addresses, ``duid`` and
weight as Kamailio reports them (``dispatcher.list``), so a proxy that was down during an earlier
change is brought level too.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.ami.client import AmiClient, AmiError
from ivr.asterisk_conf import reload_modules
from ivr.asterisk_conf.dispatcher import CARRIER_SET, NODES_SET, gateways, shares
from ivr.asterisk_conf.files import write_files
from ivr.asterisk_conf.kamctl import ctl_socket
from ivr.cluster_status import destinations, node_uris
from ivr.config import Settings
from ivr.core.conftext import split_ip_port
from ivr.kamrpc import KamRpcError, call

AMI_TIMEOUT_S = 5.0


@dataclass
class NodeResult:
    node: str
    directory: Path
    files: int = 0
    reloaded: bool = False
    why: str = ""


@dataclass
class ProxyResult:
    proxy: str
    changed: bool  # its running list differed from the topology
    reloaded: bool = False
    why: str = ""


def node_dir(template: Path, node: str) -> Path:
    """Where node ``node``'s files go: ``{node}`` in the path replaced, else a sub-directory."""
    text = str(template)
    return Path(text.replace("{node}", node)) if "{node}" in text else template / node


async def reload_node(s: Settings, node: str) -> None:
    """Reload one node's endpoints, queues and dialplan as the reload user, at its own AMI."""
    assert s.cluster is not None
    secret = s.ami.admin_secret
    if secret is None:
        raise AmiError("IVR_AMI_ADMIN_SECRET is not set (the reload user's secret)")
    host, port = split_ip_port(s.cluster.nodes[node].ami)
    client = AmiClient(host, port, s.ami.admin_username, secret.get_secret_value(), events="off")
    try:
        await client.connect(timeout=AMI_TIMEOUT_S)
        await reload_modules(client)
    finally:
        client.close()


async def apply_nodes(s: Settings, rendered: dict[str, dict[str, str]], dirs: dict[str, Path]) -> list[NodeResult]:
    """Write and reload each node (in parallel); one node's failure is its own line."""

    async def one(node: str) -> NodeResult:
        result = NodeResult(node, dirs[node])
        try:
            result.files = len(await asyncio.to_thread(write_files, rendered[node], dirs[node]))
        except OSError as exc:
            result.why = f"files not written: {exc}"
            return result
        try:
            await reload_node(s, node)
            result.reloaded = True
        except (AmiError, TimeoutError, OSError) as exc:
            result.why = f"not reloaded: {exc or type(exc).__name__}"
        return result

    return list(await asyncio.gather(*(one(node) for node in rendered)))


GATEWAY = "gateway"  # how a carrier's gateway (set 2) stands in the triples, beside the nodes' duid


def wanted_list(s: Settings) -> set[tuple[str, str, int]]:
    """(URI, duid, weight) of each node as the rendered dispatcher.list gives them to Kamailio, and
    (URI, "gateway", priority) of each of the carrier's gateways (``cluster.carrier``)."""
    assert s.cluster is not None
    percent = shares(s.cluster)
    return ({(uri, name, percent[name]) for uri, name in node_uris(s).items()}
            | {(uri, GATEWAY, priority) for uri, priority in gateways(s.cluster).items()})


def running_list(reply: list[Any]) -> set[tuple[str, str, int]]:
    """The same triples from a proxy's ``dispatcher.list`` reply."""
    out = set()
    for dest in destinations(reply, NODES_SET):
        attrs = dest.get("ATTRS", {})
        attrs = attrs if isinstance(attrs, dict) else {}
        weight = attrs.get("WEIGHT", 0)
        out.add((str(dest.get("URI", "")), str(attrs.get("DUID", "")), weight if isinstance(weight, int) else 0))
    for dest in destinations(reply, CARRIER_SET):
        priority = dest.get("PRIORITY", 0)
        out.add((str(dest.get("URI", "")), GATEWAY, priority if isinstance(priority, int) else 0))
    return out


async def apply_proxies(s: Settings, dispatcher_text: str, kamailio_dir: Path, run_dir: str) -> list[ProxyResult]:
    """Bring every proxy's dispatcher list level with the topology: the file where the proxies
    read it (``kamailio_dir``) rewritten when it differs, then ``dispatcher.reload`` on each proxy
    whose running list differs."""
    if s.cluster is None or not s.cluster.proxies:
        return []
    path = kamailio_dir / "dispatcher.list"
    try:
        if not path.exists() or path.read_text(encoding="utf-8") != dispatcher_text:
            write_files({"dispatcher.list": dispatcher_text}, kamailio_dir)
    except OSError as exc:
        return [ProxyResult(name, True, why=f"{path} not written: {exc}") for name in s.cluster.proxies]
    wanted = wanted_list(s)

    async def one(name: str) -> ProxyResult:
        socket = ctl_socket(run_dir, name)
        try:
            if running_list(await call(socket, "dispatcher.list")) == wanted:
                return ProxyResult(name, False)
            await call(socket, "dispatcher.reload")
            if running_list(await call(socket, "dispatcher.list")) != wanted:
                return ProxyResult(name, True, why=f"reloaded, but it does not run the topology: does it read {path}?")
        except KamRpcError as exc:
            return ProxyResult(name, True, why=f"not reloaded: {exc}")
        return ProxyResult(name, True, reloaded=True)

    return list(await asyncio.gather(*(one(name) for name in s.cluster.proxies)))


def report(nodes: list[NodeResult], proxies: list[ProxyResult]) -> tuple[list[str], bool]:
    """Lines for people, and whether everything went through."""
    lines, ok = [], True
    for n in nodes:
        if n.reloaded:
            lines.append(f"node {n.node}: {n.files} files written to {n.directory}; reloaded (endpoints, queues, dialplan)")
        else:
            ok = False
            lines.append(f"node {n.node}: FAILED: {n.why}" + (f" ({n.files} files written to {n.directory})" if n.files else ""))
    for p in proxies:
        if p.why:
            ok = False
            lines.append(f"proxy {p.proxy}: FAILED: {p.why}")
        else:
            lines.append(f"proxy {p.proxy}: dispatcher list " + ("reloaded" if p.reloaded else "unchanged"))
    return lines, ok

"""asterisk.conf: the directories of this Asterisk and its options."""

from __future__ import annotations

import hashlib

from ivr.asterisk_conf.options import RenderOptions
from ivr.core.conftext import entity_id, word


def node_entity_id(node: str) -> str:
    """A cluster node's ``entityid``, derived from its name: the same on every render, different
    per node. Asterisk otherwise takes a network card's MAC, which every node on one host shares,
    and nodes sharing device state with one entity id take each other's states for their own
    (docs/cluster.md, "Configuration each node needs"). Locally administered, unicast (the first
    byte's bits 0x02 set, 0x01 clear), so it never equals a real card's address."""
    raw = bytearray(hashlib.sha256(f"ivr12345 node {word(node)}".encode()).digest()[:6])
    raw[0] = (raw[0] | 0x02) & 0xFE
    return entity_id(":".join(f"{b:02x}" for b in raw))


def asterisk_conf(o: RenderOptions, maxcalls: int | None = None) -> str:
    """``maxcalls``: a cluster node's call cap (beyond it Asterisk refuses the call, and the proxy
    tries the next node). A cluster node (``o.node``) gets its own ``entityid``."""
    d = o.directories
    cap = f"maxcalls = {int(maxcalls)}\n" if maxcalls is not None else ""
    if o.node is not None:
        cap += f"entityid = {node_entity_id(o.node)}\n"
    # Not `[directories](!)`: the stock template marker makes Asterisk ignore these paths.
    return f"""[directories]
astetcdir => {d.etc}
astmoddir => {d.modules}
astvarlibdir => {d.varlib}
astdbdir => {d.db}
astkeydir => {d.keys}
astdatadir => {d.data}
astagidir => {d.data}/agi-bin
astspooldir => {d.spool}
astrundir => {d.run}
astlogdir => {d.log}
astsbindir => /usr/sbin

[options]
systemname = {word(o.system_name)}
defaultlanguage = zh
transmit_silence = yes
hideconnect = yes
{cap}"""

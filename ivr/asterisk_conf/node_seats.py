"""A cluster node's side of the seats (issue 20, docs/cluster.md "Configuration each node needs"):
where it rings a seat, and the seats' device state it shares with every other node.

- A seat's AOR lists the proxies as its contacts and takes no registration here (the phone
  registers at the proxies): Asterisk dials the first reachable one, and the proxy finds the
  phone and holds the seat's lock. Qualify marks a dead proxy's contact unreachable; with the
  phones probed (``phones.qualify``), at the phones' own rhythm and only on a 2xx: a proxy passes
  the probe on to the seat's phone and answers 480 for a seat with no live contact
  (kamailio_seats.py), so a dead phone's seat is unavailable on every node, as on one node.
- Per peer node, both directions of ``res_pjsip_publish_asterisk``: our seats' states published to
  the peer (``outbound-publish``, Request-URI user ``node.<our name>``), and the peer's accepted
  from its SIP address only (``identify`` by address:port, ``inbound-publication``,
  ``asterisk-publication``), for the seats' devices only. Which publishers a node accepts is a
  security boundary: the body's entity id is trusted whatever the sender. So the peer's endpoint is
  identified by address only (``identify_by=ip``): by default a request whose From user is
  ``node.<peer>`` would be taken for the peer's, from anywhere (measured: a forged PUBLISH, 200). The mesh relies on a
  unique ``entityid`` per node in asterisk.conf (rendered with the node's own files).

Peer names are ``node.<name>``: a dot names nothing an admin can (agents and trunks are ``a-z0-9_-``).

The node-gone duty (ivr/node_watch.py, an engine of any node) is one more publisher: when a node
dies, the surviving nodes still hold its last seat states (remote state never expires), so the duty
publishes ``INVALID`` under the dead node's entity id (ivr/sip_publish.py). It is accepted from the
engines' FastAGI address:port (UDP, the same number) only, as ``duty.node-gone``.
"""

from __future__ import annotations

from ivr.config import Settings
from ivr.core.conftext import value, word

QUALIFY_S = 5  # phones not probed (every: 0): a dead proxy's contact is still unreachable within about this
NO_CALLS = "ivr-no-calls"  # a context that does not exist: nothing calls in through a peer endpoint
DUTY = "duty.node-gone"  # the node-gone duty's publications (Request-URI user and endpoint)


def peer(name: str) -> str:
    """A node's PJSIP name on the other nodes."""
    return f"node.{word(name)}"


def proxied_aor(seat: str, s: Settings, probe: str) -> str:
    """The seat's AOR when proxies stand in front: the proxies, in the topology's order; ``probe``:
    its qualify lines (pjsip.py's ``proxied_probe``)."""
    assert s.cluster is not None
    contacts = "".join(f"contact=sip:{word(seat)}@{value(p.sip)}\n" for p in s.cluster.proxies.values())
    return f"""
[{word(seat)}]
type=aor
max_contacts=0
{contacts}{probe}"""


def seats_filter(s: Settings) -> str:
    """The seats' devices, as a regular expression of ``device_state_filter``."""
    return "^PJSIP/(" + "|".join(word(a) for a in s.agents) + ")$"


def device_state_mesh(s: Settings, node: str | None) -> str:
    """The publications between ``node`` and every other node; nothing outside a cluster or
    without agents."""
    if s.cluster is None or node is None or not s.agents:
        return ""
    me, seats = peer(node), value(seats_filter(s))
    blocks = []
    for other, n in s.cluster.nodes.items():
        if other == node:
            continue
        them = peer(other)
        blocks.append(f"""
; node {other}: its PUBLISHes of the seats' state arrive from its SIP address
[{them}]
type=endpoint
context={NO_CALLS}
identify_by=ip
disallow=all

[{them}]
type=identify
endpoint={them}
match={value(n.sip)}

[{them}.devicestate]
type=outbound-publish
server_uri=sip:{me}@{value(n.sip)}
event=asterisk-devicestate
@device_state_filter={seats}

[{them}]
type=inbound-publication
endpoint={them}
event_asterisk-devicestate={them}

[{them}]
type=asterisk-publication
devicestate_publish={them}.devicestate
device_state=yes
device_state_filter={seats}
""")
    engines = sorted({value(e) for n in s.cluster.nodes.values() for e in n.engines})
    if engines:
        blocks.append(f"""
; the node-gone duty (an engine of any node): clears a dead node's seat states here, from the
; engines' FastAGI address:port (UDP) only
[{DUTY}]
type=endpoint
context={NO_CALLS}
identify_by=ip
disallow=all

[{DUTY}]
type=identify
endpoint={DUTY}
{"".join(f"match={e}{chr(10)}" for e in engines)}
[{DUTY}]
type=inbound-publication
endpoint={DUTY}
event_asterisk-devicestate={DUTY}

[{DUTY}]
type=asterisk-publication
device_state=yes
device_state_filter={seats}
""")
    return "".join(blocks)


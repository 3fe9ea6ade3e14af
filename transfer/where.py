"""Which Asterisk node holds a call (issue 20 item 5, docs/cluster.md "Whichever node holds the
call"): a transfer must be made by the AMI of that node, whichever engine's console or CLI asks.

Two facts name the node: a call's linkedid starts with its node's ``systemname`` (``ast-b-1733.7``,
asterisk.conf; an agent's call is the one on its desk record), and a seat talking or ringing
carries ``node`` in ``ivr:seats`` (the node's AMI as the leases name it, ``host:port``:
queues/agents.py ``compose``). Both may come from outside (a
form field, a ticket, Redis): they only ever *select* one of the configured nodes, never supply
an address, so a forged linkedid or seat cannot point the transfer user at another host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.core.conftext import UnsafeValue, split_ip_port
from transfer.control import TransferError

if TYPE_CHECKING:
    from ivr.config import Settings


def node_amis(s: Settings) -> dict[str, tuple[str, int]]:
    """Each configured node's AMI (name → (host, port)); empty without a cluster section."""
    if s.cluster is None:
        return {}
    return {name: split_ip_port(node.ami) for name, node in s.cluster.nodes.items()}


def node_of_linkedid(s: Settings, linkedid: str) -> str:
    """The node whose ``systemname`` prefixes ``linkedid``; TransferError for none of them (a
    linkedid of another platform, or forged). The longest name wins, so ``ast-b`` is not taken
    for ``ast-b-2``'s call."""
    names = sorted(node_amis(s), key=len, reverse=True)
    found = next((n for n in names if linkedid.startswith(f"{n}-") and _call_number(linkedid[len(n) + 1:])), None)
    if found is None:
        raise TransferError(f"call {linkedid!r} is on no node of this cluster")
    return found


def node_named(s: Settings, text: str) -> str:
    """A node as Redis names it (its name, or its AMI ``host:port`` as the leases do); only a
    configured one: TransferError otherwise."""
    amis = node_amis(s)
    if text in amis:
        return text
    try:
        address = split_ip_port(text)
    except (UnsafeValue, ValueError):
        address = None
    found = next((name for name, ami in amis.items() if ami == address), None)
    if found is None:
        raise TransferError(f"{text!r} is no node of this cluster")
    return found


def _call_number(rest: str) -> bool:
    """``<epoch>.<sequence>``, as Asterisk numbers its channels after the systemname."""
    epoch, dot, sequence = rest.partition(".")
    return bool(dot) and epoch.isascii() and epoch.isdigit() and sequence.isascii() and sequence.isdigit()

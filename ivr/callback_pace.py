"""How many callback stand-ins this engine's node may start now (the rule: queues.callback.stand_in_room).

A lost node's callbacks all come due together on the node that inherits them; each stand-in holds
two of that node's calls while it waits for a seat. Placed blindly, they took the node's last
calls from citizens dialing in, and Asterisk refused the rest ("Maximum call limit of N calls
exceeded"). So the worker asks the node first, as the engine's AMI user (``CoreShowChannels`` is of
the ``reporting`` class it already has).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ivr.ami.client import AmiClient
from ivr.config import Settings
from ivr.core.conftext import split_ip_port

OUTGOING = "(Outgoing Line)"  # the application data of a dialed leg (Dial's, Queue's): not a call Asterisk counts


def node_maxcalls(settings: Settings) -> int | None:
    """The ``maxcalls`` of the Asterisk this engine follows: its cluster node's (found by the AMI
    address the engine uses), else the single node's ``sip.maxcalls``; None: no cap."""
    if settings.cluster is not None:
        for node in settings.cluster.nodes.values():
            host, port = split_ip_port(node.ami)
            if (host, port) == (settings.ami.host, settings.ami.port):
                return node.maxcalls
    return settings.sip.maxcalls


def counted_calls(channels: Iterable[Mapping[str, Any]]) -> int:
    """The calls among ``CoreShowChannel`` entries that Asterisk counts against ``maxcalls``: the
    channels running the dialplan. A leg that Dial or Queue placed (``(Outgoing Line)``) and an
    originated leg not answered yet (no application) run none."""
    return sum(1 for c in channels if c.get("Event") == "CoreShowChannel" and c.get("Application")
               and c.get("ApplicationData") != OUTGOING)


async def calls_in_use(ami: AmiClient) -> int:
    """The node's calls now, as :func:`counted_calls` counts them."""
    listing = await ami.action({"Action": "CoreShowChannels"}, as_list=True, timeout=5)
    return counted_calls(listing)

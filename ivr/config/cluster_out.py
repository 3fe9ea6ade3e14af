"""The checks of ``cluster.carrier`` (calls out through the proxies, docs/cluster.md "Calls out"):
apart from the rest of the topology's, which they only read."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from ivr.core.conftext import split_ip_port

if TYPE_CHECKING:
    from ivr.config.cluster import ClusterSettings, Problem


def carrier_problems(cluster: ClusterSettings, pstn_match: tuple[str, ...]) -> list[Problem]:
    """Gateways without proxies (the nodes would dial them themselves), named twice or by a
    wildcard, or outside ``sip.pstn_match``: the carrier's requests inside a call out (its BYE)
    pass the proxies only from the carrier's addresses."""
    out: list[Problem] = []
    if cluster.carrier and not cluster.proxies:
        out.append((("cluster", "carrier"), "calls out go through the proxies: without proxies each node dials "
                    "sip.pstn_contact itself (remove cluster.carrier)"))
    seen: set[tuple[str, int]] = set()
    for i, gateway in enumerate(cluster.carrier):
        host, port = split_ip_port(gateway)
        if ipaddress.ip_address(host).is_unspecified:
            out.append((("cluster", "carrier", i), f"{gateway}: name the gateway's address, not a wildcard"))
        elif (host, port) in seen:
            out.append((("cluster", "carrier", i), f"{gateway} is named twice"))
        elif not any(_matches(m, host, port) for m in pstn_match):
            out.append((("cluster", "carrier", i), f"{gateway} is not in sip.pstn_match: the proxies would refuse "
                        "its requests inside a call out (its BYE)"))
        seen.add((host, port))
    return out


def _matches(match: str, host: str, port: int) -> bool:
    """Whether one of ``sip.pstn_match`` (address, network, or IPv4 address:port) covers the gateway."""
    net, want = (match.rpartition(":")[0], int(match.rpartition(":")[2])) if match.count(":") == 1 else (match, None)
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(net, strict=False) and want in (None, port)
    except ValueError:
        return False

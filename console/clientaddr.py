"""The client's address: the TCP peer, or behind a trusted reverse proxy the address it saw.

``X-Forwarded-For`` is anyone's to write, so it is believed only when the peer is one of
``web.trusted_proxies``, and then only from the right: each proxy appends the address it saw,
so the rightmost hop that is not itself a trusted proxy is the client. Whatever a client put
further left is never read. Without trusted proxies (the default) the header changes nothing.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable, Sequence

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def networks(items: Iterable[str]) -> tuple[Network, ...]:
    """``web.trusted_proxies`` parsed (the config model already refused anything else)."""
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def client_address(request: web.Request, trusted: Sequence[Network]) -> str:
    """The address sign-in limits and the audit log use for this request."""
    peer = request.remote or "unknown"
    address = _parse(peer)
    if address is None or not _trusted(address, trusted):
        return peer
    hops = [hop.strip() for header in request.headers.getall("X-Forwarded-For", []) for hop in header.split(",")]
    for hop in reversed(hops):
        parsed = _parse(hop)
        if parsed is None:  # not an address (a proxy that appends no plain address): the last hop we know
            break
        address = parsed
        if not _trusted(parsed, trusted):
            break
    return str(address)


def _parse(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: Address, trusted: Sequence[Network]) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:10.0.0.1 on a dual-stack socket
    return any((mapped or address) in network for network in trusted)

"""Which hosts may speak FastAGI to the engine: only the configured Asterisk addresses.

AGI has no authentication: whoever connects hands the engine an environment it believes (any
uniqueid, any caller) and gets a menu walked and a call record written. So the peer's address
is checked when the connection is made, before a byte of the environment is read, and anyone
else is cut off, logged (at most once a minute per address, so that a flood cannot flood the
log) and counted. For an engine on another host than Asterisk an address is no proof:
docs/operations.md says how to carry FastAGI over TLS or an isolated network.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from typing import Iterable

from ivr.core.networks import Network, parse_networks

__all__ = ["LOG_EVERY", "MAX_TRACKED", "Network", "PeerPolicy", "parse_networks"]

log = logging.getLogger("ivr.agi.fastagi")

LOG_EVERY = 60.0  # s between two log lines about one refused address
MAX_TRACKED = 1024  # refused addresses remembered for that throttle


class PeerPolicy:
    """The allowed networks, and how many connections from elsewhere were refused."""

    def __init__(self, allowed: Iterable[str]):
        self.networks = parse_networks(allowed)
        self.refused = 0
        self._logged: dict[str, float] = {}

    def allows(self, peername: object) -> bool:
        """True for a peer in an allowed network; a socket without an IP peer is refused."""
        host = peername[0] if isinstance(peername, tuple) and peername else None
        try:
            address = ipaddress.ip_address(str(host).split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def refuse(self, peername: object) -> None:
        """Count a refused peer; log it unless that address was logged within the last minute."""
        self.refused += 1
        host = str(peername[0] if isinstance(peername, tuple) and peername else peername)
        now = time.monotonic()
        if now - self._logged.get(host, -LOG_EVERY) < LOG_EVERY:
            return
        if len(self._logged) >= MAX_TRACKED:
            self._logged.clear()
        self._logged[host] = now
        log.warning("refused FastAGI connection from %s: not in agi.allowed_peers (%d refused so far)",
                    host[:64], self.refused)

"""Free loopback ports for an isolated test bed (several beds run side by side)."""

from __future__ import annotations

import random
import socket
from typing import Callable, Iterable

from testbed.state import registered_ports


def _free(kind: int, port: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        if kind == socket.SOCK_STREAM:
            # as servers bind (asyncio does too): TIME_WAIT leftovers of closed calls don't count
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_is_free(port: int) -> bool:
    """A server could bind it now, on TCP and UDP, at 127.0.0.1."""
    return _free(socket.SOCK_STREAM, port) and _free(socket.SOCK_DGRAM, port)


def ephemeral_low(default: int = 32768) -> int:
    """Where the kernel's ephemeral (client) ports start."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return default


BED_PORTS = 64  # a bed's own ports besides its RTP range and its peers': SIP, AMI, engines, Redis, Sentinels


def bed_range(rtp_ports: int, peers: int) -> int:
    """The size of a bed's range of its own (so beds never scatter ports over another's): its
    RTP ports, then its own and its peers' ports, with room for ports bound by anyone (passed
    over) and for agents a reload adds."""
    return rtp_ports + BED_PORTS + 2 * peers


class PortAllocator:
    """Hands out distinct free ports from a random range below the ephemeral ports.

    Never inside the ephemeral range: a client that keeps reconnecting to a dead server's port
    (the engine to a killed Redis) can be given that same port as its own source port and then
    connect to itself, holding the port so the server cannot come back.

    Never a port a registered bed holds (``in_use``, by default every bed in the registry, of
    any process): a seat's softphone, the carrier trunk and Asterisk's RTP range are bound only
    at times, and a port that looks free now would collide with them later. Beds pick theirs
    under :func:`testbed.state.registry_lock` and register them at once.
    """

    def __init__(self, low: int = 10000, high: int | None = None,
                 in_use: Callable[[], Iterable[int]] = registered_ports):
        self._rng = random.Random()
        self._low, self._high = low, min(high or 65536, ephemeral_low())
        self._taken: set[int] = set()
        self._in_use = in_use

    def one(self) -> int:
        return self.block(1)

    def block(self, size: int) -> int:
        """The first of ``size`` consecutive free ports that holds no port a registered bed
        holds, or as few as can be found: a bed of an older checkout scatters its ports over
        the whole range, and no large block may then be clear of them all."""
        held = self._taken | set(self._in_use())
        best: tuple[int, int] | None = None  # (held ports inside, base)
        for _ in range(500):
            base = self._rng.randrange(self._low, self._high - size) & ~1  # even: RTP wants it
            ports = range(base, base + size)
            overlap = sum(1 for p in ports if p in held)
            if best and overlap >= best[0] or any(p in self._taken for p in ports):
                continue
            if all(port_is_free(p) for p in ports):
                best = (overlap, base)
                if not overlap:
                    break
        if best is None:
            raise RuntimeError(f"no block of {size} free ports between {self._low} and {self._high}")
        self._taken.update(range(best[1], best[1] + size))
        return best[1]

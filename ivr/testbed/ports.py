"""Free loopback ports for an isolated test bed (several beds run side by side)."""

from __future__ import annotations

import random
import socket


def _free(kind: int, port: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_is_free(port: int) -> bool:
    """Free for both TCP and UDP on 127.0.0.1."""
    return _free(socket.SOCK_STREAM, port) and _free(socket.SOCK_DGRAM, port)


class PortAllocator:
    """Hands out distinct free ports from a random high range (cheap collision avoidance)."""

    def __init__(self, low: int = 20000, high: int = 60000):
        self._rng = random.Random()
        self._low, self._high = low, high
        self._taken: set[int] = set()

    def one(self) -> int:
        return self.block(1)

    def block(self, size: int) -> int:
        """The first of ``size`` consecutive free ports."""
        for _ in range(500):
            base = self._rng.randrange(self._low, self._high - size) & ~1  # even: RTP wants it
            ports = range(base, base + size)
            if any(p in self._taken for p in ports):
                continue
            if all(port_is_free(p) for p in ports):
                self._taken.update(ports)
                return base
        raise RuntimeError(f"no block of {size} free ports between {self._low} and {self._high}")

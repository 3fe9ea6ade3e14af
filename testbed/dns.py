"""A network without DNS, for a test bed: a resolver address that records every query it is
sent and never answers.

Hotline platforms often run on government networks with no public DNS: there a lookup does
not fail fast, it stalls (glibc waits ``timeout`` × ``attempts`` per name), and a lookup on
the call path holds the call. A bed started with ``TestBed(dns="none")`` gives its Asterisk a
``resolv.conf`` naming only this recorder, so every lookup Asterisk makes is both seen (a test
can assert there was none) and as slow as on such a network.

``resolv.conf`` cannot name a port, so the recorder listens on port 53 (UDP and TCP) of an
address of its own in 127.0.0.0/8: beds side by side each get one. Binding port 53 needs
root, which the rootfs runner needs anyway.
"""

from __future__ import annotations

import random
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass

QTYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV", 35: "NAPTR"}


@dataclass(frozen=True)
class DnsQuery:
    at: float  # time.time() when it arrived
    name: str
    qtype: str
    transport: str  # "udp" / "tcp"

    def __str__(self) -> str:
        return f"{self.qtype} {self.name} ({self.transport})"


def parse_query(packet: bytes) -> tuple[str, str]:
    """(name, type) of the first question of a DNS message; ("?", "?") if it has none."""
    try:
        if struct.unpack("!H", packet[4:6])[0] < 1:
            return "?", "?"
        labels, offset = [], 12
        while packet[offset]:
            length = packet[offset]
            labels.append(packet[offset + 1:offset + 1 + length].decode("ascii", "replace"))
            offset += 1 + length
        qtype = struct.unpack("!H", packet[offset + 1:offset + 3])[0]
        return ".".join(labels) or ".", QTYPES.get(qtype, str(qtype))
    except (IndexError, struct.error):
        return "?", "?"


class SilentResolver:
    """Records DNS queries on ``<address>:53`` in a thread; answers none of them."""

    def __init__(self) -> None:
        self.address = ""
        self.queries: list[DnsQuery] = []
        self._lock = threading.Lock()
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._stop_r, self._stop_w = socket.socketpair()
        self._thread: threading.Thread | None = None

    def start(self) -> "SilentResolver":
        rng = random.Random()
        for _ in range(50):
            address = f"127.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                udp.bind((address, 53))
                tcp.bind((address, 53))
            except PermissionError:
                udp.close()
                tcp.close()
                raise PermissionError("the no-DNS test bed binds port 53 (resolv.conf has no port): run as root") from None
            except OSError:
                udp.close()
                tcp.close()
                continue
            tcp.listen(16)
            self.address, self._udp, self._tcp = address, udp, tcp
            self._thread = threading.Thread(target=self._serve, name=f"dns-recorder-{address}", daemon=True)
            self._thread.start()
            return self
        raise RuntimeError("no free loopback address for the DNS recorder")

    def resolv_conf(self) -> str:
        """Only this recorder, and glibc's wait cut from 2 × 5 s to 1 s per name: a lookup
        still stalls (and is recorded), but Asterisk's start-up lookup of its host name
        (res_pjsip, pj_gethostip) costs a test bed 2 s, not 20."""
        return (f"# test bed without DNS: this recorder never answers\nnameserver {self.address}\n"
                "options timeout:1 attempts:1\n")

    def snapshot(self) -> list[DnsQuery]:
        with self._lock:
            return list(self.queries)

    def since(self, t: float) -> list[DnsQuery]:
        """Queries that arrived at or after ``t`` (``time.time()``)."""
        return [q for q in self.snapshot() if q.at >= t]

    def _record(self, packet: bytes, transport: str) -> None:
        name, qtype = parse_query(packet)
        with self._lock:
            self.queries.append(DnsQuery(time.time(), name, qtype, transport))

    def _serve(self) -> None:
        assert self._udp and self._tcp
        held: list[socket.socket] = []  # TCP clients kept open, unanswered, until they give up
        while True:
            readable, _, _ = select.select([self._udp, self._tcp, self._stop_r, *held], [], [])
            if self._stop_r in readable:
                break
            if self._udp in readable:
                packet, _peer = self._udp.recvfrom(4096)
                self._record(packet, "udp")
            if self._tcp in readable:
                conn, _peer = self._tcp.accept()
                held.append(conn)
            for conn in [c for c in held if c in readable]:
                data = conn.recv(4096)
                if len(data) > 2:
                    self._record(data[2:], "tcp")  # a 2-byte length, then the message
                if not data:
                    held.remove(conn)
                    conn.close()
        for sock in held:
            sock.close()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop_w.send(b"x")
            self._thread.join(5)
            self._thread = None
        for sock in (self._udp, self._tcp, self._stop_r, self._stop_w):
            if sock is not None:
                sock.close()

"""Key presses and the RFC 2833 captures sipp replays for them (renumbered per call)."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

PCAP_DIR = Path("/usr/share/sip-tester")
PCAP_NAMES = {**{str(d): f"dtmf_2833_{d}.pcap" for d in range(10)}, "*": "dtmf_2833_star.pcap", "#": "dtmf_2833_pound.pcap"}


@dataclass(frozen=True)
class Key:
    """One key press ``digit`` sent ``after_ms`` after the previous step."""

    digit: str
    after_ms: int = 300


def keys(spec: str, first_ms: int = 1500, gap_ms: int = 300) -> list[Key]:
    """``keys("10")`` → press 1 after ``first_ms``, then 0 after ``gap_ms``."""
    return [Key(d, first_ms if i == 0 else gap_ms) for i, d in enumerate(spec)]


_pcap_ids = itertools.count()


def dtmf_pcaps(workdir: Path, presses: list[Key]) -> list[Path]:
    """One RFC 2833 capture per press, renumbered so RTP timestamps and sequence numbers rise.

    sipp replays a capture's RTP headers as recorded, and the stock captures carry unrelated
    timestamps (``*`` is later than ``0``; a key twice repeats one). Asterisk drops an event
    whose timestamp is not after the last one's, so ``*`` then ``0``, or ``1`` then ``1``,
    would lose the second key.
    """
    out = []
    for i, k in enumerate(presses):
        data = bytearray((PCAP_DIR / PCAP_NAMES[k.digit]).read_bytes())
        offset, first = 24, None  # pcap global header; then Ethernet/IPv4/UDP/RTP packets
        while offset + 16 <= len(data):
            length = int.from_bytes(data[offset + 8:offset + 12], "little")
            packet = offset + 16
            udp = packet + 14 + (data[packet + 14] & 0x0F) * 4
            rtp = udp + 8
            seq = int.from_bytes(data[rtp + 2:rtp + 4], "big")
            first = seq if first is None else first
            data[udp + 6:udp + 8] = b"\0\0"  # no UDP checksum (the header changes)
            data[rtp + 2:rtp + 4] = ((i + 1) * 100 + seq - first).to_bytes(2, "big")
            data[rtp + 4:rtp + 8] = ((i + 1) * 16000).to_bytes(4, "big")  # one event: one timestamp
            offset = packet + length
        path = workdir / f"dtmf-{os.getpid()}-{next(_pcap_ids)}.pcap"
        path.write_bytes(bytes(data))
        out.append(path)
    return out

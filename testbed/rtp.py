"""A phone's voice for audio tests: a UDP socket that stands for a sipp phone's RTP (its SDP
announces this port instead of sipp's own), sends a steady tone as G.711 A-law and keeps what
arrives, decoded, so a test can tell by frequency whose voice reached whom.

It sends to where Asterisk's RTP comes from (the first packet received; Asterisk sends to the
SDP's port, and with ``rtp_symmetric`` takes our packets from the same socket back). Each
party plays its own frequency; :meth:`ToneLeg.level` is the share of a window's energy at one
frequency (Goertzel), about 1.0 for a lone tone, near 0 for a tone that is not there.
"""

from __future__ import annotations

import asyncio
import math
import struct
import time
from typing import Any, Mapping

RATE = 8000
FRAME = 160  # 20 ms at 8 kHz
ALAW, ULAW = 8, 0


def _alaw_decode(byte: int) -> int:
    a = byte ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = t + 8 if seg == 0 else (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


def _ulaw_decode(byte: int) -> int:
    u = ~byte & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return (0x84 - t) if u & 0x80 else (t - 0x84)


def _alaw_encode(sample: int) -> int:
    mask = 0xD5 if sample >= 0 else 0x55
    sample = sample if sample >= 0 else -sample - 1
    sample = min(sample, 32635)
    ends = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)
    seg = next((i for i, end in enumerate(ends) if (sample >> 3) <= end), 8)
    if seg >= 8:
        return 0x7F ^ mask
    aval = seg << 4
    aval |= ((sample >> 4) if seg < 2 else (sample >> (seg + 3))) & 0x0F
    return aval ^ mask


DECODE = {ALAW: [_alaw_decode(b) for b in range(256)], ULAW: [_ulaw_decode(b) for b in range(256)]}


def goertzel_share(samples: list[int], freq: float) -> float:
    """The share of ``samples``' energy at ``freq`` (0..1)."""
    n = len(samples)
    if n == 0:
        return 0.0
    k = round(n * freq / RATE)
    w = 2 * math.pi * k / n
    coeff = 2 * math.cos(w)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    total = sum(x * x for x in samples)
    return 0.0 if total == 0 else min(1.0, 2 * power / (n * total))


class ToneLeg(asyncio.DatagramProtocol):
    """One party's RTP: plays ``freq`` Hz (0: silence) and records what it hears."""

    def __init__(self, name: str, freq: float, port: int, amplitude: int = 8000):
        self.name, self.freq, self.port, self.amplitude = name, freq, port, amplitude
        self.peer: tuple[str, int] | None = None
        self.samples: list[int] = []
        self.packets = 0
        self.payload_types: set[int] = set()
        self._transport: asyncio.DatagramTransport | None = None
        self._sender: asyncio.Task[None] | None = None
        self._phase = 0
        self._seq, self._ts, self._ssrc = 1, 0, 0x12345 + port

    async def start(self) -> "ToneLeg":
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", self.port))
        self._sender = asyncio.create_task(self._send_loop())
        return self

    def connection_made(self, transport: Any) -> None:
        self._transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12 or data[0] >> 6 != 2:
            return  # not RTP (an RTCP report goes to port + 1, never here)
        pt = data[1] & 0x7F
        if pt not in DECODE:
            return  # telephone-event and the like
        self.peer = self.peer or addr
        self.packets += 1
        self.payload_types.add(pt)
        offset = 12 + 4 * (data[0] & 0x0F)
        table = DECODE[pt]
        self.samples.extend(table[b] for b in data[offset:])

    def mark(self) -> int:
        """Where a measurement starts (samples received so far)."""
        return len(self.samples)

    async def heard(self, since: int, seconds: float, timeout: float = 20.0) -> list[int]:
        """``seconds`` of audio received after ``since``, once it has arrived (bounded wait)."""
        want = since + int(seconds * RATE)
        deadline = time.monotonic() + timeout
        while len(self.samples) < want:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} received {len(self.samples) - since} of {want - since} samples "
                                     f"within {timeout} s ({self.packets} packets in all)")
            await asyncio.sleep(0.05)
        return self.samples[since:want]

    async def level(self, freq: float, since: int, seconds: float = 1.0) -> float:
        return goertzel_share(await self.heard(since, seconds), freq)

    async def _send_loop(self) -> None:
        start = time.monotonic()
        frames = 0
        while True:
            frames += 1
            await asyncio.sleep(max(0.0, start + frames * FRAME / RATE - time.monotonic()))
            if self.peer is None or self._transport is None:
                continue
            self._transport.sendto(self._frame(), self.peer)

    def _frame(self) -> bytes:
        header = struct.pack("!BBHII", 0x80, ALAW, self._seq & 0xFFFF, self._ts & 0xFFFFFFFF, self._ssrc)
        self._seq += 1
        self._ts += FRAME
        body = bytearray()
        for i in range(FRAME):
            value = self.amplitude * math.sin(2 * math.pi * self.freq * (self._phase + i) / RATE) if self.freq else 0
            body.append(_alaw_encode(int(value)))
        self._phase += FRAME
        return header + bytes(body)

    def close(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
        if self._transport is not None:
            self._transport.close()


async def party_levels(leg: ToneLeg, since: int, tones: Mapping[str, float]) -> dict[str, float]:
    """What ``leg`` heard in one second from ``since``: each party's share of it (``tones``: party
    → the frequency it plays), rounded for a readable report."""
    return {name: round(await leg.level(hz, since), 4) for name, hz in tones.items()}

"""Known tones for recording tests: an RTP capture of a sine (G.711 A-law, payload 8) that sipp
replays as a party's voice (``play_pcap_audio``), and the power of a frequency in decoded audio
(Goertzel), to tell which party a recorded channel carries."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

import audioop  # Python ≥ 3.13: the audioop-lts package (a dependency there) provides it

RATE = 8000
FRAME = 160  # samples per RTP packet: 20 ms


def tone_pcap(path: Path, freq: float, seconds: float, amplitude: int = 8000, ssrc: int = 0x5EC0DE) -> Path:
    """An Ethernet/IPv4/UDP/RTP capture of ``seconds`` of a ``freq`` Hz sine in PCMA, one packet
    per 20 ms (sipp keeps the capture's timing and rewrites addresses and ports)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    packets = int(seconds * RATE / FRAME)
    for n in range(packets):
        pcm = b"".join(struct.pack("<h", int(amplitude * math.sin(2 * math.pi * freq * (n * FRAME + i) / RATE)))
                       for i in range(FRAME))
        rtp = struct.pack("!BBHII", 0x80, 8, n & 0xFFFF, (n * FRAME) & 0xFFFFFFFF, ssrc) + audioop.lin2alaw(pcm, 2)
        udp = struct.pack("!HHHH", 40000, 40002, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n & 0xFFFF, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
        frame = b"\0" * 12 + b"\x08\x00" + ip
        usec = n * 20_000
        out.append(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))
    return path


def read_wav(path: Path) -> tuple[int, list[list[int]]]:
    """(rate, samples per channel) of a 16-bit WAV file (opusdec's output)."""
    with wave.open(str(path), "rb") as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        data = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError(f"{path}: {8 * width}-bit samples, expected 16")
    samples = struct.unpack(f"<{len(data) // 2}h", data)
    return rate, [list(samples[c::channels]) for c in range(channels)]


def power(samples: list[int], rate: int, freq: float) -> float:
    """Goertzel: the energy of ``freq`` in ``samples`` (comparable between frequencies of one signal)."""
    coeff = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2

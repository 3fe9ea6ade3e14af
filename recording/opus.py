"""Ogg Opus from MixMonitor's raw stereo 8 kHz, encoded by libopus itself at 8 kHz.

Why not opusenc: opus-tools 0.2 (libopusenc) resamples every input to 48 kHz and codes that; at
8 kHz libopus codes the same stereo file for about a fifth of the CPU (benchmarks/README.md §10),
and no process is started per call. libopus (Debian's libopus0) does the coding; libogg (libogg0)
checksums the pages; this module only lays out RFC 7845's two header packets and the pages. Both
libraries come with opus-tools, which the tests' ``opusdec`` needs anyway.

Blocking: the worker runs :func:`encode_file` in a thread of its own (ctypes lets go of the GIL
while libopus codes).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import secrets
import struct
from pathlib import Path
from typing import BinaryIO

RATE = 8000  # Hz: what MixMonitor wrote (recording.rules.RAW_RATE) is what libopus codes
CHANNELS = 2
FRAME_MS = 60  # Opus' longest frame: the fewest packets, the least overhead
SAMPLES = RATE * FRAME_MS // 1000  # per channel per packet
TO_48K = 48000 // RATE  # Ogg Opus counts granules at 48 kHz whatever the input rate (RFC 7845 §4)
# Complexity 0 (of 10): ~1.1 ms of CPU per second of stereo; at 28 kbit/s the channels stay
# apart (200:1 by power on test tones; 33:1 at 24 kbit/s, 1:1 at 16: libopus then codes them as one)
COMPLEXITY = 0
_APPLICATION_AUDIO, _SET_BITRATE, _SET_COMPLEXITY, _GET_LOOKAHEAD = 2049, 4002, 4010, 4027
_MAX_PACKET = 4000
_PAGE_PACKETS = 16  # about a second of audio per Ogg page: a browser seeks page by page


class OpusError(Exception):
    """libopus or libogg missing, or libopus refused the input."""


class _Page(ctypes.Structure):
    _fields_ = [("header", ctypes.c_char_p), ("header_len", ctypes.c_long),
                ("body", ctypes.c_char_p), ("body_len", ctypes.c_long)]


class _Libs:
    """libopus and libogg, loaded on first use (a missing library is an OpusError, not an import error)."""

    def __init__(self) -> None:
        opus, ogg = ctypes.util.find_library("opus"), ctypes.util.find_library("ogg")
        if not opus or not ogg:
            raise OpusError("libopus/libogg not found: apt-get install libopus0 libogg0 (opus-tools brings both)")
        self.opus, self.ogg = ctypes.CDLL(opus), ctypes.CDLL(ogg)
        self.opus.opus_encoder_create.restype = ctypes.c_void_p
        self.opus.opus_encoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.c_int,
                                                  ctypes.POINTER(ctypes.c_int)]
        self.opus.opus_encode.restype = ctypes.c_int32
        self.opus.opus_encode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int32]
        self.opus.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
        self.opus.opus_encoder_ctl.restype = ctypes.c_int  # variadic: each call passes ctypes values
        self.opus.opus_get_version_string.restype = ctypes.c_char_p
        self.ogg.ogg_page_checksum_set.argtypes = [ctypes.POINTER(_Page)]
        self.ogg.ogg_page_checksum_set.restype = None


_libs: _Libs | None = None


def libs() -> _Libs:
    global _libs
    if _libs is None:
        _libs = _Libs()
    return _libs


class _OggWriter:
    """Pages of one logical stream (RFC 3533): whole packets only, CRC by libogg."""

    def __init__(self, out: BinaryIO, lib: _Libs):
        self.out, self.lib = out, lib
        self.serial, self.sequence = secrets.randbits(32), 0

    def page(self, packets: list[bytes], granule: int, flags: int = 0) -> None:
        lacing = b"".join(bytes([255] * (len(p) // 255) + [len(p) % 255]) for p in packets)
        header = bytearray(struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, self.serial, self.sequence, 0,
                                       len(lacing)) + lacing)
        body = b"".join(packets)
        buf = ctypes.create_string_buffer(bytes(header), len(header))
        page = _Page(ctypes.cast(buf, ctypes.c_char_p), len(header), body, len(body))
        self.lib.ogg.ogg_page_checksum_set(ctypes.byref(page))
        self.out.write(buf.raw)
        self.out.write(body)
        self.sequence += 1


def _ctl(lib: _Libs, enc: int, request: int, value: int) -> None:
    if lib.opus.opus_encoder_ctl(ctypes.c_void_p(enc), ctypes.c_int(request), ctypes.c_int(value)) != 0:
        raise OpusError(f"opus_encoder_ctl({request}, {value}) refused")


def encode_file(raw: Path, dest: Path, bitrate_kbps: int, complexity: int = COMPLEXITY) -> None:
    """``raw`` (stereo 8 kHz s16le, left = the caller) to Ogg Opus at ``dest`` (overwritten)."""
    lib = libs()
    err = ctypes.c_int()
    enc = lib.opus.opus_encoder_create(RATE, CHANNELS, _APPLICATION_AUDIO, ctypes.byref(err))
    if not enc or err.value != 0:
        raise OpusError(f"opus_encoder_create failed ({err.value})")
    try:
        _ctl(lib, enc, _SET_BITRATE, bitrate_kbps * 1000)
        _ctl(lib, enc, _SET_COMPLEXITY, complexity)
        lookahead = ctypes.c_int()
        if lib.opus.opus_encoder_ctl(ctypes.c_void_p(enc), ctypes.c_int(_GET_LOOKAHEAD), ctypes.byref(lookahead)):
            raise OpusError("opus_encoder_ctl(GET_LOOKAHEAD) refused")
        with open(raw, "rb") as src, open(dest, "wb") as out:
            _encode_stream(lib, enc, src, _OggWriter(out, lib), lookahead.value)
    finally:
        lib.opus.opus_encoder_destroy(enc)


def _encode_stream(lib: _Libs, enc: int, src: BinaryIO, ogg: _OggWriter, lookahead: int) -> None:
    """The headers, then every 60 ms of input; the end padded with silence until the encoder's
    lookahead is out, and the last page's granule marks where the input ended (RFC 7845 §4.4)."""
    pre_skip = lookahead * TO_48K
    vendor = lib.opus.opus_get_version_string() or b"libopus"
    ogg.page([struct.pack("<8sBBHIhB", b"OpusHead", 1, CHANNELS, pre_skip, RATE, 0, 0)], 0, flags=0x02)
    ogg.page([b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)], 0)
    frame_bytes, packet = SAMPLES * CHANNELS * 2, ctypes.create_string_buffer(_MAX_PACKET)
    read = coded = 0  # samples per channel
    ended, pending = False, list[bytes]()
    while not ended or coded < read + lookahead:
        chunk = b"" if ended else src.read(frame_bytes)
        ended = ended or len(chunk) < frame_bytes
        read += len(chunk) // (2 * CHANNELS)
        n = lib.opus.opus_encode(ctypes.c_void_p(enc), chunk.ljust(frame_bytes, b"\0"), SAMPLES, packet, _MAX_PACKET)
        if n < 0:
            raise OpusError(f"opus_encode failed ({n})")
        if len(pending) == _PAGE_PACKETS:  # a full page goes out once another packet exists: the last is never empty
            ogg.page(pending, coded * TO_48K)
            pending = []
        coded += SAMPLES
        pending.append(packet.raw[:n])
    ogg.page(pending, pre_skip + read * TO_48K, flags=0x04)  # end of stream: the input's own length

"""The in-process Opus encoder (recording/opus.py) read back by opus-tools' own decoder: the file is
valid Ogg Opus, exactly as long as the raw input, and keeps the caller left and the seat right."""

from __future__ import annotations

import asyncio
import math
import struct
import subprocess
from pathlib import Path

import pytest

from recording.opus import RATE, encode_file
from recording.store import EncodeError, encode
from testbed.sipp.tones import power, read_wav

LEFT_HZ, RIGHT_HZ = 440.0, 1000.0


def stereo_raw(path: Path, seconds: float, tail: bytes = b"") -> Path:
    """What MixMonitor's D writes: 8 kHz s16le, left 440 Hz, right 1000 Hz (then ``tail``)."""
    n = int(seconds * RATE)
    path.write_bytes(b"".join(struct.pack("<hh", int(6000 * math.sin(2 * math.pi * LEFT_HZ * i / RATE)),
                                          int(6000 * math.sin(2 * math.pi * RIGHT_HZ * i / RATE)))
                              for i in range(n)) + tail)
    return path


def decoded(path: Path, out: Path) -> tuple[int, list[list[int]]]:
    subprocess.run(["opusdec", "--quiet", "--rate", str(RATE), str(path), str(out)], check=True, timeout=60)
    return read_wav(out)


@pytest.mark.parametrize("bitrate_kbps, apart", [(24, 20), (28, 100)])
def test_given_a_stereo_raw_file_when_encoded_then_opusdec_gives_it_back_as_long_and_apart(
    tmp_path: Path, bitrate_kbps: int, apart: float,
) -> None:
    raw = stereo_raw(tmp_path / "call.raw", 3.21)  # not a whole number of 60 ms frames
    encode_file(raw, tmp_path / "call.opus", bitrate_kbps)

    rate, channels = decoded(tmp_path / "call.opus", tmp_path / "call.wav")
    assert rate == RATE and len(channels) == 2
    left, right = channels
    assert len(left) == int(3.21 * RATE), "the last page's granule ends the audio where the raw file did"
    middle = slice(rate // 4, len(left) - rate // 4)
    assert power(left[middle], rate, LEFT_HZ) > apart * power(left[middle], rate, RIGHT_HZ), "left: the caller"
    assert power(right[middle], rate, RIGHT_HZ) > apart * power(right[middle], rate, LEFT_HZ), "right: the seat"
    size = (tmp_path / "call.opus").stat().st_size
    assert size < 3.21 * bitrate_kbps * 1000 / 8 * 1.1, "compressed to about its bitrate"


def test_given_a_raw_file_cut_mid_sample_and_an_empty_one_then_both_encode(tmp_path: Path) -> None:
    """Asterisk killed mid-write leaves a partial sample: the whole frames are kept, the rest dropped."""
    encode_file(stereo_raw(tmp_path / "cut.raw", 0.5, tail=b"\x01\x02\x03"), tmp_path / "cut.opus", 24)
    encode_file(stereo_raw(tmp_path / "empty.raw", 0), tmp_path / "empty.opus", 24)

    assert len(decoded(tmp_path / "cut.opus", tmp_path / "cut.wav")[1][0]) == int(0.5 * RATE)
    assert len(decoded(tmp_path / "empty.opus", tmp_path / "empty.wav")[1][0]) == 0


def test_given_a_raw_file_that_vanished_when_encoded_then_an_encode_error_and_no_partial_file(tmp_path: Path) -> None:
    dest = tmp_path / "2026" / "call.opus"
    with pytest.raises(EncodeError):
        asyncio.run(encode(tmp_path / "gone.raw", dest, 24))
    assert list(dest.parent.iterdir()) == []

"""Any audio pydub reads → what Asterisk plays: 8 kHz mono 16-bit PCM, and raw mu-law.

Transcoding happens here, once, at build time — never per call. WAV needs no ffmpeg; other
recording formats (mp3, flac…) do, through pydub.
"""

from __future__ import annotations

import os
import shutil
import wave
import warnings
from pathlib import Path

with warnings.catch_warnings():
    # Python 3.11 deprecates audioop (audioop-lts replaces it on ≥3.13); pydub warns without
    # ffmpeg, which WAV does not need.
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", RuntimeWarning)
    import audioop
    from pydub import AudioSegment
    from pydub.effects import low_pass_filter

RATE = 8000
WIDTH = 2  # bytes: 16-bit
CUTOFF_HZ = 3400  # telephone band; filtered before downsampling so nothing folds back


class AudioError(Exception):
    """A file pydub cannot read; one line naming it."""


def read(path: Path) -> AudioSegment:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "Couldn't find ffprobe"
            return AudioSegment.from_file(str(path))
    except Exception as exc:  # noqa: BLE001 (pydub raises many kinds: CouldntDecodeError, OSError, wave.Error…)
        if shutil.which("ffmpeg") is None:
            reason = "not a WAV file readable without ffmpeg (other formats need: apt-get install ffmpeg)"
        else:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise AudioError(f"{path}: cannot read audio: {reason}") from None


def telephony(segment: AudioSegment) -> AudioSegment:
    segment = segment.set_channels(1).set_sample_width(WIDTH)
    if segment.frame_rate > RATE:
        segment = low_pass_filter(segment, CUTOFF_HZ)
    return segment.set_frame_rate(RATE)


def write(segment: AudioSegment, wav_path: Path, ulaw_path: Path) -> float:
    """Write ``<id>.wav`` and ``<id>.ulaw`` atomically; return the duration in seconds."""
    pcm = segment.raw_data
    tmp = wav_path.with_name(wav_path.name + ".tmp")
    with wave.open(str(tmp), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(WIDTH)
        out.setframerate(RATE)
        out.writeframes(pcm)
    os.replace(tmp, wav_path)
    tmp = ulaw_path.with_name(ulaw_path.name + ".tmp")
    tmp.write_bytes(audioop.lin2ulaw(pcm, WIDTH))
    os.replace(tmp, ulaw_path)
    return duration_of(len(pcm) // WIDTH)


def duration_of(frames: int) -> float:
    return round(frames / RATE, 3)

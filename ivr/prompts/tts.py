"""Text → speech with espeak-ng's Mandarin voice (Debian package ``espeak-ng``).

Debian has no better offline Mandarin engine (no ekho; the neural engines on PyPI download
models at run time), so espeak-ng it is. Its ``cmn`` voice reads characters missing from its
dictionary as English-spelled pinyin ("您" → "nin two"); ``cmn-latn-pinyin`` reads them as
Mandarin, hence the default voice in :class:`Voice`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = "install it with: apt-get install espeak-ng"
# Hotline and phone numbers are read digit by digit, 1 as 幺 (yāo): 12345 → 幺二三四五.
# Shorter numbers stay numbers: "3个工作日", "24小时", "请按1".
_DIGITS = dict(zip("0123456789", "零幺二三四五六七八九"))
_LONG_NUMBER = re.compile(r"\d{3,}")


@dataclass(frozen=True)
class Voice:
    """How the synthetic voice speaks; part of every synthetic prompt's hash. Defined here, beside
    the engine that speaks it, so the catalog imports tts and not the other way round."""

    engine: str = "espeak-ng"
    voice: str = "cmn-latn-pinyin"  # Mandarin; reads any pinyin fallback as Mandarin too
    speed: int = 175  # words per minute (a Mandarin syllable counts as a word)
    pitch: int = 50  # 0..99


class TTSError(Exception):
    """The speech engine is missing or failed; the message is one line an operator can act on."""


def normalize(text: str) -> str:
    """What the engine should read for ``text``."""
    return _LONG_NUMBER.sub(lambda m: "".join(_DIGITS[d] for d in m.group()), text)


class EspeakNG:
    def __init__(self, binary: str = "espeak-ng"):
        self.binary = binary

    def check(self, voice: Voice) -> None:
        """Raise :class:`TTSError` unless the engine and its voice are usable."""
        exe = shutil.which(self.binary)
        if exe is None:
            raise TTSError(f"{self.binary} is not installed; {INSTALL_HINT}")
        self.binary = exe
        probe = subprocess.run(
            [exe, "-v", voice.voice, "-q", "测试"], capture_output=True, text=True, timeout=30, check=False
        )
        if probe.returncode != 0:
            reason = (probe.stderr.strip().splitlines() or ["failed"])[-1]
            raise TTSError(f"{self.binary} voice {voice.voice!r} unusable: {reason}")

    def synthesize(self, text: str, voice: Voice, wav_path: Path) -> None:
        """Write ``text`` spoken by ``voice`` to ``wav_path`` (espeak-ng's own 22.05 kHz WAV)."""
        cmd = [self.binary, "-v", voice.voice, "-s", str(voice.speed), "-p", str(voice.pitch)]
        cmd += ["-b", "1", "-w", str(wav_path), "--stdin"]
        try:
            done = subprocess.run(cmd, input=normalize(text).encode(), capture_output=True, timeout=60, check=False)
        except FileNotFoundError:
            raise TTSError(f"{self.binary} is not installed; {INSTALL_HINT}") from None
        if done.returncode != 0 or not wav_path.is_file():
            reason = (done.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise TTSError(f"{self.binary} failed on {text[:20]!r}: {reason}")

"""The prompt build: catalog → audio files → manifest, and the install into Asterisk's sounds.

``build_prompts(prompts_dir, out_dir)`` turns every prompt into ``out_dir/<id>.wav`` (8 kHz mono
16-bit) and ``out_dir/<id>.ulaw`` (raw mu-law). A recording in ``prompts/recorded/`` wins over the
synthetic voice. ``out_dir/build.json`` remembers the input hash of each file there, so only
prompts whose text, voice or recording changed are rebuilt. The committed
``prompts/manifest.json`` is rewritten with every prompt's duration, source and hash.

``install_sounds(out_dir, sounds_dir)`` copies the files to ``sounds_dir/zh/<sound>.*`` —
``zh/ivr12345/<id>.wav`` for ordinary prompts — which Asterisk plays as ``ivr12345/<id>`` on a
channel whose language is ``zh``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ivr.prompts import audio
from ivr.prompts.catalog import MANIFEST_FILE, SOUND_PREFIX, Prompt, PromptCatalog, load_catalog, read_manifest
from ivr.prompts.tts import EspeakNG, TTSError
from ivr.core.yamlsource import SourceError

DEFAULT_OUT = Path("prompts/build")
STATE_FILE = "build.json"
EXTENSIONS = (".wav", ".ulaw")
MANIFEST_VERSION = 1

Progress = Callable[[int, int, str], None]  # (done, total, prompt id just built)


class PromptBuildError(Exception):
    """A build that cannot go on: missing engine, unreadable recording. One line."""


@dataclass(frozen=True)
class BuildReport:
    out_dir: Path
    manifest: Path
    built: tuple[str, ...]  # ids (re)built this time
    unchanged: tuple[str, ...]  # ids whose files were already up to date
    removed: tuple[str, ...]  # ids no longer in the catalog, deleted from out_dir
    durations: dict[str, float]  # every prompt, seconds
    seconds: float  # wall time of the build

    def summary(self) -> str:
        return (
            f"built {len(self.built)}, unchanged {len(self.unchanged)}, removed {len(self.removed)} "
            f"in {self.seconds:.1f} s → {self.out_dir} (manifest {self.manifest})"
        )


def build_prompts(
    prompts_dir: Path = Path("prompts"),
    out_dir: Path = DEFAULT_OUT,
    *,
    force: bool = False,
    progress: Progress | None = None,
    tts: EspeakNG | None = None,
) -> BuildReport:
    """Build what changed; rewrite ``prompts_dir/manifest.json``. Raises PromptBuildError."""
    started = time.monotonic()
    prompts_dir, out_dir = Path(prompts_dir), Path(out_dir)
    catalog = load_catalog(prompts_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = _read_json_table(out_dir / STATE_FILE)

    todo = [p for p in catalog.prompts.values() if force or not _up_to_date(p, state.get(p.id), out_dir)]
    tts = tts or EspeakNG()
    if any(p.recording is None for p in todo):
        try:
            tts.check(catalog.voice)
        except TTSError as exc:
            raise PromptBuildError(str(exc)) from None

    with tempfile.TemporaryDirectory(prefix="ivr-prompts-") as scratch:
        for done, prompt in enumerate(todo, 1):
            duration = _build_one(catalog, prompt, out_dir, Path(scratch), tts)
            state[prompt.id] = {
                "duration": duration,
                "source": prompt.source,
                "hash": prompt.hash,
                "sound": catalog.sound(prompt.id),
            }
            _write_json_table(out_dir / STATE_FILE, state)  # an interrupted build keeps what it made
            if progress:
                progress(done, len(todo), prompt.id)

    removed = sorted(set(state) - set(catalog.prompts))
    for pid in removed:
        for ext in EXTENSIONS:
            (out_dir / f"{pid}{ext}").unlink(missing_ok=True)
        del state[pid]
    _write_json_table(out_dir / STATE_FILE, state)

    manifest = {pid: {k: state[pid][k] for k in ("duration", "source", "hash")} for pid in catalog.prompts}
    manifest_path = prompts_dir / MANIFEST_FILE
    _write_json_table(manifest_path, manifest)
    built = tuple(p.id for p in todo)
    return BuildReport(
        out_dir=out_dir,
        manifest=manifest_path,
        built=built,
        unchanged=tuple(pid for pid in catalog.prompts if pid not in built),
        removed=tuple(removed),
        durations={pid: float(e["duration"]) for pid, e in manifest.items()},
        seconds=time.monotonic() - started,
    )


def _up_to_date(prompt: Prompt, entry: dict[str, Any] | None, out_dir: Path) -> bool:
    return (
        isinstance(entry, dict)
        and entry.get("hash") == prompt.hash
        and all((out_dir / f"{prompt.id}{ext}").is_file() for ext in EXTENSIONS)
    )


def _build_one(catalog: PromptCatalog, prompt: Prompt, out_dir: Path, scratch: Path, tts: EspeakNG) -> float:
    try:
        if prompt.recording is not None:
            source = prompt.recording
        else:
            source = scratch / f"{prompt.id}.wav"
            tts.synthesize(prompt.spoken_text, prompt.voice or catalog.voice, source)
        segment = audio.telephony(audio.read(source))
    except (TTSError, audio.AudioError) as exc:
        raise PromptBuildError(f"{prompt.id}: {exc}") from None
    return audio.write(segment, out_dir / f"{prompt.id}.wav", out_dir / f"{prompt.id}.ulaw")


def install_sounds(build_dir: Path, sounds_dir: Path, language: str = "zh") -> list[Path]:
    """Copy built prompts under ``sounds_dir/<language>/``; return every file installed there.

    Unchanged files are left alone; files under ``<language>/ivr12345/`` that the build no longer
    has are deleted. Each copy replaces the old file atomically, so a playing call is unharmed.
    """
    build_dir, base = Path(build_dir), Path(sounds_dir) / language
    state = _read_json_table(build_dir / STATE_FILE)
    if not state:
        raise PromptBuildError(f"{build_dir}: nothing built here; run `ivr prompts build` first")
    installed: list[Path] = []
    for pid, entry in sorted(state.items()):
        for ext in EXTENSIONS:
            src, dst = build_dir / f"{pid}{ext}", base / f"{entry['sound']}{ext}"
            if not src.is_file():
                raise PromptBuildError(f"{src}: missing; run `ivr prompts build`")
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not dst.is_file() or dst.read_bytes() != src.read_bytes():
                tmp = dst.with_name(dst.name + ".tmp")
                shutil.copyfile(src, tmp)
                os.replace(tmp, dst)
            installed.append(dst)
    ours = base / SOUND_PREFIX
    keep = set(installed)
    for path in ours.iterdir() if ours.is_dir() else ():
        if path.is_file() and path not in keep:
            path.unlink()
    return installed


class ProgressBar:
    """``[#######.......]  12/40 welcome_12345`` redrawn in place on a terminal; silent otherwise."""

    def __init__(self, stream: TextIO | None = None, width: int = 30):
        self.stream = stream or sys.stderr
        self.width = width
        self.active = self.stream.isatty()
        self.drawn = False

    def __call__(self, done: int, total: int, label: str) -> None:
        if not self.active:
            return
        filled = self.width * done // max(total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r[{bar}] {done:>3}/{total} {label[:40]:<40}")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def _read_json_table(path: Path) -> dict[str, dict[str, Any]]:
    try:
        return read_manifest(path)
    except SourceError:  # a damaged build state only means: rebuild
        return {}


def _write_json_table(path: Path, table: dict[str, dict[str, Any]]) -> None:
    """Write ``{"version": 1, "prompts": {...}}`` sorted, only if it changed (diff-friendly)."""
    text = json.dumps({"version": MANIFEST_VERSION, "prompts": dict(sorted(table.items()))},
                      indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)

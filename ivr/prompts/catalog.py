"""Prompt ids → text and audio facts. Flows refer to prompts by id only.

The catalog is ``prompts/catalog.yaml`` (text an admin edits), ``prompts/recorded/`` (studio
recordings that replace the synthetic voice) and ``prompts/manifest.json`` (written by
``ivr prompts build``, committed: the duration of every prompt). :func:`load_catalog` reads all
three; it needs no audio tools, so the flow compiler and the lint can call it anywhere.

Templated prompts: a text may hold placeholders such as ``{old_number}``. Such a prompt is a
:class:`Template`; each of its ``variants`` (listed in the YAML) is rendered at build time into
an ordinary prompt whose id is :func:`variant_id` — ``merged_notice`` with ``old_number: "12396"``
becomes ``merged_notice__12396``, and a flow can name that id directly. Code that picks one by
value calls ``catalog.variant("merged_notice", old_number="12396")``; a value nobody listed has
no audio and is refused there. (Playing the merged-number notice automatically for ``mode:
merged`` numbers belongs to the number plan and is not wired yet.)
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ivr.core import yamlsource
from ivr.prompts.tts import Voice, normalize  # Voice: callers import it from here too
from ivr.core.yamlsource import Document, Location, SourceError, SourceErrors

CATALOG_FILE = "catalog.yaml"
MANIFEST_FILE = "manifest.json"
RECORDED_DIR = "recorded"
SOUND_PREFIX = "ivr12345"
# Bump when the audio pipeline changes so that every prompt is rebuilt (it is part of each hash).
PIPELINE = "8k-mono-s16/1"

ID_RE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")  # no "__": that separates variant values
VALUE_RE = re.compile(r"^[0-9A-Za-z]+$")
SOUND_RE = re.compile(r"^[a-z0-9_]+(?:/[a-z0-9_]+)*$")
PLACEHOLDER_RE = re.compile(r"\{([a-z][a-z0-9_]*)\}")
RECORDING_EXTENSIONS = frozenset(
    {".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".aac", ".aif", ".aiff", ".wma"}
)
TEXT_KEYS = ("zh", "en", "say")


@dataclass(frozen=True)
class Prompt:
    id: str
    text_zh: str
    text_en: str = ""
    duration: float | None = None  # seconds, from the build manifest; None until built
    sound: str = ""  # the name Asterisk plays (relative to sounds/<lang>/, no extension)
    say: str = ""  # what the synthetic voice reads, when it differs from text_zh
    recording: Path | None = None  # prompts/recorded/<id>.<ext>; overrides the synthetic voice
    hash: str = ""  # content hash of the build input (text + voice, or recording bytes)
    template: str = ""  # the template id this prompt was rendered from
    params: tuple[tuple[str, str], ...] = ()  # the template values, sorted by name
    voice: Voice | None = None  # its own pace (``speed:``), else the catalog's voice

    @property
    def source(self) -> str:
        return "recorded" if self.recording is not None else "tts"

    @property
    def spoken_text(self) -> str:
        return self.say or self.text_zh


@dataclass(frozen=True)
class Template:
    id: str
    text_zh: str
    text_en: str
    placeholders: tuple[str, ...]  # sorted
    variants: tuple[str, ...]  # the ids of the prompts rendered from it


@dataclass(frozen=True)
class PromptCatalog:
    prompts: dict[str, Prompt] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    voice: Voice = field(default_factory=Voice)
    # ids whose manifest entry is missing or was built from other input: run `ivr prompts build`
    stale: frozenset[str] = frozenset()

    def has(self, prompt_id: str) -> bool:
        return prompt_id in self.prompts

    def duration(self, prompt_id: str) -> float | None:
        return self.prompts[prompt_id].duration

    def sound(self, prompt_id: str) -> str:
        p = self.prompts[prompt_id]
        return p.sound or f"{SOUND_PREFIX}/{p.id}"

    def is_template(self, prompt_id: str) -> bool:
        return prompt_id in self.templates

    def variant(self, template_id: str, **params: Any) -> str:
        """The prompt id of one rendering of a template; KeyError if it is not in the catalog."""
        template = self.templates[template_id]
        if set(params) != set(template.placeholders):
            raise KeyError(f"{template_id} takes {', '.join(template.placeholders)}")
        pid = variant_id(template_id, {k: str(v) for k, v in params.items()})
        if pid not in self.prompts:
            raise KeyError(f"{pid}: add {dict(sorted(params.items()))} to {template_id}.variants")
        return pid


def variant_id(template_id: str, params: dict[str, str]) -> str:
    """``merged_notice`` + ``{old_number: 12396}`` → ``merged_notice__12396`` (values by name)."""
    return "__".join([template_id, *(params[k] for k in sorted(params))])


def render(text: str, params: dict[str, str]) -> str:
    return PLACEHOLDER_RE.sub(lambda m: params[m.group(1)], text)


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER_RE.findall(text))


def tts_hash(spoken: str, voice: Voice) -> str:
    data = {"pipeline": PIPELINE, "voice": asdict(voice), "say": normalize(spoken)}
    return "sha256:" + hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def recording_hash(path: Path) -> str:
    h = hashlib.sha256(PIPELINE.encode() + b"\0")
    h.update(path.read_bytes())
    return "sha256:" + h.hexdigest()


# --- loading ---------------------------------------------------------------------------------


def load_catalog(prompts_dir: Path = Path("prompts")) -> PromptCatalog:
    """Read catalog.yaml, recorded/ and manifest.json; raise located errors an admin can fix."""
    prompts_dir = Path(prompts_dir)
    path = prompts_dir / CATALOG_FILE
    if not path.is_file():
        raise SourceError(None, f"{path}: no prompt catalog here")
    doc = yamlsource.load(path)
    errors: list[SourceError] = []
    recordings = _find_recordings(prompts_dir / RECORDED_DIR, errors)
    voice = _voice(doc, errors)
    entries = doc.data.get("prompts") if isinstance(doc.data, dict) else None
    if isinstance(doc.data, dict):
        for key in doc.data:
            if key not in ("voice", "prompts"):
                errors.append(doc.error((key,), f"unknown key {key!r} (expected voice, prompts)", at_key=True))
    if not isinstance(entries, dict):
        errors.append(doc.error(("prompts",), "expected a mapping 'prompts:' of prompt id → {zh, en}"))
        raise SourceErrors(errors)

    prompts: dict[str, Prompt] = {}
    templates: dict[str, Template] = {}
    for pid, entry in entries.items():
        _load_entry(doc, pid, entry, recordings, voice, prompts, templates, errors)
    for pid, rec in sorted(recordings.items()):
        if pid in templates:
            where = Location(str(rec), 1, 1)
            errors.append(SourceError(where, f"{pid} is a template: name the recording after a variant, e.g. {pid}__12396"))
        elif pid not in prompts:
            # A recording alone is a prompt: it has audio, only no text to show.
            prompts[pid] = Prompt(pid, "", sound=f"{SOUND_PREFIX}/{pid}", recording=rec, hash=recording_hash(rec))
    if errors:
        raise SourceErrors(errors)
    prompts, stale = _apply_manifest(prompts_dir / MANIFEST_FILE, prompts)
    return PromptCatalog(prompts=dict(sorted(prompts.items())), templates=templates, voice=voice, stale=stale)


def _find_recordings(folder: Path, errors: list[SourceError]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in RECORDING_EXTENSIONS:
            continue
        pid = path.stem
        if not _valid_id(pid) and not _valid_variant_file(pid):
            errors.append(SourceError(Location(str(path), 1, 1), f"{pid!r} is not a prompt id"))
        elif pid in found:
            errors.append(SourceError(Location(str(path), 1, 1), f"two recordings for {pid!r}: also {found[pid].name}"))
        else:
            found[pid] = path
    return found


def _valid_id(pid: Any) -> bool:
    return isinstance(pid, str) and bool(ID_RE.match(pid))


def _valid_variant_file(pid: str) -> bool:
    base, *values = pid.split("__")
    return bool(values) and _valid_id(base) and all(VALUE_RE.match(v) for v in values)


def _voice(doc: Document, errors: list[SourceError]) -> Voice:
    raw = doc.data.get("voice") if isinstance(doc.data, dict) else None
    if raw is None:
        return Voice()
    if not isinstance(raw, dict):
        errors.append(doc.error(("voice",), "expected a mapping (engine, voice, speed, pitch)"))
        return Voice()
    defaults = Voice()
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if not hasattr(defaults, key):
            errors.append(doc.error(("voice", key), f"unknown key {key!r}", at_key=True))
        elif not isinstance(value, type(getattr(defaults, key))) or isinstance(value, bool):
            kind = type(getattr(defaults, key)).__name__
            errors.append(doc.error(("voice", key), f"voice.{key}: expected {kind}, got {value!r}"))
        else:
            values[key] = value
    if values.get("engine", "espeak-ng") != "espeak-ng":
        errors.append(doc.error(("voice", "engine"), "only engine 'espeak-ng' is supported"))
    return Voice(**values)


def _load_entry(
    doc: Document,
    pid: str,
    entry: Any,
    recordings: dict[str, Path],
    voice: Voice,
    prompts: dict[str, Prompt],
    templates: dict[str, Template],
    errors: list[SourceError],
) -> None:
    at = ("prompts", pid)
    if not _valid_id(pid):
        errors.append(doc.error(at, f"{pid!r} is not a valid prompt id (lower case, digits, single _)", at_key=True))
        return
    if not isinstance(entry, dict):
        errors.append(doc.error(at, f"{pid}: expected a mapping with zh (and en)"))
        return
    bad = len(errors)
    for key in entry:
        if key not in (*TEXT_KEYS, "sound", "variants", "speed"):
            errors.append(doc.error(at + (key,), f"{pid}: unknown key {key!r}", at_key=True))
    texts: dict[str, str] = {}
    for key in TEXT_KEYS:
        value = entry.get(key, "")
        if not isinstance(value, str):
            errors.append(doc.error(at + (key,), f"{pid}.{key}: expected text, got {value!r}"))
        texts[key] = (value or "").strip() if isinstance(value, str) else ""
    sound = entry.get("sound", f"{SOUND_PREFIX}/{pid}")
    if not isinstance(sound, str) or not SOUND_RE.match(sound):
        errors.append(doc.error(at + ("sound",), f"{pid}.sound: expected a path like digits/1, got {sound!r}"))
    names = placeholders(texts["zh"])
    for key in ("en", "say"):
        if texts[key] and placeholders(texts[key]) != names:
            errors.append(doc.error(at + (key,), f"{pid}.{key}: placeholders differ from zh ({_fmt(names)})"))
    if not names and "variants" in entry:
        errors.append(doc.error(at + ("variants",), f"{pid}: variants given but zh has no {{placeholder}}", at_key=True))
    if not texts["zh"] and pid not in recordings:
        errors.append(doc.error(at, f"{pid}: no zh text and no recording in {RECORDED_DIR}/"))
    speed = entry.get("speed")
    if speed is not None and (not isinstance(speed, int) or isinstance(speed, bool) or not 80 <= speed <= 450):
        errors.append(doc.error(at + ("speed",), f"{pid}.speed: expected words per minute (80-450), got {speed!r}"))
    if len(errors) > bad:
        return
    own = replace(voice, speed=speed) if speed is not None else None  # prompts callers must get through fast
    voice = own or voice
    if not names:
        rec = recordings.get(pid)
        digest = recording_hash(rec) if rec else tts_hash(texts["say"] or texts["zh"], voice)
        prompts[pid] = Prompt(
            pid, texts["zh"], texts["en"], sound=sound, say=texts["say"], recording=rec, hash=digest, voice=own
        )
        return
    if "sound" in entry:
        errors.append(doc.error(at + ("sound",), f"{pid}: a template cannot set sound", at_key=True))
        return
    variant_ids = _load_variants(doc, pid, entry.get("variants", []), names, texts, recordings, voice, prompts, errors,
                                 own)
    templates[pid] = Template(pid, texts["zh"], texts["en"], tuple(sorted(names)), tuple(variant_ids))


def _load_variants(
    doc: Document,
    pid: str,
    raw: Any,
    names: set[str],
    texts: dict[str, str],
    recordings: dict[str, Path],
    voice: Voice,
    prompts: dict[str, Prompt],
    errors: list[SourceError],
    own: Voice | None = None,
) -> list[str]:
    at = ("prompts", pid, "variants")
    if not isinstance(raw, list):
        errors.append(doc.error(at, f"{pid}.variants: expected a list like - {{{sorted(names)[0]}: \"12396\"}}"))
        return []
    out: list[str] = []
    for i, params in enumerate(raw):
        if not isinstance(params, dict) or set(params) != names:
            errors.append(doc.error(at + (i,), f"{pid}.variants[{i}]: expected exactly {_fmt(names)}"))
            continue
        bad = [k for k, v in params.items() if not isinstance(v, str) or not VALUE_RE.match(v)]
        for k in bad:
            errors.append(
                doc.error(at + (i, k), f"{pid}.variants[{i}].{k}: expected letters/digits in quotes, like \"12396\"")
            )
        if bad:
            continue
        vid = variant_id(pid, params)
        if vid in prompts:
            errors.append(doc.error(at + (i,), f"{pid}.variants[{i}]: {vid} is defined twice"))
            continue
        rec = recordings.get(vid)
        spoken = render(texts["say"] or texts["zh"], params)
        prompts[vid] = Prompt(
            vid,
            render(texts["zh"], params),
            render(texts["en"], params),
            sound=f"{SOUND_PREFIX}/{vid}",
            say=render(texts["say"], params),
            recording=rec,
            hash=recording_hash(rec) if rec else tts_hash(spoken, voice),
            template=pid,
            params=tuple(sorted(params.items())),
            voice=own,
        )
        out.append(vid)
    return out


def _fmt(names: set[str]) -> str:
    return ", ".join("{" + n + "}" for n in sorted(names)) or "no placeholders"


def read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """The ``prompts`` table of a manifest: id → {duration, source, hash}; {} if there is none."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(Location(str(path), 1, 1), f"not a valid manifest: {exc}") from None
    table = data.get("prompts") if isinstance(data, dict) else None
    return table if isinstance(table, dict) else {}


def _apply_manifest(path: Path, prompts: dict[str, Prompt]) -> tuple[dict[str, Prompt], frozenset[str]]:
    manifest = read_manifest(path)
    out: dict[str, Prompt] = {}
    stale: set[str] = set()
    for pid, prompt in prompts.items():
        entry = manifest.get(pid)
        if isinstance(entry, dict) and entry.get("hash") == prompt.hash:
            out[pid] = replace(prompt, duration=float(entry["duration"]))
        else:
            out[pid] = prompt
            stale.add(pid)
    return out, frozenset(stale)

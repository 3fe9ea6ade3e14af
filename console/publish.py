"""Publishing a file of ``config/`` from the console: checked first, exactly as ``ivr check``
does, on a copy of the whole config with the draft in place (in a limited child process:
:mod:`console.sandbox`, never in the engine's); written atomically only when the
copy is valid; then the engine's own reload (the path of ``ivr reload`` and SIGHUP) makes it
live. A broken draft never touches ``config/``: the running version stays live.

Every published content is kept in ``config/.history/`` (one directory per file, one file per
version, named by time and user), so an earlier version can be published again (rollback).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Awaitable, Callable

from console.sandbox import CONCURRENT, check_in_child
from ivr.check_report import CheckReport, check_config
from ivr.core.yamlsource import SourceError, load

if TYPE_CHECKING:
    from ivr.hot_reload import ReloadResult
    from ivr.prompts.catalog import PromptCatalog

HISTORY = ".history"
# What a console-published number plan may set: the plan, nothing else of the configuration
# (plans/*.yaml are held to their own model, NumberPlan, by the check).
PLAN_SECTIONS = {"numbers.yaml": ("plan", "numbers")}
EDITABLE = re.compile(r"^(flows/[a-z][a-z0-9_-]{0,39}\.yaml|numbers\.yaml|plans/[a-z][a-z0-9_.-]{0,60}\.yaml)$")


def editable_files(config_dir: Path) -> list[str]:
    """The files the console shows and publishes, relative to ``config_dir``: flows, then the number plan."""
    found = [p.relative_to(config_dir).as_posix() for p in
             [*sorted(config_dir.glob("flows/*.yaml")), config_dir / "numbers.yaml", *sorted(config_dir.glob("plans/*.yaml"))]
             if p.is_file()]
    return [rel for rel in found if EDITABLE.match(rel)]


def is_number_plan(rel: str) -> bool:
    return not rel.startswith("flows/")


@dataclass(frozen=True)
class Version:
    id: str  # the history file's name without .yaml: 20261202T061501123456Z--admin
    at: str  # ISO UTC
    user: str

    @property
    def label(self) -> str:
        return datetime.fromisoformat(self.at).astimezone().strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class Outcome:
    ok: bool
    report: CheckReport
    version: str = ""  # the engine's live version afterwards
    errors: tuple[str, ...] = ()  # the reload's own refusal (the config changed under us)


class ConfigFiles:
    """Check, publish and roll back files of one ``config/`` (publishes are serialised)."""

    def __init__(self, config_dir: Path, catalog: Callable[[], "PromptCatalog"],
                 reload: Callable[[], Awaitable["ReloadResult"]]):
        self.config_dir = config_dir.resolve()
        self.catalog = catalog
        self.reload = reload
        self._lock = asyncio.Lock()
        self._checks = asyncio.Semaphore(CONCURRENT)

    def path(self, rel: str) -> Path:
        """KeyError unless ``rel`` is one of :func:`editable_files` (no way out of config/)."""
        if not EDITABLE.match(rel) or rel not in editable_files(self.config_dir):
            raise KeyError(rel)
        return self.config_dir / rel

    def read(self, rel: str) -> str:
        return self.path(rel).read_text(encoding="utf-8")

    async def check(self, rel: str, text: str) -> CheckReport:
        """``ivr check`` of the config as it would be with ``text`` as ``rel``; errors name config/."""
        self.path(rel)
        return await check_in_child(self.config_dir, rel, normal(text), self.catalog(), self._checks)

    async def publish(self, rel: str, text: str, user: str) -> Outcome:
        text = normal(text)
        async with self._lock:
            report = await self.check(rel, text)
            if not report.ok:
                return Outcome(False, report)
            path = self.path(rel)
            old = path.read_text(encoding="utf-8")
            if not self.versions(rel):
                self._keep(rel, old, "initial")  # what was there before the first publish
            write_atomically(path, text)
            result = await self.reload()
            if not result.ok:  # changed on disk meanwhile: put ours back, the live version stays
                write_atomically(path, old)
                return Outcome(False, report, result.version, result.errors)
            self._keep(rel, text, user)
            return Outcome(True, report, result.version)

    def versions(self, rel: str) -> list[Version]:
        """Published versions of ``rel``, newest first."""
        folder = self._history(rel)
        out = []
        for p in sorted(folder.glob("*.yaml"), reverse=True) if folder.is_dir() else []:
            stamp, _, user = p.stem.partition("--")
            at = datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=timezone.utc)
            out.append(Version(p.stem, at.isoformat(timespec="seconds"), user))
        return out

    def version_text(self, rel: str, version: str) -> str:
        """KeyError for an id that is not one of :meth:`versions`."""
        if version not in {v.id for v in self.versions(rel)}:
            raise KeyError(version)
        return (self._history(rel) / f"{version}.yaml").read_text(encoding="utf-8")

    def _history(self, rel: str) -> Path:
        return self.config_dir / HISTORY / rel.replace("/", "__")

    def _keep(self, rel: str, text: str, user: str) -> None:
        folder = self._history(rel)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        write_atomically(folder / f"{stamp}--{user}.yaml", text)


def check_draft(config_dir: Path, rel: str, text: str, catalog: "PromptCatalog") -> CheckReport:
    """Check a copy of ``config_dir`` with ``text`` as ``rel``; problems name ``config_dir``
    (run by :mod:`console.sandbox` in its child process)."""
    with tempfile.TemporaryDirectory(prefix="ivr-draft-") as tmp:
        draft = Path(tmp) / "config"
        shutil.copytree(config_dir, draft, ignore=shutil.ignore_patterns(HISTORY))
        (draft / rel).write_text(text, encoding="utf-8")
        foreign = foreign_sections(draft / rel, rel)
        report = check_config(draft, catalog)

    def located(line: str) -> str:
        return line.replace(str(draft), str(config_dir))

    timings = [dataclasses.replace(t, file=located(t.file)) for t in report.timings]
    return dataclasses.replace(report, problems=[located(p) for p in foreign + report.problems], timings=timings,
                               warnings=[located(w) for w in report.warnings])


def foreign_sections(path: Path, rel: str) -> list[str]:
    """Sections of a number-plan draft that are not the plan's (an admin's ``tracking:`` or
    ``redis:`` slipped into numbers.yaml would change the engine), in Mandarin for the console."""
    allowed = PLAN_SECTIONS.get(rel)
    try:
        doc = load(path) if allowed else None
    except SourceError:
        return []  # the check reports it
    if doc is None or not isinstance(doc.data, dict):
        return []
    return [f"{doc.where_key((key,))}: 号码计划文件只能包含 {'、'.join(allowed or ())}，不能包含配置段 {key!r}"
            f"（请在该配置段所在的文件中修改）" for key in doc.data if key not in (allowed or ())]


def normal(text: str) -> str:
    """A draft as a file: browsers send a textarea's lines with CRLF."""
    return text.replace("\r\n", "\n")


def write_atomically(path: Path, text: str) -> None:
    """Readers (a reload, a process AGI) see the old file or the new one, never half of it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

"""Publishing a file of ``config/`` from the console: checked first, exactly as ``ivr check``
does, on a copy of the whole config with the draft in place; written atomically only when the
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

from ivr.flows.report import CheckReport, check_config

if TYPE_CHECKING:
    from ivr.flows.live import ReloadResult
    from ivr.prompts.catalog import PromptCatalog

HISTORY = ".history"
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

    def path(self, rel: str) -> Path:
        """KeyError unless ``rel`` is one of :func:`editable_files` (no way out of config/)."""
        if not EDITABLE.match(rel) or rel not in editable_files(self.config_dir):
            raise KeyError(rel)
        return self.config_dir / rel

    def read(self, rel: str) -> str:
        return self.path(rel).read_text(encoding="utf-8")

    async def check(self, rel: str, text: str) -> CheckReport:
        return await asyncio.to_thread(self._check, rel, normal(text))

    def _check(self, rel: str, text: str) -> CheckReport:
        """``ivr check`` of the config as it would be with ``text`` as ``rel``; errors name config/."""
        self.path(rel)
        with tempfile.TemporaryDirectory(prefix="ivr-draft-") as tmp:
            draft = Path(tmp) / "config"
            shutil.copytree(self.config_dir, draft, ignore=shutil.ignore_patterns(HISTORY))
            (draft / rel).write_text(text, encoding="utf-8")
            report = check_config(draft, self.catalog())

        def located(line: str) -> str:
            return line.replace(str(draft), str(self.config_dir))

        timings = [dataclasses.replace(t, file=located(t.file)) for t in report.timings]
        return CheckReport([located(p) for p in report.problems], timings, [located(n) for n in report.notes],
                           report.summary, report.version)

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

"""Compiling ``config/`` into a checked :class:`FlowSet`, and swapping it in live on reload.

:func:`compile_config` reads settings, flows, prompt catalog and holiday calendar and checks
them together (a flow may name a queue, a prompt, another flow; every number of the plan is
held to its budget). :class:`LiveFlows` swaps in a new set only when all of it is valid; a
call takes ``live.current`` once at its start and finishes on that object, so a reload never
changes a call in progress. This module sits above ivr.config (it loads it); the flows and
the number plan below it stay free of I/O and of the settings loader.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Callable, Mapping

from ivr.config import NAME, ConfigError, LoadedConfig, load_config
from ivr.core.calendar import DEFAULT_PATH as CALENDAR_PATH
from ivr.core.calendar import load_calendar
from ivr.core.yamlsource import Location, SourceError, SourceErrors, load
from ivr.flows.compiler import Flow, compile_flow, suggest
from ivr.flows.flowset import FlowSet
from ivr.flows.goto import Subflow
from ivr.flows.lint import CatalogTiming, lint_flows, timing_for, worst_from
from ivr.flows.validate import check_flow
from ivr.numbers.routing import MERGED_NOTICE, NUMBER_BUDGET, entry_for, notice_for
from recording.rules import NOTICE_PROMPT, notice_possible

if TYPE_CHECKING:
    from ivr.prompts.catalog import PromptCatalog


def _number_compliance(loaded: LoadedConfig, flows: Mapping[str, Flow], catalog: "PromptCatalog",
                       timing: CatalogTiming, today: date) -> tuple[dict[str, float], list[SourceError]]:
    """Every number of the plan, as its caller lives it: the merged notice (while it plays),
    then the flow from where the notice leaves them, within the budget unless exempted.
    Returns each held number's worst seconds, and the errors."""
    errors, seconds = [], {}
    for number, entry in loaded.settings.numbers.items():
        target = entry_for(loaded.settings, flows, number)
        if entry.compliance is not None or not isinstance(target, Flow):
            continue  # exempt, or routed straight to a queue or sub-center (0 s)
        notice = notice_for(loaded.settings, catalog, number, today)
        start = target.after_notice if notice else target.start
        worst = worst_from(flows, target.name, start, timing)
        before = timing.prompt(notice) if notice else 0.0
        # the recording notice, played as the caller joins a queue (recording/rules.py)
        recorded = timing.prompt(NOTICE_PROMPT) if notice_possible(loaded.settings.recording, number) else 0.0
        if worst is not None:
            seconds[number] = round(before + worst[0] + recorded, 3)
        if not notice and not recorded and target.header.budget is not None and target.header.budget <= NUMBER_BUDGET:
            continue  # the flow's own budget holds it (lint_flows reports it there)
        budget = min(NUMBER_BUDGET, target.header.budget or NUMBER_BUDGET)
        if worst is not None and before + worst[0] + recorded <= budget + 1e-9:
            continue
        got = "no path reaches a human" if worst is None else f"worst case {before + worst[0] + recorded:g}s to a human"
        path = (f"notice {notice} {before:g}s → " if notice else "") + (
            " → ".join(f"{s.node}[{s.label}] {s.seconds:g}s" for s in worst[1]) if worst else "") + (
            f" → {NOTICE_PROMPT} {recorded:g}s" if recorded else "")
        loc = _parse_location(loaded.origin(f"numbers.{number}"))
        errors.append(SourceError(loc, f"number {number} ({entry.mode}, flow {target.name}): {got} exceeds {budget:g}s: "
                                       f"{path}; shorten it, or say why not in its entry: compliance: {{exempt: \"reason\"}}"))
    return seconds, errors


def compile_config(
    config_dir: str | Path,
    catalog: "PromptCatalog",
    *,
    environ: Mapping[str, str] | None = None,
    calendar_path: str | Path = CALENDAR_PATH,
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    strict_lint: bool = False,
) -> FlowSet:
    """Compile and check everything; raise :class:`SourceErrors` listing every problem found.

    Settings problems raise :class:`ivr.config.ConfigError` (already located) first, since
    flows cannot be checked against broken settings. Compliance-lint problems (a budget
    exceeded, a menu whose 0 misses a human) raise only with ``strict_lint``; otherwise they
    are in ``lint_problems``: an engine still starts on such a set (a hotline that answers a
    few seconds slow beats one that does not answer), but :meth:`LiveFlows.reload` refuses it.
    """
    config_dir = Path(config_dir)
    loaded = load_config(config_dir, environ)
    calendar = load_calendar(calendar_path)
    errors: list[SourceError] = []
    flows: dict[str, Flow] = {}
    files = sorted((config_dir / "flows").glob("*.yaml"))
    for path in files:
        if not re.fullmatch(NAME, path.stem):
            errors.append(SourceError(Location(str(path), 1, 1), f"flow name {path.stem!r} (the file name) must match {NAME}"))
            continue
        try:
            flow, problems = compile_flow(load(path), path.stem)
        except SourceError as exc:
            errors.append(exc)
            continue
        errors.extend(problems)
        if flow is not None:
            flows[path.stem] = flow
    timing = timing_for(catalog, flows, {m: x.prompt for m, x in loaded.settings.out_of_scope.items()},
                        [x.prompt for x in loaded.settings.sessions.values() if catalog.has(x.prompt)])
    for flow in flows.values():
        errors.extend(check_flow(flow, loaded.settings, catalog, timing))
    errors.extend(_cross_flow_errors(flows, loaded, catalog))
    if errors:
        raise SourceErrors(errors)
    reports, lint_errors = lint_flows(flows, timing)
    number_seconds, number_errors = _number_compliance(loaded, flows, catalog, timing, now().astimezone().date())
    lint_errors += number_errors
    if lint_errors and strict_lint:
        raise SourceErrors(lint_errors)
    year = now().year
    warnings = tuple(w for y in (year, year + 1) if (w := calendar.coverage_warning(y)))
    if elderly_warning := _elderly_flow_warning(flows, loaded):
        warnings += (elderly_warning,)
    return FlowSet(
        version=_version(config_dir, files, catalog, calendar_path, now()),
        settings=loaded.settings,
        flows=MappingProxyType(flows),
        catalog=catalog,
        calendar=calendar,
        lint=MappingProxyType(reports),
        estimated=MappingProxyType(dict(timing.estimated)),
        lint_problems=tuple(lint_errors),
        warnings=warnings,
        number_seconds=MappingProxyType(number_seconds),
    )


def _cross_flow_errors(flows: dict[str, Flow], loaded: LoadedConfig, catalog: "PromptCatalog") -> list[SourceError]:
    errors = _number_errors(flows, loaded, catalog) + _elderly_flow_errors(flows, loaded) + _matter_errors(loaded, catalog)
    calls = {name: [(nid, n.flow) for nid, n in f.nodes.items() if isinstance(n, Subflow)] for name, f in flows.items()}
    for name, flow in flows.items():
        for nid, target in calls[name]:
            if target not in flows:
                errors.append(flow.error(nid, ("flow",), f"flow {target!r} does not exist in config/flows/{suggest(target, flows)}"))
            elif _leads_back(calls, target, name):
                errors.append(flow.error(nid, ("flow",),
                                         f"subflow {target!r} leads back to {name!r}: flows may not call each other in a loop"))
    return errors


def _leads_back(calls: dict[str, list[tuple[str, str]]], start: str, home: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name == home:
            return True
        if name not in seen and name in calls:
            seen.add(name)
            todo.extend(t for _, t in calls[name])
    return False


def _number_errors(flows: dict[str, Flow], loaded: LoadedConfig, catalog: "PromptCatalog") -> list[SourceError]:
    """A number naming a flow with no file (a flow that failed to compile is reported already),
    or a merged number whose transitional notice has no recording."""
    errors = []
    for number, entry in loaded.settings.numbers.items():
        if entry.mode == "merged":
            try:
                catalog.variant(MERGED_NOTICE, old_number=number)
            except KeyError:
                loc = _parse_location(loaded.origin(f"numbers.{number}.mode"))
                errors.append(SourceError(loc, f"number {number}: no transitional notice: add {{old_number: \"{number}\"}} "
                                               f"to {MERGED_NOTICE}.variants in prompts/catalog.yaml"))
        if entry.flow and entry.flow not in flows and not (loaded.config_dir / "flows" / f"{entry.flow}.yaml").exists():
            loc = _parse_location(loaded.origin(f"numbers.{number}.flow"))
            errors.append(SourceError(loc, f"number {number}: flow {entry.flow!r} is not in config/flows/{suggest(entry.flow, flows)}"))
    return errors


def _matter_errors(loaded: LoadedConfig, catalog: "PromptCatalog") -> list[SourceError]:
    """An out-of-scope matter whose explanation, or a leader session whose announcement, is not in
    the prompt catalog."""
    named = [(f"out_of_scope.{name}", m.prompt) for name, m in loaded.settings.out_of_scope.items()]
    named += [(f"sessions.{name}", s.prompt) for name, s in loaded.settings.sessions.items()]
    return [SourceError(_parse_location(loaded.origin(f"{where}.prompt")),
                        f"{where.replace('.', ' ', 1)}: prompt {prompt!r} is not in the prompt catalog{suggest(prompt, catalog.prompts)}")
            for where, prompt in named if not catalog.has(prompt)]


ELDERLY_NODE_TYPES = ("play", "say", "set", "branch", "queue", "transfer")
"""What the elderly flow may hold: it greets and routes, it never asks (no menu, no digits)."""


def _elderly_flow_errors(flows: dict[str, Flow], loaded: LoadedConfig) -> list[SourceError]:
    """The elderly flow (``priority.elderly.flow``) leads to a human without asking anything."""
    flow = flows.get(loaded.settings.priority.elderly.flow)
    if flow is None:
        return []  # elderly callers then go straight to the general queue (a warning says so)
    return [flow.error(nid, ("type",), f"the elderly flow ({flow.name}) may not hold a {node.type!r} node: registered "
                       f"elderly callers skip every menu (allowed: {', '.join(ELDERLY_NODE_TYPES)})")
            for nid, node in flow.nodes.items() if node.type not in ELDERLY_NODE_TYPES]


def _elderly_flow_warning(flows: Mapping[str, Flow], loaded: LoadedConfig) -> str | None:
    name = loaded.settings.priority.elderly.flow
    if name in flows:
        return None
    return (f"{loaded.origin('priority.elderly.flow')}: priority.elderly.flow {name!r} is not in config/flows/"
            f"{suggest(name, flows)}: registered elderly callers go straight to the general queue, without a greeting")


def _parse_location(text: str) -> Location | None:
    file, line, col = (text.rsplit(":", 2) + ["", ""])[:3]
    return Location(file, int(line), int(col)) if line.isdigit() and col.isdigit() else None


def _version(config_dir: Path, flow_files: list[Path], catalog: "PromptCatalog", calendar_path: str | Path, at: datetime) -> str:
    digest = hashlib.sha256()
    for path in sorted(config_dir.glob("*.yaml")) + sorted(config_dir.glob("plans/*.yaml")) + flow_files + [Path(calendar_path)]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(repr(sorted(catalog.prompts.items())).encode())
    return f"{digest.hexdigest()[:12]}-{at.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}"


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    version: str  # the version live after the reload (the old one when refused)
    errors: tuple[str, ...] = ()  # why it was refused, file:line:col: reason


class LiveFlows:
    """The running FlowSet; :meth:`reload` replaces it only with a fully valid one.

    Fully valid includes the compliance lint (issue 22): a reload — SIGHUP, ``ivr reload``, the
    cluster's announcement — refuses what ``ivr check`` and the console's publish refuse, an
    over-budget number not exempted in its entry included, and the running version stays live.

    Reloads are serialised by a lock; readers never take it: ``current`` is one attribute
    read, so a call sees either the old set or the new one, never a mixture.
    """

    def __init__(self, compile: Callable[[], FlowSet]):
        self._compile = compile
        self._lock = threading.Lock()
        self._current: FlowSet = compile()  # raises: an engine without valid flows must not start

    @classmethod
    def from_config(
        cls,
        config_dir: str | Path,
        load_catalog: Callable[[], "PromptCatalog"],
        *,
        environ: Mapping[str, str] | None = None,
        calendar_path: str | Path = CALENDAR_PATH,
    ) -> "LiveFlows":
        """Compile ``config_dir`` now and on every reload; the catalog is re-read each time too."""
        return cls(lambda: compile_config(config_dir, load_catalog(), environ=environ, calendar_path=calendar_path))

    @property
    def current(self) -> FlowSet:
        return self._current

    @property
    def version(self) -> str:
        return self._current.version

    def reload(self) -> ReloadResult:
        """Recompile; swap only if everything, the compliance lint included, is valid. Never
        raises for bad config."""
        with self._lock:
            try:
                candidate = self._compile()
            except SourceErrors as exc:
                return ReloadResult(False, self._current.version, tuple(str(e) for e in exc.errors))
            except (SourceError, ConfigError, OSError) as exc:
                return ReloadResult(False, self._current.version, tuple(str(exc).splitlines()))
            if candidate.lint_problems:
                return ReloadResult(False, self._current.version, tuple(str(e) for e in candidate.lint_problems))
            self._current = candidate
            return ReloadResult(True, candidate.version)


def catalog_loader(prompts_dir: str | Path) -> Callable[[], "PromptCatalog"]:
    """Read the prompt catalog through the prompts package's one loader (texts + manifest)."""

    def load_catalog() -> "PromptCatalog":
        from ivr.prompts.catalog import load_catalog as load

        return load(Path(prompts_dir))

    return load_catalog


def default_prompts_dir(config_dir: str | Path) -> Path:
    """``prompts/`` beside ``config/``: the repository layout."""
    return Path(config_dir).resolve().parent / "prompts"

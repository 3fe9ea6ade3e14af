"""What ``ivr check`` reports, as data: every problem as ``file:line:col: reason``, or for a valid
set each flow's worst-case seconds from answer to a human. The CLI prints it; the console's
flow pages show it (and check a draft the same way before publishing it)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from ivr.config import ConfigError, webhook_secret
from ivr.flows.lint import CHARS_PER_SECOND
from ivr.flows.flowset import FlowSet
from ivr.hot_reload import compile_config
from ivr.core.secret_policy import deployment_secret_problems
from ivr.core.yamlsource import SourceError, SourceErrors
from tickets.push import endpoint_problems
from tickets.settings import department_key_problems

if TYPE_CHECKING:
    from ivr.prompts.catalog import PromptCatalog


@dataclass(frozen=True)
class FlowTiming:
    flow: str
    file: str
    worst_seconds: float | None  # None: no path reaches a human
    budget: float | None
    path: str  # the path that takes the worst case


@dataclass(frozen=True)
class CheckReport:
    problems: list[str] = field(default_factory=list)  # file:line:col: reason (empty: valid)
    timings: list[FlowTiming] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # estimated prompt durations, warnings
    summary: list[str] = field(default_factory=list)  # the number plan, the version
    version: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """As ``ivr check`` prints it."""
        out: list[str] = []
        for t in self.timings:
            budget = f" (budget {t.budget:g}s)" if t.budget is not None else ""
            if t.worst_seconds is None:
                out.append(f"{t.file}: {t.flow}: no path reaches a human{budget}")
                continue
            out.append(f"{t.file}: {t.flow}: worst case {t.worst_seconds:g}s from answer to a human{budget}")
            out.append(f"    {t.path}")
        out.extend(self.notes)
        if self.problems:
            out.extend(self.problems)
            out.append(f"{len(self.problems)} problem{'s' * (len(self.problems) != 1)}; config refused")
        else:
            out.extend(self.summary)
        return out


def check_config(config_dir: str | Path, catalog: "PromptCatalog", environ: Mapping[str, str] | None = None) -> CheckReport:
    """Compile ``config_dir`` and lint it; never raises for bad config."""
    try:
        flows = compile_config(config_dir, catalog, environ=environ)
    except SourceErrors as exc:
        return CheckReport(problems=[str(e) for e in exc.errors])
    except (SourceError, ConfigError) as exc:
        return CheckReport(problems=str(exc).splitlines())
    return report(flows)


def report(flows: FlowSet) -> CheckReport:
    timings = []
    for name, flow in flows.flows.items():
        lint = flows.lint[name]
        timings.append(FlowTiming(name, str(flow.file), lint.worst_seconds, lint.budget,
                                  lint.describe_path() if lint.worst_seconds is not None else ""))
    notes = []
    by_mode: dict[str, tuple[float, str]] = {}
    for number, seconds in flows.number_seconds.items():
        mode = flows.settings.numbers[number].mode
        by_mode[mode] = max(by_mode.get(mode, (0.0, "")), (seconds, number))
    if by_mode:
        exempt = [n for n, e in flows.settings.numbers.items() if e.compliance is not None]
        notes.append("numbers: slowest to a human, notice included: " + ", ".join(
            f"{mode} {number} {seconds:g}s" for mode, (seconds, number) in sorted(by_mode.items()))
            + (f"; exempt: {', '.join(exempt)}" if exempt else ""))
    if flows.estimated:
        shown = ", ".join(f"{pid} {s:g}s" for pid, s in sorted(flows.estimated.items()))
        notes.append(f"note: no recorded duration, estimated from the Mandarin text at {CHARS_PER_SECOND:g} characters/s: {shown}")
    notes.extend(f"warning: {w}" for w in flows.warnings)
    webhooks = flows.settings.tickets.webhooks
    push_problems = endpoint_problems(webhooks, {name: webhook_secret(name) for name in webhooks})
    modes = Counter(n.mode for n in flows.settings.numbers.values())
    summary = [f"number plan {flows.settings.plan or '(numbers.yaml only)'}: {len(flows.settings.numbers)} numbers answered ("
               + ", ".join(f"{modes[m]} {m}" for m in ("main", "merged", "dual", "subcenter")) + ")",
               f"ok: {len(flows.flows)} flows, version {flows.version}"]
    problems = [str(e) for e in flows.lint_problems] + push_problems
    problems += deployment_secret_problems(flows.settings)
    problems += department_key_problems(flows.settings.tickets.departments)
    return CheckReport(problems, timings, notes, summary, flows.version)

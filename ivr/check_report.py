"""What ``ivr check`` reports, as data: every problem as ``file:line:col: reason``, or for a valid
set each flow's worst-case seconds from answer to a human. The CLI prints it; the console's
flow pages show it (and check a draft the same way before publishing it)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

from ivr.config import ConfigError, turn_secret_problem, webhook_secret
from ivr.core import labels
from ivr.flows.lint import CHARS_PER_SECOND
from ivr.flows.flowset import FlowSet
from ivr.hot_reload import compile_config
from ivr.core.secret_policy import deployment_secret_problems
from ivr.core.yamlsource import SourceError, SourceErrors
from tickets.push import endpoint_problems
from tickets.settings import department_key_problems

if TYPE_CHECKING:
    from ivr.prompts.catalog import PromptCatalog


MODES = ("main", "merged", "dual", "subcenter")


@dataclass(frozen=True)
class FlowTiming:
    flow: str
    file: str
    worst_seconds: float | None  # None: no path reaches a human
    budget: float | None
    path: str  # the path that takes the worst case


@dataclass(frozen=True)
class CheckReport:
    """Facts, not sentences: the CLI words them in English (:meth:`lines`), the console in Mandarin
    with files relative to ``config/`` (:meth:`lines_zh`)."""

    problems: list[str] = field(default_factory=list)  # file:line:col: reason (empty: valid)
    timings: list[FlowTiming] = field(default_factory=list)
    slowest: list[tuple[str, str, float]] = field(default_factory=list)  # mode, number, seconds to a human
    exempt: list[str] = field(default_factory=list)  # numbers with their own compliance rule
    estimated: dict[str, float] = field(default_factory=dict)  # prompt id → estimated seconds
    warnings: list[str] = field(default_factory=list)
    plan: str = ""  # the number plan's name ('': numbers.yaml only)
    modes: dict[str, int] = field(default_factory=dict)  # numbers answered per mode
    flows: int = 0
    version: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """As ``ivr check`` prints it."""
        return self._lines(EN, str, str, str, str)

    def lines_zh(self, root: Path, *, warnings: bool = True) -> list[str]:
        """For the console's staff: Mandarin, files relative to ``root`` (no server paths);
        ``warnings`` False: without them (a page that shows them on their own, details marked)."""
        report = self if warnings else dataclasses.replace(self, warnings=[])
        return report._lines(ZH, lambda text: relative(text, root), labels.number_mode, labels.flow_path, labels.problem_zh)

    def _lines(self, w: Mapping[str, str], rel: Callable[[str], str], mode: Callable[[str], str],
               path: Callable[[str], str], problem: Callable[[str], str]) -> list[str]:
        out: list[str] = []
        for t in self.timings:
            budget = w["budget"].format(t.budget) if t.budget is not None else ""
            if t.worst_seconds is None:
                out.append(w["no_path"].format(file=rel(t.file), flow=t.flow, budget=budget))
                continue
            out.append(w["worst"].format(file=rel(t.file), flow=t.flow, seconds=t.worst_seconds, budget=budget))
            out.append(f"    {path(t.path)}")
        if self.slowest:
            out.append(w["slowest"] + w["comma"].join(w["mode_seconds"].format(mode(m), n, sec) for m, n, sec in self.slowest)
                       + (w["exempt"].format(w["list"].join(self.exempt)) if self.exempt else ""))
        if self.estimated:
            shown = w["comma"].join(w["prompt_seconds"].format(pid, sec) for pid, sec in sorted(self.estimated.items()))
            out.append(w["estimated"].format(CHARS_PER_SECOND, shown))
        out.extend(w["warning"].format(problem(rel(x))) for x in self.warnings)
        if self.problems:
            out.extend(problem(rel(p)) for p in self.problems)
            out.append(w["refused"].format(n=len(self.problems), s="s" * (len(self.problems) != 1)))
        else:
            counts = w["comma"].join(w["mode_count"].format(mode(m), self.modes.get(m, 0)) for m in MODES)
            out.append(w["plan"].format(self.plan or w["no_plan"], sum(self.modes.values()), counts))
            out.append(w["ok"].format(self.flows, self.version))
        return out


EN = {
    "budget": " (budget {:g}s)", "no_path": "{file}: {flow}: no path reaches a human{budget}",
    "worst": "{file}: {flow}: worst case {seconds:g}s from answer to a human{budget}",
    "slowest": "numbers: slowest to a human, notice included: ", "comma": ", ", "list": ", ",
    "mode_seconds": "{} {} {:g}s", "exempt": "; exempt: {}", "prompt_seconds": "{} {:g}s",
    "estimated": "note: no recorded duration, estimated from the Mandarin text at {:g} characters/s: {}",
    "warning": "warning: {}", "refused": "{n} problem{s}; config refused", "mode_count": "{1} {0}",
    "plan": "number plan {}: {} numbers answered ({})", "no_plan": "(numbers.yaml only)", "ok": "ok: {} flows, version {}",
}
ZH = {
    "budget": "（预算 {:g} 秒）", "no_path": "{file}：流程 {flow} 没有到达人工的路径{budget}",
    "worst": "{file}：流程 {flow} 从接听到人工最长 {seconds:g} 秒{budget}",
    "slowest": "各接入方式最慢到达人工（含过渡提示）：", "comma": "，", "list": "、",
    "mode_seconds": "{} {} {:g} 秒", "exempt": "；豁免：{}", "prompt_seconds": "{} {:g} 秒",
    "estimated": "提示：以下语音没有录音时长，按每秒 {:g} 个汉字估算：{}",
    "warning": "警告：{}", "refused": "共 {n} 个问题，配置被拒绝", "mode_count": "{0} {1} 个",
    "plan": "号码计划 {}：接听 {} 个号码（{}）", "no_plan": "（仅 numbers.yaml）", "ok": "校验通过：{} 个流程，版本 {}",
}


def relative(text: str, root: Path) -> str:
    """``/srv/ivr/config/flows/main.yaml:3:1: …`` → ``flows/main.yaml:3:1: …``: staff name files
    as they see them on the flow pages, and the server's layout is not theirs to read."""
    for base in dict.fromkeys((str(root.resolve()), str(root))):  # longest first when root is a symlink
        text = text.replace(f"{base}/", "").replace(base, "config")
    return text


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
    by_mode: dict[str, tuple[float, str]] = {}
    for number, seconds in flows.number_seconds.items():
        mode = flows.settings.numbers[number].mode
        by_mode[mode] = max(by_mode.get(mode, (0.0, "")), (seconds, number))
    slowest = [(mode, number, seconds) for mode, (seconds, number) in sorted(by_mode.items())]
    exempt = [n for n, e in flows.settings.numbers.items() if e.compliance is not None] if by_mode else []
    webhooks = flows.settings.tickets.webhooks
    push_problems = endpoint_problems(webhooks, {name: webhook_secret(name) for name in webhooks})
    problems = [str(e) for e in flows.lint_problems] + push_problems
    problems += deployment_secret_problems(flows.settings)
    problems += department_key_problems(flows.settings.tickets.departments)
    web_phones = flows.settings.phones.web  # the TURN secret: refused here, not when an agent signs in
    problems += [p for p in [turn_secret_problem(web_phones.turn_secret if web_phones else None)] if p]
    return CheckReport(problems, timings, slowest, exempt, dict(flows.estimated), list(flows.warnings),
                       flows.settings.plan or "", dict(Counter(n.mode for n in flows.settings.numbers.values())),
                       len(flows.flows), flows.version)

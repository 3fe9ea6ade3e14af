"""``ivr check``: compile all of config/ (settings, number plan, flows) and run the compliance lint.

Prints every problem as ``file:line:col: reason`` and, for a valid set, each flow's worst-case
seconds from answer to a human with the path that takes them. Exit 1 on any problem.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter

from ivr.cli import config_dir
from ivr.config import ConfigError, webhook_secret
from ivr.flows.lint import CHARS_PER_SECOND
from ivr.flows.live import FlowSet, catalog_loader, compile_config, default_prompts_dir
from ivr.yamlsource import SourceError, SourceErrors
from tickets.push import endpoint_problems

HELP = "validate config/ and its call flows; print the 15 s compliance lint"


def add_prompts_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompts", default=None, help="prompt catalog directory (default: prompts/ beside the config directory)")
    parser.add_argument("--plan", default=None, metavar="NAME",
                        help="the number plan in config/plans/ to use instead of numbers.yaml's (e.g. xuancheng-2016)")


def register(parser: argparse.ArgumentParser) -> None:
    add_prompts_option(parser)


def load_flowset(args: argparse.Namespace) -> FlowSet:
    """Compile the config the command line names; raises located errors."""
    directory = config_dir(args)
    catalog = catalog_loader(args.prompts or default_prompts_dir(directory))()
    environ = {**os.environ, "IVR_PLAN": args.plan} if getattr(args, "plan", None) else None
    return compile_config(directory, catalog, environ=environ)


def run(args: argparse.Namespace) -> int:
    try:
        flows = load_flowset(args)
    except SourceErrors as exc:
        return _failed([str(e) for e in exc.errors])
    except (SourceError, ConfigError) as exc:
        return _failed(str(exc).splitlines())
    for name, flow in flows.flows.items():
        report = flows.lint[name]
        budget = f" (budget {report.budget:g}s)" if report.budget is not None else ""
        if report.worst_seconds is None:
            print(f"{flow.file}: {name}: no path reaches a human{budget}")
            continue
        print(f"{flow.file}: {name}: worst case {report.worst_seconds:g}s from answer to a human{budget}")
        print(f"    {report.describe_path()}")
    by_mode: dict[str, tuple[float, str]] = {}
    for number, seconds in flows.number_seconds.items():
        mode = flows.settings.numbers[number].mode
        by_mode[mode] = max(by_mode.get(mode, (0.0, "")), (seconds, number))
    if by_mode:
        exempt = [n for n, e in flows.settings.numbers.items() if e.compliance is not None]
        print("numbers: slowest to a human, notice included: " + ", ".join(
            f"{mode} {number} {seconds:g}s" for mode, (seconds, number) in sorted(by_mode.items()))
            + (f"; exempt: {', '.join(exempt)}" if exempt else ""))
    if flows.estimated:
        shown = ", ".join(f"{pid} {s:g}s" for pid, s in sorted(flows.estimated.items()))
        print(f"note: no recorded duration, estimated from the Mandarin text at {CHARS_PER_SECOND:g} characters/s: {shown}")
    for warning in flows.warnings:
        print(f"warning: {warning}")
    webhooks = flows.settings.tickets.webhooks
    push_problems = endpoint_problems(webhooks, {name: webhook_secret(name) for name in webhooks})
    if flows.lint_problems or push_problems:
        return _failed([str(e) for e in flows.lint_problems] + push_problems)
    modes = Counter(n.mode for n in flows.settings.numbers.values())
    print(f"number plan {flows.settings.plan or '(numbers.yaml only)'}: {len(flows.settings.numbers)} numbers answered ("
          + ", ".join(f"{modes[m]} {m}" for m in ("main", "merged", "dual", "subcenter")) + ")")
    print(f"ok: {len(flows.flows)} flows, version {flows.version}")
    return 0


def _failed(lines: list[str]) -> int:
    for line in lines:
        print(line)
    print(f"{len(lines)} problem{'s' * (len(lines) != 1)}; config refused")
    return 1

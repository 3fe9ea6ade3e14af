"""``ivr check``: compile all of config/ (settings, number plan, flows) and run the compliance lint.

Prints every problem as ``file:line:col: reason`` and, for a valid set, each flow's worst-case
seconds from answer to a human with the path that takes them. Exit 1 on any problem.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from ivr.cli import config_dir
from ivr.flows.flowset import FlowSet
from ivr.hot_reload import catalog_loader, compile_config, default_prompts_dir
from ivr.check_report import check_config

if TYPE_CHECKING:
    from ivr.prompts.catalog import PromptCatalog

HELP = "validate config/ and its call flows; print the 15 s compliance lint"


def add_prompts_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompts", default=None, help="prompt catalog directory (default: prompts/ beside the config directory)")
    parser.add_argument("--plan", default=None, metavar="NAME",
                        help="the number plan in config/plans/ to use instead of numbers.yaml's (e.g. xuancheng-2016)")


def register(parser: argparse.ArgumentParser) -> None:
    add_prompts_option(parser)


def load_flowset(args: argparse.Namespace) -> FlowSet:
    """Compile the config the command line names; raises located errors."""
    directory, catalog, environ = _inputs(args)
    return compile_config(directory, catalog, environ=environ)


def _inputs(args: argparse.Namespace) -> tuple[str, "PromptCatalog", dict[str, str] | None]:
    """The config directory, its prompt catalog, and the environment with ``--plan`` applied."""
    directory = config_dir(args)
    catalog = catalog_loader(args.prompts or default_prompts_dir(directory))()
    environ = {**os.environ, "IVR_PLAN": args.plan} if getattr(args, "plan", None) else None
    return directory, catalog, environ


def run(args: argparse.Namespace) -> int:
    result = check_config(*_inputs(args))
    for line in result.lines():
        print(line)
    return 0 if result.ok else 1

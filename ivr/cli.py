"""The ``ivr`` command. Each subcommand lives in its own module under :mod:`ivr.commands`.

A module there provides ``HELP`` (one line), ``register(parser)`` and ``run(args) -> int``.
Errors an operator can fix (bad config, port taken, missing secret) are printed as one
clear line each and exit 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ivr.config import ConfigError
from ivr.core.yamlsource import SourceError, SourceErrors

# name -> module; order is the order `ivr --help` lists them
COMMANDS = {
    "serve": "ivr.commands.serve",
    "reload": "ivr.commands.reload",
    "cluster": "ivr.commands.cluster",
    "testbed": "testbed.cli",
    "demo": "testbed.demo",
    "asterisk-conf": "ivr.commands.asterisk_conf",
    "prompts": "ivr.commands.prompts",
    "check": "ivr.commands.check",
    "schema": "ivr.commands.schema",
    "simulate": "ivr.commands.simulate",
    "tickets": "tickets.cli",
    "push": "tickets.push_cli",
    "recordings": "recording.cli",
    "agents": "queues.cli",
    "transfer": "transfer.cli",
    "supervise": "supervision.cli",
    "stats": "ivr.commands.stats",
    "elderly": "ivr.commands.elderly",
    "users": "ivr.commands.users",
}


class UsageError(Exception):
    """An operator error: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivr", description="12345 hotline IVR engine")
    parser.add_argument("--config", default=None, help="config directory (default: ./config or $IVR_CONFIG)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            # `ivr testbed` and `ivr demo` live in the top-level test bed package, which is not
            # installed with the engine: they work from a source checkout (`python -m ivr ...`).
            if e.name != module_name.split(".")[0]:
                raise
            p = sub.add_parser(name, help=f"(needs a source checkout) {module_name}")
            p.add_argument("rest", nargs=argparse.REMAINDER)
            p.set_defaults(_run=_needs_checkout)
            continue
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.register(p)
        p.set_defaults(_run=module.run)
    return parser


def _needs_checkout(args: argparse.Namespace) -> int:
    print(f"ivr {args.command}: needs a source checkout: run `python -m ivr {args.command}` from the repository",
          file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except (ConfigError, UsageError, SourceError, SourceErrors) as exc:
        for line in str(exc).splitlines():
            print(f"ivr {args.command}: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def config_dir(args: argparse.Namespace) -> str:
    import os

    return args.config or os.environ.get("IVR_CONFIG") or "config"


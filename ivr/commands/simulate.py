"""``ivr simulate NUMBER``: walk a number's flow with typed keys and no phone.

``--keys 1,0`` answers each input the flow asks for in turn (``-`` = silence, ``hangup`` =
the caller hangs up); ``--interactive`` asks on the terminal instead. Prints each prompt
(id and Mandarin text), each wait, the keys and the final route, with a virtual clock.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime

from ivr.cli import UsageError
from ivr.commands.check import add_prompts_option, load_flowset
from ivr.flows.simulator import Ask, script, simulate

HELP = "walk a number's call flow with scripted or typed keys, printing what the caller hears"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("number", help="the dialed number, e.g. 12345")
    parser.add_argument("--keys", default="", help="comma-separated inputs, e.g. 1,0 (- = silence, hangup)")
    parser.add_argument("--interactive", action="store_true", help="type each input at the terminal")
    parser.add_argument("--caller", default="13800000000", help="caller number (for branch conditions)")
    parser.add_argument("--at", default=None, help="local date and time of the call, e.g. 2026-10-01T10:00")
    add_prompts_option(parser)


def run(args: argparse.Namespace) -> int:
    at = _parse_at(args.at)
    flows = load_flowset(args)
    ask: Ask = _terminal if args.interactive else script(args.keys.split(",") if args.keys else [])
    asyncio.run(simulate(flows, args.number, ask, print, caller=args.caller, at=at))
    return 0


def _terminal(question: str) -> str | None:
    try:
        return input(question)
    except EOFError:
        return None


def _parse_at(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--at {text!r}: expected a date and time such as 2026-10-01T10:00") from None

"""``ivr tickets ACTION``: ticket stubs (工单) from the command line.

One function per action: ``register`` gives each its parser (``_register_<action>``) and binds
the function that runs it, so adding an action is one parser block and one function.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from ivr.cli import UsageError, config_dir
from ivr.config import load_config
from ivr.flows.calendar import load_calendar
from tickets.deadline import handling_deadline, provisional_years
from tickets.model import REQUEST_LABELS, RequestType

HELP = "ticket stubs (工单): handling deadlines"


def register(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    _register_deadline(actions)


def run(args: argparse.Namespace) -> int:
    return int(args.action_run(args))


def _register_deadline(actions: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    types = ", ".join(f"{label}/{kind.value}" for kind, label in REQUEST_LABELS.items())
    p = actions.add_parser(
        "deadline",
        help="print the handling deadline of a request received on DATE",
        description="Print the handling deadline of a request received on DATE: working days from "
        "tickets.deadlines (Chinese calendar with 调休), or hours in crisis mode.",
    )
    p.add_argument("date", metavar="DATE", help="receipt date (2026-09-30) or time (2026-09-30T14:05+08:00)")
    p.add_argument("--type", dest="request_type", metavar="TYPE", default=RequestType.CONSULT.value, help=f"request type: {types} (default: consult)")
    p.add_argument("--crisis", action=argparse.BooleanOptionalAction, default=None,
                   help="count crisis hours (tickets.crisis_hours) instead of working days (default: tickets.crisis)")
    p.set_defaults(action_run=deadline)


def deadline(args: argparse.Namespace) -> int:
    """The due date on stdout; a note on stderr when the holiday calendar is not official."""
    received = _parse_received(args.date)
    try:
        kind = RequestType.parse(args.request_type)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    settings = load_config(config_dir(args)).settings.tickets
    if args.crisis is not None:
        settings = settings.model_copy(update={"crisis": args.crisis})
    calendar = load_calendar()
    result = handling_deadline(received, kind.value, settings, calendar)
    print(result.due)
    if result.provisional:
        due = datetime.fromisoformat(result.due).date()
        for year in provisional_years(received.date(), due, calendar):
            print(f"note: {result.due} is provisional: {calendar.coverage_warning(year)}", file=sys.stderr)
    return 0


def _parse_received(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"bad date {text!r}: expected YYYY-MM-DD or an ISO time such as 2026-09-30T14:05+08:00") from None

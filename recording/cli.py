"""``ivr recordings ACTION``: the call recordings, for operations (docs/recording.md).

``list`` and ``show`` read the tickets (no caller numbers: none is needed to find a recording);
``verify`` reads every file and compares it with its ticket: a missing or altered file is named
and the exit code is 1, never reported as intact; ``purge`` runs retention now (the engine runs
it every hour), deleting expired recordings and saying so on their tickets. ``play-url`` prints
where a recording is played: its row on the console's ticket page (``web.base_url``); the console
still asks whoever opens it to sign in and give a reason, so the link itself grants nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ivr.cli import UsageError
from ivr.commands.common import SubParsers, load_settings, read_tickets, when
from ivr.config import Settings, require_caller_key, state_dir
from recording.rules import FAILED_WHY
from recording.store import state
from tickets.model import Recording, Ticket

if TYPE_CHECKING:
    from tickets.store import TicketStore

HELP = "call recordings (录音): list, show, verify files against their tickets, purge by retention"


def register(parser: argparse.ArgumentParser) -> None:
    actions: SubParsers = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = actions.add_parser("list", help="tickets with recordings, received in a time range")
    _range(p)
    p.set_defaults(action_run=_list)
    p = actions.add_parser("show", help="a ticket's recordings in full (file, length, size, SHA-256)")
    p.add_argument("ticket", help="ticket number, e.g. 20261206-12345-00017")
    p.set_defaults(action_run=_show)
    p = actions.add_parser("play-url", help="the console address of a recording's player (the ticket page; sign-in "
                           "and a reason are still asked there)")
    p.add_argument("ticket", help="ticket number, e.g. 20261206-12345-00017")
    p.add_argument("--index", type=int, default=1, help="which of the ticket's recordings (1-based; default 1)")
    p.set_defaults(action_run=_play_url)
    p = actions.add_parser("verify", help="read each file and compare it with its ticket; exit 1 if one is missing "
                           "or altered")
    p.add_argument("ticket", nargs="?", help="only this ticket's recordings")
    _range(p)
    p.set_defaults(action_run=_verify)
    p = actions.add_parser("purge", help="delete the recordings older than recording.retention_days now, saying so "
                           "on their tickets (the engine does this every hour)")
    p.set_defaults(action_run=_purge)


def run(args: argparse.Namespace) -> int:
    return int(args.action_run(args))


def _range(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", default="", help="received from (date or time; default: the last 7 days)")
    p.add_argument("--until", default="", help="received until (date or time; default: now)")


def _tickets(settings: Settings, args: argparse.Namespace) -> list[Ticket]:
    since = when(args.since, "--since", end_of_day=False).timestamp() if args.since else \
        datetime.now().timestamp() - 7 * 86_400
    until = when(args.until, "--until", end_of_day=True).timestamp() if args.until else float("inf")

    async def reading(store: "TicketStore") -> list[Ticket]:
        return [t for t in await store.received_between(since, until) if t.recordings]

    return read_tickets(settings, reading)


def _one(settings: Settings, number: str) -> Ticket:
    async def reading(store: "TicketStore") -> Ticket | None:
        return await store.by_number(number)

    ticket = read_tickets(settings, reading)
    if ticket is None:
        raise UsageError(f"no ticket {number}")
    return ticket


def _row(t: Ticket, r: Recording, status: str = "") -> str:
    kept = (f"deleted {r.deleted} ({r.deleted_why})" if r.deleted else f"FAILED: {r.failed}" if r.failed
            else f"{r.seconds:7.1f} s {r.size:>9} B")
    status = ", ".join(x for x in (status, _incomplete(r)) if x)
    return f"{t.number}  {t.received[:19]}  {r.mode:<6}  {kept}  {r.file}" + (f"  {status}" if status else "")


def _incomplete(r: Recording) -> str:
    """A kept file cut short (the disk filled during the call): it is intact, but not the whole talk."""
    return f"INCOMPLETE: {r.seconds:.1f} s of {r.expected:.1f} s talk" if r.incomplete and not r.deleted else ""


def _list(args: argparse.Namespace) -> int:
    tickets = _tickets(load_settings(args), args)
    for t in tickets:
        for r in t.recordings:
            print(_row(t, r))
    print(f"{sum(len(t.recordings) for t in tickets)} recording(s) on {len(tickets)} ticket(s)", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    t = _one(settings, args.ticket)
    if not t.recordings:
        print(f"ticket {t.number}: no recording (line {t.line}, {t.disposition or 'in progress'})")
        return 0
    for r in t.recordings:
        if r.failed:
            why = FAILED_WHY.get(r.failed, "")
            print(f"ticket {t.number}: recording FAILED ({r.mode}, {r.stored}): {r.failed}" + (f" ({why})" if why else ""))
            continue
        print(f"ticket {t.number}: {Path(settings.recording.dir) / r.file}")
        print(f"  mode {r.mode}, stored {r.stored}, {r.seconds:.1f} s of talk, {r.size} bytes, sha256 {r.sha256}")
        if _incomplete(r):
            print(f"  {_incomplete(r)} (the recordings disk filled during the call)")
        if r.deleted:
            print(f"  deleted {r.deleted} ({r.deleted_why})")
    return 0


def _play_url(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    t = _one(settings, args.ticket)
    if not 1 <= args.index <= len(t.recordings):
        raise UsageError(f"ticket {t.number} has {len(t.recordings)} recording(s), not a number {args.index}")
    rec = t.recordings[args.index - 1]
    if rec.deleted:
        print(f"ticket {t.number}: recording {args.index} was deleted {rec.deleted} ({rec.deleted_why})", file=sys.stderr)
        return 1
    print(f"{settings.web.url()}/tickets/{t.number}#recording-{args.index}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    tickets = [_one(settings, args.ticket)] if args.ticket else _tickets(settings, args)
    root, bad, checked = Path(settings.recording.dir), 0, 0
    for t in tickets:
        for r in t.recordings:
            status = state(r, root)
            checked += status not in ("deleted", "failed")  # failed: no file, the ticket says why
            if status in ("missing", "altered"):
                bad += 1
                print(_row(t, r, status.upper() + ": not the recording on the ticket"))
            else:
                print(_row(t, r, status))
    print(f"{checked} recording(s) checked, {bad} missing or altered", file=sys.stderr)
    return 1 if bad else 0


def _purge(args: argparse.Namespace) -> int:
    from recording.worker import retention
    from tickets.store import TicketStore

    settings = load_settings(args)

    async def main() -> list[Ticket]:
        store = TicketStore(settings.redis, state_dir() / "spool", f"cli-{os.getpid()}",
                            retention_days=settings.tickets.retention_days, caller_key=require_caller_key())
        try:
            return await retention(settings.recording, store, datetime.now().astimezone())
        finally:
            await store.close()  # the tickets' writes reach Redis (or stay journaled) before we exit

    changed = asyncio.run(main())
    for t in changed:
        for r in t.recordings:
            if r.deleted:
                print(_row(t, r))
    print(f"{len(changed)} ticket(s) had recordings deleted by retention "
          f"({settings.recording.retention_days:g} days)", file=sys.stderr)
    return 0

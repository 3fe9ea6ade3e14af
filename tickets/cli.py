"""``ivr tickets ACTION``: ticket stubs (工单) from the command line.

One function per action: ``register`` gives each its parser (``_register_<action>``) and binds
the function that runs it, so adding an action is one parser block and one function.

The reading actions (list, show, export) only read Redis; they never write a ticket. Caller
numbers are masked unless ``--show-caller`` is given with a ``--reason``; such a read is written
to the audit log (:mod:`tickets.audit`) first, and if that fails nothing unmasked is shown.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
from datetime import date, datetime, timedelta
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, ContextManager, TextIO

from ivr.cli import UsageError
from ivr.commands.common import SubParsers, load_settings, os_reader, read_tickets
from tickets.cli_text import details as _details, table as _table  # tests import _details from here
from ivr.config import audit_log_path
from ivr.core.calendar import load_calendar
from tickets import export
from tickets.audit import AuditError, unmasked_read, write_audit
from tickets.deadline import handling_deadline, provisional_years
from tickets.filters import Filters, parse_filters
from tickets.model import REQUEST_LABELS, Disposition, RequestType, Ticket
from tickets.workflow import overdue

if TYPE_CHECKING:
    from tickets.store import TicketStore  # imported when a command reads: `ivr --help` stays quick

HELP = "ticket stubs (工单): list, show, export; handling deadlines"

MAX_READ = 200_000  # tickets read for one list or export (about 50 days of a large city's calls)


def register(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    _register_list(actions)
    _register_show(actions)
    _register_export(actions)
    _register_deadline(actions)


def run(args: argparse.Namespace) -> int:
    try:
        return int(args.action_run(args))
    except BrokenPipeError:  # `ivr tickets list | head`: the reader has what it wanted
        _stdout_gone()
        return 0


def _stdout_gone() -> None:
    """Point stdout at /dev/null, so that nothing flushed later can fail on the closed pipe."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


# --- list ------------------------------------------------------------------------------------

def _register_list(actions: SubParsers) -> None:
    p = actions.add_parser(
        "list", help="tickets received in a time range, as a table",
        description="Tickets received since --since (default: today 00:00 local), oldest first, "
        "filtered by line, request type and disposition. Caller numbers are masked.",
    )
    _add_filters(p)
    p.add_argument("--overdue", action="store_true",
                   help="only open tickets past their deadline (超期); --since defaults to the retention then")
    _add_caller_options(p)
    p.set_defaults(action_run=list_tickets)


def list_tickets(args: argparse.Namespace) -> int:
    """A table on stdout, then one line saying how many tickets matched."""
    if args.overdue and args.since is None:  # a ticket is overdue days after it came in
        args.since = (date.today() - timedelta(days=load_settings(args).tickets.retention_days)).isoformat()
    filters, reason, shown, total = _select(args, overdue_only=args.overdue)
    _audit_if(reason, "list", filters.describe(), len(shown), len({t.caller for t in shown}))
    viewed = _viewed(shown, reason)
    if viewed:
        print(_table(viewed))
    cut = f" (the last {len(shown)} of {total})" if len(shown) < total else ""
    print(f"{_tickets(total)}{cut} {filters.summary()}")
    if any(t.deadline and t.deadline.provisional for t in viewed):
        print("* provisional deadline: that year's official holiday calendar is not out yet")
    return 0


# --- show ------------------------------------------------------------------------------------

def _register_show(actions: SubParsers) -> None:
    p = actions.add_parser(
        "show", help="one ticket in full: timeline, transfers, agents rung, satisfaction, deadline",
        description="One ticket by its number, as printed (20261201-12345-00017) or keyed (digits only).",
    )
    p.add_argument("number", metavar="NUMBER", help="ticket number: 20261201-12345-00017 or 20261201123450017")
    p.add_argument("--json", action="store_true", help="the ticket as JSON (caller masked unless --show-caller)")
    _add_caller_options(p)
    p.set_defaults(action_run=show)


def show(args: argparse.Namespace) -> int:
    """The ticket on stdout; exit 1 when no ticket has that number."""
    number = args.number.strip()
    if not re.fullmatch(r"[0-9]+(-[0-9]+)*", number):
        raise UsageError(f"bad ticket number {number!r}: expected 20261201-12345-00017 or its digits")
    reason = _unmask_reason(args)
    settings = load_settings(args)
    ticket = read_tickets(settings, lambda store: store.by_number(number))
    if ticket is None:
        print(f"ivr tickets: no ticket {number} (tickets are kept {settings.tickets.retention_days} days)",
              file=sys.stderr)
        return 1
    _audit_if(reason, "show", {"number": number}, 1, 1)
    view = ticket.view(unmasked=reason is not None)
    print(json.dumps(view, ensure_ascii=False, indent=2) if args.json else _details(Ticket.from_json(view)))
    return 0


# --- export ----------------------------------------------------------------------------------

def _register_export(actions: SubParsers) -> None:
    p = actions.add_parser(
        "export", help="tickets as CSV for a spreadsheet (filters as for list)",
        description="One CSV row per ticket (UTF-8 with a byte order mark, for Excel), columns as in "
        "tickets/export.py. Caller numbers are masked.",
    )
    p.add_argument("--csv", action="store_true", required=True, help="CSV (the one format so far)")
    p.add_argument("--output", metavar="FILE", default=None, help="write to FILE (created 0600) instead of stdout")
    _add_filters(p)
    _add_caller_options(p)
    p.set_defaults(action_run=export_csv)


def export_csv(args: argparse.Namespace) -> int:
    """CSV on stdout or in ``--output``, streamed as Redis is read; how many rows on stderr."""
    filters = _filters(args)
    reason = _unmask_reason(args)
    settings = load_settings(args)
    what = {**filters.describe(), "output": args.output or "-"}
    if args.output:
        def created() -> TextIO:  # only once the audit line (if any) is written
            try:
                fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
            return open(fd, "w", encoding=export.ENCODING, newline="")

        n = read_tickets(settings, lambda store: _export(store, filters, reason, what, created))
    else:
        sys.stdout.flush()
        out = io.TextIOWrapper(sys.stdout.buffer, encoding=export.ENCODING, newline="")
        try:
            n = read_tickets(settings, lambda store: _export(store, filters, reason, what, lambda: nullcontext(out)))
            out.flush()
        except BrokenPipeError:  # `| head`; handled here, before ``detach`` flushes into the closed pipe
            _stdout_gone()
            return 0
        finally:
            out.detach()  # sys.stdout keeps its buffer
    print(f"exported {_tickets(n)} {filters.summary()}"
          + (f" to {args.output}" if args.output else ""), file=sys.stderr)
    return 0


async def _export(store: "TicketStore", filters: Filters, reason: str | None, what: dict[str, Any],
                  sink: Callable[[], ContextManager[TextIO]]) -> int:
    """Write the CSV to ``sink()`` batch by batch (oldest first; ``--limit``: only the newest N,
    read newest first); an unmasked export is counted and audited before ``sink`` is opened.
    Rows written."""
    from tickets.reads import Selection, TicketReader

    reader, selection = TicketReader(store.redis), Selection(filters)
    if filters.limit:
        newest: list[Ticket] = []
        async for batch in reader.batches(selection, newest_first=True):
            newest += batch[:filters.limit - len(newest)]
            if len(newest) >= filters.limit:
                break
        chosen = newest[::-1]
        _audit_if(reason, "export", what, len(chosen), len({t.caller for t in chosen}))
        batches = _one_batch(chosen)
    else:
        if reason is not None:
            _audit_if(reason, "export", what, *await reader.count(selection))
        batches = reader.batches(selection, newest_first=False)
    written = 0

    async def viewed() -> AsyncIterator[list[Ticket]]:
        nonlocal written
        async for batch in batches:
            written += len(batch)
            yield _viewed(batch, reason)

    with sink() as out:
        async for chunk in export.csv_chunks(viewed()):
            out.write(chunk)
    return written


async def _one_batch(tickets: list[Ticket]) -> AsyncIterator[list[Ticket]]:
    yield tickets


# --- deadline --------------------------------------------------------------------------------

def _register_deadline(actions: SubParsers) -> None:
    types = ", ".join(f"{label}/{kind.value}" for kind, label in REQUEST_LABELS.items())
    p = actions.add_parser(
        "deadline",
        help="print the handling deadline of a request received on DATE",
        description="Print the handling deadline of a request received on DATE: working days from "
        "tickets.deadlines (Chinese calendar with 调休), or hours in crisis mode.",
    )
    p.add_argument("date", metavar="DATE", help="receipt date (2026-09-30) or time (2026-09-30T14:05+08:00)")
    p.add_argument("--type", dest="request_type", metavar="TYPE", default=RequestType.CONSULT.value,
                   help=f"request type: {types} (default: consult)")
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
    settings = load_settings(args).tickets
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


# --- shared by the reading actions -----------------------------------------------------------

def _add_filters(p: argparse.ArgumentParser) -> None:
    types = ", ".join(f"{label}/{kind.value}" for kind, label in REQUEST_LABELS.items())
    p.add_argument("--since", metavar="DATE|DATETIME", default=None,
                   help="received at or after (2026-12-01 = its 00:00 local; default: today 00:00)")
    p.add_argument("--until", metavar="DATE|DATETIME", default=None,
                   help="received before (2026-12-01 = up to the end of that day)")
    p.add_argument("--line", metavar="NUMBER", default=None, help="dialed line (12345, 12366, …)")
    p.add_argument("--type", dest="request_type", metavar="TYPE", default=None, help=f"request type: {types}")
    p.add_argument("--disposition", metavar="DISPOSITION", default=None,
                   help="how the call ended: " + ", ".join(d.value for d in Disposition))
    p.add_argument("--limit", metavar="N", default=None, help="only the last N matching tickets")


def _add_caller_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--show-caller", action="store_true",
                   help="caller numbers in full (needs --reason; written to the audit log)")
    p.add_argument("--reason", metavar="TEXT", default=None,
                   help="why the caller numbers are needed (audit log, with your user name)")


def _filters(args: argparse.Namespace) -> Filters:
    """The filters of the command line; UsageError (one line, the accepted values) if one is bad."""
    try:
        return parse_filters(args.since, args.until, args.line, args.request_type, args.disposition, args.limit)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _unmask_reason(args: argparse.Namespace) -> str | None:
    """The reason when caller numbers are to be shown in full; None: masked."""
    if not args.show_caller:
        if args.reason is not None:
            raise UsageError("--reason goes with --show-caller (caller numbers are masked without it)")
        return None
    if not (args.reason or "").strip():
        raise UsageError("--show-caller needs --reason TEXT: who is called back or which case, for the audit log")
    return str(args.reason).strip()


def _select(args: argparse.Namespace, *, overdue_only: bool = False) -> tuple[Filters, str | None, list[Ticket], int]:
    """What ``list`` and ``export`` show: (filters, unmask reason, the tickets, how many matched).
    Every argument is checked before Redis is asked."""
    filters = _filters(args)
    reason = _unmask_reason(args)
    settings = load_settings(args)
    matched = read_tickets(settings, lambda store: _matching(store, filters))
    if overdue_only:
        now = datetime.now().astimezone()
        matched = [t for t in matched if overdue(t, now)]
    return filters, reason, matched[-filters.limit:] if filters.limit else matched, len(matched)


def _tickets(n: int) -> str:
    return f"{n} ticket" + ("" if n == 1 else "s")


async def _matching(store: "TicketStore", filters: Filters) -> list[Ticket]:
    """Tickets of the time range that pass the filters, oldest first (at most :data:`MAX_READ`)."""
    from tickets.reads import Selection, TicketReader

    tickets: list[Ticket] = []
    async for batch in TicketReader(store.redis).batches(Selection(filters), newest_first=False):
        tickets += batch
        if len(tickets) >= MAX_READ:
            print(f"note: read the first {MAX_READ} tickets of the range only; narrow --since/--until", file=sys.stderr)
            return tickets[:MAX_READ]
    return tickets


def _audit_if(reason: str | None, action: str, what: dict[str, Any], tickets: int, callers: int) -> None:
    """With a reason, the audit line for what is about to be shown (``tickets``, ``callers``
    distinct), before any of it is printed; UsageError if the line cannot be written (then
    nothing unmasked is shown)."""
    if reason is None:
        return
    entry = unmasked_read(os_reader(), f"tickets {action}", what, tickets=tickets, callers=callers, reason=reason)
    try:
        write_audit(audit_log_path(), entry)
    except AuditError as exc:
        raise UsageError(f"{exc}; refusing to show caller numbers unaudited") from None


def _viewed(tickets: list[Ticket], reason: str | None) -> list[Ticket]:
    """The tickets as this reader may see them (:meth:`Ticket.view`)."""
    return [Ticket.from_json(t.view(unmasked=reason is not None)) for t in tickets]


def _parse_received(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"bad date {text!r}: expected YYYY-MM-DD or an ISO time such as 2026-09-30T14:05+08:00") from None

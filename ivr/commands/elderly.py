"""``ivr elderly ACTION``: the registered elderly list (适老化).

Callers on the list skip the menu and reach a seat first (docs/operations.md). Redis holds only
keyed digests of the numbers (``IVR_CALLER_KEY``), so nothing here can print a registered
number back: ``list`` shows how many there are and, per entry, an id, when, by whom and why it
was added; ``check`` answers for one number the admin already has. Every change is written to
the audit log (:mod:`tickets.audit`) before it is made; if that fails, nothing changes.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, TypeVar

from ivr.cli import UsageError, config_dir
from ivr.commands.common import SubParsers, one_line, os_reader, redis_where
from ivr.config import audit_log_path, load_config, require_caller_key
from queues.elderly import normalize_number, parse_numbers
from tickets.audit import AuditError, unmasked_read, write_audit

if TYPE_CHECKING:
    from ivr.store import ElderlyList

HELP = "registered elderly numbers (适老化): add, remove, list, import, check"

T = TypeVar("T")


def register(parser: argparse.ArgumentParser) -> None:
    actions: SubParsers = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = actions.add_parser("add", help="register numbers (skip the menu, a seat first)")
    p.add_argument("numbers", nargs="+", metavar="NUMBER")
    _add_reason(p)
    p.set_defaults(action_run=add)
    p = actions.add_parser("remove", help="unregister numbers, or entries by the id `list` shows")
    p.add_argument("numbers", nargs="*", metavar="NUMBER")
    p.add_argument("--id", dest="ids", action="append", default=[], metavar="ID",
                   help="an entry's id from `ivr elderly list` (for a number nobody has any more); repeatable")
    _add_reason(p)
    p.set_defaults(action_run=remove)
    p = actions.add_parser("list", help="how many are registered; per entry its id, when, by whom, why (no numbers)")
    p.set_defaults(action_run=list_entries)
    p = actions.add_parser("import", help="register every number of a file (one a line, # comments)")
    p.add_argument("file", metavar="FILE", type=Path)
    _add_reason(p)
    p.set_defaults(action_run=import_file)
    p = actions.add_parser("check", help="is this number registered? (exit 0 yes, 1 no)")
    p.add_argument("number", metavar="NUMBER")
    p.set_defaults(action_run=check)


def _add_reason(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reason", required=True, help="why (the registration form, the request); for the audit log")


def run(args: argparse.Namespace) -> int:
    return int(args.action_run(args))


def add(args: argparse.Namespace) -> int:
    numbers = _numbers(args.numbers)
    return _register(args, numbers, {"numbers": len(numbers)})


def import_file(args: argparse.Namespace) -> int:
    try:
        text = args.file.read_text(encoding="utf-8-sig")  # a spreadsheet's CSV export starts with a BOM
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    numbers = parse_numbers(text, str(args.file))  # SourceErrors: every bad line, file:line:col
    if not numbers:
        raise UsageError(f"{args.file}: no numbers in it")
    return _register(args, numbers, {"file": str(args.file), "numbers": len(numbers)}, command="elderly import")


def _register(args: argparse.Namespace, numbers: list[str], what: dict[str, Any], command: str = "elderly add") -> int:
    added_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    reader = os_reader()
    new = _with_list(args, lambda store: store.add(numbers, added=added_at, by=reader.sudo_user or reader.user,
                                                   reason=args.reason.strip()),
                     audit=(command, what, len(numbers)))
    print(f"{new} added, {len(numbers) - new} already registered")
    return 0


def remove(args: argparse.Namespace) -> int:
    if not args.numbers and not args.ids:
        raise UsageError("give the numbers to remove, or --id ID from `ivr elderly list`")
    numbers = _numbers(args.numbers)

    async def removing(store: "ElderlyList") -> int:
        try:
            by_id = await store.remove_ids(args.ids)
        except ValueError as exc:
            raise UsageError(f"{exc}; nothing removed") from None
        return len(by_id) + await store.remove(numbers)

    gone = _with_list(args, removing, audit=("elderly remove", {"numbers": len(numbers), "ids": list(args.ids)},
                                             len(numbers) + len(args.ids)))
    print(f"{gone} removed, {len(numbers) + len(args.ids) - gone} were not registered")
    return 0


def list_entries(args: argparse.Namespace) -> int:
    entries = _with_list(args, lambda store: store.entries())
    for e in entries:
        print(f"{e.id}  {e.added}  {e.by}  {e.reason}")
    print(f"{len(entries)} registered elderly number" + ("" if len(entries) == 1 else "s")
          + " (numbers are kept only as keyed digests: `ivr elderly check NUMBER` tells one)")
    return 0


def check(args: argparse.Namespace) -> int:
    number = _numbers([args.number])[0]
    entry = _with_list(args, lambda store: store.entry(number))
    if entry is None:
        print(f"{number}: not registered")
        return 1
    print(f"{number}: registered (id {entry.id}, added {entry.added} by {entry.by}: {entry.reason})")
    return 0


def _numbers(texts: list[str]) -> list[str]:
    try:
        return list(dict.fromkeys(normalize_number(t) for t in texts))
    except ValueError as exc:
        raise UsageError(f"{exc}; nothing changed") from None


Audit = tuple[str, dict[str, Any], int]  # (command, what, how many numbers) of a change


def _audit(change: Audit, reason: str) -> None:
    """The audit line, before the change; UsageError (and no change) if it cannot be written.
    It holds counts and ids, never a number."""
    if not reason.strip():
        raise UsageError("--reason must say why (the registration form, the request), for the audit log")
    command, what, callers = change
    entry = unmasked_read(os_reader(), command, what, tickets=0, callers=callers, reason=reason)
    try:
        write_audit(audit_log_path(), entry)
    except AuditError as exc:
        raise UsageError(f"{exc}; refusing to change the elderly list unaudited") from None


def _with_list(args: argparse.Namespace, action: Callable[["ElderlyList"], Awaitable[T]], *,
               audit: Audit | None = None) -> T:
    """Run ``action`` on the Redis list, a change audited first (once the config and the key
    are there); a Redis that does not answer is one line, exit 2."""
    from redis.exceptions import RedisError

    from ivr.store import ElderlyList

    settings = load_config(config_dir(args)).settings
    key = require_caller_key()
    if audit is not None:
        _audit(audit, args.reason)

    async def main() -> T:
        store = ElderlyList(settings.redis, key)
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except (RedisError, OSError) as exc:
        raise UsageError(f"Redis at {redis_where(settings.redis)} does not answer ({one_line(exc)})") from None


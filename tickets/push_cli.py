"""``ivr push dead list|show|replay|drop``: the dead letters of the webhook push (tickets.dead_letters).

``list`` and ``show`` only read. ``replay`` queues the event again for its endpoint under the
same event id (the letter leaves the list once delivered); ``drop`` removes it and needs a
``--reason``. Both are written to the audit log (with the OS user) before Redis is touched: if
the line cannot be written, nothing is changed. Letters hold no caller number.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Awaitable, Callable, TypeVar

from ivr.cli import UsageError
from ivr.commands.common import SubParsers, load_settings, one_line, os_reader, text_width
from ivr.config import Settings, audit_log_path
from tickets import dead_letters
from tickets.audit import AuditError, action, write_audit
from tickets.export import local_time

if TYPE_CHECKING:
    import redis.asyncio as aioredis  # imported when a command runs: `ivr --help` stays quick

HELP = "webhook push: dead letters (list, show, replay, drop)"
T = TypeVar("T")
COLUMNS = ("endpoint", "event id", "ticket", "type", "tries", "parked at", "last error")


def register(parser: argparse.ArgumentParser) -> None:
    kinds = parser.add_subparsers(dest="kind", metavar="WHAT", required=True)
    dead = kinds.add_parser("dead", help="events parked after the last try", description=__doc__)
    actions: SubParsers = dead.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = actions.add_parser("list", help="every dead letter: endpoint, event id, ticket, type, tries, last error, time")
    p.add_argument("--endpoint", metavar="NAME", default=None, help="only this endpoint's letters")
    p.set_defaults(action_run=list_letters)
    p = actions.add_parser("show", help="one dead letter in full (JSON)")
    _letter_arguments(p)
    p.set_defaults(action_run=show)
    p = actions.add_parser("replay", help="deliver it again, same event id; it leaves the list once delivered")
    _letter_arguments(p)
    p.set_defaults(action_run=replay)
    p = actions.add_parser("drop", help="remove it without delivering (needs --reason; audited)")
    _letter_arguments(p)
    p.add_argument("--reason", metavar="TEXT", required=True, help="why it is not delivered (audit log)")
    p.set_defaults(action_run=drop)


def _letter_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("endpoint", metavar="ENDPOINT", help="webhook name (tickets.webhooks)")
    p.add_argument("event_id", metavar="EVENT_ID", help="<linkedid>:<event>, as `list` shows it")


def run(args: argparse.Namespace) -> int:
    """Exit 1 when the letter asked for is not there (delivered, dropped, expired, or its event
    gone from the stream); 2 for what the operator typed (ivr.cli)."""
    try:
        return int(args.action_run(args))
    except (dead_letters.NoSuchLetter, dead_letters.EntryGone) as exc:
        print(f"ivr push: {exc.args[0]}", file=sys.stderr)
        return 1


def list_letters(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    endpoints = _endpoints(settings, args.endpoint)
    found = _redis(settings, lambda redis: dead_letters.letters(redis, endpoints))
    if found:
        rows = [COLUMNS, *((x.endpoint, x.id, x.number or "-", x.event, str(x.tries), local_time(x.at) or "-", x.error)
                           for x in found)]
        widths = [max(text_width(r[i]) for r in rows) for i in range(len(COLUMNS) - 1)]
        for r in rows:
            print("  ".join([*(c + " " * (w - text_width(c)) for c, w in zip(r, widths)), r[-1]]).rstrip())
    print(f"{len(found)} dead letter{'' if len(found) == 1 else 's'} ({', '.join(endpoints) or 'no endpoint configured'})")
    return 0


def show(args: argparse.Namespace) -> int:
    settings, endpoint, event_id = _letter(args)
    found = _redis(settings, lambda redis: dead_letters.letter(redis, endpoint, event_id))
    print(json.dumps(asdict(found), ensure_ascii=False, indent=2))
    return 0


def replay(args: argparse.Namespace) -> int:
    settings, endpoint, event_id = _letter(args)
    _audit("push dead replay", endpoint, event_id, "")
    entry = _redis(settings, lambda redis: dead_letters.replay(redis, endpoint, event_id))
    print(f"{event_id} queued again for {endpoint} (stream entry {entry}); it leaves the dead letters once delivered")
    return 0


def drop(args: argparse.Namespace) -> int:
    settings, endpoint, event_id = _letter(args)
    reason = args.reason.strip()
    if not reason:
        raise UsageError("drop needs --reason TEXT: why the department does not get this event (audit log)")
    _audit("push dead drop", endpoint, event_id, reason)
    removed = _redis(settings, lambda redis: dead_letters.drop(redis, endpoint, event_id))
    print(f"{event_id} dropped from {endpoint}'s dead letters ({removed} removed)")
    return 0


def _endpoints(settings: Settings, only: str | None) -> list[str]:
    configured = list(settings.tickets.webhooks)
    try:
        return [dead_letters.check_endpoint(only, configured)] if only is not None else configured
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _letter(args: argparse.Namespace) -> tuple[Settings, str, str]:
    """Settings, endpoint and event id, each checked before Redis is asked."""
    settings = load_settings(args)
    try:
        return settings, _endpoints(settings, args.endpoint)[0], dead_letters.check_event_id(args.event_id)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _audit(command: str, endpoint: str, event_id: str, reason: str) -> None:
    try:
        write_audit(audit_log_path(), action(os_reader(), command, {"endpoint": endpoint, "id": event_id}, reason=reason))
    except AuditError as exc:
        raise UsageError(f"{exc}; nothing changed") from None


def _redis(settings: Settings, work: Callable[["aioredis.Redis"], Awaitable[T]]) -> T:
    """Run ``work`` with a Redis client; Redis not answering or refusing is one line, exit 2."""
    from redis.exceptions import RedisError

    from ivr.store import redis_client, where

    async def main() -> T:
        redis = redis_client(settings.redis, 2, 5.0)
        try:
            return await work(redis)
        finally:
            await redis.aclose()

    try:
        return asyncio.run(main())
    except (RedisError, OSError) as exc:
        raise UsageError(f"Redis at {where(settings.redis)} does not answer or refused ({one_line(exc)})") from None



"""Helpers the reading commands share (``ivr tickets``, ``ivr stats``, ``ivr elderly``, ``ivr users``):
the settings of ``--config``, one read of the ticket store with Redis failures as one line, time
options, terminal widths, and who the OS user is for the audit log.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import unicodedata
from datetime import datetime
from typing import TYPE_CHECKING, Awaitable, Callable, TypeAlias, TypeVar

from ivr.cli import UsageError, config_dir
from ivr.config import Settings, load_config, state_dir
from ivr.store import where as redis_where
from tickets.audit import Reader
from tickets.filters import parse_when

if TYPE_CHECKING:
    from tickets.store import TicketStore  # imported when a command reads: `ivr --help` stays quick

T = TypeVar("T")
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def load_settings(args: argparse.Namespace) -> Settings:
    return load_config(config_dir(args)).settings


def read_tickets(settings: Settings, reading: Callable[["TicketStore"], Awaitable[T]]) -> T:
    """Run one read against the ticket store; a Redis that does not answer is one line, exit 2."""
    from redis.exceptions import ConnectionError as RedisConnectionError, RedisError, TimeoutError as RedisTimeout

    from tickets.store import TicketStore

    try:
        spool = state_dir() / "spool"
    except OSError as exc:
        raise UsageError(f"state directory: {exc}") from None

    async def main() -> T:
        # read only: a store writes nothing until a ticket is written, and this one never is
        store = TicketStore(settings.redis, spool, f"cli-{os.getpid()}", retention_days=settings.tickets.retention_days)
        try:
            return await reading(store)
        finally:
            await store.close()

    where = redis_where(settings.redis)
    try:
        return asyncio.run(main())
    except (RedisConnectionError, RedisTimeout, OSError) as exc:
        raise UsageError(f"Redis at {where} does not answer ({one_line(exc)}); no tickets read") from None
    except RedisError as exc:
        raise UsageError(f"Redis at {where} refused the read ({one_line(exc)}); no tickets read") from None


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()).rstrip(".") or type(exc).__name__


def when(text: str, option: str, *, end_of_day: bool) -> datetime:
    """A ``--since``/``--until`` value; UsageError (one line) if it is not a time."""
    try:
        return parse_when(text, option, end_of_day=end_of_day)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def text_width(text: str) -> int:
    """Columns on a terminal: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def os_reader() -> Reader:
    """The OS user, and the user behind ``sudo`` (who really asked when root reads)."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment and no passwd entry
        user = f"uid {os.getuid()}"
    return Reader(user=user, sudo_user=os.environ.get("SUDO_USER", ""))

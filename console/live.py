"""The live services of one console process: the wallboard (with its background follower of
Redis notices) and the desk, built once from the :class:`~console.context.Console`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from console.context import CONSOLE, Console
from console.desk import Desk, seat_control_client
from console.wallboard import Wallboard, WallboardSource
from ivr.config import require_caller_key, state_dir
from ivr.flows.calendar import load_calendar
from ivr.store import TicketStore


@dataclass
class Live:
    wallboard: Wallboard
    desk: Desk
    task: "asyncio.Task[None]"


def live(request: web.Request) -> Live:
    """The process's live services, started with the first page that needs them."""
    console = request.app[CONSOLE]
    found = console.extra.get("live")
    if found is None:
        found = console.extra["live"] = _start(console)
    assert isinstance(found, Live)
    return found


def _start(console: Console) -> Live:
    tickets = console.tickets or _reader(console)
    wallboard = Wallboard(WallboardSource(console.redis, tickets, console.settings))
    flows = console.flows
    calendar = (lambda: flows.current.calendar) if flows is not None else load_calendar
    desk = Desk(console.redis, tickets, console.settings, lambda: seat_control_client(console.settings()), calendar)
    return Live(wallboard, desk, asyncio.get_running_loop().create_task(wallboard.run()))


def _reader(console: Console) -> TicketStore:
    """A console without an engine writes amends through a ticket store of its own."""
    s = console.settings()
    return TicketStore(s.redis.url, state_dir() / "spool", name="console", retention_days=s.tickets.retention_days,
                       caller_key=require_caller_key())

"""The live services of one console process: the wallboard (with its background follower of
Redis notices) and the desk, built once from the :class:`~console.context.Console`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import AsyncIterator

from aiohttp import web

from console.context import CONSOLE, Console
from console.desk import Desk, seat_control_client
from console.notices import Notices
from console.streams import OpenStreams
from transfer.desk_client import DeskTransfers
from console.wallboard import Wallboard, WallboardSource
from ivr.config import caller_key, state_dir
from ivr.core.calendar import load_calendar
from queues.follower import deadline_on
from tickets.store import TicketStore


@dataclass
class Live:
    wallboard: Wallboard
    desk: Desk
    transfers: DeskTransfers
    streams: OpenStreams
    tasks: "list[asyncio.Task[None]]"
    own_tickets: TicketStore | None = None  # made here (closed with the app)


def live(request: web.Request) -> Live:
    """The process's live services (started with the app, :func:`start_with`)."""
    found = request.app[CONSOLE].extra.get("live")
    if not isinstance(found, Live):
        raise web.HTTPServiceUnavailable(text="实时服务尚未启动")
    return found


def start_with(app: web.Application) -> None:
    """Start the live services with the app; end every event stream at shutdown (before the
    server waits for its handlers), stop the background tasks at cleanup."""

    async def running(app: web.Application) -> AsyncIterator[None]:
        console = app[CONSOLE]
        started = console.extra["live"] = _start(console)
        yield
        for task in started.tasks:
            task.cancel()
        await asyncio.gather(*started.tasks, return_exceptions=True)
        started.transfers.close()
        if started.own_tickets is not None:
            await started.own_tickets.close()

    async def stop_streams(app: web.Application) -> None:
        found = app[CONSOLE].extra.get("live")
        if isinstance(found, Live):
            found.wallboard.notices.stopping.set()
            found.streams.end_all()

    app.cleanup_ctx.append(running)
    app.on_shutdown.append(stop_streams)


def _start(console: Console) -> Live:
    tickets = console.tickets if console.tickets is not None else _reader(console)
    notices = Notices(console.redis)
    wallboard = Wallboard(WallboardSource(console.redis, tickets, console.settings), notices)
    flows = console.flows
    calendar = (lambda: flows.current.calendar) if flows is not None else load_calendar
    desk = Desk(console.redis, notices, tickets, console.settings, lambda: seat_control_client(console.settings()),
                deadline_on(console.settings, calendar))
    transfers = DeskTransfers(console.settings, tickets, calendar)
    streams = OpenStreams(console.web.streams_per_user)
    notices.on_user_changed = streams.end
    loop = asyncio.get_running_loop()
    return Live(wallboard, desk, transfers, streams, [loop.create_task(notices.run()), loop.create_task(wallboard.run())],
                None if tickets is console.tickets else tickets)


def _reader(console: Console) -> TicketStore:
    """A console without an engine's ticket store reads and writes through one of its own
    (writing needs the caller key, as an engine's does)."""
    s = console.settings()
    return TicketStore(s.redis, state_dir() / "spool", name="console", retention_days=s.tickets.retention_days,
                       caller_key=caller_key())

"""The supervisor's wallboard page and its event stream (:mod:`console.wallboard`)."""

from __future__ import annotations

from aiohttp import web

from console.auth import current_user, roles
from console.live_hub import live, start_with
from console.pages import nav, render
from queues.agents import STATE_LABELS

routes = web.RouteTableDef()
nav("/wallboard", "监控大屏", "supervisor", "admin", order=10)
AGENT_COLUMNS = ("logged_in", "available", "talking", "paused", "wrapup", "ringing")
AGENT_LABELS = {"logged_in": "签入", **STATE_LABELS}


def setup(app: web.Application) -> None:
    """The live services (wallboard and desks) start and stop with the app."""
    start_with(app)


@routes.get("/wallboard")
@roles("supervisor", "admin")
async def wallboard(request: web.Request) -> web.Response:
    """The board as it is now (readable without a script); wallboard.js keeps it live."""
    snapshot = await live(request).wallboard.source.snapshot()
    return render(request, "wallboard.html", board=snapshot, agent_columns=AGENT_COLUMNS, agent_labels=AGENT_LABELS)


@routes.get("/wallboard/events")
@roles("supervisor", "admin")
async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the whole snapshot on connect, then after every change."""
    services = live(request)
    async with services.streams.opened(current_user(request).name) as ended:
        return await services.wallboard.stream(request, ended)


@routes.get("/wallboard.json")
@roles("supervisor", "admin")
async def snapshot(request: web.Request) -> web.Response:
    return web.json_response(await live(request).wallboard.source.snapshot())

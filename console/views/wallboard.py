"""The supervisor's wallboard page and its event stream (:mod:`console.wallboard`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast

from aiohttp import web

from console.auth import current_user, roles
from console.context import CONSOLE
from console.live_hub import live, start_with
from console.pages import nav, render
from console.wallboard import HELD, board_state
from ivr.config import Settings
from ivr.core.conftext import split_ip_port
from ivr.store import keyspace
from queues.agents import STATE_LABELS, Seat
from queues.sessions import LEADER_QUEUE, SESSION_REASON
from supervision.model import MESSAGES as SUPERVISE_MESSAGES, choices

routes = web.RouteTableDef()
nav("/wallboard", "监控大屏", "supervisor", "admin", order=10)
AGENT_COLUMNS = ("logged_in", "available", "talking", "paused", "wrapup", "ringing", "unreachable")
SEAT_LABELS = {**STATE_LABELS, HELD: SESSION_REASON}  # a held leader seat: 非本场次 (queues/sessions.py)
AGENT_LABELS = {"logged_in": "签入", **SEAT_LABELS}


def setup(app: web.Application) -> None:
    """The live services (wallboard and desks) start and stop with the app."""
    start_with(app)


@routes.get("/wallboard")
@roles("supervisor", "admin")
async def wallboard(request: web.Request) -> web.Response:
    """The board as it is now (readable without a script); wallboard.js keeps it live."""
    snapshot = await live(request).wallboard.source.snapshot()
    settings, user = request.app[CONSOLE].settings(), current_user(request)
    return render(request, "wallboard.html", board=snapshot, agent_columns=agent_columns(settings),
                  agent_labels=AGENT_LABELS, nodes=node_columns(settings),
                  seats=await _seats(request), can_supervise=bool(settings.supervision.supervisors), seat_labels=SEAT_LABELS,
                  supervise=choices(settings.supervision, user.name, user.role),
                  supervise_message=SUPERVISE_MESSAGES.get(request.query.get("supervise", ""), ""))


def agent_columns(settings: Settings) -> tuple[str, ...]:
    """The queue table's seat columns: with a leader queue, 非本场次 beside 暂停 (its held seats)."""
    if LEADER_QUEUE not in settings.queues:
        return AGENT_COLUMNS
    at = AGENT_COLUMNS.index("paused") + 1
    return (*AGENT_COLUMNS[:at], HELD, *AGENT_COLUMNS[at:])


def node_columns(settings: Settings) -> list[tuple[str, str]]:
    """(name, AMI host:port) of each node, when the cluster has several: the board names a waiting
    caller's and a talking seat's node by its AMI address (queues/waiting.py, the seats' ``node``).
    One node (or none configured): nothing, the board stays as it was."""
    nodes = settings.cluster.nodes if settings.cluster else {}
    # spelt as the engines spell their own AMI (``host:port``, ivr/service.py), IPv6 without brackets
    return [(name, "{}:{}".format(*split_ip_port(node.ami))) for name, node in nodes.items()] if len(nodes) > 1 else []


async def _seats(request: web.Request) -> list[dict[str, Any]]:
    """Each configured seat and its state now: the rows link to the seat's desk, and a supervisor
    joins a call from them (when supervision is configured)."""
    console = request.app[CONSOLE]
    raw = cast(dict[str, str], await console.redis.hgetall(keyspace.SEATS))
    now = datetime.now().timestamp()
    rows = []
    for name, agent in console.settings().agents.items():
        state = board_state(Seat.from_json(json.loads(raw[name])), now) if name in raw else "logged_out"
        rows.append({"agent": name, "name": agent.name, "state": state, "label": SEAT_LABELS.get(state, "未签入")})
    return rows


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

"""The 排队顺序 page (supervisors, admins): one day's order inversions across nodes per queue and
the seat collisions, as ``ivr stats`` counts them from the tickets (queues/order.py; docs/cluster.md
"Longest waiting caller across nodes"). Read when opened, not live: it walks the day's tickets."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from aiohttp import web

from console.auth import roles
from console.context import CONSOLE
from console.pages import nav, query_date, render, ticket_store
from queues.order_read import read_calls

routes = web.RouteTableDef()
nav("/stats/order", "排队顺序", "admin", "supervisor", order=47)


@routes.get("/stats/order")
@roles("admin", "supervisor")
async def order_page(request: web.Request) -> web.Response:
    console, store = request.app[CONSOLE], ticket_store(request)
    now = datetime.now().astimezone()
    day = query_date(request, "day", now.date())
    since = datetime.combine(day, time()).astimezone()
    until = min(now, datetime.combine(day + timedelta(days=1), time()).astimezone())
    settings = console.settings()
    nodes = list(settings.cluster.nodes) if settings.cluster is not None else []
    calls = await read_calls(store.redis, since, max(until, since), nodes)
    return render(request, "fairness.html", day=day.isoformat(), order=calls.report(nodes, since, max(until, since)))

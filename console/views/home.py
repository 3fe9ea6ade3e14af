"""The start page (what this role may open), the users list (admins) and the static files."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from console import metrics as prometheus
from console.auth import USER, current_user, public, roles
from console.context import CONSOLE
from console.pages import nav, render

STATIC = Path(__file__).resolve().parents[1] / "static"
routes = web.RouteTableDef()
nav("/users", "用户", "admin", order=90)


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    return render(request, "home.html")


@routes.get("/users")
@roles("admin")
async def users(request: web.Request) -> web.Response:
    return render(request, "users.html", users=await request.app[CONSOLE].users.all())


@routes.get("/whoami")
async def whoami(request: web.Request) -> web.Response:
    """The signed-in user as JSON (for pages' scripts and tests)."""
    user = current_user(request)
    return web.json_response({"user": user.name, "role": user.role, "agent": user.agent})


@routes.get("/static/{name}")
@public
async def static(request: web.Request) -> web.FileResponse:
    path = (STATIC / request.match_info["name"]).resolve()
    if path.parent != STATIC or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Cache-Control": "max-age=300"})


@routes.get("/favicon.ico")
@public
async def favicon(request: web.Request) -> web.FileResponse:
    """Browsers ask every site for it, signed in or not: an icon, not a 401 in every log."""
    return web.FileResponse(STATIC / "favicon.ico", headers={"Cache-Control": "max-age=86400",
                                                             "Content-Type": "image/x-icon"})


@routes.get("/metrics")
@public
async def metrics(request: web.Request) -> web.Response:
    """Prometheus' text format (console/metrics.py): counters and backlogs only, no personal data;
    for Prometheus with ``Authorization: Bearer $IVR_METRICS_TOKEN``, or a signed-in admin."""
    console = request.app[CONSOLE]
    if not prometheus.allowed(request.headers.get("Authorization", ""), request.get(USER)):
        raise web.HTTPUnauthorized(text="需要 Bearer 令牌（IVR_METRICS_TOKEN）或管理员登录",
                                   headers={"WWW-Authenticate": 'Bearer realm="ivr-metrics"'})
    body = await prometheus.render(console, console.engine)
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

"""The agent desk page (:mod:`console.desk`): an agent opens its own seat's desk only
(supervisors and admins may open any, :func:`console.auth.require_seat`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from console.auth import current_user, require_seat, roles
from console.context import CONSOLE
from console.desk import DeskError, departments
from console.live import live
from console.pages import nav, render
from tickets.model import REQUEST_LABELS

routes = web.RouteTableDef()
nav("/desk", "座席工作台", "agent", order=10)


def _own_seat(request: web.Request) -> str:
    """The seat in the path: an agent's own only (403 otherwise); supervisors and admins any."""
    agent = request.match_info["agent"]
    require_seat(request, agent)
    if agent not in request.app[CONSOLE].settings().agents:
        raise web.HTTPNotFound(text="没有这个座席")
    return agent


@routes.get("/desk")
@roles("agent")
async def own_desk(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther(f"/desk/{current_user(request).agent}")


@routes.get("/desk/{agent}")
async def desk(request: web.Request) -> web.Response:
    agent = _own_seat(request)
    settings = request.app[CONSOLE].settings()
    return render(request, "desk.html", agent=agent, request_types=[(k.value, v) for k, v in REQUEST_LABELS.items()],
                  departments=departments(settings), pause_reasons=settings.pause_reasons,
                  message=request.query.get("m", ""))


@routes.get("/desk/{agent}/events")
async def events(request: web.Request) -> web.StreamResponse:
    return await live(request).desk.stream(request, _own_seat(request))


@routes.get("/desk/{agent}/state")
async def state(request: web.Request) -> web.Response:
    return web.json_response(await live(request).desk.state(_own_seat(request)))


@routes.post("/desk/{agent}/seat")
async def seat(request: web.Request) -> web.Response:
    """签入 / 签出 / 暂停 (with a configured reason) / 恢复, as the softphone's feature codes."""
    agent, form = _own_seat(request), await request.post()
    action, reason = str(form.get("action", "")), str(form.get("reason", ""))
    console = request.app[CONSOLE]
    try:
        message = await live(request).desk.seat(agent, action, reason)
    except DeskError as exc:
        return _reply(request, agent, str(exc), ok=False)
    await console.audit(current_user(request), "desk seat", {"agent": agent, "action": action, "reason": reason})
    return _reply(request, agent, message)


@routes.post("/desk/{agent}/ticket")
async def ticket(request: web.Request) -> web.Response:
    """The agent sets the ticket's type, department and notes (on the ticket, journaled)."""
    agent, form = _own_seat(request), await request.post()
    fields = {k: str(form.get(k, "")) for k in ("linkedid", "request_type", "department", "notes")}
    try:
        saved = await live(request).desk.amend(agent, **fields)
    except DeskError as exc:
        return _reply(request, agent, str(exc), ok=False)
    await request.app[CONSOLE].audit(current_user(request), "desk ticket update", {
        "ticket": saved.number, "request_type": saved.request_type, "department": saved.department,
        "notes": len(saved.notes)})  # the notes' length only: the log is no copy of the case
    return _reply(request, agent, f"工单 {saved.number} 已保存", number=saved.number)


def _reply(request: web.Request, agent: str, message: str, *, ok: bool = True, **extra: Any) -> web.Response:
    """JSON for the page's script; a redirect back to the desk for a plain form."""
    if "application/json" in request.headers.get("Accept", ""):
        return web.json_response({"ok": ok, "message": message, **extra}, status=200 if ok else 400)
    from urllib.parse import quote

    raise web.HTTPSeeOther(f"/desk/{agent}?m={quote(message)}")

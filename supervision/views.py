"""The console's 监听 / 耳语 / 强插 (supervisors and admins only): a form on the wallboard's seat
rows and on a seat's desk posts here; the supervisor's chosen phone rings (supervision/ami.py).

Every attempt is in the audit log before anything is dialed, refusals included (who, which
seat, which mode, which phone); a supervisor naming another user's own phone is refused
(``supervision.model.check_phone_owner``; admins may); an agent's attempt is refused by role (403, audited by
console.auth). The reply is JSON for the pages' script, or a redirect with a fixed message code
for a plain form (never the request's own text)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from console.auth import current_user, roles
from console.context import CONSOLE
from supervision.ami import SupervisionError, request_of, supervise
from supervision.model import check_phone_owner

routes = web.RouteTableDef()


@routes.post("/supervise")
@roles("supervisor", "admin")
async def supervise_call(request: web.Request) -> web.Response:
    form = await request.post()
    fields = {k: str(form.get(k, ""))[:100] for k in ("agent", "mode", "phone")}
    console, user = request.app[CONSOLE], current_user(request)
    settings = console.settings()
    what = {"agent": fields["agent"], "mode": fields["mode"], "supervisor": fields["phone"]}
    try:
        checked = request_of(settings, fields["agent"], fields["mode"], fields["phone"])
        # a supervisor rings their own (or a shared) phone: a colleague's only an admin
        check_phone_owner(user.name, user.role, checked.supervisor, settings.supervision.supervisors)
    except SupervisionError as exc:
        await console.audit(user, "supervise", {**what, "error": str(exc)})
        return _reply(request, f"督导未发起：{exc}", form, ok=False)

    async def audit(line: dict[str, str]) -> None:  # before anything is dialed: no line, no call
        await console.audit(user, "supervise", line)

    try:
        result = await supervise(checked, settings, console.redis, audit)
    except SupervisionError as exc:
        await console.audit(user, "supervise", {**what, "error": str(exc)})
        return _reply(request, f"督导未发起：{exc}", form, ok=False)
    return _reply(request, f"{settings.supervision.supervisors[checked.supervisor].name} 的电话正在振铃，"
                  f"接听后即{checked.label}座席 {checked.agent} 的通话。", form, linkedid=result.linkedid)


def _reply(request: web.Request, message: str, form: Any, *, ok: bool = True, **extra: Any) -> web.Response:
    """JSON for a script; for a plain form, back to the page it came from (the wallboard, or the
    desk of a configured seat) with a fixed message code (supervision.model.MESSAGES)."""
    if "application/json" in request.headers.get("Accept", ""):
        return web.json_response({"ok": ok, "message": message, **extra}, status=200 if ok else 400)
    agent = str(form.get("agent", ""))
    back = f"/desk/{agent}" if form.get("back") == "desk" and agent in request.app[CONSOLE].settings().agents else "/wallboard"
    raise web.HTTPSeeOther(f"{back}?supervise={'ok' if ok else 'failed'}")

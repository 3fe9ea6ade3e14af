"""The console's 推送死信 page, for admins: the webhook push's dead letters (tickets.dead_letters)
with a replay and a drop form on each.

Same operations as ``ivr push dead``: replay queues the event again for its endpoint under the
same event id (the row goes once it is delivered); drop needs a reason. Each attempt, refusals
included, is in the audit log before Redis is touched (``push dead replay`` / ``push dead
drop``); the forms carry the CSRF token as every form does (console.auth); other roles get 403
(audited by console.auth). Endpoint and event id are checked against the configured endpoints
and the event id's shape where they enter; the page after a form shows a fixed message code."""

from __future__ import annotations

from aiohttp import web

from console.auth import current_user, roles
from console.context import CONSOLE
from console.csrf import CSRF_FIELD
from console.pages import error_page, nav, render, ticket_store
from tickets import dead_letters
from tickets.export import local_time

routes = web.RouteTableDef()
nav("/push/dead", "推送死信", "admin", order=85)
MESSAGES = {"replayed": "已重新排队投递；投递成功后该条从列表中移除。", "dropped": "已删除该死信。"}
EVENTS = {"opened": "受理", "closed": "结束", "rated": "满意度评价", "updated": "更新"}  # tickets.push.EVENT_KINDS
REASON_CHARS = 200
FIELDS = {"replay": {CSRF_FIELD, "endpoint", "id"}, "drop": {CSRF_FIELD, "endpoint", "id", "reason"}}


def _endpoints(request: web.Request) -> list[str]:
    return list(request.app[CONSOLE].settings().tickets.webhooks)


@routes.get("/push/dead")
@roles("admin")
async def dead_page(request: web.Request) -> web.Response:
    found = await dead_letters.letters(ticket_store(request).redis, _endpoints(request))
    return render(request, "push_dead.html", letters=found, endpoints=_endpoints(request), time=local_time, events=EVENTS,
                  message=MESSAGES.get(request.query.get("done", ""), ""))


@routes.post(r"/push/dead/{operation:(replay|drop)}")
@roles("admin")
async def dead_operation(request: web.Request) -> web.Response:
    console, user, redis = request.app[CONSOLE], current_user(request), ticket_store(request).redis
    operation, form = request.match_info["operation"], await request.post()
    command = f"push dead {operation}"
    fields = {str(k): str(v) for k, v in form.items()}
    try:
        if len(fields) != len(form) or set(fields) - FIELDS[operation]:
            raise ValueError("表单字段重复或含未知字段")
        endpoint = dead_letters.check_endpoint(fields.get("endpoint", ""), _endpoints(request))
        event_id = dead_letters.check_event_id(fields.get("id", ""))
        reason = fields.get("reason", "").strip()
        if operation == "drop" and not reason:
            raise ValueError("删除死信须填写原因")
        if len(reason) > REASON_CHARS:
            raise ValueError(f"原因最长 {REASON_CHARS} 字")
    except ValueError as exc:
        await console.audit(user, command, {"error": str(exc)})
        raise error_page(request, web.HTTPBadRequest, "未执行", str(exc)) from None
    what = {"endpoint": endpoint, "id": event_id}
    await console.audit(user, command, what, reason=reason)  # first: if it cannot be written, nothing changes
    try:
        if operation == "replay":
            await dead_letters.replay(redis, endpoint, event_id)
        else:
            await dead_letters.drop(redis, endpoint, event_id)
    except dead_letters.NoSuchLetter:
        raise error_page(request, web.HTTPNotFound, "未找到", f"{endpoint} 没有死信 {event_id}（可能已投递或已删除）。") from None
    except dead_letters.EntryGone:
        raise error_page(request, web.HTTPGone, "无法重放", f"事件 {event_id} 已超过保存期限，不在事件流中。") from None
    raise web.HTTPSeeOther("/push/dead?done=" + ("replayed" if operation == "replay" else "dropped"))

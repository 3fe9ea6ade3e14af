"""The agent desk page (:mod:`console.desk`): an agent opens its own seat's desk only
(supervisors and admins may open any, :func:`console.auth.require_seat`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from console.auth import current_user, forbidden, require_seat, roles
from console.web_phone import CONNECT_SRC, NoWebPhone, PhoneAuthError, connect_src, ice_config, issue_account, web_phone_url
from console.context import CONSOLE
from console.desk import DeskError, departments
from console.live_hub import live
from console.pages import nav, render
from transfer.desk_client import EMERGENCY_LABELS
from ivr.config import Settings
from transfer.ami import TransferError, TransferResult
from tickets.model import REQUEST_LABELS
from supervision.model import MESSAGES as SUPERVISE_MESSAGES, choices
from transfer.control import resolve, targets

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
    agent, user = _own_seat(request), current_user(request)
    settings = request.app[CONSOLE].settings()
    request[CONNECT_SRC] = connect_src(settings, agent)
    return render(request, "desk.html", agent=agent, web_phone=web_phone_url(settings, agent) is not None,
                  request_types=[(k.value, v) for k, v in REQUEST_LABELS.items()],
                  departments=departments(settings), pause_reasons=settings.pause_reasons,
                  transfer_groups=_transfer_groups(settings), supervise=choices(settings.supervision, user.name, user.role),
                  message=MESSAGES.get(request.query.get("m", ""), "") or SUPERVISE_MESSAGES.get(request.query.get("supervise", ""), ""))


def _transfer_groups(settings: Settings) -> list[tuple[str, list[tuple[str, str]]]]:
    """The desk's transfer targets (transfer.control.targets), grouped as the select shows them."""
    groups: dict[str, list[tuple[str, str]]] = {"subcenter": [], "emergency": [], "platform": []}
    for key, t in sorted(targets(settings).items()):
        label = EMERGENCY_LABELS.get(key, f"{key} {t.title}") if t.kind == "emergency" else \
            (f"{t.title}（{key}）" if t.title != key else key)
        groups[t.kind].append((key, label))
    titles = {"subcenter": "分中心", "emergency": "应急联动", "platform": "其他平台"}
    return [(titles[kind], items) for kind, items in groups.items() if items]


@routes.post("/desk/{agent}/phone")
async def phone(request: web.Request) -> web.Response:
    """The seat's web phone account, for the page's script: to the agent signed in for this seat
    only (a supervisor opening the desk watches it, and gets no one's password)."""
    agent, user = _own_seat(request), current_user(request)
    if user.role != "agent":
        raise forbidden(request, "网页话机账号只发给本座席签入的座席员。")
    try:
        ice = ice_config(request.app[CONSOLE].settings(), agent)  # TURN credentials of this sign-in
        issued = await issue_account(request.app[CONSOLE].settings(), agent)
    except NoWebPhone as exc:
        return web.json_response({"ok": False, "message": str(exc)}, status=404)
    except PhoneAuthError as exc:
        await request.app[CONSOLE].audit(user, "desk phone account", {"agent": agent}, reason=f"failed: {exc}")
        return web.json_response({"ok": False, "message": "网页话机账号发放失败，请稍后刷新页面重试。"}, status=503)
    await request.app[CONSOLE].audit(user, "desk phone account", {"agent": agent, "password": "new for this sign-in"})
    return web.json_response({"ok": True, **issued.to_json(), "ice": ice})


@routes.get("/desk/{agent}/events")
async def events(request: web.Request) -> web.StreamResponse:
    agent, services = _own_seat(request), live(request)
    async with services.streams.opened(current_user(request).name) as ended:
        return await services.desk.stream(request, agent, ended)


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
        return _reply(request, agent, str(exc), "seat", ok=False, detail=exc.detail)
    await console.audit(current_user(request), "desk seat", {"agent": agent, "action": action, "reason": reason})
    return _reply(request, agent, message, "seat")


@routes.post("/desk/{agent}/ticket")
async def ticket(request: web.Request) -> web.Response:
    """The agent sets the ticket's type, department and notes (on the ticket, journaled)."""
    agent, form = _own_seat(request), await request.post()
    fields = {k: str(form.get(k, "")) for k in ("linkedid", "request_type", "department", "notes")}
    try:
        saved = await live(request).desk.amend(agent, **fields)
    except DeskError as exc:
        return _reply(request, agent, str(exc), "ticket", ok=False, detail=exc.detail)
    await request.app[CONSOLE].audit(current_user(request), "desk ticket update", {
        "ticket": saved.number, "request_type": saved.request_type, "department": saved.department,
        "notes": len(saved.notes)})  # the notes' length only: the log is no copy of the case
    return _reply(request, agent, f"工单 {saved.number} 已保存", "ticket", number=saved.number)


@routes.post("/desk/{agent}/transfer")
async def transfer(request: web.Request) -> web.Response:
    """转接 the call the seat is talking on (transfer.ami: blind from the agent, attended from the
    web phone's panel, or 三方通话 with an emergency line); the outcome (answered or not) lands on the ticket."""
    agent, form = _own_seat(request), await request.post()
    target, three_party = str(form.get("target", "")), form.get("three_party") == "1"
    attended = form.get("attended") == "1"  # the web phone's 咨询转接
    console = request.app[CONSOLE]
    what: dict[str, Any] = {"agent": agent, "target": target, "three_party": three_party, "attended": attended}
    try:
        if three_party and resolve(console.settings(), target).kind != "emergency":
            raise TransferError("a three-party call is for the emergency lines (110/119/120/122) only")
        result = await live(request).transfers.transfer(agent, target, three_party=three_party, attended=attended)
    except TransferError as exc:
        await console.audit(current_user(request), "desk transfer", {**what, "error": str(exc)})
        refused = DeskError.because("转接失败", exc)
        return _reply(request, agent, str(refused), "transfer", ok=False, detail=refused.detail)
    await console.audit(current_user(request), "desk transfer", {**what, **result.to_json()})
    return _reply(request, agent, _done(result), "transfer", number=result.ticket, linkedid=result.linkedid)


def _done(r: TransferResult) -> str:
    """What the agent is told: Asterisk took the move; whether the target answers is on the ticket."""
    ticket = f"工单 {r.ticket}" if r.ticket else "工单"
    if r.three_party:
        return f"已发起三方通话：主叫、座席与 {r.target} 同时通话，接通结果将记入{ticket}。"
    if r.method == "attended":
        return f"正在咨询 {r.target}：市民听等待音乐；挂断即完成转接，对方未接听则回到市民。结果将记入{ticket}。"
    return f"已转接至 {r.target}，接通结果将记入{ticket}。"


# what a plain form (no script) is told back on the desk: fixed texts by code, never the
# request's own text (``/desk/…?m=`` is anyone's to write into a link)
MESSAGES = {"seat": "座席状态已更新。", "ticket": "工单已保存。", "transfer": "转接已发起，接通结果将记入工单。",
            "failed": "操作未完成，请重试（启用脚本后可看到原因）。"}


def _reply(request: web.Request, agent: str, message: str, kind: str, *, ok: bool = True,
           **extra: Any) -> web.Response:
    """JSON for the page's script (the whole message); a redirect back to the desk with the
    message's code (:data:`MESSAGES`) for a plain form."""
    if "application/json" in request.headers.get("Accept", ""):
        return web.json_response({"ok": ok, "message": message, **extra}, status=200 if ok else 400)
    raise web.HTTPSeeOther(f"/desk/{agent}?m={kind if ok else 'failed'}")

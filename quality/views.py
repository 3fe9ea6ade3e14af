"""The console's quality inspection (质检): the panel on the ticket page (scores for everyone who
may open the ticket, the scoring form for supervisors and admins on a recorded call), the form's
POST, and the 质检 page under stats (averages per agent and queue, the day's sample).

A form is checked whole before anything is stored (quality.model.check_scores); every attempt,
refusals included, is in the audit log (``quality score``), a score before it is written; an
agent's attempt is refused by role (403, audited by console.auth). The page that follows a form
shows a fixed message code, never the request's own text."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from console.auth import current_user, roles
from console.context import CONSOLE
from console.csrf import CSRF_FIELD
from console.pages import error_page, posted_ticket, extend, nav, query_date, render, ticket_store
from quality.model import QualityError, QualitySettings, check_scores, recorded
from quality.read import day_bounds, read_calls
from quality.sample import sample
from quality.stats import DEFAULT_DAYS, by_agent, by_queue
from quality.store import NotStored, TicketGone, add_inspection
from tickets.export import local_time
from tickets.model import Ticket

routes = web.RouteTableDef()
nav("/stats/quality", "质检", "admin", "supervisor", order=48)
SCORE_PREFIX = "score-"  # the form's field of rubric item ``greeting`` is ``score-greeting``
MESSAGES = {"saved": "质检评分已保存。"}
LONGEST = 92  # days a page may ask for: it reads every ticket of the range (a batch at a time, on the engine's loop)


def _rubric(request: web.Request) -> QualitySettings:
    return request.app[CONSOLE].settings().quality


def ticket_panel(request: web.Request, context: dict[str, Any]) -> dict[str, Any]:
    """What ``quality_panel.html`` shows on a ticket's page (console.pages.extend)."""
    ticket: Ticket = context["t"]
    rubric, user = _rubric(request), current_user(request)
    labels = {name: item.label for name, item in rubric.items.items()}
    inspections = [{"by": q.by, "at": q.at, "total": q.total, "comment": q.comment,
                    "points": [(labels.get(name, name), points) for name, points in q.scores.items()],
                    "passed": q.total >= rubric.pass_mark} for q in reversed(ticket.quality)]
    return {"quality": {
        "rubric": [(name, item.label, item.points) for name, item in rubric.items.items()], "total": rubric.total,
        "pass_mark": rubric.pass_mark, "recorded": recorded(ticket), "inspections": inspections,
        "may_score": user.role in ("admin", "supervisor") and bool(rubric.items),
        "message": MESSAGES.get(request.query.get("quality", ""), ""), "prefix": SCORE_PREFIX}}


extend("ticket.html", ticket_panel)


@routes.post(r"/tickets/{number:[0-9-]+}/quality")
@roles("supervisor", "admin")
async def score_ticket(request: web.Request) -> web.Response:
    console, user, store = request.app[CONSOLE], current_user(request), ticket_store(request)
    ticket, form = await posted_ticket(request)
    rubric = _rubric(request)
    try:
        if not recorded(ticket):
            raise QualityError("该工单没有可用的录音（未录音或已按保存期限删除），不能质检评分。")
        fields = {str(k): str(v) for k, v in form.items()}
        if len(fields) != len(form):
            raise QualityError("表单字段重复")
        stray = sorted(k for k in fields if k not in (CSRF_FIELD, "comment") and not k.startswith(SCORE_PREFIX))
        if stray:
            raise QualityError(f"表单含未知字段：{stray[0][:40]!r}")
        scored = check_scores(rubric, {k.removeprefix(SCORE_PREFIX): v for k, v in fields.items()
                                       if k.startswith(SCORE_PREFIX)}, fields.get("comment", ""))
    except QualityError as exc:
        await console.audit(user, "quality score", {"number": ticket.number, "error": str(exc)})
        raise error_page(request, web.HTTPBadRequest, "评分未保存", str(exc)) from None
    # the audit line first: if it cannot be written, nothing is stored
    await console.audit(user, "quality score", {"number": ticket.number, "total": scored.total, "scores": scored.scores,
                                                "comment_chars": len(scored.comment)})
    try:
        await add_inspection(store, ticket.linkedid, scored, rubric, f"{user.name}@console")
    except TicketGone:
        raise error_page(request, web.HTTPNotFound, "未找到", f"工单 {ticket.number} 已不存在。") from None
    except NotStored:
        await console.audit(user, "quality score", {"number": ticket.number, "error": "not stored"})
        raise error_page(request, web.HTTPServiceUnavailable, "评分未保存", "工单库未接受此次写入，请稍后重试。") from None
    raise web.HTTPSeeOther(f"/tickets/{ticket.number}?quality=saved")


@routes.get("/stats/quality")
@roles("supervisor", "admin")
async def quality_page(request: web.Request) -> web.Response:
    redis = ticket_store(request).redis
    today = datetime.now().astimezone().date()
    first = query_date(request, "from", today - timedelta(days=DEFAULT_DAYS - 1))
    last = query_date(request, "to", today)
    day = query_date(request, "day", today)
    if last < first:
        raise error_page(request, web.HTTPBadRequest, "日期无效", "结束日期早于开始日期。")
    if (last - first).days >= LONGEST:
        raise error_page(request, web.HTTPBadRequest, "时段过长", f"时段最长 {LONGEST} 天（更长的时段请用 ivr stats quality）。")
    rubric = _rubric(request)
    calls = await read_calls(redis, day_bounds(first)[0], day_bounds(last)[1])
    sampled = sample(await read_calls(redis, *day_bounds(day)), day, rubric.sample_per_agent_per_day)
    return render(request, "quality.html", first=first.isoformat(), last=last.isoformat(), day=day.isoformat(),
                  rubric=[(name, item.label, item.points) for name, item in rubric.items.items()],
                  pass_mark=rubric.pass_mark, total=rubric.total, agents=by_agent(calls, rubric),
                  queues=by_queue(calls, rubric), sample=sampled, per_day=rubric.sample_per_agent_per_day,
                  time=local_time)

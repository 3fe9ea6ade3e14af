"""Tickets: search and filter, one ticket with its call's stages, CSV export; callers masked.

Admins and supervisors see every ticket; an agent sees only the tickets its seat answered (a
``seat`` other than its own is refused). A caller number in full needs an explicit action with
a reason, by an admin or supervisor; that read is written to the audit log before it is shown.
"""

from __future__ import annotations

import io
from typing import Any

from aiohttp import web

from console.auth import current_user, forbidden, require_seat, roles
from console.context import CONSOLE, reader
from console.pages import error_page, nav, render
from console.users import User
from queues.callback import leg_time
from tickets import export
from tickets.audit import AuditError, check_reason, unmasked_read
from tickets.filters import Filters, parse_filters
from tickets.model import DISPOSITION_LABELS, REQUEST_LABELS, Ticket
from tickets.timeline import call_steps

routes = web.RouteTableDef()
nav("/tickets", "工单", "admin", "supervisor", "agent", order=30)
MAX_READ = 50_000  # tickets read for one search
SHOWN = 200  # rows on one page (the export has them all)
FILTER_FIELDS = ("since", "until", "line", "type", "disposition", "seat")


def _store(request: web.Request) -> Any:
    store = request.app[CONSOLE].tickets
    if store is None:
        raise error_page(request, web.HTTPServiceUnavailable, "不可用", "此控制台未连接工单库。")
    return store


def _filters(request: web.Request, values: Any) -> tuple[Filters, str | None]:
    """The filters typed in the form, and the seat they are limited to (an agent: always its own)."""
    user = current_user(request)
    seat = str(values.get("seat", "")).strip() or None
    if seat:
        require_seat(request, seat)
    if user.role == "agent":
        seat = user.agent
    try:
        since, until, line, kind, disposition = (str(values.get(f, "")) or None for f in FILTER_FIELDS[:5])
        return parse_filters(since, until, line, kind, disposition, None, option=""), seat
    except ValueError as exc:
        raise error_page(request, web.HTTPBadRequest, "筛选条件有误", str(exc)) from None


async def _matching(request: web.Request, filters: Filters, seat: str | None) -> list[Ticket]:
    """Tickets of the range passing the filters, newest first."""
    until = filters.until.timestamp() if filters.until else float("inf")
    found = await _store(request).received_between(filters.since.timestamp(), until, limit=MAX_READ)
    return [t for t in reversed(found) if filters.matches(t) and (seat is None or t.agent == seat)]


def _masked(tickets: list[Ticket], unmasked: bool = False) -> list[Ticket]:
    return [Ticket.from_json(t.view(unmasked=unmasked)) for t in tickets]


@routes.get("/tickets")
async def ticket_list(request: web.Request) -> web.Response:
    filters, seat = _filters(request, request.query)
    found = await _matching(request, filters, seat)
    return render(request, "tickets.html", tickets=_masked(found[:SHOWN]), total=len(found), shown=SHOWN,
                  query={f: request.query.get(f, "") for f in FILTER_FIELDS}, seat=seat, labels=_labels(),
                  export_query=request.query_string, since=f"{filters.since:%Y-%m-%d %H:%M}")


@routes.get("/tickets/export.csv")
async def ticket_export(request: web.Request) -> web.Response:
    filters, seat = _filters(request, request.query)
    return _csv(_masked(await _matching(request, filters, seat)))


@routes.post("/tickets/export.csv")
@roles("admin", "supervisor")
async def ticket_export_unmasked(request: web.Request) -> web.Response:
    """Callers in full: the reason and the filters are in the audit log before the file is made."""
    form = await request.post()
    filters, seat = _filters(request, form)
    found = await _matching(request, filters, seat)
    await _audit_unmasked(request, "tickets export", {**filters.describe(), "seat": seat}, found, form.get("reason"))
    return _csv(_masked(found, unmasked=True))


def _csv(tickets: list[Ticket]) -> web.Response:
    out = io.StringIO()
    export.write_csv(out, tickets)
    return web.Response(body=out.getvalue().encode(export.ENCODING), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": 'attachment; filename="tickets.csv"'})


async def _ticket(request: web.Request) -> Ticket:
    ticket = await _store(request).by_number(request.match_info["number"])
    if ticket is None:
        raise error_page(request, web.HTTPNotFound, "未找到", f"没有工单 {request.match_info['number']}。")
    user = current_user(request)
    if user.role == "agent" and ticket.agent != user.agent:
        raise forbidden(request, "座席只能查看自己接听的工单。")
    return ticket


@routes.get(r"/tickets/{number:[0-9-]+}")
async def ticket_detail(request: web.Request) -> web.Response:
    return _detail(request, await _ticket(request), unmasked=False)


@routes.post(r"/tickets/{number:[0-9-]+}/unmask")
@roles("admin", "supervisor")
async def ticket_unmask(request: web.Request) -> web.Response:
    ticket = await _ticket(request)
    await _audit_unmasked(request, "tickets show", {"number": ticket.number}, [ticket], (await request.post()).get("reason"))
    return _detail(request, ticket, unmasked=True)


def _detail(request: web.Request, ticket: Ticket, *, unmasked: bool) -> web.Response:
    shown = _masked([ticket], unmasked)[0]
    return render(request, "ticket.html", t=shown, steps=call_steps(shown), unmasked=unmasked, labels=_labels(),
                  can_unmask=current_user(request).role in ("admin", "supervisor"),
                  deadline=export.deadline_due(shown.deadline),
                  transfers=[export.transfer_text(x) for x in shown.transfers],
                  legs=[{**leg, "at": leg_time(leg.get("at"))} for leg in (shown.callback or {}).get("attempts") or []])


async def _audit_unmasked(request: web.Request, command: str, what: dict[str, Any], shown: list[Ticket],
                          reason: Any) -> None:
    """The audit line first; without a reason (or if it cannot be written) nothing unmasked is shown."""
    user: User = current_user(request)
    try:
        check_reason(str(reason or ""))
    except ValueError:
        raise error_page(request, web.HTTPBadRequest, "需要理由", "查看完整号码必须填写理由（回访哪位市民、哪个案件）。") from None
    entry = unmasked_read(reader(user), f"console {command}", what, tickets=len(shown),
                          callers=len({t.caller for t in shown}), reason=str(reason))
    try:
        await request.app[CONSOLE].write_audit(entry)
    except AuditError as exc:
        raise error_page(request, web.HTTPServiceUnavailable, "审计日志不可写", f"{exc}；不显示完整号码。") from None


def _labels() -> dict[str, Any]:
    """What the templates show for values: choices of the filters, Mandarin labels, local times."""
    return {"types": [(k.value, v) for k, v in REQUEST_LABELS.items()],
            "dispositions": [(k.value, v) for k, v in DISPOSITION_LABELS.items()],
            "type": export.type_label, "disposition": export.disposition_label, "time": export.local_time}

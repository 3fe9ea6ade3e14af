"""Tickets: search and filter, one ticket with its call's stages, CSV export; callers masked.

Admins and supervisors see every ticket; an agent sees only the tickets its seat answered (a
``seat`` other than its own is refused). A caller number in full needs an explicit action with
a reason, by an admin or supervisor; that read is written to the audit log before it is shown.
"""

from __future__ import annotations

import asyncio
import codecs
import re
from datetime import datetime
from typing import Any, AsyncIterator, Callable, Iterable
from urllib.parse import urlencode

from aiohttp import web

from console.auth import current_user, forbidden, require_seat, roles
from console.context import CONSOLE, reader
from console.pages import error_page, nav, render, ticket_store
from console.users import User
from ivr.core.strict import NAME
from tickets.reads import PARSE_SLICE, Selection, TicketReader
from queues.callback import leg_time
from recording.expect import seats_of
from recording.rules import failed_label, incomplete_label
from tickets import export
from tickets.audit import AuditError, check_reason, unmasked_read
from tickets.filters import parse_filters
from tickets.model import DISPOSITION_LABELS, REQUEST_LABELS, Ticket
from tickets.timeline import call_steps
from tickets.workflow import STATUS_LABELS, overdue

routes = web.RouteTableDef()
nav("/tickets", "工单", "admin", "supervisor", "agent", order=30)
SHOWN = 200  # rows on one page (the export has them all, streamed)
FILTER_FIELDS = ("since", "until", "line", "type", "disposition", "seat")


def _store(request: web.Request) -> Any:
    return ticket_store(request)


def _reader(request: web.Request) -> TicketReader:
    return TicketReader(_store(request).redis)


def _selection(request: web.Request, values: Any) -> Selection:
    """The filters typed in the form, limited to one seat's tickets (an agent: always its own)."""
    user = current_user(request)
    seat = str(values.get("seat", "")).strip() or None
    if seat:
        require_seat(request, seat)
        if not re.fullmatch(NAME, seat):
            raise error_page(request, web.HTTPBadRequest, "筛选条件有误", "座席名无效（如 agent1001）。")
    if user.role == "agent":
        seat = user.agent
    try:
        since, until, line, kind, disposition = (str(values.get(f, "")) or None for f in FILTER_FIELDS[:5])
        return Selection(parse_filters(since, until, line, kind, disposition, None, option=""), seat)
    except ValueError as exc:
        raise error_page(request, web.HTTPBadRequest, "筛选条件有误", _filter_error(str(exc))) from None


FILTER_ERRORS = {  # the field parse_filters names (English, for the CLI) → what the form's user reads
    "since": "受理起应为日期（如 2026-12-01）或时间（如 2026-12-01T08:30）。",
    "until": "受理止应为日期（如 2026-12-01）或时间（如 2026-12-01T08:30）。",
    "line": "号码线路只能是数字（如 12345、12366）。", "request type": "诉求类型无效。", "disposition": "结果无效。",
}


def _filter_error(message: str) -> str:
    if re.match(r"until .* is not after since", message):
        return "受理止应晚于受理起。"
    m = re.match(r"(?:bad|unknown) (since|until|line|request type|disposition)\b", message)
    return FILTER_ERRORS[m[1]] if m else message


def _before(request: web.Request) -> float | None:
    """The page cursor (the time received of the last ticket of the previous page)."""
    text = request.query.get("before", "")
    try:
        return float(text) if text else None
    except ValueError:
        raise error_page(request, web.HTTPBadRequest, "筛选条件有误", "分页参数无效。") from None


def _masked(tickets: Iterable[Ticket], unmasked: bool = False) -> list[Ticket]:
    return [Ticket.from_json(t.view(unmasked=unmasked)) for t in tickets]


@routes.get("/tickets")
async def ticket_list(request: web.Request) -> web.Response:
    selection = _selection(request, request.query)
    if request.query.get("overdue"):
        return await _overdue_list(request, selection)
    page = await _reader(request).page(selection, SHOWN, _before(request))
    query = {f: request.query.get(f, "") for f in FILTER_FIELDS}
    older = urlencode({**{f: v for f, v in query.items() if v}, "before": repr(page.before)}) if page.before else ""
    return render(request, "tickets.html", tickets=_masked(page.tickets), total=page.total, older=older,
                  query=query, seat=selection.seat, labels=_labels(), paged="before" in request.query, overdue_only=False,
                  export_query=urlencode({f: v for f, v in query.items() if v}),
                  since=f"{selection.filters.since:%Y-%m-%d %H:%M}", until=f"{datetime.now():%Y-%m-%d}")


async def _overdue_list(request: web.Request, selection: Selection) -> web.Response:
    """Open cases past their deadline (超期), longest overdue first, whenever they came in (an
    agent: its own seat's only)."""
    now = datetime.now()
    found = [t for t in await _store(request).overdue(SHOWN) if overdue(t, now)
             and (selection.seat is None or t.agent == selection.seat)]
    query = {f: "" for f in FILTER_FIELDS}
    return render(request, "tickets.html", tickets=_masked(found), total=len(found), older="", query=query,
                  seat=selection.seat, labels=_labels(), paged=False, export_query="", overdue_only=True,
                  since=f"{selection.filters.since:%Y-%m-%d %H:%M}", until=f"{datetime.now():%Y-%m-%d}")


@routes.get("/tickets/export.csv")
async def ticket_export(request: web.Request) -> web.StreamResponse:
    return await _csv(request, _selection(request, request.query))


@routes.post("/tickets/export.csv")
@roles("admin", "supervisor")
async def ticket_export_unmasked(request: web.Request) -> web.StreamResponse:
    """Callers in full: the reason and the filters are in the audit log before the first row."""
    form = await request.post()
    selection = _selection(request, form)
    check = _reason(request, form.get("reason"))
    tickets, callers = await _reader(request).count(selection)
    await _audit_unmasked(request, "tickets export", {**selection.filters.describe(), "seat": selection.seat},
                          check, tickets=tickets, callers=callers)
    return await _csv(request, selection, unmasked=True)


async def _csv(request: web.Request, selection: Selection, *, unmasked: bool = False) -> web.StreamResponse:
    """The export streamed as it is read, newest first: a batch of rows per chunk."""
    async def viewed() -> AsyncIterator[list[Ticket]]:
        async for batch in _reader(request).batches(selection, newest_first=True):
            for i in range(0, len(batch), PARSE_SLICE):  # masked and written a slice at a time
                yield _masked(batch[i:i + PARSE_SLICE], unmasked)

    chunks = export.csv_chunks(viewed())
    first = await anext(chunks)  # Redis has answered before the response starts
    response = web.StreamResponse(headers={"Content-Disposition": 'attachment; filename="tickets.csv"'})
    response.content_type, response.charset = "text/csv", "utf-8"
    await response.prepare(request)
    await response.write(codecs.BOM_UTF8 + first.encode())  # Excel reads UTF-8 only after the BOM
    async for chunk in chunks:
        await response.write(chunk.encode())
        await asyncio.sleep(0)  # calls first: a write to a fast reader does not yield by itself
    await response.write_eof()
    return response


async def _ticket(request: web.Request) -> Ticket:
    ticket = await _store(request).by_number(request.match_info["number"])
    if ticket is None:
        raise error_page(request, web.HTTPNotFound, "未找到", f"没有工单 {request.match_info['number']}。")
    user = current_user(request)
    if user.role == "agent" and user.agent not in ticket.seats():
        raise forbidden(request, "座席只能查看自己接听的工单。")
    return ticket


@routes.get(r"/tickets/{number:[0-9-]+}")
async def ticket_detail(request: web.Request) -> web.Response:
    return _detail(request, await _ticket(request), unmasked=False)


@routes.post(r"/tickets/{number:[0-9-]+}/unmask")
@roles("admin", "supervisor")
async def ticket_unmask(request: web.Request) -> web.Response:
    ticket = await _ticket(request)
    reason = _reason(request, (await request.post()).get("reason"))
    await _audit_unmasked(request, "tickets show", {"number": ticket.number}, reason, tickets=1, callers=1)
    return _detail(request, ticket, unmasked=True)


def _detail(request: web.Request, ticket: Ticket, *, unmasked: bool) -> web.Response:
    shown = _masked([ticket], unmasked)[0]
    title = queue_title(request)
    session = request.app[CONSOLE].settings().sessions.get(shown.session) if shown.session else None
    return render(request, "ticket.html", t=shown, steps=call_steps(shown, title), unmasked=unmasked, labels=_labels(),
                  queue=title(shown.queue) if shown.queue else "",
                  session=export.session_text(shown.session, session.topic if session else ""),
                  can_unmask=current_user(request).role in ("admin", "supervisor"),
                  deadline=export.deadline_due(shown.deadline),
                  transfers=[export.transfer_text(x) for x in shown.transfers],
                  legs=[{**leg, "at": leg_time(leg.get("at"))} for leg in (shown.callback or {}).get("attempts") or []])


def queue_title(request: web.Request) -> Callable[[str], str]:
    """A queue's display name as the wallboard shows it (``general`` → 7×24综合座席)."""
    queues = request.app[CONSOLE].settings().queues
    return lambda name: queues[name].title if name in queues and queues[name].title else name


def _reason(request: web.Request, reason: Any) -> str:
    """The reason given for an unmasked read; without one nothing unmasked is read or shown."""
    try:
        check_reason(str(reason or ""))
    except ValueError:
        raise error_page(request, web.HTTPBadRequest, "需要理由", "查看完整号码必须填写理由（回访哪位市民、哪个案件）。") from None
    return str(reason)


async def _audit_unmasked(request: web.Request, command: str, what: dict[str, Any], reason: str, *,
                          tickets: int, callers: int) -> None:
    """The audit line first; if it cannot be written nothing unmasked is shown."""
    user: User = current_user(request)
    entry = unmasked_read(reader(user), f"console {command}", what, tickets=tickets, callers=callers, reason=reason)
    try:
        await request.app[CONSOLE].write_audit(entry)
    except AuditError as exc:
        raise error_page(request, web.HTTPServiceUnavailable, "审计日志不可写", "不显示完整号码。", str(exc)) from None


def _labels() -> dict[str, Any]:
    """What the templates show for values: choices of the filters, Mandarin labels, local times."""
    return {"types": [(k.value, v) for k, v in REQUEST_LABELS.items()],
            "dispositions": [(k.value, v) for k, v in DISPOSITION_LABELS.items()],
            "type": export.type_label, "disposition": export.disposition_label, "time": export.local_time,
            "recording_failed": failed_label, "recording_incomplete": incomplete_label, "recording_seats": seats_of,
            "status": lambda t: STATUS_LABELS.get(t.status, t.status), "overdue": lambda t: overdue(t, datetime.now())}

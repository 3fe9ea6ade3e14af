"""The console's 回访 list (callback visits), for supervisors and admins: the tickets whose caller
rated the call at or below ``tickets.satisfaction_low``, with ticket, agent, rating and the
caller masked (the ticket page unmasks it with a reason, audited as every unmasked read), and a
form to mark a visit done with a note, which goes onto the ticket's timeline (tickets/revisit.py).

The list is read from the tickets of a date range (default the last :data:`DEFAULT_DAYS` days, a
batch at a time, as the quality page does); nothing besides the ticket is kept, so every engine
and console of a cluster shows the same list. Marking a visit done writes the ticket as every
later change is written (journaled, idempotent per phase, its rev after the stored one) and is
in the audit log (``revisit done``) before the write; refusals (no note, no CSRF token, another
role) change nothing."""

from __future__ import annotations

import secrets
from datetime import datetime, time, timedelta

from aiohttp import web

from console.auth import current_user, roles
from console.context import CONSOLE
from console.csrf import CSRF_FIELD
from console.pages import error_page, posted_ticket, nav, query_date, render, ticket_store
from ivr.core.masking import mask_number
from tickets import revisit
from tickets.export import local_time
from tickets.filters import Filters
from tickets.reads import Selection, TicketReader
from tickets.model import Ticket
from tickets.store import TicketStore

routes = web.RouteTableDef()
nav("/revisits", "回访", "admin", "supervisor", order=35)
DEFAULT_DAYS = 7
LONGEST = 92  # days one page reads (every ticket of the range, a batch at a time)
MESSAGES = {"done": "已记录回访。"}


@routes.get("/revisits")
@roles("supervisor", "admin")
async def revisit_list(request: web.Request) -> web.Response:
    today = datetime.now().astimezone().date()
    first = query_date(request, "from", today - timedelta(days=DEFAULT_DAYS - 1))
    last = query_date(request, "to", today)
    if last < first or (last - first).days >= LONGEST:
        raise error_page(request, web.HTTPBadRequest, "日期无效", f"结束日期须不早于开始日期，时段最长 {LONGEST} 天。")
    low = request.app[CONSOLE].settings().tickets.satisfaction_low
    rows = []
    since, until = (datetime.combine(day, time()).astimezone() for day in (first, last + timedelta(days=1)))
    selection = Selection(Filters(since, until, None, None, None, None))
    async for batch in TicketReader(ticket_store(request).redis).batches(selection, newest_first=True):
        for t in batch:
            if revisit.due(t, low):
                done = revisit.visit(t)
                rows.append({"number": t.number, "received": local_time(t.received), "agent": t.agent, "queue": t.queue,
                             "line": t.line, "rating": t.satisfaction, "caller": mask_number(t.caller),
                             "done": done and {"at": local_time(done.at), "detail": done.detail}})
    pending = [r for r in rows if not r["done"]]
    return render(request, "revisits.html", rows=pending + [r for r in rows if r["done"]], pending=len(pending),
                  low=low, first=first.isoformat(), last=last.isoformat(),
                  message=MESSAGES.get(request.query.get("done", ""), ""))


@routes.post(r"/revisits/{number:[0-9-]+}")
@roles("supervisor", "admin")
async def revisit_done(request: web.Request) -> web.Response:
    console, user, store = request.app[CONSOLE], current_user(request), ticket_store(request)
    ticket, form = await posted_ticket(request)
    try:
        if set(form) - {CSRF_FIELD, "note"} or len(form.getall("note", [])) != 1:
            raise ValueError("表单字段有误")
        if not revisit.due(ticket, console.settings().tickets.satisfaction_low):
            raise ValueError("该工单的满意度评价不是低分，无需回访")
        note = revisit.check_note(str(form["note"]))
    except ValueError as exc:
        await console.audit(user, "revisit done", {"number": ticket.number, "error": str(exc)})
        raise error_page(request, web.HTTPBadRequest, "未记录", str(exc)) from None
    await console.audit(user, "revisit done", {"number": ticket.number, "note_chars": len(note)})
    if not await _note_visit(store, ticket, f"{user.name}@console", note):
        raise error_page(request, web.HTTPServiceUnavailable, "未记录", "工单库未接受此次写入，请稍后重试。")
    raise web.HTTPSeeOther("/revisits?done=done")


async def _note_visit(store: TicketStore, ticket: Ticket, by: str, note: str) -> bool:
    """The visit onto the ticket's timeline, as a later ticket change (read again just before the
    write); False when Redis does not have it afterwards."""
    fresh = await store.get(ticket.linkedid)
    rev = await store.revision(ticket.linkedid)
    if fresh is None:
        return False
    at = datetime.now().astimezone().isoformat(timespec="milliseconds")
    fresh.note(at, revisit.DONE, f"{by}：{note}")
    await store.write(fresh, f"revisit:{rev + 1}:{secrets.token_hex(4)}", rev + 1)
    await store.drain()
    after = await store.get(ticket.linkedid)
    return after is not None and any(e.event == revisit.DONE and e.at == at for e in after.timeline)

"""The departments' signed write-back API on the console's server (docs/tickets.md, "Department write-back").

``POST /api/dept/v1/tickets/{number}/events`` with headers ``X-Ivr-Department`` (its name in
``tickets.departments``), ``X-Ivr-Timestamp`` and ``X-Ivr-Signature`` (HMAC-SHA256 over
``"<timestamp>." + body``, as the outbound push signs: tickets.push) and a JSON body
(:class:`tickets.workflow.DeptEvent`). No session, no CSRF token: the signature is the
authentication. Every refusal is audited (department, peer, why) and counted for /metrics; every
applied event is audited too. Answers are JSON: ``{"error": …}`` on refusal.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Awaitable

from aiohttp import web

from console.auth import signed_api
from console.clientaddr import client_address
from console.context import CONSOLE, Console
from ivr.core.calendar import load_calendar
from tickets.audit import AuditError, Reader, action
from tickets.push import SIGNATURE_HEADER, SIGNATURE_TOLERANCE, TIMESTAMP_HEADER, signature_problem
from tickets.workflow import MAX_BODY, BadEvent, Refused, parse_event
from tickets.settings import KeyMissing, department_key
from tickets.writeback import REFUSALS_PER_MINUTE, Conflict, NotStored, TicketUnknown, WriteBack

routes = web.RouteTableDef()
log = logging.getLogger("ivr.dept")
DEPARTMENT_HEADER = "X-Ivr-Department"
NUMBER = r"^(\d{8}-\d{3,16}-\d{5}|\d{16,29})$"  # as printed, or keyed (digits only)
WRITEBACK = "writeback"  # its service in Console.extra


def _service(console: Console) -> WriteBack:
    found = console.extra.get(WRITEBACK)
    if found is None:
        if console.tickets is None:
            raise web.HTTPServiceUnavailable(text="no ticket store")
        flows = console.flows
        calendar = (lambda: flows.current.calendar) if flows is not None else load_calendar
        found = console.extra[WRITEBACK] = WriteBack(console.redis, console.tickets, lambda: console.settings().tickets,
                                                     calendar)
    return found


@routes.post("/api/dept/v1/tickets/{number}/events")
@signed_api
async def post_event(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    peer = client_address(request, console.trusted_proxies)
    name = request.headers.get(DEPARTMENT_HEADER, "")
    number = request.match_info["number"]
    what: dict[str, Any] = {"department": name[:40], "number": number[:40], "peer": peer}

    def refuse(status: int, reason: str, counted_as: str = "") -> Awaitable[web.Response]:
        return _refuse(console, name, what, status, reason, counted_as)

    if await _service(console).flooding(peer):  # cut before reading or checking anything
        await _service(console).refused("unknown", "flood", peer)
        return web.json_response({"error": "too many refused requests"}, status=429, headers={"Retry-After": "60"})
    if (request.content_length or 0) > MAX_BODY:
        return await refuse(413, "body too large")
    body = await request.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return await refuse(413, "body too large")
    department = console.settings().tickets.departments.get(name)
    if department is None:
        return await refuse(401, "unknown department")
    try:
        key = department_key(department)
    except KeyMissing as exc:
        log.error("department %s cannot be checked: %s", name, exc)
        return await refuse(401, "department key not configured")
    problem = signature_problem(key, body, request.headers.get(TIMESTAMP_HEADER, ""),
                                request.headers.get(SIGNATURE_HEADER, ""), tolerance=SIGNATURE_TOLERANCE)
    if problem:
        return await refuse(401, problem)
    try:
        event = parse_event(body)
    except BadEvent as exc:
        return await refuse(400, f"invalid body: {exc}", "invalid body")
    what.update(event=event.event, id=event.id)
    if not re.fullmatch(NUMBER, number):
        return await refuse(404, "unknown ticket")
    try:
        answer = await _service(console).submit(name, department, number, event)
    except Conflict as exc:
        return await refuse(409, exc.reason)
    except TicketUnknown:
        return await refuse(404, "unknown ticket")
    except Refused as exc:
        return await refuse(exc.status, exc.reason, "not allowed")
    except NotStored:
        return web.json_response({"error": "not stored, retry"}, status=503, headers={"Retry-After": "5"})
    if not answer.repeat:
        what.update(status=answer.body.get("status", ""))
        await _audit(console, name, "dept write-back", what)
    return web.json_response(answer.body, status=answer.status, headers={"X-Ivr-Repeat": "1"} if answer.repeat else {})


async def _refuse(console: Console, name: str, what: dict[str, Any], status: int, reason: str,
                  counted_as: str = "") -> web.Response:
    """Count, audit (who claimed to send it, from where, why) and answer a refusal; the refusal
    that crosses the peer's budget is audited as the start of a flood (later ones get 429 unaudited)."""
    known = name if name in console.settings().tickets.departments else "unknown"
    count = await _service(console).refused(known, counted_as or reason, what["peer"])
    try:
        await _audit(console, known, "dept write-back refused", what, reason)
        if count == REFUSALS_PER_MINUTE + 1:
            await _audit(console, known, "dept write-back refused", what,
                         f"flood: over {REFUSALS_PER_MINUTE} refusals this minute, further requests refused unaudited")
    except AuditError:
        log.error("department write-back refused (%s) and not audited", reason)
    return web.json_response({"error": reason}, status=status)


async def _audit(console: Console, department: str, command: str, what: dict[str, Any], reason: str = "") -> None:
    """One audit line naming the department (``dept:<name>``), not a console user."""
    await console.write_audit(action(Reader(user=f"dept:{department}"), command, what, reason=reason))

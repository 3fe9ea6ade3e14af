"""The audit log, for admins, read-only: unmasked reads (CLI and console), sign-ins, flow and
number-plan publishes. Nothing in the console writes to it except the actions themselves.
The file keeps UTC and English commands (scripts read it); the page shows local time, as the
tickets do, and Mandarin (ivr/core/labels.py)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from console.auth import roles
from console.context import CONSOLE
from console.pages import nav, render
from tickets.audit import UNREADABLE, read_audit
from tickets.export import local_time

routes = web.RouteTableDef()
nav("/audit", "审计日志", "admin", order=80)
SHOWN = 500


@routes.get("/audit")
@roles("admin")
async def audit(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    entries = await asyncio.to_thread(read_audit, console.audit_log)
    broken = [e.what["line"] for e in entries if e.command == UNREADABLE]  # shown as rows of their own, too
    problem = f"日志中有 {len(broken)} 行无法解析（第 {'、'.join(map(str, broken[:20]))} 行），请检查文件。" if broken else ""
    wanted = request.query.get("q", "").strip()
    if wanted:
        entries = [e for e in entries if wanted in f"{e.user} {e.command} {e.reason} {e.what}"]
    newest = list(reversed(entries))[:SHOWN]
    return render(request, "audit.html", entries=newest, unreadable=UNREADABLE, total=len(entries), q=wanted, problem=problem,
                  local_time=local_time)

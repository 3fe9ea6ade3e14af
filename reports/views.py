"""The console's 统计报表 page (supervisors and admins): the period's hot spots and the counts per
line, queue, request type and department, with bars for the volumes, and the same report as CSV
or XLSX to download (``?format=csv|xlsx``). Reports hold counts and names, no caller data.

One report is counted at a time per process (a year's first report counts every day without a
tally, yielding to the loop between batches): a second request meanwhile gets 503 正在生成 at
once, with Retry-After, rather than a second count competing with calls for the same loop."""

from __future__ import annotations

import asyncio
import weakref
from datetime import datetime
from typing import Any

from aiohttp import web

from console.auth import roles
from console.context import CONSOLE
from console.pages import error_page, nav, query_date, render, ticket_store
from reports.files import HOT_VIEW_LABELS, NEW, csv_bytes, view_rows, xlsx_bytes
from reports.model import COLUMNS, PERIODS, SHARES, TOTAL, VIEWS, period
from reports.read import read_report

routes = web.RouteTableDef()
nav("/stats/report", "统计报表", "admin", "supervisor", order=47)
FILES = {"csv": ("text/csv", csv_bytes), "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                                                  xlsx_bytes)}


RETRY_AFTER = 5  # s
_counting: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]" = weakref.WeakKeyDictionary()


def counting() -> asyncio.Lock:
    """The running loop's one report count (a process runs one loop; tests run several in turn)."""
    return _counting.setdefault(asyncio.get_running_loop(), asyncio.Lock())


def _cell(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name in SHARES:
        return f"{value:.1%}"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


@routes.get("/stats/report")
@roles("supervisor", "admin")
async def report_page(request: web.Request) -> web.StreamResponse:
    kind = request.query.get("period", "day")
    if kind not in PERIODS:
        raise error_page(request, web.HTTPBadRequest, "报表类型无效", "报表类型应为日报、周报、月报或年报。")
    fmt = request.query.get("format", "")
    if fmt and fmt not in FILES:
        raise error_page(request, web.HTTPBadRequest, "格式无效", "下载格式应为 csv 或 xlsx。")
    day = query_date(request, "date", datetime.now().astimezone().date())
    p = period(kind, day)
    settings = request.app[CONSOLE].settings()
    store, lock = ticket_store(request), counting()
    if lock.locked():
        busy = error_page(request, web.HTTPServiceUnavailable, "报表正在生成",
                          f"另一份报表正在生成，请在 {RETRY_AFTER} 秒后刷新本页。")
        busy.headers["Retry-After"] = str(RETRY_AFTER)
        raise busy
    async with lock:
        report = await read_report(store.redis, p, settings.reports, low=settings.tickets.satisfaction_low,
                                   retention_days=settings.tickets.retention_days)
    if fmt:
        content_type, make = FILES[fmt]
        name = f"report-{kind}-{p.start:%Y%m%d}.{fmt}"  # ASCII from validated parts only
        return web.Response(body=make(report), content_type=content_type,
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})
    views = []
    for view in report.tally.shown():
        label = VIEWS[view]
        rows = list(view_rows(report, view))
        most = max((r.calls for name, r in rows if name != TOTAL), default=0)
        views.append({"id": view, "label": label, "most": most,
                      "rows": [{"name": name, "total": name == TOTAL, "calls": r.calls,
                                "cells": [(n, _cell(n, getattr(r, n))) for n, _h in COLUMNS]} for name, r in rows]})
    hot = [{"view": HOT_VIEW_LABELS[h.view], "name": h.name, "current": h.current, "previous": h.previous,
            "increase": h.increase, "ratio": NEW if h.ratio is None else f"{h.ratio:.1f}"} for h in report.hot]
    return render(request, "reports.html", kind=kind, periods=PERIODS, day=day.isoformat(), title=p.title,
                  since=f"{p.start:%Y-%m-%d %H:%M}", until=f"{p.end:%Y-%m-%d %H:%M}", zone=p.zone, made=f"{report.made:%Y-%m-%d %H:%M:%S}",
                  columns=[h for _n, h in COLUMNS], views=views, hot=hot, hot_most=max((h.current for h in report.hot), default=0),
                  ratio=settings.reports.hotspot_ratio, min_increase=settings.reports.hotspot_min_increase)

"""The console's 统计报表 page in a real Chromium on the console's real Redis: a supervisor reads a
day's report (hot spots first: a department and a request type twelvefold over the day before;
the counts per line, queue, request type and department; a department named like a formula shown
as text), switches to the week with the form, and downloads the same report as CSV and XLSX; an
agent is refused the page and the files; while a year is counted, another report request gets 503
报表正在生成 at once. The tickets are written by the real TicketStore."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime, timedelta

import openpyxl
import pytest
from selenium.webdriver.support.ui import Select

from testbed.browser import Browser
from testbed.console import ConsoleSite, http_client, run_sync, sign_in_http
from tickets.model import Ticket
from tickets.store import TicketStore

DAY = (datetime.now() - timedelta(days=9)).replace(hour=10, minute=0, second=0, microsecond=0).astimezone()
FORMULA = '=HYPERLINK("http://evil.example/","点我")'


def made(n: int, at: datetime, kind: str, dept: str = "", answered: bool = False) -> Ticket:
    return Ticket(linkedid=f"rc22.{n}", line="12345", caller="13900000000", received=at.isoformat(), request_type=kind,
                  department=dept, queue="general", queued=at.isoformat(), wait_seconds=8.0 if answered else 40.0,
                  answered=at.isoformat() if answered else "", disposition="answered" if answered else "abandoned_queue")


@pytest.fixture(scope="module")
def day(console: ConsoleSite, tmp_path_factory: pytest.TempPathFactory) -> str:
    tickets = [made(n, DAY + timedelta(minutes=n), "complaint", "市城管局", answered=True) for n in range(12)]
    tickets += [made(20, DAY, "consult"), made(21, DAY, "consult", FORMULA, answered=True),
                made(30, DAY - timedelta(days=1), "complaint", "市城管局", answered=True)]

    async def write() -> None:
        store = TicketStore(console.redis_url, tmp_path_factory.mktemp("report-spool"), "report-test", retention_days=30,
                            caller_key=b"console-report-caller-key")
        try:
            for t in tickets:
                await store.write(t, "closed")
            await store.drain()
        finally:
            await store.close()

    run_sync(write)
    return DAY.date().isoformat()


def cells(browser: Browser, table: str, name: str) -> list[str]:
    return [c.text for c in browser.find(f'#{table} tr[data-name="{name}"]').find_elements("css selector", "td")]


def test_a_supervisor_reads_the_day_s_report_and_switches_to_the_week(browser: Browser, console: ConsoleSite, day: str) -> None:
    browser.sign_in(console.account("supervisor")).open(f"/stats/report?period=day&date={day}")
    assert browser.text("#report-title").startswith(f"日报 {day}")
    zone = f"UTC{DAY.utcoffset().total_seconds() / 3600:+.0f}"  # the host's clock (production: UTC+8)
    assert f"{day} 00:00 – " in browser.text("#report-title") and zone in browser.text("#report-title")
    assert cells(browser, "report-hot", "市城管局")[:6] == ["承办单位", "市城管局", "12", "1", "11", "12.0"]
    assert cells(browser, "report-hot", "投诉")[:6] == ["诉求类型", "投诉", "12", "1", "11", "12.0"]
    assert len(browser.all("#report-hot meter")) == 2
    # 来电量, 进入排队, 人工接听, 15秒内接听, 30秒内接听, 排队放弃, 15秒接通率, 直接答复, 派单
    assert cells(browser, "report-line", "12345")[:10] == ["12345", "14", "14", "13", "13", "13", "1", "92.9%", "0", "13"]
    assert cells(browser, "report-type", "咨询")[:3] == ["咨询", "2", "2"]
    names = {r.get_attribute("data-name"): r.find_element("css selector", "td").text for r in browser.all("#report-department tbody tr")}
    assert names == {"市城管局": "市城管局", FORMULA: FORMULA}  # shown as its text
    Select(browser.find("#report-period")).select_by_value("week")
    browser.submit("form.filters button")
    assert browser.path.startswith("/stats/report?period=week&date=") and browser.text("#report-title").startswith("周报 ")
    assert day in browser.find("#report-date").get_attribute("value")


async def test_the_downloads_hold_the_same_report_and_an_agent_gets_none(console: ConsoleSite, day: str) -> None:
    async with http_client() as http:
        await sign_in_http(http, console, console.account("admin"))
        async with http.get(f"{console.url}/stats/report?period=day&date={day}&format=csv") as reply:
            assert reply.status == 200 and reply.headers["Content-Disposition"].endswith(f'report-day-{day.replace("-", "")}.csv"')
            rows = list(csv.reader(io.StringIO((await reply.read()).decode("utf-8-sig"))))
        assert ["承办单位", "市城管局", "12", "1", "11", "12.0"] in rows and "'" + FORMULA in [r[0] for r in rows if r]
        async with http.get(f"{console.url}/stats/report?period=day&date={day}&format=xlsx") as reply:
            assert reply.status == 200 and reply.content_type.endswith("spreadsheetml.sheet")
            book = openpyxl.load_workbook(io.BytesIO(await reply.read()))
        line = {r[0].value: [c.value for c in r] for r in book["线路"].iter_rows(min_row=2)}
        assert line["12345"][1:4] == [14, 14, 13] and len(book["线路"]._charts) == 1
        for query in ("period=quarter", "format=pdf", "date=2026-02-30"):
            async with http.get(f"{console.url}/stats/report?{query}") as reply:
                assert reply.status == 400, query
    async with http_client() as http:
        await sign_in_http(http, console, console.account("agent"))
        for fmt in ("", "&format=csv", "&format=xlsx"):
            async with http.get(f"{console.url}/stats/report?period=day&date={day}{fmt}") as reply:
                assert reply.status == 403, fmt


async def test_while_a_year_is_counted_another_report_is_told_it_is_being_made(console: ConsoleSite, day: str) -> None:
    """The year's first report counts every day of it kept in Redis: requests made meanwhile
    (whichever got the count first) are answered 503 正在生成 with Retry-After, never a second count."""
    async with http_client() as http:
        await sign_in_http(http, console, console.account("supervisor"))

        async def get(kind: str) -> tuple[int, str, str | None]:
            async with http.get(f"{console.url}/stats/report?period={kind}&date={day}") as reply:
                return reply.status, await reply.text(), reply.headers.get("Retry-After")

        first = asyncio.ensure_future(get("year"))
        meanwhile = []
        while not first.done():
            meanwhile.append(await get("month"))
        answers = [await first, *meanwhile]
    busy = [a for a in answers if a[0] == 503]
    assert {a[0] for a in answers} <= {200, 503} and any(a[0] == 200 for a in answers)
    assert busy and all("报表正在生成" in text and retry == "5" for _s, text, retry in busy)

"""The 回访 list (callback visits) in a real Chromium on the console's real Redis: a supervisor
sees the calls rated 2 or lower (ticket, agent, rating, the caller masked) and not those rated
higher or not at all; records a visit with a note, which goes onto the ticket's timeline (回访完成)
and into the audit log, and the row shows it done; an empty note, a form without a CSRF token,
a ticket that was not rated low and an agent are refused, and nothing is written. The tickets
are written by the real TicketStore as the call tracker leaves them."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from testbed.browser import Browser
from testbed.console import ConsoleSite, http_client, run_sync, sign_in_http
from tickets.model import Ticket
from tickets.revisit import DONE
from tickets.store import TicketStore

CALLER_KEY = b"console-revisit-caller-key"
DAY = (datetime.now() - timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0).astimezone()
NOTE = "已致电市民，说明办理进度，市民表示理解"
RATED = {"low2": (2, "rated"), "low1": (1, "rated"), "three": (3, "rated"), "five": (5, "rated"), "none": (None, "no_rating")}


def store(site: ConsoleSite, spool: Path) -> TicketStore:
    return TicketStore(site.redis_url, spool, "revisit-test", retention_days=30, caller_key=CALLER_KEY)


@pytest.fixture(scope="module")
def tickets(console: ConsoleSite, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ticket]:
    made = {key: Ticket(linkedid=f"rv22.{n}", line="12345", caller=f"1370000{n:04d}", agent=f"agent100{1 + n % 2}",
                        queue="general", received=(DAY + timedelta(minutes=n)).isoformat(), disposition="answered",
                        answered=(DAY + timedelta(minutes=n, seconds=5)).isoformat(), satisfaction=rating,
                        satisfaction_status=status)
            for n, (key, (rating, status)) in enumerate(RATED.items())}

    async def write() -> dict[str, Ticket]:
        s = store(console, tmp_path_factory.mktemp("revisit-spool"))
        try:
            for t in made.values():
                await s.write(t, "closed")
            await s.drain()
            return {k: t for k, t in [(k, await s.get(t.linkedid)) for k, t in made.items()] if t}
        finally:
            await s.close()

    return run_sync(write)


def timeline(console: ConsoleSite, ticket: Ticket, tmp_path: Path) -> list[tuple[str, str]]:
    async def read() -> list[tuple[str, str]]:
        s = store(console, tmp_path / "read-spool")
        try:
            found = await s.get(ticket.linkedid)
            return [(e.event, e.detail) for e in found.timeline] if found else []
        finally:
            await s.close()
    return run_sync(read)


def listed(browser: Browser, numbers: set[str]) -> dict[str, tuple[str, str, str]]:
    """The list's rows of these tickets: number → (rating, caller shown, done)."""
    return {r.get_attribute("data-number"): (r.find_element("css selector", '[data-field="rating"]').text,
                                             r.find_element("css selector", '[data-field="caller"]').text,
                                             r.get_attribute("data-done"))
            for r in browser.all("#revisits tbody tr") if r.get_attribute("data-number") in numbers}


def test_a_supervisor_sees_the_low_ratings_masked_and_records_a_visit_onto_the_timeline(
    browser: Browser, console: ConsoleSite, tickets: dict[str, Ticket], tmp_path: Path,
) -> None:
    supervisor = console.account("supervisor")
    numbers = {t.number for t in tickets.values()}
    low2, low1 = tickets["low2"], tickets["low1"]
    browser.sign_in(supervisor).open("/revisits")
    assert listed(browser, numbers) == {low2.number: ("2", "137****0000", "0"), low1.number: ("1", "137****0001", "0")}
    assert "13700000000" not in browser.text("#revisits")

    row = browser.find(f'#revisits tr[data-number="{low2.number}"]')
    row.find_element("css selector", "input[name=note]").send_keys(NOTE)
    browser.submit("", row.find_element("css selector", ".revisit-form button"))
    assert "已记录回访" in browser.text("#revisit-message")
    assert listed(browser, numbers)[low2.number][2] == "1" and listed(browser, numbers)[low1.number][2] == "0"
    assert "已致电市民" in browser.text(f'#revisits tr[data-number="{low2.number}"]')
    [(event, detail)] = [e for e in timeline(console, low2, tmp_path) if e[0] == DONE]
    assert detail == f"{supervisor.name}@console：{NOTE}"
    browser.open(f"/tickets/{low2.number}")
    assert "回访完成" in browser.text("#timeline") and "已致电市民" in browser.text("#timeline")
    entry = console.audit()[-1]
    assert (entry.user, entry.command, entry.what) == (f"{supervisor.name}@console", "revisit done",
                                                       {"number": low2.number, "note_chars": len(NOTE)})


REFUSED = [
    ("low1", {"note": "   "}, True, 400, "请填写回访记录"),
    ("low1", {"note": "x"}, False, 403, "CSRF"),
    ("five", {"note": "回访"}, True, 400, "不是低分"),
    ("low1", {"note": "回访", "agent": "agent1002"}, True, 400, "表单字段有误"),
]


async def test_refused_forms_and_an_agent_write_nothing(console: ConsoleSite, tickets: dict[str, Ticket], tmp_path: Path) -> None:
    async with http_client() as http:
        csrf = await sign_in_http(http, console, console.account("supervisor"))
        for key, form, with_csrf, status, message in REFUSED:
            data = form | ({"_csrf": csrf} if with_csrf else {})
            async with http.post(f"{console.url}/revisits/{tickets[key].number}", data=data, allow_redirects=False) as reply:
                assert (reply.status, message in await reply.text()) == (status, True), form
            assert [e for e in timeline(console, tickets[key], tmp_path) if e[0] == DONE] == [], form
    async with http_client() as http:
        csrf = await sign_in_http(http, console, console.account("agent"))
        async with http.get(f"{console.url}/revisits") as reply:
            assert reply.status == 403
        async with http.post(f"{console.url}/revisits/{tickets['low1'].number}", data={"note": "x", "_csrf": csrf},
                             allow_redirects=False) as reply:
            assert reply.status == 403
    assert [e for e in timeline(console, tickets["low1"], tmp_path) if e[0] == DONE] == []

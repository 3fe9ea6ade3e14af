"""Quality inspection (质检) in a real Chromium on the console's real Redis: a supervisor opens a
recorded ticket, fills the rubric's form and submits; the ticket page shows the score, the 质检
page the agent's average and the day's sample (the scored call marked, the unrecorded one absent);
an agent sees its own call's score but cannot score (403, audited); forged forms (a score above
the item's points, an item the rubric does not have, no CSRF token) and a ticket without a
recording are refused, and nothing is stored. The tickets are written by the real TicketStore
with a ``recordings`` entry (the recording itself is tested by tests/integration/test_recording.py)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ivr.config import load_config
from quality.model import check_scores
from quality.store import add_inspection
from testbed.browser import Browser
from testbed.console import ConsoleSite, http_client, run_sync, sign_in_http
from tickets.model import Recording, Ticket
from tickets.store import TicketStore

REPO = Path(__file__).resolve().parents[2]
CALLER_KEY = b"console-quality-caller-key"
DAY = (datetime.now() - timedelta(days=5)).replace(hour=10, minute=0, second=0, microsecond=0).astimezone()
RUBRIC = load_config(REPO / "config", environ={}).settings.quality
SCORES = {"greeting": "9", "listening": "18", "accuracy": "36", "attitude": "16", "ticket_type": "6"}  # 85
SCORED_BEFORE = (10, 20, 30, 10, 5)  # 75: agent1001's other call, scored when the tickets were made


def store(site: ConsoleSite, spool: Path) -> TicketStore:
    return TicketStore(site.redis_url, spool, "quality-test", retention_days=30, caller_key=CALLER_KEY)


def made(n: int, agent: str, *, recorded: bool) -> Ticket:
    return Ticket(linkedid=f"qa21.{n}", line="12345", caller=f"1390000{n:04d}", received=(DAY + timedelta(minutes=n)).isoformat(),
                  agent=agent, queue="general", disposition="answered", talk_seconds=42.0,
                  recordings=[Recording(file=f"x/{n}.opus", mode="answer", seconds=42.0, size=1000, sha256="0" * 64)]
                  if recorded else [])


@pytest.fixture(scope="module")
def tickets(console: ConsoleSite, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ticket]:
    """agent1001: a recorded call to score, a recorded call already scored, a call without a
    recording; agent1002: a recorded call."""
    calls = {"fresh": made(1, "agent1001", recorded=True), "scored": made(2, "agent1001", recorded=True),
             "unrecorded": made(3, "agent1001", recorded=False), "other": made(4, "agent1002", recorded=True)}

    async def write() -> dict[str, Ticket]:
        s = store(console, tmp_path_factory.mktemp("quality-spool"))
        try:
            for t in calls.values():
                await s.write(t, "closed")
            await s.drain()
            form = {name: str(p) for name, p in zip(RUBRIC.items, SCORED_BEFORE)}
            await add_inspection(s, "qa21.2", check_scores(RUBRIC, form, "开场不够规范"), RUBRIC, "zhao@console")
            return {k: t for k, t in [(k, await s.get(t.linkedid)) for k, t in calls.items()] if t}
        finally:
            await s.close()

    return run_sync(write)


def stored(console: ConsoleSite, ticket: Ticket, tmp_path: Path) -> list[int]:
    """The totals of the ticket's inspections as Redis holds them now."""
    async def read() -> list[int]:
        s = store(console, tmp_path / "read-spool")
        try:
            found = await s.get(ticket.linkedid)
            return [q.total for q in found.quality] if found else []
        finally:
            await s.close()
    return run_sync(read)


def score(browser: Browser, scores: dict[str, str], comment: str) -> None:
    for name, points in scores.items():
        browser.fill(f"#score-{name}", points)
    browser.fill("#quality-comment", comment)
    browser.submit("#quality-submit")


def test_a_supervisor_scores_a_recorded_call_and_sees_it_on_the_ticket_and_the_quality_page(
    browser: Browser, console: ConsoleSite, tickets: dict[str, Ticket], tmp_path: Path,
) -> None:
    supervisor = console.account("supervisor")
    fresh = tickets["fresh"]
    browser.sign_in(supervisor).open(f"/tickets/{fresh.number}")
    assert browser.text("#quality-none") == "尚未质检评分。"
    assert [e.text for e in browser.all("#quality-form th")] == ["开场问候", "倾听与安抚", "答复准确", "服务态度", "工单类型正确"]
    score(browser, SCORES, "答复准确，安抚到位")
    assert browser.path == f"/tickets/{fresh.number}?quality=saved"
    assert browser.text("#quality-message") == "质检评分已保存。"
    assert browser.find("#quality-latest").get_attribute("data-total") == "85"
    assert "85 / 100 分（合格" in browser.text("#quality-latest")
    row = browser.text("#quality-scores tbody tr.latest")
    assert f"{supervisor.name}@console" in row and "答复准确 36" in row and "答复准确，安抚到位" in row
    assert stored(console, fresh, tmp_path) == [85]
    entry = console.audit()[-1]
    assert (entry.user, entry.command, entry.what["number"], entry.what["total"]) == (
        f"{supervisor.name}@console", "quality score", fresh.number, 85)
    assert "质检评分" in browser.text("#timeline")

    day = DAY.date().isoformat()
    browser.open(f"/stats/quality?from={day}&to={day}&day={day}")
    mine = [c.text for c in browser.find('#quality-agents tr[data-name="agent1001"]').find_elements("css selector", "td")]
    assert mine == ["agent1001", "2", "80.0", "50.0%", "9.5", "19.0", "33.0", "13.0", "5.5"]  # 85 and 75
    assert browser.all('#quality-agents tr[data-name="agent1002"]') == []  # not inspected: no row
    sample = {r.get_attribute("data-ticket"): r for r in browser.all("#quality-sample tbody tr[data-ticket]")}
    assert set(sample) == {fresh.number, tickets["scored"].number, tickets["other"].number}  # never the unrecorded call
    assert sample[fresh.number].get_attribute("data-scored") == "true" and "已评分 85 分" in sample[fresh.number].text
    assert sample[tickets["other"].number].get_attribute("data-scored") == "false"
    browser.submit("", sample[tickets["other"].number].find_element("css selector", "a"))
    assert browser.path == f"/tickets/{tickets['other'].number}" and browser.find("#quality-form")

    browser.open(f"/tickets/{fresh.number}")  # a re-score appends; the latest counts
    score(browser, {**SCORES, "accuracy": "20"}, "复核后扣分")
    assert browser.find("#quality-latest").get_attribute("data-total") == "69"
    assert len(browser.all("#quality-scores tbody tr")) == 2 and stored(console, fresh, tmp_path) == [85, 69]


def test_an_agent_sees_its_own_call_s_score_but_cannot_score(
    browser: Browser, console: ConsoleSite, tickets: dict[str, Ticket], tmp_path: Path,
) -> None:
    agent = console.account("agent")  # agent1001
    scored = tickets["scored"]
    browser.sign_in(agent).open(f"/tickets/{scored.number}")
    assert browser.find("#quality-latest").get_attribute("data-total") == "75"
    assert "开场不够规范" in browser.text("#quality-scores") and "不合格" in browser.text("#quality-latest")
    assert browser.all("#quality-form") == []
    reply = browser.fetch(f"/tickets/{scored.number}/quality", "POST", {**dict(fields(SCORES)), "comment": "自评"})
    assert reply["status"] == 403
    assert stored(console, scored, tmp_path) == [75]
    entry = console.audit()[-1]
    assert (entry.user, entry.command, entry.what["path"]) == (
        f"{agent.name}@console", "console refused", f"/tickets/{scored.number}/quality")
    assert browser.fetch("/stats/quality")["status"] == 403


def fields(scores: dict[str, str], *extra: tuple[str, str]) -> list[tuple[str, str]]:
    """The form's fields as a browser sends them (``score-<item>``), plus any others."""
    return [(f"score-{k}", v) for k, v in scores.items()] + list(extra)


FORGED = [
    ("above the item's points", fields({**SCORES, "greeting": "11"}), True, 400, "开场问候：11 分超过满分 10"),
    ("an item the rubric does not have", fields({**SCORES, "bonus": "5"}), True, 400, "评分表中没有此项：&#39;bonus&#39;"),
    ("an item missing", fields({k: v for k, v in SCORES.items() if k != "accuracy"}), True, 400, "缺少评分项：答复准确"),
    ("not a whole number", fields({**SCORES, "attitude": "16.5"}), True, 400, "服务态度：分数须为 0 到 20 的整数"),
    ("a field that is no item", fields(SCORES, ("agent", "agent1002")), True, 400, "表单含未知字段：&#39;agent&#39;"),
    ("an item twice", fields(SCORES, ("score-greeting", "0")), True, 400, "表单字段重复"),
    ("no CSRF token", fields(SCORES), False, 403, "CSRF"),
]


async def test_a_forged_form_is_refused_and_nothing_is_stored(
    console: ConsoleSite, tickets: dict[str, Ticket], tmp_path: Path,
) -> None:
    """Each form of FORGED in turn, from one signed-in supervisor (a sign-in costs an argon2 check)."""
    other = tickets["other"]
    async with http_client() as http:
        csrf = await sign_in_http(http, console, console.account("supervisor"))
        for why, form, with_csrf, status, message in FORGED:
            data = [*form, ("comment", why), *([("_csrf", csrf)] if with_csrf else [])]
            async with http.post(f"{console.url}/tickets/{other.number}/quality", data=data, allow_redirects=False) as reply:
                assert (reply.status, message in await reply.text()) == (status, True), why
            assert stored(console, other, tmp_path) == [], why
            entry = console.audit()[-1]
            assert entry.command == ("quality score" if with_csrf else "console refused"), why
            assert entry.what.get("number", other.number) == other.number and ("error" in entry.what or not with_csrf), why


async def test_a_range_too_long_or_a_bad_date_is_refused(console: ConsoleSite) -> None:
    async with http_client() as http:
        await sign_in_http(http, console, console.account("supervisor"))
        for query, message in [("?from=2026-01-01&to=2026-12-31", "时段最长 92 天"), ("?day=yesterday", "日期格式应为"),
                               ("?from=2026-12-05&to=2026-12-01", "结束日期早于开始日期")]:
            async with http.get(f"{console.url}/stats/quality{query}") as reply:
                assert (reply.status, message in await reply.text()) == (400, True), query


def test_a_ticket_without_a_recording_cannot_be_scored(
    browser: Browser, console: ConsoleSite, tickets: dict[str, Ticket], tmp_path: Path,
) -> None:
    unrecorded = tickets["unrecorded"]
    browser.sign_in(console.account("admin")).open(f"/tickets/{unrecorded.number}")
    assert "没有可用的录音" in browser.text("#quality-unrecorded") and browser.all("#quality-form") == []
    reply = browser.fetch(f"/tickets/{unrecorded.number}/quality", "POST", dict(fields(SCORES)))
    assert reply["status"] == 400 and "没有可用的录音" in reply["text"]
    assert stored(console, unrecorded, tmp_path) == []
    assert re.search(r"没有可用的录音", console.audit()[-1].what["error"])

"""Satisfaction counted from real calls: three sipp calls through the general queue whose agent
hangs up, the callers keying 5 and 2 in the survey and the third hanging up at the question (each
call costs 5–11 s: three cover satisfied, low and unrated); `ivr stats --json`, the wallboard
(``/wallboard.json``) and ``/metrics`` give the hand-counted figures per queue and line (asked 3,
rated 2, average 3.5, 1 of 2 satisfied, 1 low); `ivr stats` and the wallboard — its JSON and its
座席满意度 table in Chromium — per agent, counted by hand from the tickets (the bed's seats share
the calls as the queue rings them); the low one is on the 回访 list."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from ivr.ami.client import AmiClient
from testbed.bed import BedState, TestBed
from testbed.browser import Browser
from testbed.calls import Phones, closed_ticket, run_ivr, until
from testbed.console import ConsoleSite, http_client, metric, sign_in_http
from testbed.sipp import Key, keys
from tests.integration.test_service_level import all_closed
from tickets.model import Ticket
from tickets.store import TicketStore

pytestmark = pytest.mark.usefixtures("no_call_outlives_the_test")

RATINGS = ("5", "2", None)  # None: the caller hangs up when asked
FIGURES = ("survey_offered", "rated", "rating_sum", "satisfied", "low_rated")


async def rated_call(phones: Phones, ami: AmiClient, tickets: TicketStore, rating: str | None) -> Ticket:
    """1 in the menu (the general queue); the agent ends the call after 2 s; ``rating`` keyed
    during the survey's question, or the caller hangs up as soon as it is asked."""
    caller = phones.next_caller()
    await phones.seats("general", caller, mode="hangup", talk_ms=2000)
    asked = ami.wait_for("UserEvent", lambda e: e.get("UserEvent") == "IvrSurvey" and e.get("CallerIDNum") == caller)
    script = keys("1") + ([Key(rating, 7000)] if rating else [])
    sipp, _ = await phones.call("12345", script, hold_ms=30_000, caller=caller)
    event = await asyncio.wait_for(asked, 40)
    if rating is None:
        await ami.action({"Action": "Hangup", "Channel": event["Channel"]})
    await sipp.wait(30)
    return await closed_ticket(tickets, caller, timeout=30)


async def stats(state: BedState, since: str) -> dict[str, Any]:
    code, out = await run_ivr(state, "stats", "--json", "--since", since)
    assert code == 0, out
    [report] = json.loads(out)["reports"]
    return dict(report["satisfaction"])


def figures(row: dict[str, Any] | None) -> dict[str, int]:
    return {name: int((row or {}).get(name, 0)) for name in FIGURES}


def plus(before: dict[str, int], **more: int) -> dict[str, int]:
    return {name: before[name] + more.get(name, 0) for name in FIGURES}


async def board(console: ConsoleSite) -> dict[str, Any]:
    async with http_client() as http:
        await sign_in_http(http, console, console.account("supervisor"))
        async with http.get(console.url + "/wallboard.json") as reply:
            assert reply.status == 200
            return dict(await reply.json())


def general_today(snapshot: dict[str, Any]) -> dict[str, int]:
    [row] = [q for q in snapshot["queues"] if q["name"] == "general"]
    return figures(row["satisfaction_today"])


def agents_today(snapshot: dict[str, Any]) -> dict[str, dict[str, int]]:
    """The wallboard's 座席满意度 rows: agent → today's figures."""
    return {row["agent"]: figures(row["satisfaction_today"]) for row in snapshot["agent_satisfaction"]}


def by_hand(calls: list[Ticket]) -> dict[str, dict[str, int]]:
    """Each answering agent's figures counted from its tickets."""
    out = {}
    for agent in {t.agent for t in calls}:
        rated = [t.satisfaction for t in calls if t.agent == agent and t.satisfaction is not None]
        out[agent] = {"survey_offered": sum(t.agent == agent for t in calls), "rated": len(rated),
                      "rating_sum": sum(rated), "satisfied": sum(r >= 4 for r in rated),
                      "low_rated": sum(r <= 2 for r in rated)}
    return out


def pct(share: float) -> str:
    return f"{share * 100:.1f}%"  # as wallboard.js writes a share


async def test_given_ratings_5_2_and_none_then_stats_wallboard_and_metrics_count_them_as_by_hand(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore, state: BedState, console: ConsoleSite,
    browser: Browser,
) -> None:
    start = datetime.now().astimezone()
    since = (start - timedelta(minutes=10)).isoformat(timespec="seconds")
    await all_closed(tickets, (start - timedelta(hours=1)).timestamp())
    before = await stats(state, since)
    snapshot_before = await board(console)
    board_before, agents_before = general_today(snapshot_before), agents_today(snapshot_before)
    rated_metric = 'ivr_satisfaction_calls_today{name="general",outcome="rated",scope="queue"}'
    metric_before = max(metric(console, rated_metric), 0.0)

    calls = [await rated_call(phones, ami, tickets, rating) for rating in RATINGS]
    assert [(t.satisfaction, t.satisfaction_status) for t in calls] == [(5, "rated"), (2, "rated"), (None, "no_rating")]
    assert all(t.queue == "general" and t.line == "12345" and t.agent for t in calls)

    # by hand: asked 3, rated 2, 5 + 2 = 7, satisfied (4–5) 1, low (≤ 2) 1
    hand = {"survey_offered": 3, "rated": 2, "rating_sum": 7, "satisfied": 1, "low_rated": 1}
    queue_expected = plus(figures(before["queues"].get("general")), **hand)
    line_expected = plus(figures(before["lines"].get("12345")), **hand)

    async def counted() -> dict[str, Any] | None:
        after = await stats(state, since)
        return after if figures(after["queues"].get("general")) == queue_expected else None

    after = await until(counted, 20, 0.5)
    assert figures(after["lines"]["12345"]) == line_expected
    per_agent = by_hand(calls)
    for agent, counted_by_hand in per_agent.items():
        assert figures(after["agents"][agent]) == plus(figures(before["agents"].get(agent)), **counted_by_hand), agent
    general = after["queues"]["general"]
    offered, rated_n, total, satisfied = (queue_expected[k] for k in ("survey_offered", "rated", "rating_sum", "satisfied"))
    assert (general["rated_share"], general["average"], general["satisfied_share"]) == (
        round(rated_n / offered, 4), round(total / rated_n, 2), round(satisfied / rated_n, 4))
    if figures(before["queues"].get("general")) == figures(None):  # the bed's first rated calls: the figures themselves
        assert (general["rated_share"], general["average"], general["satisfied_share"]) == (0.6667, 3.5, 0.5)

    # the wallboard (today) and /metrics (today) count the same three calls, the board per agent too
    snapshot = await until(lambda: _board_counted(console, plus(board_before, **hand)), 15, 0.5)
    platform = snapshot["platform"]["satisfaction_today"]
    assert platform["rated"] >= 2 and platform["survey_offered"] >= 3
    agents_expected = {agent: plus(agents_before.get(agent, figures(None)), **mine) for agent, mine in per_agent.items()}
    agent_rows = {row["agent"]: row["satisfaction_today"] for row in snapshot["agent_satisfaction"]}
    assert {agent: agents_today(snapshot)[agent] for agent in per_agent} == agents_expected
    for agent, expected in agents_expected.items():
        row = agent_rows[agent]
        assert (row["rated_share"], row["average"], row["satisfied_share"]) == (
            round(expected["rated"] / expected["survey_offered"], 4),
            round(expected["rating_sum"] / expected["rated"], 2) if expected["rated"] else None,
            round(expected["satisfied"] / expected["rated"], 4) if expected["rated"] else None), agent
    the_wallboard_page_shows(browser, console, agent_rows, agents_expected)
    assert metric(console, rated_metric) == metric_before + 2
    assert metric(console, 'ivr_satisfaction_calls_today{name="12345",outcome="low",scope="line"}') >= 1

    code, out = await run_ivr(state, "stats", "--since", since)
    assert code == 0 and "满意度 satisfaction" in out and any(line.startswith("队列 general") for line in out.splitlines())

    # the low rating (2) is on the supervisors' 回访 list, the others are not
    async with http_client() as http:
        await sign_in_http(http, console, console.account("supervisor"))
        async with http.get(console.url + "/revisits") as reply:
            assert reply.status == 200
            page = await reply.text()
    assert [t.number for t in calls if f'data-number="{t.number}" data-done="0"' in page] == [calls[1].number]


def the_wallboard_page_shows(browser: Browser, console: ConsoleSite, rows: dict[str, dict[str, Any]],
                             expected: dict[str, dict[str, int]]) -> None:
    """The 座席满意度 table in Chromium: each answering agent's figures, Mandarin headers, a
    low rating in red."""
    browser.sign_in(console.account("supervisor")).open("/wallboard")
    browser.wait_text("#live-status", "实时")
    assert [h.text for h in browser.all("#agent-satisfaction th")] == [
        "座席", "姓名", "参评/邀评", "参评率", "平均分", "满意率", "低分"]
    for agent, mine in expected.items():
        row, cell = rows[agent], f'#agent-satisfaction tr[data-agent="{agent}"] [data-field="{{}}"]'
        shown = {field: browser.text(cell.format(field)) for field in
                 ("survey-rated", "survey-rated-share", "survey-average", "survey-satisfied", "survey-low")}
        assert shown == {"survey-rated": f"{mine['rated']}/{mine['survey_offered']}",
                         "survey-rated-share": pct(row["rated_share"]),
                         "survey-average": "—" if row["average"] is None else f"{row['average']:.2f}",
                         "survey-satisfied": "—" if row["satisfied_share"] is None else pct(row["satisfied_share"]),
                         "survey-low": str(mine["low_rated"])}, agent
        low = browser.find(cell.format("survey-low")).get_attribute("class") or ""
        assert ("alarm" in low.split()) == (mine["low_rated"] > 0), agent


async def _board_counted(console: ConsoleSite, expected: dict[str, int]) -> dict[str, Any] | None:
    snapshot = await board(console)
    return snapshot if general_today(snapshot) == expected else None

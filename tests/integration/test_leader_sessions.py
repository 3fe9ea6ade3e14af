"""Leader reception sessions (领导接听, issue 22 item 10) on the real bed: with two leader seats
logged in and a session on now that lists one, the other is held paused in the leader queue
(非本场次) and key 6 in the 12345 menu rings only the session's seat, even with a second caller
waiting (autofill would ring any free member); the ticket names the session (ticket page, `ivr
stats sessions`). With the session's seat on a break, key 6 goes on to the general queue at
once (paused seats make the leader queue empty). After `ivr reload` moves the session to
yesterday, both seats are held there and the same key is an ordinary wrong key (the general
queue): the leader is never rung. The wallboard
(/wallboard.json and the page) shows the session while it is on, with the session's own seats and
the held one apart (非本场次, also in the queue table and the seat list), and no longer once it moved.

The session's window is built around the bed's local clock, starting 10 minutes ago and lasting 40:
an end past midnight is the next day's (queues/sessions.py), so a run at any hour holds it."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import AsyncIterator

import pytest

from ivr.ami.client import AmiClient
from ivr.asterisk_conf import asterisk_queue
from queues.sessions import LEADER_QUEUE, SESSION_REASON
from testbed.bed import TestBed
from testbed.browser import Browser
from testbed.calls import Phones, closed_ticket, for_caller, hang_up_all, run_ivr, until
from testbed.console import ConsoleSite
from testbed.sipp import keys
from testbed.wording import english_words
from tickets.store import TicketStore

pytestmark = pytest.mark.usefixtures("no_call_outlives_the_test")

SESSION, LEADER, OTHER = "flood-test", "leader3001", "leader3002"  # the session lists only LEADER
KEY_MS = 4000  # 6 at the announcement's end (3.5 s) or in the menu after it: either way the menu takes it


def session_yaml(start: datetime) -> str:
    end = start + timedelta(minutes=40)
    return (f"sessions:\n  {SESSION}:\n    topic: 汛后恢复重建\n    day: {start:%Y-%m-%d}\n"
            f'    time: "{start:%H:%M}-{end:%H:%M}"\n    prompt: session_flood_recovery\n    seats: [{LEADER}]\n')


async def leader_queue(ami: AmiClient) -> dict[str, str]:
    """The leader queue's members on the node: agent → "" (ready) or why paused."""
    listing = await ami.action({"Action": "QueueStatus", "Queue": asterisk_queue(LEADER_QUEUE)}, as_list=True)
    return {e["Location"].removeprefix("PJSIP/"): (e.get("PausedReason") or "paused") if e["Paused"] == "1" else ""
            for e in listing if e.get("Event") == "QueueMember"}


async def leader_queue_is(ami: AmiClient, expected: dict[str, str]) -> None:
    """Wait until the node's seat applier has made the leader queue ``expected``."""
    async def right() -> bool:
        return await leader_queue(ami) == expected
    try:
        await until(right, 30)
    except AssertionError:
        raise AssertionError(f"wanted {expected}, the leader queue holds {await leader_queue(ami)}") from None


async def reload(engine: TestBed) -> None:
    assert engine.state
    code, out = await run_ivr(engine.state, "reload")
    assert code == 0 and "is live" in out, out


@pytest.fixture
async def sessions_file(engine: TestBed, config_dir: Path) -> AsyncIterator[Path]:
    """The bed's config/sessions.yaml, put back (and reloaded) after the test."""
    path = config_dir / "sessions.yaml"
    original = path.read_text(encoding="utf-8")
    try:
        yield path
    finally:
        path.write_text(original, encoding="utf-8")
        await reload(engine)


async def test_key_6_rings_only_the_sessions_seat_during_the_session_and_is_a_wrong_key_once_it_moved_away(
    engine: TestBed, phones: Phones, tickets: TicketStore, sessions_file: Path, ami: AmiClient, browser: Browser,
    console: ConsoleSite,
) -> None:
    start = (datetime.now().astimezone() - timedelta(minutes=10)).replace(second=0, microsecond=0)
    sessions_file.write_text(session_yaml(start), encoding="utf-8")
    await reload(engine)
    await engine.log_in_agents([LEADER, OTHER])  # (an earlier test may have logged every seat out)
    await leader_queue_is(ami, {LEADER: "", OTHER: SESSION_REASON})  # the applier holds the other seat

    # two callers press 6 at once: the session's seat takes one; the other waits while it talks and
    # rings it once it is free (autofill would ring any other free member of the queue at its join)
    callers = [phones.next_caller(), phones.next_caller()]
    for seat in (LEADER, OTHER):
        await phones.agent(seat, callers[0], also=(callers[1],))
    rung = {c: ami.wait_for("AgentCalled", for_caller(c)) for c in callers}
    joins = {c: ami.wait_for("QueueCallerJoin", lambda e, c=c: e.get("CallerIDNum") == c and e.get("Queue") == "q-leader")
              for c in callers}
    connected = ami.wait_for("AgentConnect", lambda e: e.get("CallerIDNum") in callers)
    await phones.calls("12345", callers, keys("6", first_ms=KEY_MS), hold_ms=40_000)
    talking = await asyncio.wait_for(connected, 40)
    assert talking.get("Interface") == f"PJSIP/{LEADER}"
    first = talking["CallerIDNum"]
    (second,) = set(callers) - {first}
    await asyncio.wait_for(joins[second], 30)
    await ami.action({"Action": "Hangup", "Channel": talking["Channel"]})  # the first call ends: the seat is free
    for caller in (first, second):
        assert (await asyncio.wait_for(rung[caller], 30)).get("Interface") == f"PJSIP/{LEADER}", caller
    await hang_up_all(ami)
    ticket = await closed_ticket(tickets, first, timeout=40)
    assert (ticket.session, ticket.queue, ticket.agent, ticket.disposition) == (SESSION, "leader", LEADER, "answered")
    assert ticket.ivr.nodes[:3] == ["main/caller", "main/session", "main/menu"] and ticket.ivr.keys == ["6"]
    waited = await closed_ticket(tickets, second, timeout=40)
    assert (waited.session, waited.queue, waited.disposition) == (SESSION, "leader", "abandoned_queue")
    assert {a.agent for t in (ticket, waited) for a in t.agents_rung} == {LEADER}

    assert engine.state
    code, out = await run_ivr(engine.state, "stats", "sessions", "--json")
    assert code == 0, out
    row = next(r for r in json.loads(out) if r["session"] == SESSION)
    assert (row["offered"], row["by_its_seats"], row["abandoned"], row["topic"]) == (2, 1, 1, "汛后恢复重建")

    browser.sign_in(console.account("supervisor")).open(f"/tickets/{ticket.number}")
    assert browser.text("#session") == f"汛后恢复重建（{SESSION}）"

    snapshot = json.loads(browser.fetch("/wallboard.json")["text"])
    board = snapshot["leader_session"]
    assert (board["id"], board["topic"], board["on"], board["start"]) == (SESSION, "汛后恢复重建", True, start.isoformat())
    agents = board["agents"]
    # the session's own seat counted as its own; the other seat apart, held (非本场次), not a leader on a break
    assert (board["waiting"], agents["logged_in"], agents["paused"], board["held"], board["pauses"]) == (0, 1, 0, 1, {})
    assert {s["agent"]: s["state"] for s in snapshot["seats"]}[OTHER] == "held"
    assert f"{start:%H:%M}–" in board["window"]
    browser.open("/wallboard").wait_text("#leader-session", "领导接听（进行中）")
    line = browser.text("#leader-session")
    assert f"汛后恢复重建 {board['window']}" in line and "领导座席：签入 1" in line and f"{SESSION_REASON} 1" in line
    assert browser.text(f'#queues tr[data-queue="{LEADER_QUEUE}"] td[data-field="agents-held"]') == "1"
    assert browser.text(f'#seats tr[data-agent="{OTHER}"] td[data-field="state"]') == SESSION_REASON
    names = [console.account("supervisor").name, *engine.settings.agents, *engine.settings.supervision.supervisors]
    assert not english_words(browser.text(), names), "the wallboard speaks Mandarin"

    # the session's seat on a break (its agent's own pause, which the applier leaves alone): a key-6
    # caller does not wait max_wait for nobody but goes on to the general queue at once
    await ami.action({"Action": "QueuePause", "Interface": f"PJSIP/{LEADER}", "Queue": asterisk_queue(LEADER_QUEUE),
                      "Paused": "true", "Reason": "break"})
    await leader_queue_is(ami, {LEADER: "break", OTHER: SESSION_REASON})
    caller = phones.next_caller()
    joined = ami.wait_for("QueueCallerJoin", for_caller(caller))
    await phones.call("12345", keys("6", first_ms=KEY_MS), hold_ms=30_000, caller=caller)
    assert (await asyncio.wait_for(joined, 30)).get("Queue") == "q-general"  # never q-leader
    await hang_up_all(ami)
    ticket = await closed_ticket(tickets, caller, timeout=40)
    assert (ticket.session, ticket.queue) == (SESSION, "general")  # the session's caller, served by the hotline
    await ami.action({"Action": "QueuePause", "Interface": f"PJSIP/{LEADER}", "Queue": asterisk_queue(LEADER_QUEUE),
                      "Paused": "false"})
    await leader_queue_is(ami, {LEADER: "", OTHER: SESSION_REASON})

    sessions_file.write_text(session_yaml(start - timedelta(days=1)), encoding="utf-8")  # moved to yesterday
    await reload(engine)
    await leader_queue_is(ami, {LEADER: SESSION_REASON, OTHER: SESSION_REASON})  # the queue rings nobody now
    caller = phones.next_caller()
    joined = ami.wait_for("QueueCallerJoin", for_caller(caller))
    await phones.call("12345", keys("6", first_ms=KEY_MS), hold_ms=30_000, caller=caller)
    assert (await asyncio.wait_for(joined, 30)).get("Queue") == "q-general"
    await hang_up_all(ami)  # while it waits: a leader logged in and ready was not rung
    ticket = await closed_ticket(tickets, caller, timeout=40)
    assert (ticket.session, ticket.queue, ticket.disposition) == ("", "general", "abandoned_queue")
    assert ticket.ivr.nodes[:2] == ["main/caller", "main/greeting"]
    assert LEADER not in [a.agent for a in ticket.agents_rung]
    browser.wait(lambda _: not browser.find("#leader-session").is_displayed(), timeout=15)  # the next snapshot
    assert json.loads(browser.fetch("/wallboard.json")["text"])["leader_session"] is None  # none left today

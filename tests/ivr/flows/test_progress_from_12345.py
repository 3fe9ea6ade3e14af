"""The progress query from the 12345 main menu (issue 22): the offer to a caller with an open
ticket, key 4, the caller's own ticket first, 0 as an escape while keying, the department and
the reply notice, and how the lint counts it — the shipped main.yaml over the fake channel."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from flow_helpers import FakeChannel, call, compile_text, errors_of
from test_priority_flows import ListStore
from ivr.flows.base import OWN_TICKETS_WAIT
from ivr.flows.runner import run_call
from ivr.flows.simulator import InMemoryTickets
from ivr.core.route import QueueRoute
from ivr.engine import EarlierTicket, Engine
from ivr.hot_reload import LiveFlows, compile_config
from tickets.model import Deadline, Ticket

OWNER, STRANGER = "13800000000", "13900000000"
NUMBER = "20261201-12345-00017"
KEYED = NUMBER.replace("-", "")
MONDAY_10 = datetime(2026, 11, 23, 10, 0)


def ticket(status: str = "accepted", department: str = "") -> Ticket:
    return Ticket(linkedid="1700000000.1", line="12345", caller=OWNER, received="2026-11-20T09:00:00+08:00",
                  number=NUMBER, status=status, department=department, deadline=Deadline("2026-12-01", "7 working days"))


def recent(*tickets: tuple[str, bool]):  # type: ignore[no-untyped-def]
    async def look_up() -> list[tuple[str, bool]]:
        return list(tickets)
    return look_up


async def main_call(config_dir, catalog, channel: FakeChannel, *, caller: str = OWNER, status: str = "accepted",  # type: ignore[no-untyped-def]
                    department: str = "", caller_tickets=None):
    flows = compile_config(config_dir, catalog, environ={}, strict_lint=True)
    return await run_call(flows, call("12345", caller), channel, now=lambda: MONDAY_10,
                          tickets=InMemoryTickets([ticket(status, department)]), caller_tickets=caller_tickets)


def path(record) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(v.node, v.outcome) for v in record.visits]


async def test_given_an_open_ticket_then_the_offer_replaces_the_greeting_and_4_reads_the_callers_own_ticket(config_dir, catalog):
    channel = FakeChannel(["4", ""])  # 4 in the menu, then silence in the after-menu
    record = await main_call(config_dir, catalog, channel, status="handling", department="省民政厅",
                             caller_tickets=recent((NUMBER, True)))
    sounds = channel.sounds()
    assert sounds[:2] == ["open_ticket_offer", "main_menu"] and "welcome_12345" not in sounds
    assert ("say_digits", KEYED) in channel.calls and "progress_query_prompt" not in sounds  # nothing keyed
    status = sounds.index("ticket_status_handling")
    assert sounds[status + 1: status + 3] == ["department_civil_affairs", "ticket_due"]
    assert "ticket_reply_sent" not in sounds
    # the status first, the number last (nothing keyed to confirm): right before the after-menu
    said = [c[0] if c[0] == "say_digits" else c[1].removeprefix("ivr12345/") for c in channel.calls
            if c[0] in ("stream", "get_data", "say_digits")]
    assert said[said.index("ticket_status_handling") - 1] == "main_menu", said
    number = said.index("ticket_number_is")
    assert said[number:number + 3] == ["ticket_number_is", "say_digits", "progress_after_menu"], said
    assert path(record)[:4] == [("caller", "case 2"), ("offer", "played"), ("menu", "key 4"), ("progress", "own ticket")]


async def test_given_no_open_ticket_then_the_greeting_is_heard_and_4_asks_for_a_number(config_dir, catalog):
    channel = FakeChannel(["4", KEYED, ""])
    record = await main_call(config_dir, catalog, channel, status="closed", department="某个不在目录里的单位",
                             caller_tickets=recent())
    sounds = channel.sounds()
    assert sounds[:3] == ["welcome_12345", "main_menu", "progress_query_prompt"] and "open_ticket_offer" not in sounds
    closed = sounds.index("ticket_status_closed")
    assert sounds[closed + 1] == "ticket_due" and sounds[-3:] == ["ticket_reply_sent", "progress_after_menu", "goodbye"]
    assert not any(s.startswith("department_") for s in sounds)  # a department without a prompt: skipped
    assert path(record)[0] == ("caller", "else") and ("progress", "found") in path(record)


async def test_given_another_callers_number_keyed_then_it_sounds_exactly_like_an_unknown_one(config_dir, catalog):
    stranger, unknown = FakeChannel(["4", KEYED, KEYED]), FakeChannel(["4", "20261201123459999", "20261201123459999"])
    a = await main_call(config_dir, catalog, stranger, caller=STRANGER)
    b = await main_call(config_dir, catalog, unknown, caller=STRANGER)
    assert stranger.sounds() == unknown.sounds()
    assert stranger.sounds()[-3:] == ["ticket_not_found", "progress_query_prompt", "ticket_not_found_end"]
    assert path(a) == path(b) and a.route == QueueRoute("general")


@pytest.mark.parametrize("keyed", ["0", "0#", "01"])
async def test_given_0_as_the_first_key_while_keying_then_the_caller_reaches_a_seat_with_the_one_key_priority(
        config_dir, catalog, keyed: str):
    channel = FakeChannel(["4", keyed])
    record = await main_call(config_dir, catalog, channel, caller=STRANGER)
    assert record.route == QueueRoute("general", one_key=True)
    assert path(record)[-2:] == [("progress", "key 0"), ("human", "route")]


async def test_given_a_look_up_slower_than_its_bound_then_the_caller_hears_the_greeting(config_dir, catalog):
    async def hanging() -> list[tuple[str, bool]]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    channel = FakeChannel([""])
    record = await asyncio.wait_for(main_call(config_dir, catalog, channel, caller_tickets=hanging), 10 * OWN_TICKETS_WAIT)
    assert channel.sounds()[0] == "welcome_12345" and path(record)[0] == ("caller", "else")


def test_the_lint_counts_key_4_as_the_callers_choice_and_the_offer_within_the_budget(config_dir, catalog):
    flows = compile_config(config_dir, catalog, environ={}, strict_lint=True)
    report = flows.lint["main"]
    assert report.worst_seconds == pytest.approx(OWN_TICKETS_WAIT + 4 + 4 + 1)  # the greeting (4 s) is the longer
    assert "progress" not in [s.node for s in report.worst_path]


SELF_SERVICE = """
    budget: 15s
    nodes:
      menu:
        type: menu
        prompt: main_menu
        keys: {"4": query, "0": agent}
        timeout: 1s
        retries: 0
        on_exhausted: agent
      query:
        type: ticket_query
        min_digits: 17
        timeout: 5s
        ESCAPE
        next: agent
        on_not_found: agent
        on_error: agent
        on_exhausted: agent
      agent: {type: queue, queue: general}
    """


def test_a_query_without_a_human_escape_counts_whole_and_one_whose_escape_hangs_up_is_refused(bare_config, catalog):
    assert errors_of(bare_config, catalog, SELF_SERVICE.replace("ESCAPE", "on_human: agent")) == []
    flows = compile_text(bare_config, catalog, SELF_SERVICE.replace("ESCAPE", "on_human: agent"))
    assert [(s.node, s.label) for s in flows.lint["t"].worst_path][-1] == ("query", "self-service, 0 reaches a human")
    without = errors_of(bare_config, catalog, SELF_SERVICE.replace("        ESCAPE\n", ""))
    assert len(without) == 1 and "exceeds budget 15s: menu[key 4] 5s → query[found]" in without[0]
    hangs_up = errors_of(bare_config, catalog, SELF_SERVICE.replace("ESCAPE", "on_human: bye")
                         + "  bye: {type: hangup, prompt: goodbye}\n")
    assert any("ticket_query 'query': key 0 can end without a human" in e for e in hangs_up), hangs_up


@pytest.mark.parametrize(("earlier", "first"), [
    (EarlierTicket(NUMBER, True, case=True), "open_ticket_offer"),  # answered, or moved on by a department
    (EarlierTicket(NUMBER, True, case=False), "welcome_12345"),  # a stub of a call that ended in the menus
    (EarlierTicket(NUMBER, False, case=True), "welcome_12345"),  # 办结
])
async def test_the_engine_offers_the_query_only_for_an_open_case(config_dir, catalog, earlier: EarlierTicket, first: str):
    async def repeat_of(_caller: str, _call: str) -> list[EarlierTicket]:
        return [earlier]

    engine = Engine(LiveFlows(lambda: compile_config(config_dir, catalog, environ={})), ListStore(), repeat_of=repeat_of,
                    tickets=InMemoryTickets([ticket()]))
    channel = FakeChannel([""])
    await engine.handle_call(call("12345", OWNER), channel)
    assert channel.sounds()[0] == first

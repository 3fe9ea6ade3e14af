"""The number plan on the real Asterisk: a merged number's caller hears the transitional notice
and then the 12345 flow (and no notice once ``announce_until`` has passed); a number outside
the plan is refused unanswered; switching the plan to the Xuancheng profile makes a seven-digit
department number answer."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from ivr.ami.client import AmiClient
from testbed.bed import TestBed
from testbed.calls import AgiTrace, Phones, call_record, for_caller, hang_up_all, only_seat, run_ivr
from testbed.sipp import Key

pytestmark = pytest.mark.usefixtures("no_call_outlives_the_test")


async def reload_all(engine: TestBed) -> None:
    """Asterisk's dialplan (the numbers it answers) and the engine, both from the config now."""
    await engine.apply_config()
    assert engine.state
    code, out = await run_ivr(engine.state, "reload")
    assert code == 0, out


@pytest.fixture
async def restored(engine: TestBed, config_dir: Path) -> AsyncIterator[None]:
    """Whatever a test writes into the plan, numbers.yaml or subcenters.yaml, the next one finds them as shipped."""
    files = {p: p.read_text(encoding="utf-8")
             for p in [config_dir / "numbers.yaml", config_dir / "subcenters.yaml", *(config_dir / "plans").glob("*.yaml")]}
    yield
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    await reload_all(engine)


def close_now(config_dir: Path, entry_end: str) -> None:
    """Give the sub-center whose subcenters.yaml entry ends in ``entry_end`` hours that exclude now."""
    from datetime import datetime

    subcenters = config_dir / "subcenters.yaml"
    later = datetime.now() + timedelta(hours=2)
    hours = f'hours: {{day: any, time: "{later:%H}:00-{(later + timedelta(hours=1)):%H}:00"}}'
    text = subcenters.read_text(encoding="utf-8")
    assert entry_end in text
    subcenters.write_text(text.replace(entry_end, f"{entry_end[:-1]}, {hours}}}"), encoding="utf-8")


async def heard(phones: Phones, ami: AmiClient, redis: Any, dialed: str) -> tuple[list[str], dict[str, Any]]:
    """A caller dials ``dialed`` and presses 0 in the 12345 menu; what they heard, and the record."""
    caller = phones.next_caller()
    trace = AgiTrace(ami, caller)
    joined = ami.wait_for("QueueCallerJoin", for_caller(caller))
    sipp, _ = await phones.call(dialed, [], hold_ms=25_000, caller=caller)  # no key: the menu times out
    await asyncio.wait_for(joined, 40)
    record = await call_record(redis, caller)
    return trace.sounds(), record


async def test_given_a_merged_number_then_the_caller_hears_its_notice_then_the_12345_flow(
    engine: TestBed, phones: Phones, ami: AmiClient, redis: Any,
) -> None:
    sounds, record = await heard(phones, ami, redis, "12365")
    # the notice greets the caller instead of the 12345 greeting (main's after_notice: menu)
    assert sounds[:2] == ["ivr12345/merged_notice__12365", "ivr12345/main_menu"]
    assert record["dialed"] == "12365" and record["flow"] == "main"
    assert [v["node"] for v in record["visits"]][:2] == ["merged_notice", "menu"]


async def test_given_the_transition_is_over_then_the_merged_number_goes_straight_to_the_12345_flow(
    engine: TestBed, phones: Phones, ami: AmiClient, redis: Any, config_dir: Path, restored: None,
) -> None:
    plan = config_dir / "plans" / "anhui-2021.yaml"
    text = plan.read_text(encoding="utf-8")
    line = next(ln for ln in text.splitlines() if ln.lstrip().startswith('"12365"'))
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    plan.write_text(text.replace(line, line.replace("announce_until: 2027-06-30", f"announce_until: {yesterday}")),
                    encoding="utf-8")
    assert engine.state
    code, out = await run_ivr(engine.state, "reload")
    assert code == 0, out
    sounds, record = await heard(phones, ami, redis, "12365")
    assert sounds[0] == "ivr12345/welcome_12345" and "ivr12345/merged_notice__12365" not in sounds


async def test_given_a_number_outside_the_plan_then_asterisk_refuses_it_unanswered(
    engine: TestBed, phones: Phones, ami: AmiClient,
) -> None:
    caller = phones.next_caller()
    hangup = ami.wait_for("Hangup", for_caller(caller))
    sipp, _ = await phones.call("3022782", [], hold_ms=5000, caller=caller)
    event = await asyncio.wait_for(hangup, 20)
    assert event["Cause"] == "1"  # unallocated number, before any answer
    assert await sipp.wait(20) != 0  # sipp expected a 200 OK and got 404


async def test_given_the_xuancheng_plan_then_its_seven_digit_number_is_answered_with_its_notice(
    engine: TestBed, phones: Phones, ami: AmiClient, redis: Any, config_dir: Path, restored: None,
) -> None:
    numbers = config_dir / "numbers.yaml"
    numbers.write_text(numbers.read_text(encoding="utf-8").replace("plan: anhui-2021", "plan: xuancheng-2016"),
                       encoding="utf-8")
    await reload_all(engine)
    sounds, record = await heard(phones, ami, redis, "3022782")
    assert sounds[:2] == ["ivr12345/merged_notice__3022782", "ivr12345/main_menu"]
    assert record["dialed"] == "3022782"


async def test_given_12333_then_key_1_lands_in_its_expert_queue(
    engine: TestBed, phones: Phones, ami: AmiClient, redis: Any,
) -> None:
    caller = phones.next_caller()
    joined = ami.wait_for("QueueCallerJoin", for_caller(caller))
    await phones.call("12333", [Key("1", 1500)], hold_ms=20_000, caller=caller)
    assert (await asyncio.wait_for(joined, 30))["Queue"] == "q-expert-hrss"  # staffed around the clock in tests
    record = await call_record(redis, caller)
    assert record["flow"] == "hrss" and record["route"]["queue"] == "expert-hrss"


async def test_given_a_dual_line_without_a_flow_of_its_own_then_it_queues_at_once_and_its_ticket_names_the_line(
    engine: TestBed, ami: AmiClient, tickets: Any,
) -> None:
    """双号并行 without a flow (docs/numbers.md): 12369 straight to the 7×24 general seats, 12348 to
    its legal experts (its skill); no menu, no prompt before the queue; each ticket is counted on
    its line, with the mode and the line's title. (Local-channel callers: the ticket is found by
    the call's linkedid, as such a caller leaves no caller number on it.)"""
    from testbed.calls import local_call, until

    lines = {"12369": "general", "12348": "expert-legal"}
    assert all(not engine.settings.numbers[line].flow and engine.settings.numbers[line].mode == "dual" for line in lines)
    callers = {line: Phones.next_caller() for line in lines}
    traces = {line: AgiTrace(ami, caller) for line, caller in callers.items()}
    joined = {line: ami.wait_for("QueueCallerJoin", for_caller(caller)) for line, caller in callers.items()}
    for line, caller in callers.items():
        await local_call(ami, line, caller)
    linkedids = {}
    for line, queue in lines.items():
        join = await asyncio.wait_for(joined[line], 20)
        assert join["Queue"] == f"q-{queue}"
        linkedids[line] = join["Linkedid"]
        await ami.action({"Action": "Hangup", "Channel": join["Channel"]})  # the caller gives up waiting
    for line, queue in lines.items():
        ticket = await until(lambda: closed(tickets, linkedids[line]), 30)  # noqa: B023 (awaited in this iteration)
        assert (ticket.line, ticket.line_mode, ticket.line_title) == (line, "dual", engine.settings.numbers[line].title)
        assert ticket.queue == queue and not ticket.ivr.keys and ticket.disposition == "abandoned_queue"
        assert traces[line].sounds() == [], traces[line].sounds()  # nothing played before the queue


async def closed(tickets: Any, linkedid: str) -> Any:
    """The call's ticket once it is closed (None before)."""
    ticket = await tickets.get(linkedid)
    return ticket if ticket is not None and ticket.disposition else None


async def test_given_the_xuancheng_plan_then_12366_goes_to_the_citys_own_tax_line_not_the_provinces(
    engine: TestBed, phones: Phones, ami: AmiClient, config_dir: Path, restored: None,
) -> None:
    numbers = config_dir / "numbers.yaml"
    numbers.write_text(numbers.read_text(encoding="utf-8").replace("plan: anhui-2021", "plan: xuancheng-2016"),
                       encoding="utf-8")
    await reload_all(engine)
    caller = phones.next_caller()
    dialed = ami.wait_for("DialBegin", lambda e: for_caller(caller)(e) and "city-tax" in e.get("DestChannel", ""))
    city = await phones.subcenter("city-tax", caller)
    await phones.call("12366", [], hold_ms=8000, caller=caller)
    assert (await asyncio.wait_for(dialed, 30))["DialString"] == "12366@city-tax"
    assert await city.wait(30) == 0, city.output()


async def test_given_an_agent_blind_transfers_a_call_to_12360_then_the_customs_gateway_takes_it_and_the_ticket_says_so(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: Any,
) -> None:
    from testbed.calls import closed_ticket

    caller = phones.next_caller()
    async with only_seat(engine, ami, "agent1001"):
        transferred = ami.wait_for("BlindTransfer", lambda e: e.get("Extension") == "12360")
        customs = await phones.subcenter("customs", caller)
        seat = await phones.agent("agent1001", caller, mode="transfer", talk_ms=1000, refer_to="12360")
        sipp, _ = await phones.call("12345", [Key("0", 1500)], hold_ms=15_000, caller=caller)
        assert (await asyncio.wait_for(transferred, 40))["Result"] == "Success"
        assert await seat.wait(20) == 0, seat.output()  # its leg released after the transfer
        assert await customs.wait(30) == 0, customs.output()  # the citizen reached 12360's gateway
        ticket = await closed_ticket(tickets, caller, timeout=40)
        assert ticket.disposition == "transferred" and ticket.agent == "agent1001"
        assert [(t.kind, t.number) for t in ticket.transfers][:2] == [("blind", "12360"), ("subcenter", "12360")]
        assert ticket.transfers[1].result == "ANSWER"


@pytest.fixture
async def no_callback_left(redis: Any) -> AsyncIterator[None]:
    """A callback a test books but does not see through is withdrawn after it: later tests'
    citizens call from the port a callback would ring."""
    from ivr.store import keyspace

    yield
    await redis.delete(keyspace.CALLBACKS)
    async for key in redis.scan_iter(match=keyspace.callback_number("*")):
        await redis.delete(key)


async def test_given_the_tax_line_is_busy_then_the_caller_is_told_so_and_a_2_books_a_callback(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: Any, no_callback_left: None,
) -> None:
    from testbed.calls import closed_ticket

    caller = phones.next_caller()
    told = ami.wait_for("Newexten", lambda e: for_caller(caller)(e) and e.get("Application") == "Playback"
                        and e.get("AppData", "").startswith("ivr12345/subcenter_"))
    booked = ami.wait_for("UserEvent", lambda e: for_caller(caller)(e) and e.get("UserEvent") == "IvrCallback")
    gateway = await phones.subcenter("tax", caller, "busy")
    # 2 while the offer plays (the busy answer and "正忙" take about 4 s)
    sipp, _ = await phones.call("12366", [Key("2", 7000)], hold_ms=30_000, caller=caller)
    assert (await asyncio.wait_for(told, 30))["AppData"] == "ivr12345/subcenter_busy"
    request = await asyncio.wait_for(booked, 30)
    assert (request["Stage"], request["Queue"], request["Number"]) == ("requested", "general", caller)
    assert await sipp.wait(30) == 0, sipp.output()
    assert await gateway.wait(20) == 0, gateway.output()
    ticket = await closed_ticket(tickets, caller, timeout=30)
    assert ticket.disposition == "transfer_failed" and ticket.after_transfer.startswith("callback requested")
    assert ticket.transfers[0].result == "BUSY" and ticket.callback and ticket.callback["queue"] == "general"


@pytest.mark.parametrize("line", ["110", "119", "120", "122"])
async def test_given_an_agent_links_an_emergency_caller_to_an_emergency_line_then_the_trunk_rings_and_the_ticket_says_linked(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: Any, line: str,
) -> None:
    """应急联动 from the seat: the agent's REFER to 110 (police), 119 (fire), 120 (ambulance) or 122
    (traffic police) dials that number over the emergency trunk; the centre answers; the ticket
    says emergency_linked, with the number."""
    from testbed.calls import closed_ticket

    caller = phones.next_caller()
    async with only_seat(engine, ami, "agent1001"):
        # the emergency trunk's far end: it answers, takes the case and hangs up
        centre = await phones.subcenter("emergency", caller, mode="hangup")
        seat = await phones.agent("agent1001", caller, mode="transfer", talk_ms=1000, refer_to=line)
        dialed = ami.wait_for("DialBegin", lambda e: for_caller(caller)(e) and e.get("DialString") == f"{line}@emergency")
        await phones.call("12345", [Key("0", 1500)], hold_ms=15_000, caller=caller)
        await asyncio.wait_for(dialed, 40)
        assert await centre.wait(30) == 0, centre.output()
        assert await seat.wait(20) == 0, seat.output()
        ticket = await closed_ticket(tickets, caller, timeout=40)
        assert ticket.disposition == "emergency_linked" and ticket.emergency_linked
        link = next(t for t in ticket.transfers if t.kind == "emergency")
        assert (link.number, link.target, link.result) == (line, "emergency", "ANSWER") and link.at


async def test_given_a_caller_presses_the_emergency_key_then_the_emergency_trunk_rings_and_the_ticket_says_linked(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: Any,
) -> None:
    """应急联动 from the 12345 menu: 9 (said in the menu with 110/119/120/122) links the caller to
    110 over the emergency trunk; the ticket has the time, the target and the result."""
    from testbed.calls import closed_ticket

    caller = phones.next_caller()
    police = await phones.subcenter("emergency", caller)  # the emergency trunk's far end
    dialed = ami.wait_for("DialBegin", lambda e: for_caller(caller)(e) and e.get("DialString") == "110@emergency")
    sipp, _ = await phones.call("12345", [Key("9", 5000)], hold_ms=8000, caller=caller)  # 9 during the menu
    await asyncio.wait_for(dialed, 30)
    assert await police.wait(30) == 0, police.output()
    ticket = await closed_ticket(tickets, caller, timeout=40)
    assert ticket.disposition == "emergency_linked" and ticket.emergency_linked
    assert ticket.ivr.keys == ["9"] and ticket.ivr.route == "transfer"
    link = next(t for t in ticket.transfers if t.kind == "emergency")
    assert (link.number, link.target, link.result) == ("110", "emergency", "ANSWER") and link.at


async def test_given_the_emergency_trunk_is_down_then_the_emergency_caller_is_told_at_once_and_a_seat_answers(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: Any,
) -> None:
    """Issue 22 item 8: the emergency trunk is qualified too. With its gateway down, 9 (110) is
    not rung into a dead line: Dial fails at once (CHANUNAVAIL), the caller hears so and waits in
    the general queue (the trunk's fallback), where a seat answers; the ticket has the attempt."""
    from testbed.calls import closed_ticket, hang_up_all, trunk_state

    caller = phones.next_caller()
    await trunk_state(engine, "emergency", reachable=False)  # nothing listens on the trunk's port
    await phones.seats("general", caller)
    connected = ami.wait_for("AgentConnect", for_caller(caller))
    sipp, _ = await phones.call("12345", [Key("9", 5000)], hold_ms=30_000, caller=caller)  # 9 during the menu
    await asyncio.wait_for(connected, 40)
    await hang_up_all(ami)
    assert await sipp.wait(20) == 0, sipp.output()
    ticket = await closed_ticket(tickets, caller, timeout=40)
    assert ticket.ivr.keys == ["9"] and not ticket.emergency_linked and ticket.queue == "general" and ticket.agent
    [link] = [t for t in ticket.transfers if t.kind == "emergency"]
    assert (link.number, link.target, link.result, link.then) == ("110", "emergency", "CHANUNAVAIL", "queue general")
    assert (datetime.fromisoformat(ticket.queued) - datetime.fromisoformat(link.at)).total_seconds() < 10  # the notice only


async def test_given_the_tax_line_is_closed_now_then_the_caller_is_told_so_and_the_ticket_says_closed(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: Any, config_dir: Path, restored: None,
) -> None:
    """Hours that exclude now (in the test's own config copy): 12366 is not dialed; the caller
    hears subcenter_closed and the fallback offer, 1 takes the 12345 queue."""
    from testbed.calls import closed_ticket

    close_now(config_dir, "port: 5071}")
    await reload_all(engine)
    caller = phones.next_caller()
    told = ami.wait_for("Newexten", lambda e: for_caller(caller)(e) and e.get("Application") == "Playback"
                        and e.get("AppData", "").startswith("ivr12345/subcenter_"))
    dialed = ami.wait_for("DialBegin", lambda e: for_caller(caller)(e) and "tax" in e.get("DestChannel", ""))
    joined = ami.wait_for("QueueCallerJoin", for_caller(caller))
    sipp, _ = await phones.call("12366", [Key("1", 8000)], hold_ms=12_000, caller=caller)  # 1 during the offer
    assert (await asyncio.wait_for(told, 30))["AppData"] == "ivr12345/subcenter_closed"
    assert (await asyncio.wait_for(joined, 30))["Queue"] == "q-general"
    assert not dialed.done()  # the closed line was never dialed
    await hang_up_all(ami)  # seen enough: the ticket closes now, not when the caller's hold runs out
    ticket = await closed_ticket(tickets, caller, timeout=40)
    assert ticket.disposition == "transfer_failed"
    assert [(t.kind, t.target, t.number, t.result, t.then) for t in ticket.transfers] == [
        ("subcenter", "tax", "12366", "CLOSED", "queue general")]
    assert ticket.after_transfer.startswith("queue general")
    dialed.cancel()


async def test_given_customs_is_closed_now_then_an_agents_blind_transfer_to_12360_is_not_dialed_and_the_ticket_says_closed(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: Any, config_dir: Path, restored: None,
) -> None:
    """The agent's own REFER (no engine in the move): the target extension reads the closed
    state the engine published into Asterisk's globals, so the caller hears subcenter_closed and
    the offer and goes to the 12345 queue; 12360's gateway is never dialed."""
    from testbed.calls import closed_ticket
    from transfer.ami import closed_variable

    close_now(config_dir, "port: 5072}")
    await reload_all(engine)
    async with asyncio.timeout(90):  # the engine publishes after its reload (or at the minute)
        while (await ami.action({"Action": "Getvar", "Variable": closed_variable("customs")})).get("Value") != "1":
            await asyncio.sleep(0.5)
    caller = phones.next_caller()
    async with only_seat(engine, ami, "agent1001"):
        transferred = ami.wait_for("BlindTransfer", lambda e: e.get("Extension") == "12360")
        told = ami.wait_for("Newexten", lambda e: for_caller(caller)(e) and e.get("Application") == "Playback"
                            and e.get("AppData", "").startswith("ivr12345/subcenter_"))
        dialed = ami.wait_for("DialBegin", lambda e: "customs" in e.get("DestChannel", ""))
        joined = ami.wait_for("QueueCallerJoin", lambda e: for_caller(caller)(e) and e.get("Queue") == "q-general")
        seat = await phones.agent("agent1001", caller, mode="transfer", talk_ms=1000, refer_to="12360")
        sipp, _ = await phones.call("12345", [Key("0", 1500)], hold_ms=25_000, caller=caller)
        assert (await asyncio.wait_for(transferred, 40))["Result"] == "Success"
        assert await seat.wait(20) == 0, seat.output()
        assert (await asyncio.wait_for(told, 30))["AppData"] == "ivr12345/subcenter_closed"
        await asyncio.wait_for(joined, 30)  # no key during the offer: the 12345 queue
        assert not dialed.done()  # customs' gateway was never rung
        await hang_up_all(ami)  # seen enough: the ticket closes now, not when the caller's hold runs out
        ticket = await closed_ticket(tickets, caller, timeout=40)
        assert [(t.kind, t.number, t.result) for t in ticket.transfers][:2] == [
            ("blind", "12360", ticket.transfers[0].result), ("subcenter", "12360", "CLOSED")]
        assert ticket.transfers[1].then.startswith("queue general")
        dialed.cancel()

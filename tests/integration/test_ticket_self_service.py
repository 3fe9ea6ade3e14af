"""What a caller meets of their tickets on the phone: the progress query reads back their own
ticket's number, status and deadline (and nothing of another caller's), and a caller with a
recent ticket is flagged to the dialplan as a repeat caller."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ivr.ami.client import AmiClient
from ivr.config import load_config
from ivr.hot_reload import catalog_loader, default_prompts_dir
from ivr.flows.progress import date_prompts
from tickets.store import TicketStore
from testbed.bed import TestBed
from testbed.console import ConsoleSite, post_dept_event
from testbed.calls import AgiTrace, Phones, call_record, closed_ticket, hang_up_all, until
from testbed.sipp import Key, keys
from tickets.model import Ticket
from tickets.store import PHASE_REV
from tickets.settings import department_key


pytestmark = pytest.mark.usefixtures("no_call_outlives_the_test")


async def earlier_ticket(phones: Phones, tickets: TicketStore, caller: str) -> Ticket:
    """A first call from ``caller`` (hung up in the greeting): its ticket is closed."""
    sipp, _ = await phones.call("12345", [], hold_ms=1500, caller=caller)
    assert await sipp.wait(20) == 0, sipp.output()
    return await closed_ticket(tickets, caller)


def query_keys(number: str) -> list[Key]:
    """8000's first menu: 2 (the progress query), then the number's digits and #."""
    digits = number.replace("-", "")
    return [Key("2", 1500)] + [Key(d, 2500 if i == 0 else 250) for i, d in enumerate(digits)] + [Key("#", 250)]


async def test_given_a_callers_ticket_when_they_key_its_number_then_they_hear_its_status_and_deadline(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore,
) -> None:
    caller = phones.next_caller()
    ticket = await earlier_ticket(phones, tickets, caller)
    assert ticket.deadline is not None
    trace = AgiTrace(ami, caller)
    read_out = ami.wait_for("AGIExecStart", lambda e: e.get("CallerIDNum") == caller
                            and "ivr12345/progress_after_menu" in e.get("Command", ""))

    sipp, _ = await phones.call("8000", query_keys(ticket.number), hold_ms=60_000, caller=caller)
    await asyncio.wait_for(read_out, 90)  # the readout is over: the next menu begins

    commands = [c.command for c in trace.commands]
    assert f"SAY DIGITS {ticket.number.replace('-', '')} \"\"" in commands or any(
        c.startswith(f"SAY DIGITS {ticket.number.replace('-', '')}") for c in commands)
    sounds = trace.sounds()
    assert sounds.index("ivr12345/ticket_number_is") < sounds.index("ivr12345/ticket_status_accepted") \
        < sounds.index("ivr12345/ticket_due")
    catalog = catalog_loader(default_prompts_dir(engine.loaded.config_dir))()
    due = [catalog.sound(p) for p in date_prompts(date.fromisoformat(ticket.deadline.due[:10]))]
    after_due = sounds[sounds.index("ivr12345/ticket_due") + 1:]
    assert after_due[:len(due)] == due, sounds  # 二零二六年十二月…日, from prompts
    assert "ivr12345/ticket_not_found" not in sounds


async def test_given_another_callers_ticket_when_its_number_is_keyed_then_only_not_found_is_heard(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore,
) -> None:
    owner, stranger = phones.next_caller(), phones.next_caller()
    ticket = await earlier_ticket(phones, tickets, owner)
    trace = AgiTrace(ami, stranger)
    not_found = ami.wait_for("AGIExecStart", lambda e: e.get("CallerIDNum") == stranger
                             and "ivr12345/ticket_not_found" in e.get("Command", ""))

    sipp, _ = await phones.call("8000", query_keys(ticket.number), hold_ms=60_000, caller=stranger)
    await asyncio.wait_for(not_found, 60)

    sounds = trace.sounds()
    assert "ivr12345/ticket_number_is" not in sounds and "ivr12345/ticket_due" not in sounds
    assert not any(c.command.startswith("SAY DIGITS") for c in trace.commands)


async def test_given_a_caller_with_a_recent_ticket_then_the_new_ticket_links_it_and_the_dialplan_sees_the_flag(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore,
) -> None:
    caller = phones.next_caller()
    first = await earlier_ticket(phones, tickets, caller)
    trace = AgiTrace(ami, caller)
    joined = ami.wait_for("QueueCallerJoin", lambda e: e.get("CallerIDNum") == caller)

    sipp, _ = await phones.call("12345", keys("0", first_ms=500), hold_ms=5000, caller=caller)
    event = await asyncio.wait_for(joined, 30)
    flag = await ami.action({"Action": "Getvar", "Channel": event["Channel"], "Variable": "IVR_REPEAT_CALLER"})
    priority = await ami.action({"Action": "Getvar", "Channel": event["Channel"], "Variable": "QUEUE_PRIO"})
    assert flag.get("Value") == "1"
    assert priority.get("Value") == str(engine.settings.priority.repeat)  # raised in the queue
    assert any(f"IVR_REPEAT_OF={first.number}" in c.command for c in trace.commands)
    assert await sipp.wait(30) == 0, sipp.output()

    async def second() -> Any:
        found = [t for t in await tickets.recent_for_caller(caller, 0) if t.linkedid != first.linkedid]
        return found[0] if found and found[0].disposition else None

    ticket = await until(second, timeout=30)
    assert ticket.repeat_of == [first.number]


async def assign(tickets: TicketStore, ticket: Ticket, department: str) -> None:
    """The hotline assigns a closed call's ticket to ``department``, as the desk's amend does: the
    stored doc with its 承办单位, written as the next revision through the store (no raw Redis)."""
    stored = await tickets.get(ticket.linkedid)
    assert stored is not None
    stored.department = department
    rev = max(await tickets.revision(ticket.linkedid), PHASE_REV["closed"]) + 1
    await tickets.write(stored, f"assigned:{rev}", rev)
    await tickets.drain()


async def write_back(console: ConsoleSite, config_dir: Path, ticket: Ticket, event: dict[str, str]) -> None:
    """The department's system sends ``event`` to the engine's console, signed with its key."""
    name = "civil-affairs"
    key = department_key(load_config(config_dir).settings.tickets.departments[name]).decode()
    status, body, _ = await asyncio.to_thread(post_dept_event, console.url, ticket.number, event, dept=name, key=key)
    assert status == 200, body


def started(ami: AmiClient, caller: str, prompt: str) -> "asyncio.Future[Any]":
    return ami.wait_for("AGIExecStart", lambda e: e.get("CallerIDNum") == caller and f"ivr12345/{prompt}" in e.get("Command", ""))


async def test_given_an_open_ticket_when_its_caller_dials_12345_and_keys_4_then_they_hear_it_handled_and_later_closed_and_a_stranger_hears_not_found(  # noqa: E501
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore, redis: Any, console: ConsoleSite,
    config_dir: Path,
) -> None:
    """Issue 22: the offer instead of the greeting, key 4, the caller's own ticket first (no
    keying: its status first, its number last); 办理中 with its department, then 已办结 with the
    reply notice, each as the department wrote it back through the engine's console (signed); a
    caller without a ticket hears no offer and, keying the owner's number, what an unknown number sounds like;
    0 while keying (0#) takes them to a seat with the one-key priority."""
    owner, stranger = phones.next_caller(), phones.next_caller()
    ticket = await earlier_ticket(phones, tickets, owner)
    await assign(tickets, ticket, "省民政厅")
    await write_back(console, config_dir, ticket, {"id": f"{ticket.number}-1", "event": "handling"})

    trace = AgiTrace(ami, owner)
    number = ami.wait_for("AGIExecStart", lambda e: e.get("CallerIDNum") == owner
                          and e.get("Command", "").startswith("SAY DIGITS"))
    sipp, _ = await phones.call("12345", [Key("4", 2000)], hold_ms=90_000, caller=owner)
    await asyncio.wait_for(number, 60)  # status, department, then the number (last, nothing keyed): checked, hang up
    await hang_up_all(ami)
    sounds = trace.sounds()
    assert sounds[0] == "ivr12345/open_ticket_offer" and "ivr12345/welcome_12345" not in sounds, sounds
    assert "ivr12345/progress_query_prompt" not in sounds  # their own ticket, nothing keyed
    assert any(c.command.startswith(f"SAY DIGITS {ticket.number.replace('-', '')}") for c in trace.commands)
    status = sounds.index("ivr12345/ticket_status_handling")
    assert sounds[status + 1] == "ivr12345/department_civil_affairs", sounds
    assert sounds[-1] == "ivr12345/ticket_number_is" and sounds.count("ivr12345/ticket_number_is") == 1, sounds
    await sipp.wait(20)

    await write_back(console, config_dir, ticket, {"id": f"{ticket.number}-2", "event": "closed", "text": "已答复市民"})
    trace = AgiTrace(ami, owner)
    reply = started(ami, owner, "ticket_reply_sent")
    sipp, _ = await phones.call("12345", [Key("4", 2000)], hold_ms=90_000, caller=owner)
    await asyncio.wait_for(reply, 60)
    await hang_up_all(ami)
    sounds = trace.sounds()
    assert sounds[0] == "ivr12345/welcome_12345" and "ivr12345/open_ticket_offer" not in sounds, sounds  # none open now
    assert sounds.index("ivr12345/ticket_status_closed") < sounds.index("ivr12345/ticket_due") < len(sounds) - 1
    assert "ivr12345/ticket_status_handling" not in sounds
    await sipp.wait(20)

    trace = AgiTrace(ami, stranger)
    joined = ami.wait_for("QueueCallerJoin", lambda e: e.get("CallerIDNum") == stranger)
    # the owner's number, then 0# on the retry (after ticket_not_found, 4.3 s): a seat at once
    presses = [Key("4", 2000)] + query_keys(ticket.number)[1:] + [Key("0", 7000), Key("#", 300)]
    sipp, _ = await phones.call("12345", presses, hold_ms=90_000, caller=stranger)
    assert (await asyncio.wait_for(joined, 60))["Queue"] == "q-general"
    await hang_up_all(ami)
    sounds = trace.sounds()
    assert sounds[0] == "ivr12345/welcome_12345" and "ivr12345/open_ticket_offer" not in sounds, sounds
    assert "ivr12345/ticket_not_found" in sounds and "ivr12345/ticket_number_is" not in sounds, sounds
    assert not any(c.command.startswith("SAY DIGITS") for c in trace.commands)
    record = await call_record(redis, stranger)
    assert [(v["node"], v["outcome"]) for v in record["visits"]][-2:] == [("progress", "key 0"), ("human", "route")]
    assert record["route"]["one_key"] is True
    await sipp.wait(20)

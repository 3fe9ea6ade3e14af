"""The callback worker against a real Redis: one pending callback per number, and one engine per
attempt when several hear the same events (the AMI side is a recording stand-in)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any, AsyncIterator, cast

import pytest

from ivr.store import keyspace
from ivr.callback import CallbackWorker
from ivr.config import Settings, load_config
from tickets.store import TicketStore
from testbed.calls import until
from queues import callback as policy
from queues.callback import CallbackRequest
from tickets.model import Ticket

from ami_recorder import RecordingAmi

REPO = Path(__file__).resolve().parents[2]
KEY = b"callback-test-caller-key-0123"


def requested(linkedid: str, number: str, **more: str) -> dict[str, str]:
    return {"Event": "UserEvent", "UserEvent": "IvrCallback", "Stage": "requested", "Linkedid": linkedid,
            "Queue": "general", "Number": number, "QueuedAt": "1796000000.5", "Priority": "5", **more}


async def test_the_line_first_dialed_and_the_matter_go_to_the_stand_in_and_a_malformed_one_places_nothing(
    one: tuple[CallbackWorker, RecordingAmi, TicketStore],
) -> None:
    worker, ami, _ = one
    worker.on_event(requested("1796000000.21", "13900000021", Line="12369", Matter="report"))
    worker.on_event(requested("1796000000.22", "13900000022", Line="12345,IVR_X=1"))  # a second variable: refused
    worker.on_event(requested("1796000000.23", "13900000023", Matter="Report"))
    worker.on_event(requested("1796000000.24", "13900000024"))  # an older dialplan: the queue's rule, as before
    task = asyncio.create_task(worker.run())
    try:
        await until(lambda: len([a for a in ami.actions if a["Action"] == "Originate"]) == 2, 10)
        await asyncio.sleep(1.2)  # a pass more: nothing else is placed
    finally:
        task.cancel()
    originated = [dict(v.split("=", 1) for v in a["Variable"].split(",")) for a in ami.actions if a["Action"] == "Originate"]
    assert sorted(v["_IVR_CALLBACK_OF"] for v in originated) == ["1796000000.21", "1796000000.24"]
    first = next(v for v in originated if v["_IVR_CALLBACK_OF"] == "1796000000.21")
    assert (first["_IVR_CALLBACK_LINE"], first["_IVR_CALLBACK_MATTER"]) == ("12369", "report")
    plain = next(v for v in originated if v["_IVR_CALLBACK_OF"] == "1796000000.24")
    assert "_IVR_CALLBACK_LINE" not in plain and "_IVR_CALLBACK_MATTER" not in plain


async def test_two_engines_hearing_one_request_place_one_stand_in_and_a_second_request_of_the_number_waits(
    redis_url: str, tmp_path: Path,
) -> None:
    settings = load_config(REPO / "config", environ={}).settings
    tickets = TicketStore(redis_url, tmp_path / "spool", name="t", retention_days=1, caller_key=KEY)
    amis = [RecordingAmi(), RecordingAmi()]
    workers = [CallbackWorker(settings, tickets, redis_url, KEY, lambda a=ami: a) for ami in amis]
    try:
        for w in workers:
            w.on_event(requested("1796000000.11", "13900000001"))
            w.on_event(requested("1796000000.12", "13900000001"))  # the same number again: the first keeps its place
        tasks = [asyncio.create_task(w.run()) for w in workers]
        await asyncio.sleep(1.5)
        for t in tasks:
            t.cancel()
        originated = [a for ami in amis for a in ami.actions if a["Action"] == "Originate"]
        assert len(originated) == 1
        variables = dict(v.split("=", 1) for v in originated[0]["Variable"].split(","))
        assert variables["_IVR_CALLBACK_OF"] == "1796000000.11" and variables["__IVR_QUEUED_AT"] == "1796000000.5"
        assert variables["_IVR_CALLBACK_PRIO"] == "5" and variables["IVR_CALLBACK_NUMBER"] == "13900000001"
        assert originated[0]["Channel"] == "Local/cb@ivr-callback-queue/n"
    finally:
        for w in workers:
            await w.close()
        await tickets.close()


@pytest.fixture
async def one(redis_url: str, tmp_path: Path) -> AsyncIterator[tuple[CallbackWorker, RecordingAmi, TicketStore]]:
    """One engine's callback worker, the AMI it would ask, and the tickets it writes."""
    settings = load_config(REPO / "config", environ={}).settings
    tickets = TicketStore(redis_url, tmp_path / "spool", name="t", retention_days=1, caller_key=KEY)
    ami = RecordingAmi()
    worker = CallbackWorker(settings, tickets, redis_url, KEY, lambda: ami)
    yield worker, ami, tickets
    await worker.close()
    await tickets.close()


async def ticket_of(tickets: TicketStore, linkedid: str, caller: str) -> None:
    """The call's ticket, closed with a callback requested, as the tracker left it."""
    await tickets.write(Ticket(linkedid=linkedid, line="12345", caller=caller, received="2026-12-06T10:00:00+08:00",
                               disposition="callback"), "closed")
    await until(lambda: tickets.get(linkedid), 10)


async def callback_status(tickets: TicketStore, linkedid: str, status: str) -> Ticket:
    async def found() -> Ticket | None:
        t = await tickets.get(linkedid)
        return t if t and t.callback and t.callback.get("status") == status else None

    return cast(Ticket, await until(found, 10))


async def test_requests_from_numbers_that_may_not_be_called_back_place_nothing_and_leave_nothing_pending(
    one: tuple[CallbackWorker, RecordingAmi, TicketStore],
) -> None:
    """Every event value is the caller's to shape: an injected queue, call id or number never
    reaches an Originate, and nothing blocks the number for a day."""
    worker, ami, _ = one
    hostile = [
        requested("1796000000.1", "00441234567890"),  # abroad
        requested("1796000000.2", "13900000777&Local/110@ivr-transfers/n"),  # a dial string
        {**requested("1796000000.3", "13900000001"), "Queue": "vip"},  # a queue without callbacks
        requested("1796000000.4\r\nAction: Originate", "13900000002"),  # a forged call id
        {**requested("1796000000.5", "13900000003"), "QueuedAt": "1,IVR_CALLBACK_NUMBER=110"},  # a second variable
        requested("1796000000.6", "110"),
    ]
    for event in hostile:
        await worker._handle(event)
    await worker._place_due(time.time())
    assert ami.actions == []
    assert await worker.redis.hlen(keyspace.CALLBACKS) == 0
    for number in ("00441234567890", "13900000001", "13900000002", "13900000003"):
        assert not await worker.redis.exists(keyspace.callback_number(keyspace.caller_digest(number, KEY)))
    await worker._handle(requested("1796000000.7", "13900000004"))  # a callable number still gets its callback
    await worker._place_due(time.time())
    assert [a["Action"] for a in ami.actions] == ["Originate"]
    variables = dict(v.split("=", 1) for v in ami.actions[0]["Variable"].split(","))
    assert variables["IVR_CALLBACK_NUMBER"] == "13900000004" and len(variables) == 8
    assert not any(c in v for v in ami.actions[0].values() for c in "\r\n")


async def test_a_pending_request_the_config_no_longer_honours_is_refused_on_its_ticket_and_frees_the_number(
    one: tuple[CallbackWorker, RecordingAmi, TicketStore],
) -> None:
    """A request stored before a reload narrowed what may be called (or written by an older
    engine) does not wait 24 h: refused, the ticket says why, the number may ask again."""
    worker, ami, tickets = one
    linkedid, number = "1796000000.9", "00441234567890"
    await ticket_of(tickets, linkedid, number)
    digest = keyspace.caller_digest(number, KEY)
    await worker.redis.set(keyspace.callback_number(digest), linkedid, ex=86_400)
    stale = CallbackRequest(linkedid=linkedid, number=number, queue="general", queued_at="1796000000.5",
                            next_at=time.time())
    await worker.redis.hset(keyspace.CALLBACKS, linkedid, json.dumps(stale.to_json()))
    await worker._place_due(time.time())
    assert ami.actions == [] and not await worker.redis.exists(keyspace.callback_number(digest))
    ticket = await callback_status(tickets, linkedid, "refused")
    assert ticket.callback and ticket.callback["reason"] == policy.NOT_CALLABLE and ticket.callback["attempts"] == []
    await worker._place_due(time.time())
    assert await worker.redis.hlen(keyspace.CALLBACKS) == 0 and ami.actions == []


async def test_each_leg_of_a_callback_is_recorded_with_the_number_dialed_the_seat_and_whether_it_was_answered(
    one: tuple[CallbackWorker, RecordingAmi, TicketStore],
) -> None:
    worker, ami, tickets = one
    linkedid = "1796000001.1"

    def step(stage: str, attempt: int, **fields: str) -> dict[str, str]:
        return {"Event": "UserEvent", "UserEvent": "IvrCallback", "Stage": stage, "Of": linkedid,
                "Attempt": str(attempt), **fields}

    await ticket_of(tickets, linkedid, "13900000005")
    await worker._handle(requested(linkedid, "13900000005"))
    await worker._place_due(time.time())
    await worker._handle(step("dialing", 1, Agent="PJSIP/agent1001-00000001", Number="13900000005"))
    await worker._handle(step("result", 1, Agent="PJSIP/agent1001-00000001", DialStatus="BUSY"))
    await worker._place_due(time.time() + 3600)  # retry_after later: the second attempt
    await worker._handle(step("dialing", 2, Agent="PJSIP/agent1002-00000002", Number="13900000005"))
    await worker._handle(step("answered", 2))
    await worker._handle(step("result", 2, Agent="PJSIP/agent1002-00000002", DialStatus="ANSWER"))
    legs = (await callback_status(tickets, linkedid, "answered")).callback["attempts"]  # type: ignore[index]
    assert [(leg["attempt"], leg["number"], leg["agent"], leg["result"], leg["answered"]) for leg in legs] == [
        (1, "13900000005", "agent1001", "BUSY", False), (2, "13900000005", "agent1002", "ANSWER", True)]
    assert all(leg["at"] <= leg["ended"] for leg in legs)
    assert len([a for a in ami.actions if a["Action"] == "Originate"]) == 2


class NodeAmi(RecordingAmi):
    """The AMI of a node carrying ``calls`` calls (each a caller's channel in the dialplan, plus a
    dialed seat leg that Asterisk does not count) for ``CoreShowChannels``."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.calls = calls

    async def action(self, action: dict[str, str], **kw: Any) -> Any:
        if action["Action"] != "CoreShowChannels":
            return await super().action(action, **kw)
        caller = {"Event": "CoreShowChannel", "Application": "Queue", "ApplicationData": "q-general"}
        seat = {"Event": "CoreShowChannel", "Application": "AppQueue", "ApplicationData": "(Outgoing Line)"}
        return [{"Response": "Success"}, *([caller, seat] * self.calls), {"Event": "CoreShowChannelsComplete"}]


def capped(maxcalls: int, headroom: int) -> Settings:
    settings = load_config(REPO / "config", environ={}).settings
    return settings.model_copy(update={"sip": settings.sip.model_copy(update={"maxcalls": maxcalls}),
                                       "callbacks": settings.callbacks.model_copy(update={"headroom": headroom})})


async def test_a_burst_of_due_callbacks_starts_only_the_stand_ins_the_node_has_room_for(
    redis_url: str, tmp_path: Path,
) -> None:
    """A lost node's callbacks come due together: the node (maxcalls 20, 10 kept for callers, 6
    calls up) takes two stand-ins now; the rest wait, and go once calls end."""
    tickets = TicketStore(redis_url, tmp_path / "spool", name="t", retention_days=1, caller_key=KEY)
    ami = NodeAmi(calls=6)
    worker = CallbackWorker(capped(20, 10), tickets, redis_url, KEY, lambda: ami)
    try:
        for n in range(5):
            await worker._handle(requested(f"1796000002.{n}", f"1390000010{n}"))
        await worker._place_due(time.time())
        assert len([a for a in ami.actions if a["Action"] == "Originate"]) == 2
        await worker._place_due(time.time())  # still 6 calls (the stand-ins are not in this stand-in's count)
        assert len([a for a in ami.actions if a["Action"] == "Originate"]) == 4
        ami.calls = 10  # full: nothing more
        await worker._place_due(time.time())
        assert len([a for a in ami.actions if a["Action"] == "Originate"]) == 4
        ami.calls = 0
        await worker._place_due(time.time())
        originated = [a for a in ami.actions if a["Action"] == "Originate"]
        assert len(originated) == 5 and len({a["ActionID"] for a in originated}) == 5
        assert all(a["ActionID"].startswith(policy.ACTION_PREFIX) for a in originated)
    finally:
        await worker.close()
        await tickets.close()


async def test_a_stand_in_asterisk_refused_is_a_node_busy_leg_and_goes_again_after_retry_after(
    one: tuple[CallbackWorker, RecordingAmi, TicketStore],
) -> None:
    worker, ami, tickets = one
    linkedid = "1796000003.1"
    await ticket_of(tickets, linkedid, "13900000009")
    await worker._handle(requested(linkedid, "13900000009"))
    await worker._place_due(time.time())
    first = ami.actions[-1]
    # someone else's Originate failing (another user, a forged ActionID) is not the worker's business
    for action_id in ("action/x/1/1", policy.ACTION_PREFIX + "0000"):
        worker.on_event({"Event": "OriginateResponse", "ActionID": action_id, "Response": "Failure", "Reason": "0"})
    assert worker._events.empty()
    worker.on_event({"Event": "OriginateResponse", "ActionID": first["ActionID"], "Response": "Failure", "Reason": "0"})
    await worker._handle(worker._events.get_nowait())
    ticket = await callback_status(tickets, linkedid, "pending")
    assert ticket.callback and [(a["attempt"], a["result"], a["reason"]) for a in ticket.callback["attempts"]] == [
        (1, policy.NODE_BUSY, policy.NODE_BUSY_TEXT)]
    request = await worker._load(linkedid)
    assert request and request.next_at > time.time() + 1  # retry_after, not at once
    await worker._place_due(time.time())
    assert ami.actions == [first]
    await worker._place_due(request.next_at + 0.1)
    second = ami.actions[-1]
    assert second is not first and "IVR_CALLBACK_ATTEMPT=2" in second["Variable"]
    worker.on_event({"Event": "OriginateResponse", "ActionID": second["ActionID"], "Response": "Success", "Reason": "4"})
    await worker._handle(worker._events.get_nowait())
    request = await worker._load(linkedid)
    assert request and request.status == policy.PLACED  # it runs: the dialplan's steps follow


async def test_a_node_still_booting_gets_no_stand_in_until_asterisk_says_it_is_fully_booted(
    one: tuple[CallbackWorker, RecordingAmi, TicketStore],
) -> None:
    """A restarted node answers AMI before its dialplan and queues are loaded: a stand-in sent then
    fails, and would be a needless NODE_BUSY leg on the ticket (seen in the node-loss test)."""
    worker, ami, tickets = one
    linkedid = "1796000004.1"
    await ticket_of(tickets, linkedid, "13900000010")
    await worker._handle(requested(linkedid, "13900000010"))
    ami.booted = False
    await worker._place_due(time.time())
    assert ami.actions == []
    request = await worker._load(linkedid)
    assert request and request.status == policy.PENDING and request.attempts == []
    ami.booted = True
    await worker._place_due(time.time())
    assert [a["Action"] for a in ami.actions] == ["Originate"] and "IVR_CALLBACK_ATTEMPT=1" in ami.actions[0]["Variable"]

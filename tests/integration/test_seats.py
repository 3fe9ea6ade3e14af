"""Seats on the real Asterisk: agents logged in as a shift starts, paused from the softphone
(feature codes, authenticated as the seat) and through the engine (`ivr agents`, the seat-control
AMI user); a paused agent is not rung; expert queues hand calls on to the general queue when no
expert is logged in, or when their wait limit runs out (keeping the caller's place in time
order); the engine restarting loses no agent state; a reload adds an agent while a call waits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any, AsyncIterator, Callable, cast

import pytest

from ivr.ami.client import AmiClient
from queues.store import SeatStore
from testbed.bed import BedState, TestBed
from ivr.asterisk_conf.queues import asterisk_queue
from testbed.calls import Phones, for_caller, pause_all, queue_caller, run_ivr, until
from queues.agents import Seat
from queues.model import memberships
from queues.sessions import held_queues

pytestmark = pytest.mark.usefixtures("no_call_outlives_the_test", "full_shift")


@pytest.fixture
async def seats(state: BedState) -> AsyncIterator[SeatStore]:
    store = SeatStore(state.redis_url)
    yield store
    await store.close()


async def published(seats: SeatStore, agent: str, **expected: Any) -> Seat:
    """The engine's published seat of ``agent`` once it shows ``expected`` (e.g. state="paused")."""
    async def find() -> Seat | None:
        data = (await seats.all()).get(agent)
        if data is None:
            return None
        seat = Seat.from_json(data)
        shown = dict(data, state=seat.state(time.time()))
        return seat if all(shown.get(k) == v for k, v in expected.items()) else None
    try:
        return await until(find, timeout=15)
    except AssertionError:
        data = (await seats.all()).get(agent)
        raise AssertionError(f"{agent}: wanted {expected}, published {data}") from None


async def published_state(seats: SeatStore, agent: str, states: set[str]) -> bool:
    data = (await seats.all()).get(agent)
    return data is not None and Seat.from_json(data).state(time.time()) in states


def member_event(agent: str, **fields: str) -> Any:
    return lambda e: e.get("Interface") == f"PJSIP/{agent}" and all(e.get(k) == v for k, v in fields.items())


POSITION_BEFORE, POSITION_AFTER = "ivr12345/queue_position_before", "ivr12345/queue_position_after"
WAIT_BEFORE, WAIT_MINUTES = "ivr12345/queue_wait_before", "ivr12345/queue_wait_minutes"
# The estimate's queue: no other test waits there, and its one seat (penalty 0) answers it.
ESTIMATE_QUEUE, ESTIMATE_SEAT = "expert-fund", "expert2003"
# The first caller's seat rings 27 s after they joined, before their next announcement (every
# 30 s; app_queue rings no seat while one plays), and answers after 5 s: a wait over 30 s, so
# the next caller hears one minute.
SEAT_BACK_S, SEAT_RINGS_MS, SEED_WAIT_S = 27, 5000, 31


@contextlib.asynccontextmanager
async def sounds_heard(engine: TestBed, ami: AmiClient) -> AsyncIterator[Callable[[str], list[str]]]:
    """For the block, what a channel has heard so far, in order: Asterisk logs each file it plays
    at verbose 3 (``<channel> Playing 'file.gsm'`` in messages.log)."""
    log = engine.dir / "log" / "messages.log"

    def played(channel: str) -> list[str]:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        return [line.split("Playing '", 1)[1].split(".", 1)[0] for line in lines if f"<{channel}> Playing '" in line]

    await ami.command("core set verbose 3")
    try:
        yield played
    finally:
        await ami.command("core set verbose 0")


async def heard(played: Callable[[str], list[str]], channel: str, sound: str, timeout: float = 15) -> list[str]:
    """What ``channel`` heard, once it has heard ``sound``."""
    return cast(list[str], await until(lambda: (lambda p: p if sound in p else None)(played(channel)), timeout))


async def joined(ami: AmiClient, queue: str, caller: str) -> str:
    """A caller put into ``queue`` for up to a minute; returns their channel once they wait there."""
    waiting = ami.wait_for("QueueCallerJoin", for_caller(caller))
    await queue_caller(ami, queue, caller, wait_s=60)
    return str((await asyncio.wait_for(waiting, 10))["Channel"])


async def test_given_a_shift_when_ivr_agents_runs_then_every_agent_is_logged_in_to_its_skills(
    engine: TestBed, state: BedState, seats: SeatStore,
) -> None:
    # a seat that serves only queues it is held in (a leader seat: the bed has no leader session on)
    # is logged in and held paused there (非本场次, docs/sessions.md)
    now = datetime.now().astimezone()
    held = {name for name, seat in engine.settings.agents.items()
            if set(memberships(seat, engine.settings.queues)) <= set(held_queues(engine.settings.sessions, name, now))}
    assert held == {"leader3001", "leader3002"}
    ready = {name: {"paused"} if name in held else {"available", "wrapup"} for name in engine.settings.agents}
    for agent in engine.settings.agents:  # (a seat of an earlier test's call may still be in wrap-up)
        try:
            await until(lambda: published_state(seats, agent, ready[agent]), 20)  # noqa: B023 (awaited in this iteration)
        except AssertionError:
            raise AssertionError(f"{agent}: published {(await seats.all()).get(agent)}") from None
    code, out = await run_ivr(state, "agents", "--json")
    assert code == 0, out
    listed = {row["agent"]: row for row in json.loads(out)}
    code, live_out = await run_ivr(state, "agents", "--live", "--json")
    assert code == 0, live_out
    live = {row["agent"]: row for row in json.loads(live_out)}
    for name, agent in engine.settings.agents.items():
        expected = {q: p for q, p in memberships(agent, engine.settings.queues).items()}
        for source in (listed, live):
            assert source[name]["state"] in ready[name]
            assert {q: m["penalty"] for q, m in source[name]["queues"].items()} == expected
    assert listed["expert2001"]["queues"].keys() == {"expert-hrss", "general"}
    code, table = await run_ivr(state, "agents")
    assert code == 0 and "expert2001" in table and "空闲" in table, table


async def test_given_two_agents_paused_from_the_softphone_and_the_engine_then_a_call_rings_only_the_third(
    engine: TestBed, state: BedState, phones: Phones, ami: AmiClient, seats: SeatStore,
) -> None:
    paused_1001 = ami.wait_for("QueueMemberPause", member_event("agent1001", Paused="1", PausedReason="用餐"))
    await phones.softphone("agent1001", "*732")  # 2 = 用餐 in config/queues.yaml
    await asyncio.wait_for(paused_1001, 10)
    code, out = await run_ivr(state, "agents", "pause", "agent1002", "--reason", "培训")
    assert code == 0 and "agent1002 paused (培训)" in out, out
    await published(seats, "agent1001", state="paused", reason="用餐")
    await published(seats, "agent1002", state="paused", reason="培训")

    caller = phones.next_caller()
    rung: list[str] = []
    ami.on("AgentCalled", lambda e: rung.append(e.get("Interface", "")) if for_caller(caller)(e) else None)
    connected = ami.wait_for("AgentConnect", for_caller(caller))
    await phones.agent("agent1003", caller)
    sipp, _ = await phones.call("12345", [], hold_ms=25_000, caller=caller)  # no key: the general queue
    assert (await asyncio.wait_for(connected, 40))["Interface"] == "PJSIP/agent1003"
    assert set(rung) == {"PJSIP/agent1003"}

    unpaused = ami.wait_for("QueueMemberPause", member_event("agent1001", Paused="0"))
    await phones.softphone("agent1001", "*74")
    await asyncio.wait_for(unpaused, 10)
    assert (await run_ivr(state, "agents", "unpause", "agent1002"))[0] == 0
    await published(seats, "agent1001", reason="")
    await published(seats, "agent1002", reason="")


async def test_given_an_agent_logs_out_and_in_from_the_softphone_then_asterisk_and_the_engine_agree(
    engine: TestBed, state: BedState, phones: Phones, ami: AmiClient, seats: SeatStore,
) -> None:
    left = ami.wait_for("QueueMemberRemoved", member_event("expert2001", Queue="q-general"))
    await phones.softphone("expert2001", "*72")
    await asyncio.wait_for(left, 10)
    await published(seats, "expert2001", state="logged_out")
    joined = ami.wait_for("QueueMemberAdded", member_event("expert2001", Queue="q-expert-hrss", Penalty="0"))
    await phones.softphone("expert2001", "*71")
    await asyncio.wait_for(joined, 10)
    seat = await published(seats, "expert2001", state="available")
    assert {q: m.penalty for q, m in seat.queues.items()} == {"expert-hrss": 0, "general": 10}


async def test_given_no_expert_logged_in_when_an_expert_call_comes_then_it_joins_the_general_queue_at_once(
    engine: TestBed, state: BedState, ami: AmiClient,
) -> None:
    assert (await run_ivr(state, "agents", "logout", "expert2001"))[0] == 0
    caller = Phones.next_caller()
    overflow = ami.wait_for("UserEvent", lambda e: e.get("UserEvent") == "IvrOverflow" and for_caller(caller)(e))
    general = ami.wait_for("QueueCallerJoin", lambda e: for_caller(caller)(e))
    await queue_caller(ami, "expert-hrss", caller)
    event = await asyncio.wait_for(overflow, 10)
    assert (event["Queue"], event["Overflow"], event["Reason"]) == ("expert-hrss", "general", "JOINEMPTY")
    assert (await asyncio.wait_for(general, 10))["Queue"] == "q-general"


async def test_given_an_expert_call_waits_past_its_limit_then_it_moves_to_general_ahead_of_later_callers(
    engine: TestBed, state: BedState, ami: AmiClient, config_dir: Path,
) -> None:
    queues = config_dir / "queues.yaml"
    original = queues.read_text(encoding="utf-8")
    queues.write_text(original.replace("max_wait: 60", "max_wait: 3"), encoding="utf-8")
    try:
        await engine.apply_config()
        for agent in engine.settings.agents:  # nobody answers: everyone waits
            await ami.action({"Action": "QueuePause", "Interface": f"PJSIP/{agent}", "Paused": "true", "Reason": "会议"})
        first, later = Phones.next_caller(), Phones.next_caller()
        waiting = ami.wait_for("QueueCallerJoin", for_caller(first))
        await queue_caller(ami, "expert-hrss", first)
        assert (await asyncio.wait_for(waiting, 10))["Queue"] == "q-expert-hrss"
        later_joined = ami.wait_for("QueueCallerJoin", for_caller(later))
        await queue_caller(ami, "general", later)
        assert (await asyncio.wait_for(later_joined, 10))["Position"] == "1"

        moved = ami.wait_for("QueueCallerJoin", lambda e: for_caller(first)(e) and e.get("Queue") == "q-general")
        overflow = ami.wait_for("UserEvent", lambda e: e.get("UserEvent") == "IvrOverflow" and for_caller(first)(e))
        assert (await asyncio.wait_for(overflow, 15))["Reason"] == "TIMEOUT"
        assert (await asyncio.wait_for(moved, 5))["Position"] == "1"  # it waited longer: ahead
        entries = await ami.action({"Action": "QueueStatus", "Queue": "q-general"}, as_list=True)
        order = [e.get("CallerIDNum") for e in sorted((e for e in entries if e.get("Event") == "QueueEntry"),
                                                       key=lambda e: int(e["Position"]))]
        assert order == [first, later]
    finally:
        queues.write_text(original, encoding="utf-8")
        await engine.apply_config()


async def test_given_the_engine_restarts_mid_queue_then_no_agent_state_is_lost(
    engine: TestBed, state: BedState, ami: AmiClient, seats: SeatStore,
) -> None:
    await published(seats, "agent1003", state="available")
    caller = Phones.next_caller()
    assert (await run_ivr(state, "agents", "pause", "agent1001"))[0] == 0
    await published(seats, "agent1001", state="paused")
    engine.kill_engine()
    # while no engine follows: one agent pauses, one logs out, the paused one comes back
    assert (await run_ivr(state, "agents", "pause", "agent1003", "--reason", "5"))[0] == 0
    assert (await run_ivr(state, "agents", "logout", "expert2005"))[0] == 0
    assert (await run_ivr(state, "agents", "unpause", "agent1001"))[0] == 0
    waiting = ami.wait_for("QueueCallerJoin", for_caller(caller))
    await queue_caller(ami, "general", caller)
    await asyncio.wait_for(waiting, 10)
    engine.start_engine()
    await published(seats, "agent1003", state="paused", reason="会议")
    await published(seats, "expert2005", state="logged_out")
    await published(seats, "agent1001", state="available")
    code, out = await run_ivr(state, "agents", "--json")
    assert {r["agent"]: r["state"] for r in json.loads(out)}["agent1003"] == "paused"


async def test_given_a_call_waiting_when_a_reload_adds_an_agent_who_logs_in_then_the_new_agent_answers_it(
    engine: TestBed, state: BedState, phones: Phones, ami: AmiClient, seats: SeatStore, config_dir: Path,
) -> None:
    for agent in engine.settings.agents:
        await ami.action({"Action": "QueuePause", "Interface": f"PJSIP/{agent}", "Paused": "true", "Reason": "会议"})
    caller = phones.next_caller()
    waiting = ami.wait_for("QueueCallerJoin", for_caller(caller))
    sipp, _ = await phones.call("12345", [], hold_ms=40_000, caller=caller)
    await asyncio.wait_for(waiting, 30)

    queues = config_dir / "queues.yaml"
    original = queues.read_text(encoding="utf-8")
    queues.write_text(original.replace("  agent1003: {name: 综合座席1003, skills: {general: 0}}\n",
                                       "  agent1003: {name: 综合座席1003, skills: {general: 0}}\n"
                                       "  agent1004: {name: 综合座席1004, skills: {general: 0}}\n"), encoding="utf-8")
    try:
        await engine.apply_config()
        code, out = await run_ivr(state, "reload")  # the engine's seat board learns the new agent
        assert code == 0, out
        connected = ami.wait_for("AgentConnect", for_caller(caller))
        await phones.agent("agent1004", caller)
        code, out = await run_ivr(state, "agents", "login", "agent1004")
        assert code == 0 and "agent1004 logged in to: general" in out, out
        assert (await asyncio.wait_for(connected, 30))["Interface"] == "PJSIP/agent1004"
        await published(seats, "agent1004", state="talking")
    finally:
        await ami.action({"Action": "QueueRemove", "Queue": "q-general", "Interface": "PJSIP/agent1004"}, as_list=False)
        queues.write_text(original, encoding="utf-8")
        await engine.apply_config()
        await run_ivr(state, "reload")


async def test_given_two_callers_waiting_then_the_second_hears_its_position_and_the_first_that_it_is_next_in_mandarin(
    engine: TestBed, ami: AmiClient,
) -> None:
    await pause_all(engine, ami, True)
    async with sounds_heard(engine, ami) as played:
        first, second = Phones.next_caller(), Phones.next_caller()
        channels = {caller: await joined(ami, "general", caller) for caller in (first, second)}
        said = await heard(played, channels[second], POSITION_AFTER)
        at = said.index(POSITION_BEFORE)
        assert said[at:at + 3] == [POSITION_BEFORE, "digits/2", POSITION_AFTER]
        # the head of the queue hears no position: while no seat is free, app_queue tells it that it
        # is next (its queue-youarenext), in Mandarin, never Asterisk's English sound (docs/seats.md)
        head = await heard(played, channels[first], "ivr12345/queue_you_are_next")
        assert not any(s.startswith(("ivr12345/queue_position", "queue-")) for s in head), head


async def test_given_a_queue_whose_last_caller_waited_over_half_a_minute_then_the_caller_behind_hears_the_estimated_wait(
    engine: TestBed, phones: Phones, ami: AmiClient,
) -> None:
    """app_queue's estimate is its average of past waits in the queue (exponential; the first
    answered call sets it), said in whole minutes only from (average + 30 − waited)/60 ≥ 1
    (docs/seats.md): a queue with no history says none; one whose caller waited 33 s says
    about one minute to a caller who just joined behind someone."""
    queue = asterisk_queue(ESTIMATE_QUEUE)
    await pause_all(engine, ami, True)
    await ami.action({"Action": "QueueReset", "Queue": queue})  # no history: nothing answered, average 0
    try:
        async with sounds_heard(engine, ami) as played:
            first, second, third = Phones.next_caller(), Phones.next_caller(), Phones.next_caller()
            await joined(ami, ESTIMATE_QUEUE, first)
            seat_back_at = asyncio.get_running_loop().time() + SEAT_BACK_S
            second_channel = await joined(ami, ESTIMATE_QUEUE, second)
            told = await heard(played, second_channel, POSITION_AFTER)
            at = told.index(POSITION_BEFORE)
            assert told[at:at + 3] == [POSITION_BEFORE, "digits/2", POSITION_AFTER] and WAIT_BEFORE not in told
            # the seat (its phone ready for the first caller) comes back; its answer is when
            # app_queue learns that caller's wait
            await phones.agent(ESTIMATE_SEAT, first, ring_ms=SEAT_RINGS_MS)
            await asyncio.sleep(max(0.0, seat_back_at - asyncio.get_running_loop().time()))
            connected = ami.wait_for("AgentConnect", for_caller(first))
            await ami.action({"Action": "QueuePause", "Interface": f"PJSIP/{ESTIMATE_SEAT}", "Queue": queue,
                              "Paused": "false"})
            waited = int((await asyncio.wait_for(connected, 15))["HoldTime"])
            learned = int(next(e for e in await ami.action({"Action": "QueueStatus", "Queue": queue}, as_list=True)
                               if e.get("Event") == "QueueParams")["Holdtime"])
            assert SEED_WAIT_S <= learned <= waited <= SEED_WAIT_S + 5, (learned, waited)

            third_channel = await joined(ami, ESTIMATE_QUEUE, third)  # behind the second, who is next
            said = await heard(played, third_channel, WAIT_MINUTES)
            at = said.index(WAIT_BEFORE)
            assert said[at - 3:at + 3] == [POSITION_BEFORE, "digits/2", POSITION_AFTER, WAIT_BEFORE, "digits/1", WAIT_MINUTES]
            assert WAIT_BEFORE not in played(second_channel)  # its announcements came before any history
    finally:
        await ami.action({"Action": "QueueReset", "Queue": queue})


async def test_given_redis_restarted_empty_then_the_engine_publishes_every_seat_again(
    engine: TestBed, redis: Any, seats: SeatStore,
) -> None:
    from ivr.store import keyspace

    await published(seats, "agent1002", state="available")
    await redis.delete(keyspace.SEATS)  # what a Redis restarted without its data holds
    for agent in engine.settings.agents:
        assert (await published(seats, agent)).queues  # back, logged in, within the republish interval



async def test_given_an_agent_whose_softphone_registers_then_the_queue_rings_it_at_its_registered_address(
    engine: TestBed, phones: Phones, ami: AmiClient,
) -> None:
    for agent in engine.settings.agents:  # one seat on duty: agent1002
        await ami.action({"Action": "QueuePause", "Interface": f"PJSIP/{agent}", "Paused": "true" if agent != "agent1002" else "false"})
    caller = phones.next_caller()
    phone, port = await phones.registered_softphone("agent1002", caller)
    try:
        connected = ami.wait_for("AgentConnect", for_caller(caller))
        sipp, _ = await phones.call("12345", [], hold_ms=20_000, caller=caller)
        assert (await asyncio.wait_for(connected, 40))["Interface"] == "PJSIP/agent1002"
        contacts = await ami.action({"Action": "PJSIPShowContacts"}, as_list=True)
        assert any(e.get("Event") == "ContactList" and e.get("Endpoint") == "agent1002"
                   and e.get("Uri", "").endswith(f":{port}") for e in contacts)  # the registration Asterisk holds
    finally:
        await phones.register("agent1002", port, 0)  # the softphone signs off (full_shift unpauses)

"""Two engines serve one Asterisk (the cluster bed): real SIP calls from sipp. SIGKILL the engine
walking a caller's submenu: the other engine plays that menu again (not the greeting), the
caller's key takes them to the queue the menu names, and the call's record and ticket show one
IVR path. With one engine down from the start calls still get the menu from the other (connect-
time failover, the first engine tried rotating per call); with both down the call reaches the
general queue. In turns (``agi.engine_turn_s``, production's default) every call starts at the
engine whose turn it is, and at the other when that one is down."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, AsyncIterator

import pytest
import redis.asyncio as aioredis

from ivr.ami.client import AmiClient
from ivr.store import keyspace
from testbed.bed import TestBed
from testbed.calls import AgiTrace, Phones, closed_ticket, hang_up_all, until
from testbed.sipp import Key
from tickets.store import TicketStore


async def channel_variable(ami: AmiClient, channel: str, name: str) -> str:
    return str((await ami.action({"Action": "Getvar", "Channel": channel, "Variable": name})).get("Value") or "")


def of(caller: str, command: str = "") -> Any:
    return lambda e: e.get("CallerIDNum") == caller and command in e.get("Command", "")


@pytest.fixture
async def calls_end(cluster: TestBed, cluster_ami: AmiClient) -> AsyncIterator[None]:
    """Nothing a test placed outlives it, and both engines run again for the next test."""
    yield
    await hang_up_all(cluster_ami)
    assert cluster.state
    for index in range(cluster.state.engines):
        if not cluster.engine_running(index):
            cluster.start_engine(index=index)


@pytest.mark.usefixtures("calls_end")
async def test_killing_the_engine_in_a_submenu_resumes_that_menu_on_the_other_and_keeps_one_path(
    cluster: TestBed, cluster_ami: AmiClient, cluster_phones: Phones, cluster_redis: aioredis.Redis,
    cluster_tickets: TicketStore,
) -> None:
    ami, caller = cluster_ami, cluster_phones.next_caller()
    trace = AgiTrace(ami, caller)
    in_submenu = ami.wait_for("AGIExecStart", of(caller, "sample_menu_l2"))
    joined = ami.wait_for("QueueCallerJoin", of(caller))
    # 1 during the greeting (level 1 takes it: level 2), 0 in level 2 once the other engine
    # plays it again (Asterisk ends the dead engine's command as its socket closes)
    sipp, _ = await cluster_phones.call("8000", [Key("1", 1500), Key("0", 4000)], hold_ms=4000, caller=caller)
    first = await asyncio.wait_for(in_submenu, 20)
    channel = first["Channel"]
    serving = int(await channel_variable(ami, channel, "IVR_ENGINE_AT"))
    resumed = ami.wait_for("AGIExecStart", of(caller, "sample_menu_l2"))  # the next one
    cluster.kill_engine(serving)  # SIGKILL while the caller hears the submenu
    played_before = len(trace.commands)

    await asyncio.wait_for(resumed, 20)
    stand_in = int(await channel_variable(ami, channel, "IVR_ENGINE_AT"))
    assert stand_in != serving
    assert (await asyncio.wait_for(joined, 20))["Queue"] == "q-general"
    after = [c.command for c in trace.commands[played_before:]]
    assert not any("welcome_12345" in c or "sample_menu_l1" in c for c in after), after  # no greeting, no level 1
    assert any("sample_menu_l2" in c for c in after)

    uniqueid = first["Uniqueid"]
    record = json.loads(await until(lambda: cluster_redis.get(keyspace.call(uniqueid)), timeout=15))
    assert record["resumed"] == 1 and record["route"]["type"] == "queue" and record["route"]["queue"] == "general"
    assert [(v["node"], v["session"]) for v in record["visits"]] == [
        ("welcome", 0), ("top", 0), ("services", 1), ("agent", 1)]
    assert record["keys"] == ["1", "0"]
    assert await sipp.wait(30) == 0, sipp.output()
    ticket = await closed_ticket(cluster_tickets, caller)
    assert ticket.ivr.nodes == ["sample/welcome", "sample/top", "sample/services", "sample/agent"]
    assert ticket.ivr.keys == ["1", "0"] and ticket.ivr.route == "queue"


@pytest.mark.usefixtures("calls_end")
async def test_with_one_engine_down_every_call_gets_the_menu_from_the_other(
    cluster: TestBed, cluster_ami: AmiClient, cluster_phones: Phones,
) -> None:
    ami = cluster_ami
    cluster.kill_engine(1)
    callers = [cluster_phones.next_caller() for _ in range(2)]
    menus = [ami.wait_for("AGIExecStart", of(c, "main_menu")) for c in callers]
    joined = [ami.wait_for("QueueCallerJoin", of(c)) for c in callers]
    sipp = await cluster_phones.calls("12345", callers, [Key("0", 4500)], hold_ms=4000)  # 0 in the menu (after the greeting): a seat
    firsts = set()
    for menu, queue in zip(menus, joined):
        channel = (await asyncio.wait_for(menu, 20))["Channel"]
        assert (await asyncio.wait_for(queue, 20))["Queue"] == "q-general"
        assert await channel_variable(ami, channel, "IVR_ENGINE_AT") == "0"  # the engine that is up
        assert await channel_variable(ami, channel, "IVR_ROUTE") == "queue"  # set by it, not the fallback
        firsts.add(await channel_variable(ami, channel, "IVR_ENGINE_FIRST"))
    assert firsts == {"0", "1"}  # consecutive calls start at different engines: one failed over
    assert await sipp.wait(30) == 0, sipp.output()


@pytest.mark.usefixtures("calls_end")
async def test_with_both_engines_down_the_call_reaches_the_general_queue(
    cluster: TestBed, cluster_ami: AmiClient, cluster_phones: Phones,
) -> None:
    ami, caller = cluster_ami, cluster_phones.next_caller()
    cluster.kill_engine(0)
    cluster.kill_engine(1)
    joined = ami.wait_for("QueueCallerJoin", of(caller))
    sipp, _ = await cluster_phones.call("12345", [], hold_ms=3000, caller=caller)
    event = await asyncio.wait_for(joined, 20)
    assert event["Queue"] == "q-general"
    assert await channel_variable(ami, event["Channel"], "IVR_ROUTE") == "fallback"
    assert await channel_variable(ami, event["Channel"], "IVR_ENGINE_TRIED") == "2"  # each engine once
    assert await sipp.wait(30) == 0, sipp.output()


@pytest.mark.usefixtures("calls_end")
async def test_in_turns_every_call_starts_at_the_engine_whose_turn_it_is_and_the_other_stands_in(
    cluster: TestBed, cluster_ami: AmiClient, cluster_phones: Phones,
) -> None:
    """The tests' config shares calls per call (engine_turn_s 0); here the node runs production's
    turns, a day long, through the global the dialplan reads."""
    ami, turn_s = cluster_ami, 86400

    def turn() -> str:
        return str(int(time.time()) // turn_s % 2)

    await ami.action({"Action": "Setvar", "Variable": "IVR_ENGINE_TURN_S", "Value": str(turn_s)})
    try:
        before = turn()
        callers = [cluster_phones.next_caller() for _ in range(3)]
        menus = [ami.wait_for("AGIExecStart", of(c, "main_menu")) for c in callers]
        joined = [ami.wait_for("QueueCallerJoin", of(c)) for c in callers]
        sipp = await cluster_phones.calls("12345", callers, [Key("0", 4500)], hold_ms=4000)
        served = set()
        for menu, queue in zip(menus, joined):
            channel = (await asyncio.wait_for(menu, 20))["Channel"]
            assert (await asyncio.wait_for(queue, 20))["Queue"] == "q-general"
            served.add((await channel_variable(ami, channel, "IVR_ENGINE_FIRST"),
                        await channel_variable(ami, channel, "IVR_ENGINE_AT")))
        assert await sipp.wait(30) == 0, sipp.output()
        assert len(served) == 1 and served <= {(t, t) for t in {before, turn()}}, served  # one engine took all three
        (engine, _), = served

        cluster.kill_engine(int(engine))  # the engine whose turn it is is gone: the other stands in
        caller = cluster_phones.next_caller()
        menu, queue = ami.wait_for("AGIExecStart", of(caller, "main_menu")), ami.wait_for("QueueCallerJoin", of(caller))
        sipp, _ = await cluster_phones.call("12345", [Key("0", 4500)], hold_ms=4000, caller=caller)
        channel = (await asyncio.wait_for(menu, 20))["Channel"]
        assert (await asyncio.wait_for(queue, 20))["Queue"] == "q-general"
        assert await channel_variable(ami, channel, "IVR_ENGINE_FIRST") == engine
        assert await channel_variable(ami, channel, "IVR_ENGINE_AT") == str(1 - int(engine))
        assert await channel_variable(ami, channel, "IVR_ROUTE") == "queue"
        assert await sipp.wait(30) == 0, sipp.output()
    finally:
        await ami.action({"Action": "Setvar", "Variable": "IVR_ENGINE_TURN_S", "Value": "0"})

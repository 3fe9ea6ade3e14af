"""Nothing lost with a node (issue 20, docs/cluster.md "When a node dies"), on the ordinary bed:
Asterisk SIGKILLed and not restarted with callers in the menus, waiting in a queue and talking to
a seat; after ``node_dead_after_s`` the node-gone duty closes their tickets as node_lost and
schedules the callbacks the policy names; when Asterisk is started again the callbacks ring the
citizens (a sipp UAS behind the carrier), once each, and no ticket is closed twice. A crash that
Asterisk recovers from at once is not a lost node."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any

import pytest

from ivr.ami.client import AmiClient
from ivr.store import keyspace
from queues import kpi
from testbed.bed import BedState, TestBed
from testbed.calls import Phones, callback_event, closed_ticket, followed_since, for_caller, pause_all, run_ivr, ticket_events, until
from testbed.sipp import keys
from tickets.store import TicketStore

pytestmark = pytest.mark.usefixtures("no_call_outlives_the_test")

SEAT = "agent1001"


async def general_today(tickets: TicketStore) -> dict[str, Any]:
    report = await tickets.kpi_report(kpi.standard_windows(datetime.now().astimezone())[0])
    return dict(report["queues"].get("general") or dict.fromkeys(kpi.COUNTERS, 0))


def _note_stand_in(stand_ins: dict[str, str], event: Any) -> None:
    """A callback's stand-in seen in a queue (``QueueCallerJoin`` or ``QueueStatus``'s entry)."""
    channel = event.get("Channel", "")
    if channel.startswith("Local/cb@ivr-callback-queue"):
        stand_ins[channel] = event.get("CallerIDNum", "")


async def seat(ami: AmiClient, paused: bool) -> None:
    await ami.action({"Action": "QueuePause", "Interface": f"PJSIP/{SEAT}", "Paused": "true" if paused else "false"})


async def test_given_asterisk_is_killed_and_stays_down_then_its_calls_are_closed_as_node_lost_and_called_back_once(
    bed: TestBed, engine: TestBed, state: BedState, phones: Phones, ami: AmiClient, tickets: TicketStore, redis: Any,
) -> None:
    before = await general_today(tickets)
    first, second, in_menu = phones.next_caller(), phones.next_caller(), phones.next_caller()
    await pause_all(engine, ami, True)
    killed = False
    try:
        # one sipp for all three (the carrier's port): two dial 12345 and reach the general queue
        # without a key (the seat takes the first, the other waits); the third dials the demo
        # number 8000, whose menus keep it well over half a minute
        desk_phone = await phones.agent(SEAT, first, talk_ms=120_000, also=(second,))
        connected = ami.wait_for("AgentConnect", lambda e: e.get("CallerIDNum") in (first, second))
        await seat(ami, False)
        menu = ami.wait_for("AGIExecStart", for_caller(in_menu))
        citizens = await phones.calls("12345", [first, second, in_menu], [], hold_ms=120_000,
                                      dialed_each=["12345", "12345", "8000"])
        talking = (await asyncio.wait_for(connected, 40))["CallerIDNum"]
        waiting = second if talking == first else first
        await seat(ami, True)
        await asyncio.wait_for(menu, 30)
        ids = {}
        for caller in (talking, waiting, in_menu):  # their opened tickets are in Redis
            ids[caller] = (await until(lambda c=caller: tickets.recent_for_caller(c, 0)))[0].linkedid
        # what the live follower published: the waiting caller, the seat's call
        await until(lambda: redis.hexists(keyspace.QUEUE_WAITING, ids[waiting]), 30)
        await until(lambda: _desk_connected(redis, ids[talking]))
        assert not await redis.hexists(keyspace.QUEUE_WAITING, ids[in_menu])  # still in the menus

        await asyncio.to_thread(bed.kill_asterisk)  # a power cut: no hang-ups, no CDR, no restart
        killed, down = True, time.time()
        closed = {c: await closed_ticket(tickets, c, timeout=60) for c in (talking, waiting, in_menu)}
        print(f"\nnode declared gone and 3 tickets closed {time.time() - down:.1f} s after the SIGKILL "
              f"(node_dead_after_s 5, follower's mark stale after 7)")
        for t in closed.values():
            assert t.disposition == "node_lost" and t.closed_by == "node" and t.hangup_by == "system"
            assert t.hangup_cause.startswith("lost with its Asterisk node")
        assert [v.outcome for v in closed[waiting].queue_visits] == ["node_lost"] and closed[waiting].queue == "general"
        assert closed[talking].agent == SEAT and closed[talking].callback is None  # policy: talking: false
        for c in (waiting, in_menu):  # policy: the menus and the queues are called back
            assert closed[c].callback and closed[c].callback["status"] == "pending"
        rc, shown = await run_ivr(state, "tickets", "show", closed[waiting].number)
        assert rc == 0 and "节点故障中断 node_lost" in shown, shown
        rc, stats = await run_ivr(state, "stats")
        assert rc == 0 and "节点故障中断" in stats.splitlines()[1], stats
        after = await general_today(tickets)
        # the counts match the tickets: the talking call offered and answered (at its answer), the
        # waiting one offered and lost with the node; nothing else
        assert after["offered"] - before["offered"] == 2 and after["answered"] - before["answered"] == 1
        assert after["node_lost"] - before["node_lost"] == 1 and after["abandoned"] == before["abandoned"]

        # the node comes back: its follower reconciles, the callback worker calls them back, once each
        for sipp in (citizens, desk_phone):  # both ends of the dead calls hold their ports
            await sipp.stop()
        stand_ins: dict[str, str] = {}  # stand-in channel -> the number it calls back
        results: list[tuple[str, str]] = []
        ami.on("QueueCallerJoin", lambda e: _note_stand_in(stand_ins, e))
        ami.on("UserEvent", lambda e: results.append((e["Of"], e["DialStatus"]))
               if callback_event("result")(e) else None)
        restarted = time.time()
        await asyncio.to_thread(bed.start_asterisk)
        killed = False
        await until(lambda: ami.connected, 30)
        await bed.log_in_agents()
        await pause_all(engine, ami, True)
        await followed_since(tickets, state, restarted, timeout=60)
        # the engine may reconnect and place the stand-ins before this session is back: they wait
        # in the queue (the seat is paused), so the queue's own list shows those it missed
        for entry in await ami.action({"Action": "QueueStatus"}, as_list=True):
            if entry.get("Event") == "QueueEntry":
                _note_stand_in(stand_ins, entry)
        for round_ in (1, 2):
            phone = await phones.citizen_phone("12345", mode="hangup", talk_ms=1000)
            agent = await phones.agent(SEAT, in_menu, also=(waiting,))
            await seat(ami, False)
            await until(lambda r=round_: len(results) == r, 90)
            await seat(ami, True)
            assert results[-1][1] == "ANSWER"
            assert await agent.wait(30) == 0, agent.output()
            assert await phone.wait(30) == 0, phone.output()
        assert sorted(of for of, _ in results) == sorted((ids[waiting], ids[in_menu]))
        assert sorted(stand_ins.values()) == sorted((waiting, in_menu))  # one stand-in each: no second callback

        for c in (waiting, in_menu):
            t = await until(lambda c=c: _called_back(tickets, ids[c]), 30)
            assert t.disposition == "node_lost"  # how the call ended; the callback says how it went on
            assert [a["result"] for a in t.callback["attempts"]] == ["ANSWER"]
        for c in (talking, waiting, in_menu):
            events = await ticket_events(redis, ids[c])
            assert events.count("opened") == 1 and events.count("closed") == 1, events
        assert (await tickets.get(ids[talking])).callback is None  # type: ignore[union-attr]
    finally:
        if killed:
            await asyncio.to_thread(bed.start_asterisk)
        if ami.connected:
            await pause_all(engine, ami, False)


async def test_given_asterisk_restarts_at_once_then_its_calls_are_not_lost_to_a_node_and_nobody_is_called_back(
    bed: TestBed, engine: TestBed, state: BedState, phones: Phones, ami: AmiClient, tickets: TicketStore, redis: Any,
) -> None:
    """Below ``node_dead_after_s`` the node is not gone: the follower closes its own calls after
    the restart (as before issue 20), and no callback is scheduled."""
    caller = phones.next_caller()
    await pause_all(engine, ami, True)
    try:
        joined = ami.wait_for("QueueCallerJoin", for_caller(caller))
        await phones.call("12345", keys("0", first_ms=500), hold_ms=60_000, caller=caller)
        await asyncio.wait_for(joined, 30)
        crashed = time.time()
        await asyncio.to_thread(bed.crash_asterisk)  # SIGKILL, started again at once
        await followed_since(tickets, state, crashed, timeout=60)
        ticket = await closed_ticket(tickets, caller)
        assert ticket.disposition == "error" and ticket.closed_by == "lost"
        assert not await redis.hexists(keyspace.CALLBACKS, ticket.linkedid)
        assert (await ticket_events(redis, ticket.linkedid)).count("closed") == 1
    finally:
        await until(lambda: ami.connected, 30)
        await pause_all(engine, ami, False)


async def _desk_connected(redis: Any, linkedid: str) -> bool:
    doc = json.loads(await redis.hget(keyspace.desk(SEAT), "doc") or "{}")
    return bool(doc.get("linkedid") == linkedid and doc.get("state") == "connected")


async def _called_back(tickets: TicketStore, linkedid: str) -> Any:
    t = await tickets.get(linkedid)
    return t if t and t.callback and t.callback.get("status") == "answered" else None

"""Agents' phones are qualified (issue 22 item 8): a logged-in softphone that dies without
unregistering stops answering Asterisk's OPTIONS probe, its seat shows 话机离线 (in Redis,
``/wallboard.json`` and ``ivr agents``; in Chromium on the wallboard and the desk) and is not
rung; a phone on that address again answers the probe and the seat takes calls again, with no
log-in. In this module ``expert2004`` has no fixed contact (the bed's phones are otherwise sipps
that run only during calls, left unprobed): its softphone registers, as one does in production."""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

import pytest

from ivr.ami.client import AmiClient
from queues.agents import STATE_LABELS, Seat
from queues.store import SeatStore
from testbed.bed import BedState, TestBed
from testbed.calls import Phones, for_caller, hang_up_all, queue_caller, run_ivr, until
from testbed.browser import Browser
from testbed.console import ConsoleSite, board_until

pytestmark = pytest.mark.usefixtures("no_call_outlives_the_test", "full_shift")

SEAT, OTHER = "expert2004", "expert2005"  # both serve general at penalty 10
OFFLINE = STATE_LABELS["unreachable"]


@pytest.fixture
async def registered_seat(engine: TestBed, ami: AmiClient) -> AsyncIterator[None]:
    """``SEAT`` registers instead of having a fixed contact, and is rung first in general (penalty
    0, the other general seats but ``OTHER`` paused): a dead phone that were still rung would be
    rung before ``OTHER``."""
    engine.registered_phones = frozenset({SEAT})
    await engine.apply_config()
    try:
        for agent in engine.settings.agents:
            await ami.action({"Action": "QueuePause", "Interface": f"PJSIP/{agent}",
                              "Paused": "false" if agent in (SEAT, OTHER) else "true"})
        await ami.action({"Action": "QueuePenalty", "Interface": f"PJSIP/{SEAT}", "Penalty": "0", "Queue": "q-general"})
        yield
    finally:
        await ami.action({"Action": "QueuePenalty", "Interface": f"PJSIP/{SEAT}", "Penalty": "10", "Queue": "q-general"})
        engine.registered_phones = frozenset()
        await engine.apply_config()


async def seat_state(store: SeatStore, agent: str, state: str, timeout: float = 15) -> None:
    async def shown() -> bool:
        data = (await store.all()).get(agent)
        return data is not None and Seat.from_json(data).state(time.time()) == state
    try:
        await until(shown, timeout)
    except AssertionError:
        raise AssertionError(f"{agent}: wanted {state}, published {(await store.all()).get(agent)}") from None


def on_board(agent: str, state: str) -> Any:
    """A wallboard check: ``agent``'s seat in ``state``, and counted so in its general queue row."""
    def check(board: Any) -> bool:
        general = next(q for q in board["queues"] if q["name"] == "general")["agents"]
        return any(s["agent"] == agent and s["state"] == state for s in board["seats"]) and general[state] >= 1
    return check


def pages_show_offline(browser: Browser, console: ConsoleSite) -> None:
    """The agent's desk and the supervisor's wallboard, in Chromium, say 话机离线 for ``SEAT``."""
    browser.sign_in(console.account("agent", SEAT)).open(f"/desk/{SEAT}")
    browser.wait_text("#seat-state", OFFLINE, 10)
    browser.at(console.url).sign_in(console.account("supervisor")).open("/wallboard")
    browser.wait_text(f'#seats tr[data-agent="{SEAT}"] td[data-field="state"]', OFFLINE, 10)
    browser.wait_text('#queues tr[data-queue="general"] td[data-field="agents-unreachable"]', "1", 10)


async def test_given_a_softphone_that_dies_without_unregistering_then_it_shows_offline_is_not_rung_and_comes_back(
    engine: TestBed, state: BedState, phones: Phones, ami: AmiClient, console: ConsoleSite, browser: Browser,
    registered_seat: None,
) -> None:
    store = SeatStore(state.redis_url)
    phone, port = await phones.registered_softphone(SEAT, phones.next_caller())
    try:
        await seat_state(store, SEAT, "available")
        await phone.stop()  # killed: no un-REGISTER, the registration stays for its 300 s

        await seat_state(store, SEAT, "unreachable")
        await board_until(console, on_board(SEAT, "unreachable"), 15)
        await asyncio.to_thread(pages_show_offline, browser, console)
        code, table = await run_ivr(state, "agents")
        assert code == 0 and any(line.startswith(SEAT) and OFFLINE in line for line in table.splitlines()), table

        caller = phones.next_caller()
        rung_dead = ami.wait_for("AgentCalled", lambda e: for_caller(caller)(e) and e.get("Interface") == f"PJSIP/{SEAT}")
        connected = ami.wait_for("AgentConnect", for_caller(caller))
        await phones.agent(OTHER, caller)
        await queue_caller(ami, "general", caller)
        try:
            answered = await asyncio.wait_for(connected, 20)
        except TimeoutError:
            raise AssertionError(f"nobody answered (the dead phone rung: {rung_dead.done()})") from None
        dead_was_rung = rung_dead.done()
        rung_dead.cancel()
        assert answered["Interface"] == f"PJSIP/{OTHER}" and not dead_was_rung, "the dead phone was rung"
        await hang_up_all(ami)
        await ami.action({"Action": "QueuePause", "Interface": f"PJSIP/{OTHER}", "Paused": "true"})  # SEAT or nobody

        back = phones.next_caller()
        await phones.phone_at(port, back, f"softphone-{SEAT}-{back}")  # the same address, no new REGISTER
        await seat_state(store, SEAT, "available")
        await board_until(console, on_board(SEAT, "available"), 15)
        connected = ami.wait_for("AgentConnect", for_caller(back))
        await queue_caller(ami, "general", back)
        assert (await asyncio.wait_for(connected, 20))["Interface"] == f"PJSIP/{SEAT}"
    finally:
        await phones.register(SEAT, port, 0)  # signed off: the bed's fixed contact alone again
        await store.close()

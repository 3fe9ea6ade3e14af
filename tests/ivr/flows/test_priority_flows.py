"""Priorities in the flow language and through the engine: the one-key-to-human queue option
(validated: only a menu key may lead to it), the elderly flow (no menu in it), and the
priority each call is handed to the dialplan with (queues.priority)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from flow_helpers import FakeChannel, errors_of, write_flow
from ivr.core.channel import CallInfo
from ivr.engine import EarlierTicket, Engine
from ivr.hot_reload import LiveFlows, compile_config
from ivr.prompts.catalog import PromptCatalog

MENU = """
    nodes:
      menu:
        type: menu
        prompt: main_menu
        keys: {"1": consult, "0": human}
        retries: 0
        on_exhausted: EXHAUSTED
      consult: {type: queue, queue: general}
      human: {type: queue, queue: general, one_key: true}
    """


def menu(exhausted: str = "consult") -> str:
    return MENU.replace("EXHAUSTED", exhausted)
ELDERLY = """
    human_key: null
    nodes:
      hello: {type: play, prompts: queue_notice, next: seat}
      seat: {type: queue, queue: general}
    """


# --- validation ---

def test_given_a_one_key_queue_reached_by_a_menu_key_then_the_flow_is_sound(bare_config, catalog):
    assert errors_of(bare_config, catalog, menu()) == []


def test_given_a_one_key_queue_reached_on_timeout_then_it_is_refused_at_that_target(bare_config, catalog):
    assert errors_of(bare_config, catalog, menu("human")) == [
        "7:19: exhausted leads to one-key queue 'human': only a menu key may (a caller who pressed nothing did "
        "not choose 一键转人工)"]


def test_given_a_one_key_queue_after_a_prompt_or_as_the_start_then_it_is_refused(bare_config, catalog):
    assert errors_of(bare_config, catalog, """
        nodes:
          hello: {type: play, prompts: welcome_12345, next: human}
          human: {type: queue, queue: general, one_key: true}
        """) == ["2:53: next leads to one-key queue 'human': only a menu key may (a caller who pressed nothing "
                 "did not choose 一键转人工)"]
    assert errors_of(bare_config, catalog, """
        nodes:
          human: {type: queue, queue: general, one_key: true}
        """) == ["2:49: one-key queue 'human' is the flow's start: only a menu key may lead to it"]


def test_given_an_elderly_flow_that_asks_then_it_is_refused_node_by_node(bare_config, catalog):
    write_flow(bare_config, """
        human_key: null
        nodes:
          ask: {type: menu, prompt: main_menu, keys: {"0": seat}, on_exhausted: seat}
          seat: {type: queue, queue: general}
        """, name="elderly")
    assert errors_of(bare_config, catalog, menu()) == [
        "3:15: the elderly flow (elderly) may not hold a 'menu' node: registered elderly callers skip every menu "
        "(allowed: play, say, set, branch, queue, transfer)"]


def test_given_no_elderly_flow_then_a_warning_says_where_elderly_callers_go(bare_config, catalog):
    write_flow(bare_config, menu())
    flows = compile_config(bare_config, catalog, environ={})
    assert any("priority.elderly.flow 'elderly' is not in config/flows/" in w and "straight to the general queue" in w
               for w in flows.warnings)


# --- the engine ---

class ListStore:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    async def save_call(self, record: dict[str, Any]) -> None:
        self.records.append(record)


def engine_for(config: Path, catalog: PromptCatalog, **kw: Any) -> tuple[Engine, ListStore]:
    store = ListStore()
    return Engine(LiveFlows(lambda: compile_config(config, catalog, environ={})), store, **kw), store


def call(caller: str = "13900000001", dialed: str = "12345") -> CallInfo:
    return CallInfo(unique_id="1700000000.7", channel="PJSIP/pstn-7", dialed=dialed, caller=caller)


@pytest.fixture
def flows(bare_config: Path) -> Path:
    write_flow(bare_config, menu())
    write_flow(bare_config, ELDERLY, name="elderly")
    return bare_config


async def test_given_the_one_key_key_then_the_call_waits_with_the_one_key_priority(flows, catalog):
    eng, store = engine_for(flows, catalog)
    channel = FakeChannel(["0"])
    await eng.handle_call(call(), channel)
    assert (channel.variables["IVR_QUEUE_PRIORITY"], channel.variables["IVR_PRIORITY_REASON"]) == ("5", "one_key")
    assert store.records[0]["priority"] == {"priority": 5, "reason": "one_key", "reasons": ["one_key"]}
    assert store.records[0]["route"]["priority"] == 5 and store.records[0]["elderly"] is False


async def test_given_another_key_then_the_call_waits_in_time_order(flows, catalog):
    eng, store = engine_for(flows, catalog)
    channel = FakeChannel(["1"])
    await eng.handle_call(call(), channel)
    assert (channel.variables["IVR_QUEUE_PRIORITY"], channel.variables["IVR_PRIORITY_REASON"]) == ("0", "")


async def test_given_a_repeat_caller_then_only_an_open_ticket_raises_the_priority(flows, catalog):
    async def earlier(tickets: list[EarlierTicket]) -> Any:
        async def lookup(_caller: str, _call: str) -> list[EarlierTicket]:
            return tickets
        return lookup

    eng, _ = engine_for(flows, catalog, repeat_of=await earlier([EarlierTicket("20261201-12345-00001", True)]))
    channel = FakeChannel(["1"])
    await eng.handle_call(call(), channel)
    assert channel.variables["IVR_REPEAT_CALLER"] == "1"
    assert (channel.variables["IVR_QUEUE_PRIORITY"], channel.variables["IVR_PRIORITY_REASON"]) == ("5", "repeat")

    eng, _ = engine_for(flows, catalog, repeat_of=await earlier([EarlierTicket("20261201-12345-00001", False)]))
    channel = FakeChannel(["1"])
    await eng.handle_call(call(), channel)
    assert channel.variables["IVR_REPEAT_OF"] == "20261201-12345-00001"  # still linked on the ticket
    assert (channel.variables["IVR_QUEUE_PRIORITY"], channel.variables["IVR_PRIORITY_REASON"]) == ("0", "")


async def test_given_a_registered_elderly_caller_then_no_menu_and_the_elderly_priority(flows, catalog):
    asked: list[str] = []

    async def is_elderly(number: str) -> bool:
        asked.append(number)
        return True

    eng, store = engine_for(flows, catalog, is_elderly=is_elderly)
    channel = FakeChannel(["0"])
    await eng.handle_call(call(caller="+8613900000001"), channel)
    assert asked == ["13900000001"]  # as the list writes it
    assert channel.sounds() == ["queue_notice"]  # the elderly flow's greeting, never the menu
    assert (channel.variables["IVR_QUEUE_PRIORITY"], channel.variables["IVR_PRIORITY_REASON"]) == ("10", "elderly")
    record = store.records[0]
    assert record["flow"] == "elderly" and record["elderly"] is True
    assert record["priority"]["reasons"] == ["elderly"]


async def test_given_no_elderly_flow_then_an_elderly_caller_goes_straight_to_the_general_queue(bare_config, catalog):
    write_flow(bare_config, menu())

    async def is_elderly(_number: str) -> bool:
        return True

    eng, _ = engine_for(bare_config, catalog, is_elderly=is_elderly)
    channel = FakeChannel(["1"])
    await eng.handle_call(call(), channel)
    assert channel.sounds() == []
    assert (channel.variables["IVR_QUEUE"], channel.variables["IVR_PRIORITY_REASON"]) == ("general", "elderly")


@pytest.mark.parametrize("behaviour", ["hangs", "fails"])
async def test_given_the_elderly_list_slow_or_down_then_the_caller_hears_the_menu(flows, catalog, behaviour):
    async def is_elderly(_number: str) -> bool:
        if behaviour == "fails":
            raise ConnectionError("Redis down")
        await asyncio.Event().wait()
        return True

    eng, _ = engine_for(flows, catalog, is_elderly=is_elderly)
    channel = FakeChannel(["0"])
    await eng.handle_call(call(), channel)
    assert channel.sounds() == ["main_menu"]
    assert channel.variables["IVR_PRIORITY_REASON"] == "one_key"


async def test_given_a_withheld_number_or_a_subcenter_line_then_the_list_is_not_asked(flows, catalog):
    (flows / "numbers.yaml").write_text(
        'numbers:\n  "12345": {mode: main, title: t, flow: t}\n  "12366": {mode: subcenter, title: tax, subcenter: tax}\n',
        encoding="utf-8")
    asked: list[str] = []

    async def is_elderly(number: str) -> bool:
        asked.append(number)
        return True

    eng, store = engine_for(flows, catalog, is_elderly=is_elderly)
    await eng.handle_call(call(caller="anonymous"), FakeChannel(["1"]))
    await eng.handle_call(call(dialed="12366"), FakeChannel([]))
    assert asked == []
    assert store.records[1]["route"]["type"] == "transfer" and store.records[1]["priority"] is None

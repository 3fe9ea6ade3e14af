"""One call through the engine with a scripted channel: what reaches the log and the store."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from ivr.core.channel import CallInfo
from ivr.engine import Engine
from ivr.hot_reload import LiveFlows, catalog_loader, default_prompts_dir

from flow_helpers import FakeChannel

REPO = Path(__file__).resolve().parents[3]


class ListStore:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    async def save_call(self, record: dict[str, Any]) -> None:
        self.records.append(record)


@pytest.fixture
def engine() -> tuple[Engine, ListStore]:
    config = REPO / "config"
    store = ListStore()
    return Engine(LiveFlows.from_config(config, catalog_loader(default_prompts_dir(config)), environ={}), store), store


async def test_an_id_number_typed_by_the_caller_never_reaches_the_log(engine, caplog) -> None:
    eng, store = engine
    id_number = "11010519491231002*"
    channel = FakeChannel(["1", "1", id_number])  # sample flow: services → ask_id
    call = CallInfo(unique_id="u1", channel="PJSIP/pstn-1", dialed="8000", caller="13912345678")
    with caplog.at_level(logging.INFO):
        await eng.handle_call(call, channel)
    text = caplog.text
    assert id_number not in text and id_number[:-1] not in text
    assert "13912345678" not in text and "139****5678" in text
    assert "<18 digits>" in text
    assert store.records[0]["variables"]["id_number"] == id_number  # the ticket keeps it


async def test_an_engine_bug_still_leaves_a_record_and_the_route_to_the_dialplan(engine, monkeypatch) -> None:
    eng, store = engine

    async def broken(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("bug in a node")

    channel = FakeChannel(["0"])
    monkeypatch.setattr(channel, "stream", broken)
    await eng.handle_call(CallInfo("u2", "PJSIP/pstn-2", "12345", "13900000000"), channel)
    record = store.records[0]
    assert record["dialplan_fallback"] is True and record["route"]["type"] == "fallback"
    assert record["error"].startswith("engine error: RuntimeError")
    assert "IVR_ROUTE" not in channel.variables  # unset: the dialplan's fallback takes the call


async def test_a_call_cancelled_while_its_route_is_set_still_leaves_a_record(engine, monkeypatch) -> None:
    """The engine stopping (its calls cancelled) just as a route is being handed over."""
    eng, store = engine
    setting = asyncio.Event()

    async def stuck(_variables: dict[str, str]) -> None:
        setting.set()
        await asyncio.sleep(60)

    channel = FakeChannel(["1"])
    monkeypatch.setattr(channel, "set_variables", stuck)
    task = asyncio.create_task(eng.handle_call(CallInfo("u3", "PJSIP/pstn-3", "12345", "13900000000"), channel))
    await setting.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    record = store.records[0]
    assert record["dialplan_fallback"] is True and record["keys"] == ["1"]
    assert record["error"] == "engine stopped while setting the route"

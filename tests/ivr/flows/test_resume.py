"""A call whose engine vanished mid-IVR resumes on another engine at the menu it was in, with
one IVR path: the resume point each menu leaves, what it carries (never a number keyed), and
the stand-in session that starts from it (ivr/flows/resume.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.agi.call_guard import resume_key, sign_resume, verified_resume
from ivr.core.channel import CallInfo
from ivr.engine import Engine
from ivr.flows.flowset import FlowSet
from ivr.flows.resume import VARIABLE, BadResumePoint, Resume, ResumePoint, Walked, decode, encode
from ivr.flows.runner import run_call
from ivr.hot_reload import LiveFlows, catalog_loader, default_prompts_dir
from ivr.prompts.catalog import PromptCatalog

from flow_helpers import FakeChannel, compile_text

REPO = Path(__file__).resolve().parents[3]
KEY = resume_key(b"k" * 32)
CALL = CallInfo(unique_id="1700000000.7", channel="PJSIP/pstn-00000007", dialed="8000", caller="13912345678")

# greeting → label (a word, on the channel too) → an ID number → level 1 → level 2 → a seat
FLOW = """
    nodes:
      greeting: {type: play, prompts: welcome_12345, next: label}
      label: {type: set, vars: {request_type: consult, who: "${caller}"}, channel: true, next: id}
      id: {type: collect, prompt: enter_id_number, var: id_number, min_digits: 15, max_digits: 18, timeout: 3s,
           retries: 0, next: top, on_exhausted: agent}
      top:
        type: menu
        prompt: sample_menu_l1
        keys: {"1": services, "0": agent}
        timeout: 3s
        retries: 0
        on_exhausted: agent
      services:
        type: menu
        prompt: sample_menu_l2
        keys: {"2": expert, "0": agent}
        timeout: 3s
        retries: 0
        on_exhausted: agent
      expert: {type: queue, queue: general}
      agent: {type: queue, queue: general}
    """
ID_NUMBER = "110105194912310021"


def signer(call: CallInfo = CALL):  # type: ignore[no-untyped-def]
    return lambda body: sign_resume(KEY, call.unique_id, call.channel, body)


def points(channel: FakeChannel) -> list[str]:
    """Every resume point the session left on the channel, in order."""
    return [c[2] for c in channel.calls if c[0] == "set" and c[1] == VARIABLE]


@pytest.fixture
def flows(bare_config: Path, catalog: PromptCatalog) -> FlowSet:
    return compile_text(bare_config, catalog, FLOW)  # the flow of 12345


def dialed_t(call: CallInfo = CALL) -> CallInfo:
    return CallInfo(call.unique_id, call.channel, "12345", call.caller)


async def first_session_dies_in_services(flows: FlowSet) -> str:
    """The first engine walks greeting → … → services and vanishes there: its last point."""
    channel = FakeChannel([ID_NUMBER, "1", "HANGUP"])
    record = await run_call(flows, dialed_t(), channel, resume=Resume(signer()))
    assert [v.node for v in record.visits] == ["greeting", "label", "id", "top", "services"]
    left = points(channel)
    assert [decode(verified_resume(KEY, CALL.unique_id, CALL.channel, p) or "").node for p in left] == ["top", "services"]
    return left[-1]


async def test_a_stand_in_starts_at_the_menu_and_its_record_is_the_whole_path(flows: FlowSet) -> None:
    token = await first_session_dies_in_services(flows)
    body = verified_resume(KEY, CALL.unique_id, CALL.channel, token)
    assert body is not None
    channel = FakeChannel(["2"])
    record = await run_call(flows, dialed_t(), channel, resume=Resume(signer(), decode(body)))

    assert channel.sounds()[0] == "sample_menu_l2"  # the menu again, not the greeting
    assert [(v.node, v.session) for v in record.visits] == [
        ("greeting", 0), ("label", 0), ("id", 0), ("top", 0), ("services", 1), ("expert", 1)]
    assert record.keys == ("1", "2") and record.session == 1 and record.flow == "t"
    assert record.variables["request_type"] == "consult"
    assert record.channel_variables["REQUEST_TYPE"] == "consult"  # still set with the route
    assert record.route.variables()["IVR_QUEUE"] == "general"
    # the stand-in leaves points as it walks on: session 1 entering services
    assert decode(verified_resume(KEY, CALL.unique_id, CALL.channel, points(channel)[0]) or "").session == 1


async def test_the_point_carries_no_number_the_caller_keyed_nor_the_caller_id(flows: FlowSet) -> None:
    token = await first_session_dies_in_services(flows)
    assert ID_NUMBER not in token and ID_NUMBER[:15] not in token and CALL.caller not in token
    point = decode(verified_resume(KEY, CALL.unique_id, CALL.channel, token) or "")
    assert point.keys == "1"  # the menu key, not the ID number
    assert point.variables == {"request_type": "consult", "REQUEST_TYPE": "consult"}  # `who` (the caller) stays behind
    assert "," not in token and all(c.isalnum() or c in "_./:=~*#-" for c in token)  # one AGI argument


async def test_a_second_stand_in_keeps_each_sessions_mark(flows: FlowSet) -> None:
    token = await first_session_dies_in_services(flows)
    second = FakeChannel(["HANGUP"])
    await run_call(flows, dialed_t(), second,
                   resume=Resume(signer(), decode(verified_resume(KEY, CALL.unique_id, CALL.channel, token) or "")))
    third = FakeChannel(["0"])
    again = decode(verified_resume(KEY, CALL.unique_id, CALL.channel, points(second)[-1]) or "")
    record = await run_call(flows, dialed_t(), third, resume=Resume(signer(), again))
    assert [(v.node, v.session) for v in record.visits][-2:] == [("services", 2), ("agent", 2)]
    assert record.session == 2 and record.keys == ("1", "0")


async def test_a_point_whose_menu_a_reload_removed_starts_the_call_afresh(flows: FlowSet) -> None:
    point = ResumePoint("t", "gone", 0, 1_700_000_000, (Walked("t", "greeting", 0),), "", {})
    channel = FakeChannel([ID_NUMBER, "0"])
    record = await run_call(flows, dialed_t(), channel, resume=Resume(signer(), point))
    assert channel.sounds()[0] == "welcome_12345" and record.visits[0].node == "greeting"


def test_a_point_round_trips_and_anything_else_is_refused() -> None:
    point = ResumePoint("main", "menu", 1, 1_700_000_000, (Walked("main", "greeting", 0), Walked("hrss", "menu", 1)),
                        "1*", {"request_type": "consult"})
    assert decode(encode(point)) == point
    for bad in ["", "2:0:main/menu:1:::", "1:0:main/menu:1:greeting,x::", "1:0:main/menu:1:::who=13912345678",
                "1:0:menu:1:::", "1:0:main/menu:1:greeting::", "1:0:main/menu:1::12345678901234567890" + "1" * 60 + ":",
                "1:0:main/menu:1:a~b::", "1:0:main/menu:1:" + ".".join(["main/n"] * 200) + "::"]:
        with pytest.raises(BadResumePoint):
            decode(bad)


def test_only_the_engines_signature_for_this_very_call_verifies() -> None:
    token = sign_resume(KEY, CALL.unique_id, CALL.channel, "1:0:main/menu:1:main/greeting::")
    assert verified_resume(KEY, CALL.unique_id, CALL.channel, token) == "1:0:main/menu:1:main/greeting::"
    assert verified_resume(KEY, "1700000000.8", CALL.channel, token) is None  # replayed onto another call
    assert verified_resume(KEY, CALL.unique_id, "PJSIP/pstn-00000008", token) is None
    assert verified_resume(resume_key(b"x" * 32), CALL.unique_id, CALL.channel, token) is None  # not our engines
    assert verified_resume(KEY, CALL.unique_id, CALL.channel, token.replace("greeting", "menu")) is None
    assert verified_resume(None, CALL.unique_id, CALL.channel, token) is None


class ListStore:
    def __init__(self) -> None:
        self.records: list[dict[str, object]] = []

    async def save_call(self, record: dict[str, object]) -> None:
        self.records.append(record)


def shipped_engine(key: bytes | None = KEY) -> tuple[Engine, ListStore]:
    config = REPO / "config"
    store = ListStore()
    flows = LiveFlows.from_config(config, catalog_loader(default_prompts_dir(config)), environ={})
    return Engine(flows, store, resume_key=key), store


async def test_the_engine_resumes_from_its_third_argument_and_refuses_a_forged_point() -> None:
    engine, store = shipped_engine()
    first = FakeChannel(["1", "HANGUP"])  # the sample line: level 1, then level 2
    await engine.handle_call(CALL, first)
    token = points(first)[-1]

    resumed = FakeChannel(["0"])
    await engine.handle_call(CallInfo(CALL.unique_id, CALL.channel, "8000", CALL.caller, arguments=("8000", "", token)),
                             resumed)
    record = store.records[-1]
    assert resumed.sounds()[0] == "sample_menu_l2" and record["resumed"] == 1
    assert [(v["node"], v["session"]) for v in record["visits"]] == [  # type: ignore[index, union-attr]
        ("welcome", 0), ("top", 0), ("services", 1), ("agent", 1)]

    for forged, call in [(token.replace("services", "top"), CALL),  # altered
                         (token, CallInfo("1700000000.9", "PJSIP/pstn-00000009", "8000", CALL.caller))]:  # replayed
        channel = FakeChannel(["0"])
        count = len(store.records)
        await engine.handle_call(CallInfo(call.unique_id, call.channel, "8000", call.caller,
                                          arguments=("8000", "", forged)), channel)
        assert channel.calls == [] and len(store.records) == count  # no flow, no record

    keyless, keyless_store = shipped_engine(key=None)
    channel = FakeChannel(["0"])
    await keyless.handle_call(CallInfo(CALL.unique_id, CALL.channel, "8000", CALL.caller, arguments=("8000", "", token)),
                              channel)
    assert channel.calls == [] and keyless_store.records == []


async def test_a_menu_a_key_typed_ahead_answers_at_once_costs_no_point() -> None:
    """The caller keyed 1 during the greeting: level 1 never plays, so only level 2 leaves a
    point (one SET VARIABLE fewer on the shortest calls)."""
    engine, _store = shipped_engine()
    channel = FakeChannel(["0"], barge=["1"])
    await engine.handle_call(CALL, channel)
    assert channel.sounds()[:2] == ["welcome_12345", "sample_menu_l2"]
    assert [decode(verified_resume(KEY, CALL.unique_id, CALL.channel, p) or "").node for p in points(channel)] == ["services"]

"""The two-level sample flow (dial 8000, config/flows/sample.yaml) driven by real SIP calls:
key sequences reach the intended queue or sub-center, a sub-center that is busy or does not
answer leaves the citizen with 12345 (general queue), and a menu's timeouts and wrong keys
take its retries, then its fallback.

What the flow says, for reading these tests:
  welcome (play, interruptible) → top: 1 → services, 0 → agent (retries 2)
  services: 1 → ask_id, 2 → tax, 0 → agent, * → top (timeout 5s, retries 1, → agent)
  ask_id (collect 15-18 digits) → read_back (say) → mark (set) → by_time (branch) → a queue
  tax: transfer to the tax sub-center (12366); agent: queue general.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta
from typing import Any

import pytest

from ivr.ami.client import AmiClient
from ivr.core.calendar import load_calendar
from testbed.bed import TestBed
from testbed.calls import AgiTrace, Phones, call_record, for_caller, hang_up_all
from testbed.sipp import Key, keys

SAMPLE = "8000"
GENERAL = {"type": "queue", "queue": "general", "priority": 0, "one_key": False}
L1, L2 = "ivr12345/sample_menu_l1", "ivr12345/sample_menu_l2"
HOLD_MS = 60_000  # callers stay on the line; each test hangs up once it has seen enough


pytestmark = pytest.mark.usefixtures("no_call_outlives_the_test")


def path(record: dict[str, Any]) -> list[tuple[str, str]]:
    return [(v["node"], v["outcome"]) for v in record["visits"]]



def tax_route(bed: TestBed, ring_timeout: int | None = None) -> dict[str, Any]:
    tax = bed.loaded.settings.subcenters["tax"]
    return {"type": "transfer", "trunk": "tax", "number": tax.number,
            "ring_timeout": ring_timeout or tax.ring_timeout, "fallback_queue": tax.fallback_queue, "closed": False}


async def finish(ami: AmiClient, sipp: Any) -> None:
    """Hang up from the 12345 side; the citizen's sipp must have followed its script."""
    await hang_up_all(ami)
    assert await sipp.wait(20) == 0, sipp.output()


# --- key sequences ---------------------------------------------------------------------------


async def test_given_the_sample_flow_when_the_caller_presses_1_then_2_then_the_tax_subcenter_answers_the_transfer(
    engine: TestBed, phones: Phones, ami: AmiClient, redis
) -> None:
    caller = phones.next_caller()
    tax = await phones.subcenter("tax", caller, "answer")
    dial_begin = ami.wait_for("DialBegin", for_caller(caller))
    dial_end = ami.wait_for("DialEnd", for_caller(caller))

    sipp, _ = await phones.call(SAMPLE, keys("12"), hold_ms=HOLD_MS, caller=caller)

    begin = await asyncio.wait_for(dial_begin, 20)
    assert begin["DestChannel"].startswith("PJSIP/tax-")
    assert begin["DialString"] == "12366@tax"
    assert (await asyncio.wait_for(dial_end, 20))["DialStatus"] == "ANSWER"
    record = await call_record(redis, caller)
    assert path(record) == [("welcome", "interrupted by 1"), ("top", "key 1"), ("services", "key 2"), ("tax", "route")]
    assert record["keys"] == ["1", "2"]
    assert record["route"] == tax_route(engine)
    await finish(ami, sipp)
    assert await tax.wait(20) == 0, tax.output()  # the sub-center got the call, answered, got BYE


WELCOME = "ivr12345/welcome_12345"


@pytest.mark.parametrize(
    ("presses", "expected_path", "expected_sounds"),
    [
        # level 1 takes a key pressed during the greeting (type-ahead) without saying its prompt
        pytest.param(keys("0", first_ms=1000), [("welcome", "interrupted by 0"), ("top", "key 0")], [WELCOME],
                     id="level-1-type-ahead"),
        pytest.param(keys("10"), [("welcome", "interrupted by 1"), ("top", "key 1"), ("services", "key 0")], [WELCOME, L2],
                     id="level-2"),
        # * returns to level 1, whose prompt the 0 then interrupts
        pytest.param(keys("1*0"), [("welcome", "interrupted by 1"), ("top", "key 1"), ("services", "key *"), ("top", "key 0")],
                     [WELCOME, L2, L1], id="level-1-after-back-from-level-2"),
    ],
)
async def test_given_the_sample_flow_when_the_caller_presses_0_in_any_menu_then_the_call_joins_the_general_queue(
    engine: TestBed, phones: Phones, ami: AmiClient, redis, presses: list[Key], expected_path: list[tuple[str, str]],
    expected_sounds: list[str],
) -> None:
    caller = phones.next_caller()
    trace = AgiTrace(ami, caller)
    joined = ami.wait_for("QueueCallerJoin", for_caller(caller))

    sipp, _ = await phones.call(SAMPLE, presses, hold_ms=HOLD_MS, caller=caller)

    assert (await asyncio.wait_for(joined, 30))["Queue"] == "q-general"
    record = await call_record(redis, caller)
    assert path(record) == expected_path + [("agent", "route")]
    assert record["route"] == GENERAL
    assert record["flow"] == "sample" and record["hung_up"] is False
    assert trace.sounds() == expected_sounds
    await finish(ami, sipp)


def by_time_rule(at: datetime, caller: str) -> tuple[str, dict[str, Any]]:
    """sample.yaml's `by_time` branch, evaluated independently of the engine for ``at``."""
    calendar = load_calendar()
    if calendar.matches(at.date(), "working") and time(8, 30) <= at.time() < time(17, 30):
        return "case 1", {"type": "queue", "queue": "expert-hrss", "priority": 1, "one_key": False}
    if caller.startswith("0551"):
        return "case 2", GENERAL
    return "else", GENERAL


async def test_given_the_sample_flow_when_the_caller_keys_an_18_digit_id_then_it_is_read_back_and_the_time_rule_picks_the_queue(
    engine: TestBed, phones: Phones, ami: AmiClient, redis
) -> None:
    id_number = "11010519491231002*"  # an ID number whose final X is keyed as *, as the flow says
    caller = phones.next_caller()
    trace = AgiTrace(ami, caller)
    joined = ami.wait_for("QueueCallerJoin", for_caller(caller))
    service_set = ami.wait_for("VarSet", lambda e: for_caller(caller)(e) and e.get("Variable") == "SERVICE")

    # SIP INFO for the 20 keys: one request each, nothing to overlap on the RTP stream
    sipp, _ = await phones.call(SAMPLE, keys("11" + id_number), hold_ms=HOLD_MS, dtmf="info", caller=caller)

    event = await asyncio.wait_for(joined, 45)
    record = await call_record(redis, caller)
    assert path(record)[:6] == [
        ("welcome", "interrupted by 1"), ("top", "key 1"), ("services", "key 1"),
        ("ask_id", "id_number=18 digits"), ("read_back", "said 18 digits"), ("mark", "set service"),
    ]
    assert record["variables"] == {"id_number": id_number, "service": "id_query"}
    assert (await asyncio.wait_for(service_set, 5))["Value"] == "id_query"  # `channel: true`
    assert f"SAY DIGITS {id_number} \"\"" in [c.command for c in trace.commands]

    by_time = next(v for v in record["visits"] if v["node"] == "by_time")
    at = datetime.fromisoformat(record["started"]) + timedelta(seconds=by_time["at"])
    outcome, route = by_time_rule(at, caller)
    assert by_time["outcome"] == outcome, f"at {at:%a %F %T}"
    assert record["route"] == route
    assert event["Queue"] == f"q-{route['queue']}"
    await finish(ami, sipp)


# --- a sub-center that does not take the call -------------------------------------------------


async def assert_falls_back_to_general(phones: Phones, ami: AmiClient, redis, caller: str,
                                       dial_status: str, route: dict[str, Any]) -> None:
    trace = AgiTrace(ami, caller)
    dial_end = ami.wait_for("DialEnd", for_caller(caller))
    joined = ami.wait_for("QueueCallerJoin", for_caller(caller))

    sipp, _ = await phones.call(SAMPLE, keys("12"), hold_ms=HOLD_MS, caller=caller)

    end = await asyncio.wait_for(dial_end, 40)
    assert end["DestChannel"].startswith("PJSIP/tax-")
    assert end["DialStatus"] == dial_status
    event = await asyncio.wait_for(joined, 20)
    assert event["Queue"] == "q-general"  # the citizen stays with 12345
    record = await call_record(redis, caller)
    assert record["route"] == route  # the engine chose the transfer; the dialplan fell back
    assert trace.sounds()[-1] == "ivr12345/transfer_notice"
    await finish(ami, sipp)


async def test_given_the_tax_subcenter_is_busy_when_transferred_then_the_citizen_joins_the_general_queue(
    engine: TestBed, phones: Phones, ami: AmiClient, redis
) -> None:
    caller = phones.next_caller()
    tax = await phones.subcenter("tax", caller, "busy")
    await assert_falls_back_to_general(phones, ami, redis, caller, "BUSY", tax_route(engine))
    assert await tax.wait(20) == 0, tax.output()  # it did get the INVITE (and said 486)


async def test_given_the_tax_subcenter_does_not_answer_within_its_ring_timeout_then_the_citizen_joins_the_general_queue(
    engine: TestBed, tax_rings_briefly: int, phones: Phones, ami: AmiClient, redis
) -> None:
    caller = phones.next_caller()
    tax = await phones.subcenter("tax", caller, "noanswer")
    await assert_falls_back_to_general(phones, ami, redis, caller, "NOANSWER", tax_route(engine, tax_rings_briefly))
    assert await tax.wait(20) == 0, tax.output()  # it rang, then Asterisk cancelled


# --- timeouts and wrong keys -------------------------------------------------------------------


async def test_given_level_2_when_the_caller_presses_only_wrong_keys_then_invalid_key_is_said_once_and_the_call_falls_back_to_a_seat(
    engine: TestBed, phones: Phones, ami: AmiClient, redis
) -> None:
    caller = phones.next_caller()
    trace = AgiTrace(ami, caller)
    joined = ami.wait_for("QueueCallerJoin", for_caller(caller))

    # 5 interrupts the level-2 prompt; invalid_key (3.6 s, not interruptible) follows; 7 then
    # lands while the level-2 prompt plays again (its second and last attempt)
    presses = [Key("1", 1500), Key("5", 400), Key("7", 6000)]
    sipp, _ = await phones.call(SAMPLE, presses, hold_ms=HOLD_MS, caller=caller)

    assert (await asyncio.wait_for(joined, 30))["Queue"] == "q-general"
    record = await call_record(redis, caller)
    assert path(record) == [("welcome", "interrupted by 1"), ("top", "key 1"),
                            ("services", "retries exhausted"), ("agent", "route")]
    assert record["keys"] == ["1", "5", "7"]
    assert record["route"] == GENERAL
    assert trace.sounds() == [WELCOME, L2, "ivr12345/invalid_key", L2]
    await finish(ami, sipp)


async def test_given_level_2_when_the_caller_stays_silent_then_no_input_is_said_once_and_the_call_falls_back_to_a_seat(
    engine: TestBed, phones: Phones, ami: AmiClient, redis
) -> None:
    """The slowest test here (~37 s): services is the sample's quickest menu to exhaust by
    silence (prompt 9.9 s + 5 s, no_input 5 s, prompt + 5 s again)."""
    caller = phones.next_caller()
    trace = AgiTrace(ami, caller)
    joined = ami.wait_for("QueueCallerJoin", for_caller(caller))

    sipp, _ = await phones.call(SAMPLE, keys("1"), hold_ms=HOLD_MS, caller=caller)

    assert (await asyncio.wait_for(joined, 60))["Queue"] == "q-general"
    record = await call_record(redis, caller)
    assert path(record) == [("welcome", "interrupted by 1"), ("top", "key 1"),
                            ("services", "retries exhausted"), ("agent", "route")]
    assert record["keys"] == ["1"]
    assert trace.sounds() == [WELCOME, L2, "ivr12345/no_input", L2]
    waits = [c for c in trace.commands if c.command.startswith(f'GET DATA "{L2}"')]
    assert all(c.command.endswith(" 5000 1") for c in waits)  # the menu's 5 s timeout, one key
    services = next(v for v in record["visits"] if v["node"] == "services")
    assert services["seconds"] >= 2 * 5 + 2 * 9.0  # both timeouts waited out after both prompts
    await finish(ami, sipp)

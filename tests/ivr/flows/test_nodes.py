"""Each node type run through the real runner over a fake channel."""

from __future__ import annotations

from datetime import datetime

import pytest

from flow_helpers import NOTICE_FLOW, write_flow, FakeChannel, call, compile_text
from ivr.flows.runner import apply_route, run_call
from ivr.core.route import HangupRoute, QueueRoute, TransferRoute

MONDAY_10 = datetime(2026, 11, 23, 10, 0)

MENU_FLOW = """
    nodes:
      hello: {type: play, prompts: [welcome_12345, main_menu], interruptible: true, next: menu}
      menu:
        type: menu
        prompt: main_menu
        keys: {"1": sub, "0": agent}
        repeat_key: "9"
        timeout: 2s
        retries: 2
        on_exhausted: agent
      sub:
        type: menu
        prompt: hrss_menu
        keys: {"0": agent, "1": experts}
        back: menu
        max_visits: 2
        retries: 0
        on_exhausted: agent
      experts: {type: queue, queue: expert-hrss, priority: 3, prompt: queue_notice}
      agent: {type: queue, queue: general}
    """


async def run(config, catalog, text, channel, **kw):
    flows = compile_text(config, catalog, text)
    return await run_call(flows, call(**kw), channel, now=lambda: MONDAY_10)


async def test_given_keys_when_menu_runs_then_each_step_is_one_get_data(bare_config, catalog):
    channel = FakeChannel(["1", "1"])
    record = await run(bare_config, catalog, MENU_FLOW, channel)
    assert record.route == QueueRoute("expert-hrss", 3)
    assert [c[0] for c in channel.calls] == ["stream", "stream", "get_data", "get_data", "stream"]
    assert channel.calls[2] == ("get_data", "ivr12345/main_menu", 2000, 1)
    assert record.keys == ("1", "1")
    assert [v.node for v in record.visits] == ["hello", "menu", "sub", "experts"]
    assert [v.outcome for v in record.visits] == ["played", "key 1", "key 1", "route"]


async def test_given_silence_and_a_wrong_key_then_retries_play_notices_then_fallback(bare_config, catalog):
    channel = FakeChannel(["", "7", ""])
    record = await run(bare_config, catalog, MENU_FLOW, channel)
    assert channel.sounds() == ["welcome_12345", "main_menu", "main_menu", "no_input", "main_menu", "invalid_key", "main_menu"]
    assert record.route == QueueRoute("general")
    assert record.visits[1].outcome == "retries exhausted"


async def test_given_the_repeat_key_then_the_prompt_replays_without_a_notice(bare_config, catalog):
    channel = FakeChannel(["9", "0"])
    record = await run(bare_config, catalog, MENU_FLOW, channel)
    assert channel.sounds()[2:] == ["main_menu", "main_menu"]
    assert record.route == QueueRoute("general")


async def test_given_back_and_forth_then_max_visits_ends_at_on_exhausted(bare_config, catalog):
    channel = FakeChannel(["1", "*", "1", "*", "1"])
    record = await run(bare_config, catalog, MENU_FLOW, channel)
    assert [v.node for v in record.visits] == ["hello", "menu", "sub", "menu", "sub", "menu", "sub", "agent"]
    assert record.visits[-2].outcome == "visits exhausted"
    assert record.route == QueueRoute("general")


async def test_given_a_key_during_an_interruptible_greeting_then_the_menu_takes_it_without_prompting(bare_config, catalog):
    channel = FakeChannel([], barge=["0"])
    record = await run(bare_config, catalog, MENU_FLOW, channel)
    assert channel.sounds() == ["welcome_12345"]
    assert channel.calls[0] == ("stream", "ivr12345/welcome_12345", "0123456789*#")
    assert record.route == QueueRoute("general")
    assert record.keys == ("0",)


async def test_given_a_hang_up_mid_menu_then_a_record_is_still_returned(bare_config, catalog):
    channel = FakeChannel(["1", "HANGUP"])
    record = await run(bare_config, catalog, MENU_FLOW, channel)
    assert record.hung_up and record.route == HangupRoute()
    assert [(v.node, v.outcome) for v in record.visits][-1] == ("sub", "interrupted")
    assert record.keys == ("1",) and record.ended >= record.started


COLLECT_FLOW = """
    nodes:
      ask:
        type: collect
        prompt: enter_id_number
        var: id_number
        min_digits: 15
        max_digits: 18
        pattern: "[0-9]{15}|[0-9]{18}"
        timeout: 4s
        retries: 1
        next: read
        on_exhausted: agent
      read: {type: say, prompt: you_entered, value: "${id_number}", next: count}
      count: {type: say, value: "42", mode: number, next: mark}
      mark: {type: set, vars: {service: "id:${id_number}", from: "${caller}"}, channel: true, next: agent}
      agent: {type: queue, queue: general}
    """


async def test_given_a_valid_number_then_collect_stores_it_and_say_reads_it_back(bare_config, catalog):
    channel = FakeChannel(["1234", "110101199001011234"])
    record = await run(bare_config, catalog, COLLECT_FLOW, channel, caller="05511234567")
    assert channel.calls[0] == ("get_data", "ivr12345/enter_id_number", 4000, 18)
    assert channel.sounds()[:3] == ["enter_id_number", "invalid_key", "enter_id_number"]
    assert ("say_digits", "110101199001011234") in channel.calls
    assert ("say_number", 42) in channel.calls
    assert record.variables == {"id_number": "110101199001011234", "service": "id:110101199001011234", "from": "05511234567"}
    assert channel.variables == {}  # deferred: set together with the route
    assert record.channel_variables == {"SERVICE": "id:110101199001011234", "FROM": "05511234567"}
    await apply_route(channel, record.route, record.channel_variables)
    assert channel.variables == {"SERVICE": "id:110101199001011234", "FROM": "05511234567",
                                 "IVR_QUEUE": "general", "IVR_QUEUE_PRIORITY": "0", "IVR_ROUTE": "queue"}


async def test_given_a_pattern_that_admits_star_then_an_id_ending_in_x_is_accepted(bare_config, catalog):
    flow = COLLECT_FLOW.replace('pattern: "[0-9]{15}|[0-9]{18}"', 'pattern: "[0-9]{15}|[0-9]{17}[0-9*]"')
    record = await run(bare_config, catalog, flow, FakeChannel(["11010119900101123*"]))
    assert record.variables["id_number"] == "11010119900101123*"


async def test_given_no_pattern_then_collect_accepts_digits_only(bare_config, catalog):
    flow = COLLECT_FLOW.replace('        pattern: "[0-9]{15}|[0-9]{18}"\n', "")
    record = await run(bare_config, catalog, flow, FakeChannel(["11010119900101123*", "11010119900101123*"]))
    assert "id_number" not in record.variables


async def test_given_only_wrong_input_then_collect_falls_back(bare_config, catalog):
    record = await run(bare_config, catalog, COLLECT_FLOW, FakeChannel(["12", "99999"]))
    assert record.route == QueueRoute("general")
    assert "id_number" not in record.variables


BRANCH_FLOW = """
    nodes:
      pick:
        type: branch
        cases:
          - when: {dialed: ["12333"]}
            goto: hrss
          - when: {caller_prefix: ["0551", "139"], weekday: [mon]}
            goto: local
          - when: {day: holiday}
            goto: closed
          - when: {day: working, time: "08:30-17:30"}
            goto: office
          - when: {time: "22:00-06:00"}
            goto: night
        else: agent
      hrss: {type: queue, queue: expert-hrss}
      local: {type: queue, queue: general, priority: 2}
      closed: {type: hangup, prompt: closed_notice}
      office: {type: queue, queue: general, priority: 1}
      night: {type: transfer, number: "110", prompt: emergency_notice}
      agent: {type: queue, queue: general}
    """


@pytest.mark.parametrize(
    ("dialed", "caller", "at", "route"),
    [
        ("12333", "1", datetime(2026, 11, 23, 10), QueueRoute("expert-hrss")),
        ("12345", "13912345678", datetime(2026, 11, 23, 3), QueueRoute("general", 2)),
        ("12345", "1", datetime(2026, 10, 3, 10), HangupRoute()),  # National Day
        ("12345", "1", datetime(2026, 10, 10, 10), QueueRoute("general", 1)),  # Saturday worked (调休)
        ("12345", "1", datetime(2026, 10, 11, 23), TransferRoute("emergency", "110", 30, "general")),
        ("12345", "1", datetime(2026, 10, 11, 12), QueueRoute("general")),  # Sunday noon
    ],
)
async def test_branch_conditions(bare_config, catalog, dialed, caller, at, route):
    flows = compile_text(bare_config, catalog, BRANCH_FLOW)
    record = await run_call(flows, call(dialed=dialed, caller=caller), FakeChannel(), now=lambda: at)
    assert record.route == route


async def test_given_variables_then_branch_compares_them(bare_config, catalog):
    flows = compile_text(bare_config, catalog, """
        nodes:
          mark: {type: set, vars: {lang: en, code: A17}, next: pick}
          pick:
            type: branch
            cases:
              - when: {var: lang, equals: zh}
                goto: zh
              - when: {var: code, matches: "A[0-9]+"}
                goto: coded
            else: zh
          zh: {type: queue, queue: general}
          coded: {type: queue, queue: expert-hrss}
        """)
    record = await run_call(flows, call(), FakeChannel(), now=lambda: MONDAY_10)
    assert record.route == QueueRoute("expert-hrss")


async def test_given_goto_with_max_times_then_it_stops_looping(bare_config, catalog):
    flows = compile_text(bare_config, catalog, """
        nodes:
          notice: {type: play, prompts: no_input, next: again}
          again: {type: goto, to: notice, max_times: 2, otherwise: agent}
          agent: {type: queue, queue: general}
        """)
    channel = FakeChannel()
    record = await run_call(flows, call(), channel, now=lambda: MONDAY_10)
    assert channel.sounds() == ["no_input"] * 3
    assert record.route == QueueRoute("general")


async def test_given_a_subflow_then_the_call_continues_in_the_other_flow(bare_config, catalog):
    write_flow(bare_config, NOTICE_FLOW, name="notice")
    flows = compile_text(bare_config, catalog, """
        nodes:
          go: {type: subflow, flow: notice}
        """)
    channel = FakeChannel()
    record = await run_call(flows, call(), channel, now=lambda: MONDAY_10)
    assert [(v.flow, v.node) for v in record.visits] == [("t", "go"), ("notice", "notice"), ("notice", "agent")]
    assert record.flow == "t" and record.route == QueueRoute("general")


async def test_transfers_to_a_subcenter_and_to_a_plain_number(bare_config, catalog):
    text = """
        nodes:
          menu: {type: menu, prompt: main_menu, keys: {"1": tax, "0": agent, "9": police}, on_exhausted: agent}
          tax: {type: transfer, subcenter: tax, prompt: transfer_notice}
          police: {type: transfer, number: "110", ring_timeout: 40, fallback_queue: general}
          agent: {type: queue, queue: general}
        """
    tax = await run(bare_config, catalog, text, FakeChannel(["1"]))
    assert tax.route == TransferRoute("tax", "12366", 20, "general")
    police = await run(bare_config, catalog, text, FakeChannel(["9"]))
    assert police.route == TransferRoute("emergency", "110", 40, "general")  # the emergency trunk


async def test_given_a_hangup_node_then_the_route_is_hangup_after_its_prompt(bare_config, catalog):
    channel = FakeChannel()
    record = await run(bare_config, catalog, """
        nodes:
          bye: {type: hangup, prompt: goodbye}
        """, channel)
    assert channel.sounds() == ["goodbye"] and record.route == HangupRoute() and not record.hung_up


async def test_apply_route_sets_ivr_route_last():
    channel = FakeChannel()
    await apply_route(channel, TransferRoute("tax", "12366", 20, "general"))
    names = [c[1] for c in channel.calls]
    assert names[-1] == "IVR_ROUTE" and channel.variables["IVR_ROUTE"] == "transfer"
    assert set(names) == {"IVR_TRANSFER_CLOSED", "IVR_TRANSFER_TRUNK", "IVR_TRANSFER_NUMBER", "IVR_TRANSFER_TIMEOUT",
                          "IVR_FALLBACK_QUEUE", "IVR_ROUTE"}


async def test_given_a_channel_error_then_the_call_goes_to_the_general_queue(bare_config, catalog):
    from ivr.core.channel import ChannelError

    class Broken(FakeChannel):
        async def get_data(self, sound, timeout_ms, max_digits):
            raise ChannelError("510 Invalid or unknown command")

    record = await run(bare_config, catalog, MENU_FLOW, Broken())
    assert record.route == QueueRoute("general") and "510" in (record.error or "")


async def test_given_a_subcenter_number_then_it_is_transferred_without_a_flow(config_dir, catalog):
    from ivr.hot_reload import compile_config

    flows = compile_config(config_dir, catalog, environ={})
    record = await run_call(flows, call(dialed="12366"), FakeChannel())
    assert record.route == TransferRoute("tax", "12366", 20, "general") and record.flow == ""
    unknown = await run_call(flows, call(dialed="99999"), FakeChannel([""]))
    assert unknown.flow == "main"

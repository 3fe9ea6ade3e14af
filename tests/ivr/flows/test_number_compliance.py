"""Compliance by default: every number of the plan, as its caller lives it (a merged number's
notice, then its flow from ``after_notice``), within 15 s to a human unless its entry says why
not; errors at the number's entry."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flow_helpers import FakeChannel, call, compile_text, errors_of
from ivr.flows.runner import run_call

FLOW = """
    budget: 15s
    after_notice: menu
    nodes:
      hello: {type: play, prompts: welcome_12345, next: menu}
      menu: {type: menu, prompt: main_menu, keys: {"0": agent}, timeout: 3s, retries: 0, on_exhausted: agent}
      agent: {type: queue, queue: general}
    """  # hello 4 s, menu 4 + 3 s; a merged number's notice is 4 s


def numbers(config: Path, entries: str) -> None:
    (config / "numbers.yaml").write_text("numbers:\n" + entries, encoding="utf-8")


def test_given_a_merged_number_then_its_notice_counts_and_the_error_names_its_entry(bare_config, catalog):
    numbers(bare_config, '  "12345": {mode: main, title: t, flow: t}\n'
                         '  "12365": {mode: merged, title: m, flow: t}\n')
    both = FLOW.replace("after_notice: menu", "after_notice: hello")  # the notice and then the greeting
    assert errors_of(bare_config, catalog, both) == []  # 4 + 4 + 7 = 15: just within
    assert errors_of(bare_config, catalog, both.replace("timeout: 3s", "timeout: 4s")) == [
        "3:12: number 12365 (merged, flow t): worst case 16s to a human exceeds 15s: notice merged_notice__12365 4s → "
        "hello[next] 4s → menu[key 0] 8s → agent[queue] 0s; shorten it, or say why not in its entry: "
        'compliance: {exempt: "reason"}'
    ]


def test_given_after_notice_then_the_notice_stands_for_the_greeting(bare_config, catalog):
    numbers(bare_config, '  "12345": {mode: main, title: t, flow: t}\n'
                         '  "12365": {mode: merged, title: m, flow: t}\n')
    assert errors_of(bare_config, catalog, FLOW.replace("timeout: 3s", "timeout: 4s")) == []  # 4 + 8 s


def test_given_a_notice_whose_transition_is_over_then_it_no_longer_counts(bare_config, catalog):
    numbers(bare_config, '  "12345": {mode: main, title: t, flow: t}\n'
                         '  "12365": {mode: merged, title: m, flow: t, announce_until: 2020-01-01}\n')
    assert errors_of(bare_config, catalog, FLOW.replace("after_notice: menu", "after_notice: hello")) == []


def test_given_a_flow_without_a_budget_then_a_number_reaching_it_is_held_to_15s_unless_exempt(bare_config, catalog):
    long = FLOW.replace("    budget: 15s\n", "").replace("timeout: 3s", "timeout: 20s")
    numbers(bare_config, '  "8000": {mode: main, title: demo, flow: t}\n')
    assert errors_of(bare_config, catalog, long) == [
        "2:11: number 8000 (main, flow t): worst case 28s to a human exceeds 15s: hello[next] 4s → menu[key 0] 24s → "
        'agent[queue] 0s; shorten it, or say why not in its entry: compliance: {exempt: "reason"}'
    ]
    numbers(bare_config, '  "8000": {mode: main, title: demo, flow: t, compliance: {exempt: "a demo line, no citizen calls it"}}\n')
    assert errors_of(bare_config, catalog, long) == []


def test_an_exemption_needs_a_reason(bare_config, catalog):
    from ivr.config import ConfigError

    numbers(bare_config, '  "8000": {mode: main, title: demo, flow: t, compliance: {exempt: ""}}\n')
    with pytest.raises(ConfigError, match=r"numbers.yaml:2:\d+: .*exempt.*at least 4 characters"):
        compile_text(bare_config, catalog, FLOW)


def test_after_notice_must_name_a_node(bare_config, catalog):
    assert errors_of(bare_config, catalog, FLOW.replace("after_notice: menu", "after_notice: mneu")) == [
        "2:15: after_notice 'mneu' is not a node in this flow (did you mean 'menu'?)"
    ]


def test_a_merged_call_hears_the_notice_then_goes_on_at_after_notice(bare_config, catalog):
    numbers(bare_config, '  "12345": {mode: main, title: t, flow: t}\n'
                         '  "12365": {mode: merged, title: m, flow: t}\n')
    flows = compile_text(bare_config, catalog, FLOW)
    merged, direct = FakeChannel(), FakeChannel()
    asyncio.run(run_call(flows, call("12365"), merged))
    asyncio.run(run_call(flows, call("12345"), direct))
    assert merged.sounds() == ["merged_notice__12365", "main_menu"]
    assert direct.sounds() == ["welcome_12345", "main_menu"]


def test_the_shipped_plans_hold_every_number_to_15s():
    """With the built prompts' real durations, both plans."""
    from flow_helpers import REPO
    from ivr.hot_reload import catalog_loader, compile_config

    real = catalog_loader(REPO / "prompts")()
    for plan in ("anhui-2021", "xuancheng-2016"):
        compile_config(REPO / "config", real, environ={"IVR_PLAN": plan}, strict_lint=True)  # raises when over



def test_a_reload_refuses_a_number_over_budget_with_its_entry_unless_it_is_exempted(bare_config, catalog):
    """Issue 22: a reload refuses a number a few seconds over (as `ivr check` does), naming the
    number's entry, and the old set stays live; the same change with a reasoned exemption goes live."""
    from flow_helpers import write_flow
    from ivr.hot_reload import LiveFlows, compile_config

    numbers(bare_config, '  "12345": {mode: main, title: t, flow: t}\n')
    write_flow(bare_config, FLOW)
    live = LiveFlows(lambda: compile_config(bare_config, catalog, environ={}))
    before = live.current
    numbers(bare_config, '  "12345": {mode: main, title: t, flow: t}\n'
                         '  "12365": {mode: merged, title: m, flow: t}\n')
    write_flow(bare_config, FLOW.replace("after_notice: menu", "after_notice: hello").replace("timeout: 3s", "timeout: 4s"))
    result = live.reload()
    assert not result.ok and live.current is before and result.version == before.version
    assert [e.split(": ", 1)[1].split(":", 1)[0] for e in result.errors] == ["number 12365 (merged, flow t)"]
    assert result.errors[0].startswith(f"{bare_config}/numbers.yaml:3:")
    numbers(bare_config, '  "12345": {mode: main, title: t, flow: t}\n'
                         '  "12365": {mode: merged, title: m, flow: t, compliance: {exempt: "the notice is required by law"}}\n')
    result = live.reload()
    assert result.ok and live.version == result.version != before.version

"""Publishing a flow from the console, in a real Chromium, against the bed's engine: a broken
draft is refused with its file:line while the running flow keeps answering calls; a good one
goes live through the engine's reload and the next real call takes it. The audit log has both.
Hostile drafts (issue 17): a YAML bomb leaves the engine's memory flat, a plan that injects
dialplan never reaches Asterisk."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from ivr.ami.client import AmiClient
from ivr.config import ConfigError
from testbed.bed import TestBed
from testbed.browser import Browser
from testbed.calls import Phones, call_record, for_caller, hang_up_all, run_ivr, until
from testbed.console import ConsoleSite, metric
from testbed.hostile import ISSUE_BOMB, KIB_BOMB, inject_title
from testbed.memory import peak_kib, reset_peak, rss_kib
from testbed.sipp import keys

SAMPLE = "8000"
LEVEL2_ZERO = '      "0": agent               # 0 reaches a seat from every menu (the lint checks it)\n'


def put_yaml(browser: Browser, text: str) -> None:
    browser.driver.execute_script("arguments[0].value = arguments[1]", browser.find("#yaml"), text)


async def level2_zero_call(phones: Phones, ami: AmiClient, redis: aioredis.Redis) -> tuple[str, dict[str, Any]]:
    """A real SIP call to the sample line pressing 1 then 0: the queue it joins and its call record."""
    caller = phones.next_caller()
    joined = ami.wait_for("QueueCallerJoin", for_caller(caller))
    sipp, _ = await phones.call(SAMPLE, keys("10"), hold_ms=60_000, caller=caller)
    queue = (await asyncio.wait_for(joined, 30))["Queue"]
    record = await call_record(redis, caller)
    await hang_up_all(ami)
    assert await sipp.wait(20) == 0, sipp.output()
    return queue, record


async def test_admin_publishes_a_broken_flow_then_a_good_one_and_a_new_call_takes_it(
    engine: TestBed, browser: Browser, console: ConsoleSite, config_dir: Path, phones: Phones, ami: AmiClient,
    redis: aioredis.Redis,
) -> None:
    assert engine.state
    path = (config_dir / "flows" / "sample.yaml").resolve()
    original = path.read_text(encoding="utf-8")
    admin = console.account("admin")
    browser.sign_in(admin).open("/flows/flows/sample.yaml")
    live = browser.text("#live-version")
    try:
        put_yaml(browser, original.replace('    repeat_key: "9"\n', '    repeat_key: "9"\n    colour: red\n'))
        browser.submit("#publish")
        line = original[: original.index('    repeat_key: "9"\n')].count("\n") + 2
        assert browser.find("#result").get_attribute("data-ok") == "false"
        assert f"flows/sample.yaml:{line}:5: 未知的配置项 'colour'" in browser.text("#problems")
        assert str(config_dir.resolve()) not in browser.text("#problems")  # no server paths to staff
        assert browser.text("#live-version") == live
        queue, record = await level2_zero_call(phones, ami, redis)  # the running flow still answers
        assert (queue, record["flow_version"]) == ("q-general", live)

        put_yaml(browser, original.replace(LEVEL2_ZERO, '      "0": experts\n'))
        browser.submit("#publish")
        assert browser.find("#result").get_attribute("data-ok") == "true", browser.text("#result")
        new = browser.text("#live-version")
        assert new != live
        queue, record = await level2_zero_call(phones, ami, redis)  # a new call takes the published flow
        assert (queue, record["flow_version"]) == ("q-expert-hrss", new)
        assert record["route"]["queue"] == "expert-hrss"
    finally:
        await hang_up_all(ami)
        if path.read_text(encoding="utf-8") != original:
            path.write_text(original, encoding="utf-8")
            code, out = await run_ivr(engine.state, "reload")
            assert code == 0, out
    await until(lambda: metric(console, 'ivr_calls_today{line="8000"}') >= 2)  # both calls, in /metrics
    assert metric(console, "ivr_agi_roundtrip_seconds_count") > 0 and metric(console, "ivr_active_calls") >= 0
    mine = [(e.command, e.what["outcome"], e.what["file"]) for e in console.audit()
            if e.user == f"{admin.name}@console" and e.command.startswith("console flow")]
    assert mine[-2:] == [("console flow publish", "refused", "flows/sample.yaml"),
                         ("console flow publish", "published", "flows/sample.yaml")]

    browser.open("/audit")  # the admin reads them in the console
    commands = [row.find_element("css selector", ".command").text for row in browser.all("#audit tbody tr")]
    assert commands[:3] == ["控制台发布流程", "控制台发布流程", "控制台登录"]


async def test_a_yaml_bomb_through_the_check_and_ivr_reload_leaves_the_engine_flat_and_answering(
    engine: TestBed, browser: Browser, console: ConsoleSite, config_dir: Path, phones: Phones, ami: AmiClient,
    redis: aioredis.Redis,
) -> None:
    """Issue 17, finding 3, against the real ``ivr serve``: its peak RSS while a supervisor's
    1 KiB bomb is checked and while ``ivr reload`` meets the issue's bomb on disk."""
    assert engine.state
    pid = engine.state.engine_pid
    browser.sign_in(console.account("supervisor")).open("/flows/flows/main.yaml")
    live = browser.text("#live-version")
    put_yaml(browser, KIB_BOMB)
    reset_peak(pid)
    before = rss_kib(pid)
    browser.submit("#check")
    problems = browser.text("#problems")
    assert "flows/main.yaml:2:5: 不允许使用 YAML 锚点或别名 &l0" in problems
    bomb = config_dir / "flows" / "bomb.yaml"
    bomb.write_text(ISSUE_BOMB, encoding="utf-8")
    try:
        code, out = await run_ivr(engine.state, "reload")
    finally:
        bomb.unlink()
    assert code == 1 and f"reload refused; version {live} stays live" in out, out
    assert "bomb.yaml:2:5: anchor &l0 is not allowed" in out
    grown = peak_kib(pid) - before
    assert grown < 8 * 1024, f"the engine's peak RSS grew by {grown} KiB"  # the old check took GiBs
    queue, record = await level2_zero_call(phones, ami, redis)  # FastAGI still answers, on the live flows
    assert (queue, record["flow_version"]) == ("q-general", live)


async def answered(phones: Phones, ami: AmiClient, redis: aioredis.Redis, dialed: str) -> dict[str, Any]:
    """A real call to ``dialed`` that reaches the engine and a queue (no key: the 12345 menu times out)."""
    caller = phones.next_caller()
    joined = ami.wait_for("QueueCallerJoin", for_caller(caller))
    sipp, _ = await phones.call(dialed, [], hold_ms=60_000, caller=caller)
    await asyncio.wait_for(joined, 40)
    record = await call_record(redis, caller)
    await hang_up_all(ami)
    assert await sipp.wait(20) == 0, sipp.output()
    return record


async def test_a_plan_that_injects_dialplan_is_refused_and_asterisk_keeps_answering(
    engine: TestBed, browser: Browser, console: ConsoleSite, config_dir: Path, phones: Phones, ami: AmiClient,
    redis: aioredis.Redis,
) -> None:
    """Issue 17, finding 4: the admin's publish is refused with the plan's line; the same plan
    written to disk by hand stops rendering before Asterisk sees it; Asterisk, rendered again
    from config/, still answers 8000 and 96119 (which the injection had silenced)."""
    path = config_dir / "plans" / "anhui-2021.yaml"
    original = path.read_text(encoding="utf-8")
    hostile = inject_title(original, "12366")
    browser.sign_in(console.account("admin")).open("/flows/plans/anhui-2021.yaml")
    put_yaml(browser, hostile)
    browser.submit("#publish")
    line = hostile[: hostile.index('"12366":')].count("\n") + 1
    assert browser.find("#result").get_attribute("data-ok") == "false"
    assert f"plans/anhui-2021.yaml:{line}:" in browser.text("#problems") and "换行符 U+000A，不允许" in browser.text("#problems")
    assert path.read_text(encoding="utf-8") == original
    try:
        path.write_text(hostile, encoding="utf-8")
        with pytest.raises(ConfigError, match=r"numbers\.12366\.title: .*U\+000A is not allowed"):
            await engine.apply_config()
    finally:
        path.write_text(original, encoding="utf-8")
    await engine.apply_config()
    numbers = (engine.dir / "etc" / "extensions_numbers.conf").read_text(encoding="utf-8")
    assert "[" not in numbers and "Dial(" not in numbers and "exten => 12366,1," in numbers
    queue, record = await level2_zero_call(phones, ami, redis)
    assert (queue, record["dialed"]) == ("q-general", SAMPLE)
    record = await answered(phones, ami, redis, "96119")
    assert (record["dialed"], record["flow"]) == ("96119", "main")

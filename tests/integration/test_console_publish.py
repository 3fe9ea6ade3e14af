"""Publishing a flow from the console, in a real Chromium, against the bed's engine: a broken
draft is refused with its file:line while the running flow keeps answering calls; a good one
goes live through the engine's reload and the next real call takes it. The audit log has both."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from ivr.ami.client import AmiClient
from ivr.testbed.bed import TestBed
from ivr.testbed.browser import Browser
from ivr.testbed.calls import Phones, call_record, for_caller, hang_up_all, run_ivr, until
from ivr.testbed.console import ConsoleSite
from ivr.testbed.sipp import keys

SAMPLE = "8000"
LEVEL2_ZERO = '      "0": agent               # 0 reaches a seat from every menu (the lint checks it)\n'


def metric(console: ConsoleSite, sample: str) -> float:
    """One sample of the engine's /metrics (Prometheus text format, no personal data), read as
    Prometheus does: with the engine's bearer token."""
    request = urllib.request.Request(console.url + "/metrics", headers={"Authorization": f"Bearer {console.metrics_token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read().decode()
    values = [line.split()[-1] for line in text.splitlines() if line.startswith(sample + " ")]
    return float(values[0]) if values else -1.0


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
        assert f"{path}:{line}:5: unknown key 'colour'" in browser.text("#problems")
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
    assert commands[:3] == ["console flow publish", "console flow publish", "console sign-in"]

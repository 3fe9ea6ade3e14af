"""The console's 集群 page (issue 20 item 5) on the bed's engine, in a real Chromium: with a call
up, the one node (no cluster section) shows as reachable with that call; an agent cannot open it."""

from __future__ import annotations

import asyncio

import pytest

from ivr.ami.client import AmiClient
from testbed.bed import TestBed
from testbed.browser import Browser
from testbed.calls import Phones, idle
from testbed.console import ConsoleSite


@pytest.mark.usefixtures("no_call_outlives_the_test")
async def test_the_cluster_page_shows_the_node_with_its_call(
    engine: TestBed, phones: Phones, ami: AmiClient, browser: Browser, console: ConsoleSite,
) -> None:
    caller = "13612340021"
    await idle(ami)
    up = ami.wait_for("Newstate", lambda e: e.get("CallerIDNum") == caller and e.get("ChannelStateDesc") == "Up")
    await phones.call("12345", [], hold_ms=20_000, caller=caller)
    await asyncio.wait_for(up, 30)
    assert engine.state
    await asyncio.to_thread(browser.sign_in, console.account("supervisor"))
    await asyncio.to_thread(browser.open, "/cluster")
    row = browser.find('#cluster-nodes tr[data-node="ivr12345"]').text.split()
    assert row == ["ivr12345", f"127.0.0.1:{engine.state.ami_port}", "可达", "1", "/", "不限", row[-1]]
    assert row[-1] != "无"  # an engine follows the node
    assert "未配置代理" in browser.text("#cluster-no-proxies")
    assert "节点租约" in browser.text("#cluster-nodes-lease")


def test_an_agent_cannot_open_the_cluster_page(engine: TestBed, browser: Browser, console: ConsoleSite) -> None:
    browser.sign_in(console.account("agent"))
    browser.open("/cluster")
    assert not browser.all("#cluster-nodes")

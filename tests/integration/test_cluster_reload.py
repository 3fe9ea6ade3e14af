"""Reload and status cluster-wide on the cluster bed (two engines, one Asterisk): a flow published
in engine 0's console goes live on both engines (each confirms the announced version in its
status; real SIP calls served by each engine take the new flow) and `ivr reload --status` says
so; an engine stopped during a rollback from the console catches up when it starts, and calls
on both engines then take the rolled-back flow."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from ivr.ami.client import AmiClient
from ivr.store.engines import EngineRegistry, content_of, out_of_step
from testbed.bed import TestBed
from testbed.calls import Phones, call_record, hang_up_all, run_ivr, until
from testbed.console import ConsoleSite, bed_site, http_client, sign_in_http
from testbed.sipp import keys

SAMPLE, FILE = "8000", "flows/sample.yaml"
LEVEL2_ZERO = '      "0": agent               # 0 reaches a seat from every menu (the lint checks it)\n'


async def post(http: aiohttp.ClientSession, site: ConsoleSite, csrf: str, verb: str, **form: str) -> str:
    """Publish or roll back in the console as the flow page's forms do; the new live version."""
    async with http.post(f"{site.url}/flows/{FILE}/{verb}", data={**form, "_csrf": csrf}) as reply:
        page = await reply.text()
    assert reply.status == 200 and 'data-ok="true"' in page, page[-2000:]
    live = re.search(r'id="live-version">([^<]+)<', page)
    assert live, page[-2000:]
    return live[1]


async def initial_version(http: aiohttp.ClientSession, site: ConsoleSite) -> str:
    """The history's entry of the file as it was before the console's first publish."""
    async with http.get(f"{site.url}/flows/{FILE}") as reply:
        ids = re.findall(r'name="version" value="([^"]+)"', await reply.text())
    initial = [i for i in ids if i.endswith("--initial")]
    assert len(initial) == 1, ids
    return initial[0]


async def all_confirm(registry: EngineRegistry, engines: int, content: str) -> dict[str, dict[str, str]]:
    """Until ``engines`` engines are live and every one confirmed the announcement of ``content``."""

    async def confirmed() -> dict[str, dict[str, str]] | None:
        wanted, statuses = await registry.wanted(), await registry.statuses()
        ok = (wanted is not None and wanted.content == content and len(statuses) == engines
              and not out_of_step(wanted, statuses))
        return statuses if ok else None

    return await until(confirmed, timeout=30)


async def status_report(cluster: TestBed) -> tuple[int, str]:
    assert cluster.state
    return await run_ivr(cluster.state, "reload", "--status")


async def one_call_per_engine(cluster: TestBed, phones: Phones, ami: AmiClient, redis: aioredis.Redis
                              ) -> dict[int, tuple[str, dict[str, Any]]]:
    """Two calls at once to the sample line pressing 1 then 0 (the first engine tried alternates
    per call): by the engine that served each, the queue it joined and its call record."""
    callers = [phones.next_caller() for _ in range(2)]
    joined = [ami.wait_for("QueueCallerJoin", lambda e, c=c: e.get("CallerIDNum") == c) for c in callers]
    sipp = await phones.calls(SAMPLE, callers, keys("10"), hold_ms=60_000)
    served: dict[int, tuple[str, dict[str, Any]]] = {}
    for caller, join in zip(callers, joined):
        event = await asyncio.wait_for(join, 30)
        at = await ami.action({"Action": "Getvar", "Channel": event["Channel"], "Variable": "IVR_ENGINE_AT"})
        served[int(at["Value"])] = (event["Queue"], await call_record(redis, caller))
    await hang_up_all(ami)
    assert await sipp.wait(20) == 0, sipp.output()
    return served


async def test_a_console_publish_is_live_on_both_engines_and_a_stopped_engine_catches_up_on_a_rollback(
    cluster: TestBed, cluster_ami: AmiClient, cluster_phones: Phones, cluster_redis: aioredis.Redis,
    config_dir: Path,
) -> None:
    assert cluster.state
    site, registry = bed_site(cluster.state), EngineRegistry(cluster_redis)
    path = (config_dir / FILE).resolve()
    original = path.read_text(encoding="utf-8")
    try:
        async with http_client() as http:
            csrf = await sign_in_http(http, site, site.account("admin"))
            new = await post(http, site, csrf, "publish", text=original.replace(LEVEL2_ZERO, '      "0": experts\n'))

            statuses = await all_confirm(registry, 2, content_of(new))
            assert {content_of(st["version"]) for st in statuses.values()} == {content_of(new)}
            assert [st["last_reload"] for st in statuses.values()] == ["ok", "ok"]
            code, out = await status_report(cluster)
            assert code == 0, out
            assert f"all 2 engine(s) run the announced version {content_of(new)}" in out
            assert all(name in out for name in statuses)
            holders = [line.split()[0] for line in out.splitlines() if re.search(r"\bfollow#\d+", line)]
            assert len(holders) == 1 and holders[0] in statuses, out  # one engine follows the node
            async with http.get(f"{site.url}/flows") as reply:  # the console's flows page says the same
                page = await reply.text()
            assert f"全部 2 个引擎运行已发布的版本 <code>{content_of(new)}</code>" in page
            assert all(f"<td>{name}</td>" in page for name in statuses)
            served = await one_call_per_engine(cluster, cluster_phones, cluster_ami, cluster_redis)
            assert sorted(served) == [0, 1]  # a call on each engine ...
            for queue, record in served.values():  # ... took the published flow
                assert (queue, content_of(record["flow_version"])) == ("q-expert-hrss", content_of(new))

            await asyncio.to_thread(cluster.stop_engine, 1)  # down while the admin rolls back: its status leaves the list
            old = await post(http, site, csrf, "rollback", version=await initial_version(http, site))
            assert content_of(old) != content_of(new) and path.read_text(encoding="utf-8") == original
            await all_confirm(registry, 1, content_of(old))
            code, out = await status_report(cluster)
            assert code == 0 and f"all 1 engine(s) run the announced version {content_of(old)}" in out, out

            await asyncio.to_thread(cluster.start_engine, index=1)
            statuses = await all_confirm(registry, 2, content_of(old))  # it read the announcement as it started
            assert len({st["pid"] for st in statuses.values()}) == 2
            code, out = await status_report(cluster)
            assert code == 0 and f"all 2 engine(s) run the announced version {content_of(old)}" in out, out
            served = await one_call_per_engine(cluster, cluster_phones, cluster_ami, cluster_redis)
            assert sorted(served) == [0, 1]
            for queue, record in served.values():
                assert (queue, content_of(record["flow_version"])) == ("q-general", content_of(old))
    finally:
        await hang_up_all(cluster_ami)
        if not cluster.engine_running(1):
            await asyncio.to_thread(cluster.start_engine, index=1)
        if path.read_text(encoding="utf-8") != original:
            path.write_text(original, encoding="utf-8")
            code, out = await run_ivr(cluster.state, "reload")
            assert code == 0, out

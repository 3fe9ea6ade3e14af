"""FlowSet compilation, version ids and atomic reload."""

from __future__ import annotations

import re

import asyncio
from datetime import datetime

from flow_helpers import FakeChannel, call
from ivr.hot_reload import LiveFlows, compile_config
from ivr.flows.runner import run_call
from ivr.core.route import QueueRoute


def make_live(config_dir, catalog):
    return LiveFlows(lambda: compile_config(config_dir, catalog, environ={}))


def test_given_unchanged_config_then_the_version_hash_is_stable(config_dir, catalog):
    a = compile_config(config_dir, catalog, environ={}, now=lambda: datetime(2026, 1, 1))
    b = compile_config(config_dir, catalog, environ={}, now=lambda: datetime(2026, 1, 2))
    assert a.version.split("-")[0] == b.version.split("-")[0]
    assert a.version != b.version
    (config_dir / "flows" / "main.yaml").write_text((config_dir / "flows" / "main.yaml").read_text() + "\n# edit\n")
    c = compile_config(config_dir, catalog, environ={})
    assert c.version.split("-")[0] != a.version.split("-")[0]


def test_given_a_valid_change_when_reloaded_then_the_new_set_is_live(config_dir, catalog):
    live = make_live(config_dir, catalog)
    old = live.current
    main = config_dir / "flows" / "main.yaml"
    main.write_text(main.read_text().replace("timeout: 1s", "timeout: 2s"))
    result = live.reload()
    assert result.ok and result.version == live.version != old.version
    assert live.current.flows["main"].nodes["menu"].timeout == 2


def test_given_a_broken_flow_when_reloaded_then_the_old_set_stays_and_errors_are_located(config_dir, catalog):
    live = make_live(config_dir, catalog)
    old = live.current
    main = config_dir / "flows" / "main.yaml"
    main.write_text(main.read_text().replace("queue: general", "queue: nowhere"))
    (config_dir / "flows" / "hrss.yaml").write_text("nodes: [\n")
    result = live.reload()
    assert not result.ok
    assert live.current is old and result.version == old.version
    assert any(re.search(r"hrss\.yaml:2:1: YAML syntax: ", e) for e in result.errors), result.errors
    assert any("main.yaml:" in e and "queue 'nowhere' is not defined" in e for e in result.errors)


def test_given_broken_settings_when_reloaded_then_nothing_changes(config_dir, catalog):
    live = make_live(config_dir, catalog)
    old = live.current
    (config_dir / "queues.yaml").write_text("queues: {general: {titel: x}}\n")
    result = live.reload()
    assert not result.ok and live.current is old
    assert any("queues.yaml:1:20" in e for e in result.errors)


async def test_given_a_reload_during_a_call_then_the_call_finishes_on_its_own_version(config_dir, catalog):
    live = make_live(config_dir, catalog)
    started = asyncio.Event()
    proceed = asyncio.Event()

    class Slow(FakeChannel):
        async def get_data(self, sound, timeout_ms, max_digits):
            started.set()
            await proceed.wait()
            return "0"

    flows = live.current  # what the AGI handler does at call start
    task = asyncio.create_task(run_call(flows, call(), Slow()))
    await started.wait()
    main = config_dir / "flows" / "main.yaml"
    main.write_text(main.read_text().replace("queue: general", "queue: expert-hrss"))
    assert live.reload().ok
    proceed.set()
    record = await task
    assert record.flow_version == flows.version != live.version
    assert record.route == QueueRoute("general", one_key=True)
    fresh = await run_call(live.current, call(), FakeChannel(["0"]), now=lambda: datetime(2026, 12, 1, 10, 0))
    assert fresh.route == QueueRoute("expert-hrss", one_key=True)  # a working day, within the experts' hours


def test_given_an_over_budget_flow_when_reloaded_then_it_is_refused_with_file_and_line_and_the_old_set_stays(
        config_dir, catalog):
    """Issue 22: a reload refuses what `ivr check` refuses; the engine keeps its old flows."""
    from flow_helpers import PROMPTS, make_catalog

    slow = make_catalog({**PROMPTS, "main_menu": ("很长的菜单", 12.0)})
    catalogs = iter([catalog, slow])
    live = LiveFlows(lambda: compile_config(config_dir, next(catalogs), environ={}))
    before = live.current
    result = live.reload()
    assert not result.ok and live.current is before and result.version == before.version
    budget_line = (config_dir / "flows" / "main.yaml").read_text().splitlines().index("budget: 15s") + 1
    assert any(e.startswith(f"{config_dir / 'flows' / 'main.yaml'}:{budget_line}:") and "exceeds budget 15s" in e
               for e in result.errors), result.errors


async def test_given_an_over_budget_config_when_another_engine_announces_then_the_cluster_reload_refuses_it_and_says_why(
        tmp_path, config_dir, catalog, redis_url):
    """Issue 22: the cluster's reload path (ivr/cluster_reload.py) refuses what `ivr check` does:
    the engine whose config/ is over budget keeps its version and says why in its status."""
    import shutil

    from ivr.cluster_reload import ClusterReload
    from ivr.hot_reload import ReloadResult
    from ivr.store import redis_client
    from ivr.store.engines import EngineRegistry

    class Wired:  # an engine's reload as ivr/service.py wires it
        def __init__(self, registry: EngineRegistry, name: str, config):  # type: ignore[no-untyped-def]
            self.live = make_live(config, catalog)
            self.cluster = ClusterReload(registry, name, lambda: self.live.version, lambda: self.reload(False), heartbeat=0.2)

        async def reload(self, announce: bool = True) -> ReloadResult:
            result = await asyncio.to_thread(self.live.reload)
            await self.cluster.reloaded(result, announce)
            return result

    other = tmp_path / "other"
    shutil.copytree(config_dir, other)
    client = redis_client(redis_url)
    try:
        registry = EngineRegistry(client)
        a, b = Wired(registry, "node1:4573:1", config_dir), Wired(registry, "node2:4573:2", other)
        before = b.live.current
        for main, timeout in ((config_dir, "2s"), (other, "9s")):  # node2's files: 0.3 + 4 + 4 + 9 s > 15 s
            path = main / "flows" / "main.yaml"
            path.write_text(path.read_text().replace("timeout: 1s", f"timeout: {timeout}"))
        assert (await a.reload()).ok
        await b.cluster.catch_up()
        status = await registry.status("node2:4573:2")
        assert b.live.current is before and status["version"] == before.version and status["last_reload"] == "refused"
        line = (other / "flows" / "main.yaml").read_text().splitlines().index("budget: 15s") + 1
        assert f"{other / 'flows' / 'main.yaml'}:{line}:" in status["errors"] and "exceeds budget 15s" in status["errors"]
    finally:
        await client.aclose()

"""Issue 20 item 5, operations on a real 2-node cluster bed (two Asterisk nodes, one engine each, two
Kamailio proxies, one Redis): ``ivr cluster status`` and ``ivr reload --asterisk`` run as the real
command, with a ``config/`` that holds the bed's cluster section.

Status shows both nodes with their calls while a carrier call is up on one, a stopped proxy as down
and a SIGKILLed node as unreachable and probed inactive by both proxies. A reload after a config
change (a queue's strategy, a node's weight) is live on both nodes (checked over each node's AMI)
and on both proxies (their running dispatcher list); a broken config is refused with file:line and
no node's files change; with one node dead the other is still reloaded and the command says which
failed. The node is killed last: the bed is not restarted after the reload rewrote its files. Without a
cluster section the one node is shown (the ordinary bed)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest

from ivr.ami.client import AmiClient
from ivr.asterisk_conf import asterisk_queue
from ivr.asterisk_conf.kamctl import ctl_socket
from ivr.core.secret_policy import agent_secret_variable, fresh_secret
from ivr.kamrpc import call
from testbed.bed import TestBed
from testbed.calls import Phones, idle, until
from testbed.cluster import ClusterBed
from testbed.cluster_calls import Carrier, node_amis
from testbed.ports import PortAllocator
from testbed.pytest_plugin import kept_logs
from testbed.sipp.run import register

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster(config_dir: Path) -> Iterator[ClusterBed]:
    bed = ClusterBed(config_dir, nodes=2, engines=1, name=f"ops-{os.getpid()}", maxcalls=30)
    with bed.running(kept_logs("testbed-logs-cluster-ops")) as running:
        yield running


@pytest.fixture(scope="module")
def ops_config(cluster: ClusterBed, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The operator's config/: the bed's, plus the cluster section the bed runs (cluster.yaml)."""
    d = tmp_path_factory.mktemp("ops") / "config"
    shutil.copytree(cluster.config_dir, d)
    (d.parent / "prompts").symlink_to(REPO / "prompts")  # beside config/, as a deployment has them
    (d / "cluster.yaml").write_text(cluster.cluster_yaml())
    return d


@pytest.fixture
async def amis(cluster: ClusterBed) -> AsyncIterator[list[AmiClient]]:
    async with node_amis(cluster) as clients:
        yield clients


@pytest.fixture
async def carrier(cluster: ClusterBed, tmp_path: Path) -> AsyncIterator[Carrier]:
    c = Carrier(cluster, tmp_path)
    yield c
    await c.close()


def ivr(cluster: ClusterBed, config: Path, *args: str, secrets: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    """The real command, with node A's host environment (its engine's pid file and secrets; the
    reload and status secrets are the cluster's own, one for every node); ``secrets``: agents'
    passwords other than the bed's."""
    st = cluster.nodes[0].state
    assert st
    env = {**os.environ, **st.engine_env(), "IVR_CONFIG": str(config), "IVR_STATE_DIR": str(Path(st.dir) / "state"),
           **{agent_secret_variable(n): s for n, s in {**st.agent_secrets, **(secrets or {})}.items()}}
    return subprocess.run([sys.executable, "-m", "ivr", *args], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=120)


def status(cluster: ClusterBed, config: Path) -> tuple[int, dict[str, Any]]:
    done = ivr(cluster, config, "cluster", "status", "--json", "--kamailio-run", str(cluster.kamailio_dir))
    assert done.stdout.startswith("{"), done.stdout + done.stderr
    return done.returncode, json.loads(done.stdout)


def reload_args(cluster: ClusterBed) -> list[str]:
    """``ivr reload --asterisk`` into each node's own etc/ (``{node}`` in the path)."""
    nodes_dir = str(cluster.nodes[0].dir.parent / f"{cluster.name}-{{node}}" / "etc")
    kamailio = str(cluster.kamailio_dir)
    return ["reload", "--asterisk", nodes_dir, "--kamailio-dir", kamailio, "--kamailio-run", kamailio]


async def strategy(ami: AmiClient, queue: str = "general") -> str:
    listing = await ami.action({"Action": "QueueStatus", "Queue": asterisk_queue(queue)}, as_list=True)
    return next(e["Strategy"] for e in listing if e.get("Event") == "QueueParams")


async def weights(cluster: ClusterBed, proxy: int) -> dict[str, int]:
    assert cluster.state
    [reply] = await call(ctl_socket(str(cluster.kamailio_dir), cluster.state.proxy_names[proxy]), "dispatcher.list")
    dests = reply["RECORDS"]["SET"]["TARGETS"]["DEST"]
    return {d["ATTRS"]["DUID"]: d["ATTRS"]["WEIGHT"] for d in dests}


def node_line(out: str, node: str) -> str:
    [line] = [line for line in out.splitlines() if line.startswith(f"node {node}: ")]
    return line


def etc_digest(cluster: ClusterBed) -> dict[str, str]:
    return {f"{bed.name}/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest()
            for bed in cluster.nodes for p in sorted((bed.dir / "etc").iterdir()) if p.is_file()}


async def test_status_shows_both_nodes_with_the_call_on_one(
    cluster: ClusterBed, ops_config: Path, carrier: Carrier, amis: list[AmiClient],
) -> None:
    assert cluster.state
    caller = carrier.next_caller()
    up = [ami.wait_for("Newstate", lambda e: e.get("CallerIDNum") == caller and e.get("ChannelStateDesc") == "Up")
          for ami in amis]
    await carrier.calls(1, hold_ms=60_000, callers=[caller])
    done, pending = await asyncio.wait(up, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    for p in pending:
        p.cancel()
    assert done, "the carrier's call was answered by no node"
    holder = up.index(done.pop())

    started = time.monotonic()
    code, st = await asyncio.to_thread(status, cluster, ops_config)
    print(f"\n`ivr cluster status --json` took {time.monotonic() - started:.2f} s (a fresh interpreter included)")

    assert code == 0
    assert [p["name"] for p in st["proxies"]] == ["edge-a", "edge-b"]
    assert all(p["up"] and p["nodes"] == {"ast-a": "active", "ast-b": "active"} for p in st["proxies"]), st["proxies"]
    nodes = {n["name"]: n for n in st["nodes"]}
    assert set(nodes) == {"ast-a", "ast-b"} and all(n["reachable"] and n["maxcalls"] == 30 for n in nodes.values())
    busy, idle = cluster.state.node_names[holder], cluster.state.node_names[1 - holder]
    assert nodes[busy]["calls"] == 1 and nodes[idle]["calls"] == 0, nodes
    engines = st["engines"]
    assert len(engines) == 2
    for node in nodes.values():  # each node followed by an engine that is live, and no other
        assert node["leases"]["follow"]["holder"] in engines
    assert nodes["ast-a"]["leases"]["follow"]["holder"] != nodes["ast-b"]["leases"]["follow"]["holder"]
    assert st["nodes_lease"]["holder"] in engines
    text = ivr(cluster, ops_config, "cluster", "status", "--kamailio-run", str(cluster.kamailio_dir)).stdout
    print("\n" + text)
    assert any(line.split()[:5] == [busy, nodes[busy]["ami"], "yes", "1", "30"] for line in text.splitlines())


async def test_a_stopped_proxy_shows_down_and_the_other_still_sees_both_nodes(
    cluster: ClusterBed, ops_config: Path,
) -> None:
    cluster.stop_proxy(1)
    try:
        code, st = await asyncio.to_thread(status, cluster, ops_config)
        assert code == 1
        a, b = st["proxies"]
        assert a["up"] and a["nodes"] == {"ast-a": "active", "ast-b": "active"}
        assert not b["up"] and "kamailio-edge-b.ctl" in b["why"] and b["nodes"] == {}
    finally:
        cluster.start_proxy(1)


async def test_reload_after_a_change_is_live_on_both_nodes_and_proxies(
    cluster: ClusterBed, ops_config: Path, amis: list[AmiClient],
) -> None:
    assert [await strategy(ami) for ami in amis] == ["rrmemory", "rrmemory"]
    assert await weights(cluster, 0) == {"ast-a": 50, "ast-b": 50}
    queues = ops_config / "queues.yaml"
    queues.write_text(queues.read_text(encoding="utf-8").replace("strategy: rrmemory", "strategy: leastrecent", 1),
                      encoding="utf-8")
    topology = ops_config / "cluster.yaml"
    topology.write_text(topology.read_text().replace("maxcalls: 30,", "maxcalls: 30, weight: 3,", 1))

    done = await asyncio.to_thread(ivr, cluster, ops_config, *reload_args(cluster))

    print("\n" + done.stdout + done.stderr)
    assert done.returncode == 0, done.stdout + done.stderr
    for node in ("ast-a", "ast-b"):
        assert node_line(done.stdout, node).endswith("; reloaded (endpoints, queues, dialplan)"), done.stdout
    assert "proxy edge-a: dispatcher list reloaded" in done.stdout
    assert "proxy edge-b: dispatcher list reloaded" in done.stdout
    # the seats' keys at the running proxies are the agents' passwords already (ivr/cluster_seat_keys.py)
    assert "proxy edge-a: seats' keys unchanged" in done.stdout and "proxy edge-b: seats' keys unchanged" in done.stdout
    assert [await strategy(ami) for ami in amis] == ["leastrecent", "leastrecent"]  # live on each node
    assert await weights(cluster, 0) == await weights(cluster, 1) == {"ast-a": 75, "ast-b": 25}
    assert "all 2 engine(s) run the announced version" in done.stdout

    again = await asyncio.to_thread(ivr, cluster, ops_config, *reload_args(cluster))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "proxy edge-a: dispatcher list unchanged" in again.stdout  # nothing new: no reload
    assert "proxy edge-b: dispatcher list unchanged" in again.stdout


async def registers(cluster: ClusterBed, tmp_path: Path, proxy: int, agent: str, secret: str) -> bool:
    """A sipp phone's digest REGISTER at ``proxy`` answered 200 (a 403 ends sipp with an error)."""
    assert cluster.state
    ports = PortAllocator()
    reg = await register(tmp_path, sip_port=cluster.state.proxy_ports[proxy], local_port=ports.one(), agent=agent,
                         secret=secret, contact_port=ports.one(), expires=60)
    return await reg.wait(40) == 0


async def test_a_changed_agent_password_reaches_both_running_proxies_with_one_reload(
    cluster: ClusterBed, ops_config: Path, tmp_path: Path,
) -> None:
    """No proxy restart: the reload levels each proxy's table of the seats' keys over its control
    socket. (The bed has no seat phones: the next reload, with the bed's passwords, sets it back.)"""
    assert cluster.nodes[0].state
    agent = "agent1001"
    old, new = cluster.nodes[0].state.agent_secrets[agent], fresh_secret()
    assert await registers(cluster, tmp_path, 0, agent, old)
    done = await asyncio.to_thread(ivr, cluster, ops_config, *reload_args(cluster), secrets={agent: new})
    assert done.returncode == 0, done.stdout + done.stderr
    for proxy in ("edge-a", "edge-b"):
        assert f"proxy {proxy}: seats' keys updated (1 set, 0 removed; registrations kept)" in done.stdout, done.stdout
    for proxy in (0, 1):
        assert not await registers(cluster, tmp_path, proxy, agent, old)
        assert await registers(cluster, tmp_path, proxy, agent, new)


async def test_a_broken_config_is_refused_with_its_line_and_no_node_changes(
    cluster: ClusterBed, ops_config: Path, amis: list[AmiClient],
) -> None:
    before, strategies = etc_digest(cluster), [await strategy(ami) for ami in amis]
    queues = ops_config / "queues.yaml"
    good = queues.read_text(encoding="utf-8")
    queues.write_text(good.replace("strategy: ", "strategy: roundabout  # ", 1), encoding="utf-8")
    try:
        done = await asyncio.to_thread(ivr, cluster, ops_config, *reload_args(cluster))
    finally:
        queues.write_text(good, encoding="utf-8")
    assert done.returncode == 2, done.stdout + done.stderr
    line = good[:good.index("strategy: ")].count("\n") + 1
    assert f"queues.yaml:{line}:" in done.stderr and "queues.general.strategy" in done.stderr, done.stderr
    assert "node ast-" not in done.stdout
    assert etc_digest(cluster) == before  # neither node's files
    assert [await strategy(ami) for ami in amis] == strategies  # nor what each runs


async def ami_login(port: int, user: str, secret: str, source: str) -> str:
    """A raw AMI Login to a node on loopback from ``source``; Asterisk's answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        await asyncio.wait_for(reader.readline(), 5)  # the banner
        writer.write(f"Action: Login\r\nUsername: {user}\r\nSecret: {secret}\r\nEvents: off\r\n\r\n".encode())
        return (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode()
    finally:
        writer.close()


async def test_the_reload_and_status_users_log_in_from_an_engine_host_and_not_from_another_address(
    cluster: ClusterBed,
) -> None:
    """The rendered deny/permit order in the real Asterisk (tests/ivr/test_cluster_node_files.py reads
    it with Asterisk's rules for hosts of several machines): on this bed every engine host is
    127.0.0.1, so 127.0.0.7 stands for a host not in cluster.yaml."""
    env = cluster.nodes[0].state.engine_env() if cluster.nodes[0].state else {}
    users = (("ivr-admin", env["IVR_AMI_ADMIN_SECRET"]), ("ivr-status", env["IVR_AMI_STATUS_SECRET"]))
    tries = [(bed.state.ami_port, user, secret, source) for bed in cluster.nodes if bed.state
             for user, secret in users for source in ("127.0.0.1", "127.0.0.7")]
    assert len(tries) == 8
    # at once: Asterisk holds each refused login a moment before it answers
    for (port, user, _, source), answer in zip(tries, await asyncio.gather(*(ami_login(*t) for t in tries))):
        if source == "127.0.0.1":
            assert "Response: Success" in answer, (port, user, answer)
        else:
            assert "Response: Error" in answer and "Authentication failed" in answer, (port, user, answer)


async def test_a_killed_node_is_unreachable_probed_inactive_and_a_reload_still_reaches_the_other(
    cluster: ClusterBed, ops_config: Path, amis: list[AmiClient],
) -> None:
    killed = time.monotonic()
    cluster.kill_node(0)
    seen: dict[str, Any] = {}

    async def probed_down() -> bool:
        seen["code"], seen["status"] = await asyncio.to_thread(status, cluster, ops_config)
        return all(p["nodes"].get("ast-a") == "inactive" for p in seen["status"]["proxies"])

    await until(probed_down, timeout=20)
    print(f"\nast-a SIGKILLed: `ivr cluster status` showed it inactive at both proxies "
          f"{time.monotonic() - killed:.1f} s after the kill (probes every second, one failure marks it down)")
    st = seen["status"]
    assert seen["code"] == 1
    nodes = {n["name"]: n for n in st["nodes"]}
    assert not nodes["ast-a"]["reachable"] and nodes["ast-a"]["why"] and nodes["ast-a"]["calls"] is None
    assert nodes["ast-b"]["reachable"]
    assert all(p["up"] and p["nodes"]["ast-b"] == "active" for p in st["proxies"])

    queues = ops_config / "queues.yaml"
    queues.write_text(queues.read_text(encoding="utf-8").replace("strategy: leastrecent", "strategy: ringall", 1),
                      encoding="utf-8")
    done = await asyncio.to_thread(ivr, cluster, ops_config, *reload_args(cluster))
    print("\n" + done.stdout)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "node ast-a: FAILED: not reloaded" in done.stdout
    assert node_line(done.stdout, "ast-b").endswith("; reloaded (endpoints, queues, dialplan)"), done.stdout
    assert await strategy(amis[1]) == "ringall"


@pytest.mark.usefixtures("no_call_outlives_the_test")
async def test_without_a_cluster_section_status_shows_the_one_node(engine: TestBed, phones: Phones, ami: AmiClient) -> None:
    st = engine.state
    assert st
    caller = "13612340020"
    await idle(ami)
    up = ami.wait_for("Newstate", lambda e: e.get("CallerIDNum") == caller and e.get("ChannelStateDesc") == "Up")
    await phones.call("12345", [], hold_ms=20_000, caller=caller)
    await asyncio.wait_for(up, 30)
    env = {**os.environ, **st.engine_env()}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "ivr", "cluster", "status", "--json"],
                                   capture_output=True, text=True, cwd=REPO, env=env, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    found = json.loads(done.stdout)
    assert found["proxies"] == []
    [node] = found["nodes"]
    assert (node["name"], node["ami"], node["reachable"], node["calls"], node["maxcalls"]) == (
        "ivr12345", f"127.0.0.1:{st.ami_port}", True, 1, None)
    assert node["leases"]["follow"]["holder"] in found["engines"]


async def test_without_a_cluster_section_reload_renders_one_directory_and_reloads_the_node(
    engine: TestBed, ami: AmiClient, tmp_path: Path,
) -> None:
    """The single-node path is as it was: one directory (no per-node ones), one Asterisk reloaded
    (its own files, unchanged: the shared bed keeps its test dialplan), then the engines."""
    st = engine.state
    assert st
    reloaded = ami.wait_for("Reload", lambda e: "app_queue" in e.get("Module", ""))
    shutil.copy(engine.dir / "etc" / "asterisk.conf", tmp_path)  # DIR must hold an asterisk.conf (test_reload.py)
    env = {**os.environ, **st.engine_env(), **{agent_secret_variable(n): s for n, s in st.agent_secrets.items()}}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "ivr", "reload", "--asterisk", str(tmp_path)],
                                   capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Asterisk reloaded from {tmp_path}: endpoints, queues, dialplan" in done.stdout
    assert "node " not in done.stdout and "proxy " not in done.stdout
    assert (tmp_path / "manager.conf").exists() and not any(p.is_dir() for p in tmp_path.iterdir())
    assert not any(p.name.startswith("kamailio-") for p in tmp_path.iterdir())
    await asyncio.wait_for(reloaded, 10)

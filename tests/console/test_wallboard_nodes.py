"""The wallboard per node (issue 20): with two nodes in config/'s cluster section, the page shows
each node's waiting callers and the seats talking or ringing on it, in Mandarin, live from Redis as
the engines write it (a waiting caller's ``asterisk``: its node's AMI; a seat composed from every
node's view, ``queues.agents.compose``, with the node its call is on). One node: no node table.
Debian's Chromium; a console of its own (its own Redis database, so the other console's board is
not touched)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterator

import pytest
import redis

from console.views.wallboard import node_columns
from ivr.config import load_config
from ivr.store import keyspace
from queues.agents import Membership, Seat, compose
from testbed.browser import Browser
from testbed.console import ConsoleSite, StandaloneConsole, private_config

REPO = Path(__file__).resolve().parents[2]
AMI_A, AMI_B = "127.0.0.1:15038", "127.0.0.1:15039"
TOPOLOGY = f"""\
cluster:
  nodes:
    ast-a: {{sip: "127.0.0.1:15060", ami: "{AMI_A}", rtp_start: 20000, rtp_end: 20999}}
    ast-b: {{sip: "127.0.0.1:15061", ami: "{AMI_B}", rtp_start: 21000, rtp_end: 21999}}
"""


@pytest.fixture(scope="module")
def cluster_console(console_redis: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleSite]:
    root = tmp_path_factory.mktemp("wallboard-cluster")
    config = private_config(REPO / "config", root)
    (config / "cluster.yaml").write_text(TOPOLOGY)
    server = StandaloneConsole(config, console_redis.rsplit("/", 1)[0] + "/1", root / "console")
    site = server.start()
    yield site
    server.stop()
    with redis.Redis.from_url(site.redis_url) as r:
        r.flushdb()


def waiting(r: redis.Redis, uniqueid: str, ami: str) -> None:
    entry = {"uniqueid": uniqueid, "queue": "general", "line": "12345", "joined": time.time() - 20, "asterisk": ami}
    r.hset(keyspace.QUEUE_WAITING, uniqueid, json.dumps(entry))


def seat(r: redis.Redis, agent: str, views: dict[str, Membership]) -> None:
    """The seat as the seat store publishes it: composed from each node's view of its member."""
    now = time.time()
    r.hset(keyspace.SEATS, agent, json.dumps(compose({ami: Seat(agent, {"general": m}, now).to_json(now)
                                                      for ami, m in views.items()}, now)))


def cell(node: str, field: str) -> str:
    return f'#nodes tr[data-node="{node}"] [data-field="{field}"]'


def test_the_wallboard_shows_waiting_callers_and_seats_on_each_node(cluster_console: ConsoleSite,
                                                                   chromium: Browser) -> None:
    with redis.Redis.from_url(cluster_console.redis_url, decode_responses=True) as r:
        for uniqueid, ami in (("a-1", AMI_A), ("a-2", AMI_A), ("b-1", AMI_B)):
            waiting(r, uniqueid, ami)
        # talking on B: the device is in use on both nodes (shared state), B's member is in the call
        seat(r, "agent1001", {AMI_A: Membership(device="2"), AMI_B: Membership(device="2", in_call=True)})
        seat(r, "agent1002", {AMI_A: Membership(device="6"), AMI_B: Membership(device="6")})  # ringing (A by sort)
        seat(r, "agent1003", {AMI_A: Membership(), AMI_B: Membership()})  # available: on no node
        b = chromium.at(cluster_console.url).sign_in(cluster_console.account("supervisor"))
        b.open("/wallboard")
        b.wait_text("#live-status", "实时")
        assert [h.text for h in b.all("#nodes th")] == ["节点", "排队", "通话中座席", "振铃座席"]
        assert "各节点" in b.text("main")
        rows = {"ast-a": ("ast-a", "2", "0", "1"), "ast-b": ("ast-b", "1", "1", "0")}
        for node, expected in rows.items():
            b.wait_text(cell(node, "waiting"), expected[1])
            assert tuple(b.text(cell(node, f)) for f in ("name", "waiting", "talking", "ringing")) == expected, node
        r.hdel(keyspace.QUEUE_WAITING, "a-1", "a-2")  # A's callers answered: the board follows
        r.publish(keyspace.LIVE_CHANGED, "waiting")
        b.wait_text(cell("ast-a", "waiting"), "0")
        assert b.text(cell("ast-b", "waiting")) == "1"


def test_one_node_shows_no_node_table(console: ConsoleSite, chromium: Browser) -> None:
    b = chromium.at(console.url).sign_in(console.account("supervisor"))
    b.open("/wallboard")
    b.wait_text("#live-status", "实时")
    assert b.all("#nodes") == [] and "各节点" not in b.text("main")


def test_node_columns_name_every_node_of_a_cluster_and_none_of_one(tmp_path: Path) -> None:
    config = private_config(REPO / "config", tmp_path)
    assert node_columns(load_config(config, environ={}).settings) == []  # no cluster section
    (config / "cluster.yaml").write_text(TOPOLOGY.replace("ami: \"127.0.0.1:15039\"", "ami: \"[::1]:15039\""))
    assert node_columns(load_config(config, environ={}).settings) == [("ast-a", AMI_A), ("ast-b", "::1:15039")]
    (config / "cluster.yaml").write_text(TOPOLOGY.split("    ast-b")[0])
    assert node_columns(load_config(config, environ={}).settings) == []  # one node: as without a cluster

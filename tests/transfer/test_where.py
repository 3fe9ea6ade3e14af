"""Which node a transfer goes to (transfer/where.py, transfer.ami.call_node): the linkedid's
systemname prefix or the talking seat's ``node`` picks one of the configured nodes, and nothing
from a form field, a ticket or Redis can name another address; the transfer user of each node may
log in from every engine host of the cluster (and only that user)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import AsyncIterator

import pytest

from ivr.asterisk_conf import RenderOptions, render
from ivr.config import Settings, load_config
from ivr.core.secret_policy import fresh_secret
from ivr.store import keyspace
from tests.ivr import test_cluster_node_files as node_files
from tickets.store import TicketStore
from transfer.ami import call_node, transfer_client
from transfer.control import TransferError
from transfer.where import node_named, node_of_linkedid

# the node-files tests' cluster (ast-a, ast-b) and a node whose name extends ast-b's
TOPOLOGY = node_files.TOPOLOGY + """\
    ast-b-2: {sip: "10.0.0.13:5060", ami: "10.0.0.13:5038", rtp_start: 12000, rtp_end: 12999, engines: ["10.0.0.23:4573"]}
"""
cfg = node_files.cfg  # a fixture: config/ whose carrier is not one of the proxies


@pytest.fixture
def settings(cfg: Path) -> Settings:
    """config/ as tests/ivr/test_cluster_node_files.py makes it, with this topology."""
    (cfg / "cluster.yaml").write_text(TOPOLOGY)
    return load_config(cfg, environ={"IVR_AMI_TRANSFER_SECRET": fresh_secret()}).settings


@pytest.fixture
async def tickets(redis_url: str, tmp_path: Path) -> AsyncIterator[TicketStore]:
    store = TicketStore(redis_url, tmp_path / "spool", "where", retention_days=1)
    yield store
    await store.close()


def test_a_linkedid_names_the_node_of_its_systemname_the_longest_name_first(settings: Settings) -> None:
    assert node_of_linkedid(settings, "ast-b-1733112345.42") == "ast-b"
    assert node_of_linkedid(settings, "ast-b-2-1733112345.7") == "ast-b-2"


@pytest.mark.parametrize("forged", ["", "1733112345.42", "ast-c-1733112345.42", "ast-b", "ast-b-", "ast-b-1733112345",
                                    "ast-b-1733112345.42\nAction: Originate", "ast-b-1733112345.4x",
                                    "10.0.0.99:5038-1.2", "ast-b-١٧٣٣.٤٢", "AST-B-1733112345.42"])
def test_a_forged_or_foreign_linkedid_picks_no_node(settings: Settings, forged: str) -> None:
    with pytest.raises(TransferError):
        node_of_linkedid(settings, forged)


def test_a_seat_node_is_a_configured_name_or_its_ami_address(settings: Settings) -> None:
    assert node_named(settings, "ast-b-2") == "ast-b-2"
    assert node_named(settings, "10.0.0.12:5038") == "ast-b"


@pytest.mark.parametrize("forged", ["", "ast-c", "10.0.0.99:5038", "10.0.0.12:5039", "10.0.0.12", "ast-b\n",
                                    "evil.example:5038", "[::1]:5038", "127.0.0.1:5038"])
def test_a_seat_node_that_is_no_configured_node_is_refused(settings: Settings, forged: str) -> None:
    with pytest.raises(TransferError):
        node_named(settings, forged)


async def test_the_transfer_client_dials_the_chosen_nodes_ami(settings: Settings) -> None:
    client = transfer_client(settings, "ast-b-2")
    assert client.address == "10.0.0.13:5038"
    client.close()
    with pytest.raises(KeyError):
        transfer_client(settings, "10.0.0.99:5038")


async def test_an_agent_is_found_on_the_node_its_seat_talks_on_and_a_forged_seat_node_is_refused(
    settings: Settings, tickets: TicketStore,
) -> None:
    agent = next(iter(settings.agents))
    with pytest.raises(TransferError, match="not talking"):
        await call_node(agent, settings, tickets)  # no seat published
    await tickets.redis.hset(keyspace.SEATS, agent, json.dumps({"agent": agent, "node": "10.0.0.13:5038"}))
    assert await call_node(agent, settings, tickets) == "ast-b-2"
    await tickets.redis.hset(keyspace.SEATS, agent, json.dumps({"agent": agent, "node": "10.0.0.99:5038"}))
    with pytest.raises(TransferError, match="no node"):
        await call_node(agent, settings, tickets)
    # the call on the seat's desk record, written by the follower of the node that offered it, wins
    desk = {"agent": agent, "linkedid": "ast-b-1733112345.42", "state": "connected"}
    await tickets.redis.hset(keyspace.desk(agent), "doc", json.dumps(desk))
    assert await call_node(agent, settings, tickets) == "ast-b"
    await tickets.redis.hset(keyspace.desk(agent), "doc", json.dumps({**desk, "linkedid": "10.0.0.99:5038-1.2"}))
    with pytest.raises(TransferError, match="no node"):
        await call_node(agent, settings, tickets)
    await tickets.redis.hset(keyspace.desk(agent), "doc", json.dumps({**desk, "state": "ended"}))
    with pytest.raises(TransferError, match="no node"):  # an ended call: the seat's (forged) node again
        await call_node(agent, settings, tickets)
    assert await call_node("ast-b-1733112345.42", settings, tickets) == "ast-b"
    with pytest.raises(TransferError, match="no node"):
        await call_node("evil-1733112345.42", settings, tickets)


def test_only_the_transfer_user_may_log_in_from_every_engine_host_of_the_cluster(settings: Settings) -> None:
    conf = render(settings, RenderOptions(ami_secret=fresh_secret(), seats_ami_secret=fresh_secret(),
                                          transfer_ami_secret=fresh_secret(), node="ast-b",
                                          agent_secrets={n: fresh_secret() for n in settings.agents}))["manager.conf"]
    permits = {name: re.findall(r"^permit = (.*)$", body, re.MULTILINE)
               for name, _, body in (s.partition("]") for s in re.split(r"^\[", conf, flags=re.MULTILINE)[1:])}
    loopback = ["127.0.0.1/255.255.255.255", "::1/128"]
    assert permits[settings.ami.transfer_username] == [*loopback, *(f"10.0.0.{h}/255.255.255.255" for h in (22, 21, 23))]
    assert permits[settings.ami.username] == permits[settings.ami.seats_username] == [*loopback, "10.0.0.22/255.255.255.255"]

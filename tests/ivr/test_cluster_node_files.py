"""What each cluster node's files say about the node itself (issue 20): an ``entityid`` of its own
(nodes on one host would otherwise share the host's MAC), AMI users that only the node's own
engines' hosts may log in from, and the proxies' probe interval as a render option."""

from __future__ import annotations

import ipaddress
import re
import shutil
from pathlib import Path

import pytest

from ivr.asterisk_conf import RenderOptions, render
from ivr.asterisk_conf.asterisk import node_entity_id
from ivr.config import ConfigError, load_config
from ivr.core.conftext import UnsafeValue, entity_id
from ivr.core.secret_policy import fresh_secret

REPO = Path(__file__).resolve().parents[2]
SECRET = fresh_secret()
TOPOLOGY = """\
cluster:
  proxies:
    edge-a: {sip: "10.0.0.2:5060"}
    edge-b: {sip: "10.0.0.3:5060"}
  nodes:
    ast-a: {sip: "10.0.0.11:5060", ami: "10.0.0.11:5038", rtp_start: 10000, rtp_end: 10999,
            engines: ["10.0.0.21:4573", "10.0.0.21:4574", "127.0.0.1:4575"]}
    ast-b: {sip: "10.0.0.12:5060", ami: "10.0.0.12:5038", rtp_start: 11000, rtp_end: 11999,
            engines: ["10.0.0.22:4573"]}
"""


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    d = tmp_path / "config"
    shutil.copytree(REPO / "config", d)
    (d / "engine.yaml").write_text((d / "engine.yaml").read_text().replace("pstn_match: [127.0.0.1]",
                                                                          "pstn_match: [10.0.0.1]"))
    (d / "cluster.yaml").write_text(TOPOLOGY)
    return d


def files(cfg: Path | None, node: str | None, **options: object) -> dict[str, str]:
    settings = load_config(cfg or REPO / "config", environ={}).settings
    return render(settings, RenderOptions(ami_secret=SECRET, seats_ami_secret=fresh_secret(),
                                          testbed_ami_secret=fresh_secret(), node=node,
                                          agent_secrets={n: fresh_secret() for n in settings.agents},
                                          **options))  # type: ignore[arg-type]


def option(text: str, name: str) -> list[str]:
    return re.findall(rf"^{name} = (.*)$", text, re.MULTILINE)


def test_each_node_renders_its_own_entity_id_the_same_every_time(cfg: Path) -> None:
    a, b = option(files(cfg, "ast-a")["asterisk.conf"], "entityid"), option(files(cfg, "ast-b")["asterisk.conf"], "entityid")
    assert len(a) == len(b) == 1 and a != b
    assert a == option(files(cfg, "ast-a")["asterisk.conf"], "entityid") == [node_entity_id("ast-a")]
    for eid in (a[0], b[0]):
        assert re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", eid)  # Asterisk's ast_str_to_eid format
        first = int(eid[:2], 16)
        assert first & 0x02 and not first & 0x01  # locally administered, unicast: never a real card's


def test_a_single_node_keeps_asterisks_own_entity_id() -> None:
    assert option(files(None, None)["asterisk.conf"], "entityid") == []


def test_the_entity_id_writer_refuses_anything_but_six_hex_bytes() -> None:
    assert entity_id("02:00:5e:10:00:01") == "02:00:5e:10:00:01"
    for bad in ("02:00:5e:10:00:01\nmaxcalls = 1", "02:00:5e:10:00", "02-00-5e-10-00-01", "0g:00:5e:10:00:01", ""):
        with pytest.raises(UnsafeValue):
            entity_id(bad)


def test_a_node_name_cannot_smuggle_a_line_into_the_entity_id() -> None:
    with pytest.raises(UnsafeValue):
        node_entity_id("ast-a\nmaxcalls = 100000")


def users(manager_conf: str) -> dict[str, list[str]]:
    """Each AMI user's permits."""
    out: dict[str, list[str]] = {}
    for section in re.split(r"^\[", manager_conf, flags=re.MULTILINE)[1:]:
        name, _, body = section.partition("]")
        if name != "general":
            out[name] = option(body, "permit")
    return out


def test_a_nodes_ami_users_permit_only_loopback_and_that_nodes_engine_hosts(cfg: Path) -> None:
    a, b = users(files(cfg, "ast-a")["manager.conf"]), users(files(cfg, "ast-b")["manager.conf"])
    loopback = ["127.0.0.1/255.255.255.255", "::1/128"]
    assert a["ivr"] == a["ivr-seats"] == [*loopback, "10.0.0.21/255.255.255.255"]  # once, though two engines
    assert b["ivr"] == [*loopback, "10.0.0.22/255.255.255.255"]  # not ast-a's engine host
    assert a["testbed"] == b["testbed"] == loopback  # the read-all user stays on the node itself
    assert "bindaddr = 10.0.0.11" in files(cfg, "ast-a")["manager.conf"]


def section(manager_conf: str, user: str) -> str:
    return manager_conf.split(f"\n[{user}]\n", 1)[1].split("\n[", 1)[0]


def asterisk_allows(block: str, client: str) -> bool:
    """Asterisk's ``ast_apply_ha`` (main/acl.c) on a user's ``deny``/``permit`` lines: every rule in
    order, the last one that matches decides, none matching allows; a rule of the other address
    family never matches (an IPv4-mapped client is compared as IPv4)."""
    address = ipaddress.ip_address(client)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    allowed = True
    for sense, rule in re.findall(r"^(deny|permit) = (\S+)$", block, re.MULTILINE):
        network = ipaddress.ip_network(rule, strict=False)
        if network.version == address.version and address in network:
            allowed = sense == "permit"
    return allowed


def test_the_reload_status_and_transfer_users_take_every_engine_host_of_the_cluster_and_nobody_else(
        cfg: Path) -> None:
    secrets = {"admin_ami_secret": fresh_secret(), "status_ami_secret": fresh_secret(),
               "transfer_ami_secret": fresh_secret()}
    engine_hosts = ["127.0.0.1", "::1", "10.0.0.21", "10.0.0.22"]  # ast-a's, ast-b's (cluster.yaml)
    # not in cluster.yaml: a stranger, a node itself (not an engine host), the same as IPv4-mapped, IPv6
    strangers = ["10.0.0.99", "10.0.0.12", "::ffff:10.0.0.99", "2001:db8::21", "0.0.0.0"]
    for node, own, other in (("ast-a", "10.0.0.21", "10.0.0.22"), ("ast-b", "10.0.0.22", "10.0.0.21")):
        conf = files(cfg, node, **secrets)["manager.conf"]
        for user in ("ivr-admin", "ivr-status", "ivr-transfer"):
            block = section(conf, user)
            assert [h for h in engine_hosts + strangers if asterisk_allows(block, h)] == engine_hosts, (node, user)
            # the order Asterisk needs: both denies first, so a permit after them is what decides
            assert block.index("deny = 0.0.0.0/0.0.0.0\ndeny = ::/0\n") < block.index("permit = ")
        for user in ("ivr", "ivr-seats"):  # they follow and change this node's calls and seats: its engines only
            block = section(conf, user)
            assert asterisk_allows(block, own) and not asterisk_allows(block, other), (node, user)
            assert not any(asterisk_allows(block, h) for h in strangers)
        assert not any(asterisk_allows(section(conf, "testbed"), h) for h in (own, other, *strangers))


def test_the_acl_reading_follows_asterisk_last_match_wins() -> None:
    """The reading above can fail: a permit before the deny-all is overruled by it."""
    assert not asterisk_allows("permit = 10.0.0.21/255.255.255.255\ndeny = 0.0.0.0/0.0.0.0\n", "10.0.0.21")
    assert asterisk_allows("deny = 0.0.0.0/0.0.0.0\npermit = 10.0.0.21/255.255.255.255\n", "10.0.0.21")
    assert asterisk_allows("deny = 0.0.0.0/0.0.0.0\n", "2001:db8::1")  # an IPv4-only deny lets IPv6 in


def test_a_single_nodes_ami_stays_on_loopback() -> None:
    assert set(map(tuple, users(files(None, None)["manager.conf"]).values())) == {
        ("127.0.0.1/255.255.255.255", "::1/128")}


def test_the_probe_interval_is_a_render_option(cfg: Path) -> None:
    default = files(cfg, "ast-a")["kamailio-edge-a.cfg"]
    fast = files(cfg, "ast-a", probe_interval_s=1)["kamailio-edge-a.cfg"]
    assert 'modparam("dispatcher", "ds_ping_interval", 5)' in default
    assert 'modparam("dispatcher", "ds_ping_interval", 1)' in fast
    with pytest.raises(ConfigError):
        files(cfg, "ast-a", probe_interval_s=0)  # the Kamailio writer's bounds

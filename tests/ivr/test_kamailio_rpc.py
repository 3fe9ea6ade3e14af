"""Kamailio's RPC as the cluster's operations commands use it (issue 20 item 5): the BINRPC client
(ivr/kamrpc.py) reading bytes recorded from the real Kamailio 5.6, every malformed packet a
KamRpcError, the proxy's control socket written only through the checked writer (and accepted by
the real ``kamailio -c``), the read-only status AMI user, and ``ivr cluster status``'s table."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ivr import kamrpc
from ivr.asterisk_conf import RenderOptions, render
from ivr.asterisk_conf.kamailio_seats import SECRETS_FILE
from ivr.asterisk_conf.kamctl import ctl_section, ctl_socket
from ivr.cluster_apply import node_dir, running_list, wanted_list
from ivr.cluster_seat_keys import running_keys
from ivr.cluster_status import ClusterStatus, LeaseView, NodeStatus, ProxyStatus, dispatcher_view, node_uris
from ivr.commands.cluster import status_text
from ivr.config import ConfigError, load_config
from ivr.core.conftext import UnsafeValue
from ivr.core.secret_policy import fresh_secret

REPO = Path(__file__).resolve().parents[2]
COOKIE = 0x1234ABCD
# `dispatcher.list` as Kamailio 5.6 (Debian bookworm) answered it over the ctl socket, to a request
# with COOKIE: two destinations, ast-b (127.0.0.1:45098) and ast-a (127.0.0.1:45099), both "IP" (inactive,
# probed: nothing listened on their ports)
DISPATCHER_LIST = base64.b64decode(
    "oRcB5RI0q80DdU5SU0VUUwAQAZUIUkVDT1JEUwADRVNFVAADNUlEABABlQhUQVJHRVRTAANVREVTVAADRVVSSQCRFHNpcDox"
    "MjcuMC4wLjE6NDUwOTgAZUZMQUdTADFJUACVCVBSSU9SSVRZAABlQVRUUlMAA1VCT0RZAJEVZHVpZD1hc3QtYjt3ZWlnaHQ9"
    "NTAAVURVSUQAYWFzdC1iAJUITUFYTE9BRAAAdVdFSUdIVAAQMpUIUldFSUdIVAAAdVNPQ0tFVACRDjxudWxsIHN0cmluZz4A"
    "lQlTT0NLTkFNRQCRDjxudWxsIHN0cmluZz4AlQhPQlBST1hZAJEOPG51bGwgc3RyaW5nPgCDg1VERVNUAANFVVJJAJEUc2lw"
    "OjEyNy4wLjAuMTo0NTA5OQBlRkxBR1MAMUlQAJUJUFJJT1JJVFkAAGVBVFRSUwADVUJPRFkAkRVkdWlkPWFzdC1hO3dlaWdo"
    "dD01MABVRFVJRABhYXN0LWEAlQhNQVhMT0FEAAB1V0VJR0hUABAylQhSV0VJR0hUAAB1U09DS0VUAJEOPG51bGwgc3RyaW5n"
    "PgCVCVNPQ0tOQU1FAJEOPG51bGwgc3RyaW5nPgCVCE9CUFJPWFkAkQ48bnVsbCBzdHJpbmc+AIODg4ODgw==")
# `ul.lookup location agent1002` as proxy 2 (edge-b) of a cluster bed answered it, to a request with
# COOKIE: the seat's contact, replicated from proxy 1 (its Path: 127.0.0.1:13118), with usrloc's Q
# (-1.0) as a 64-bit double (flag set, size 0: 8 bytes)
UL_LOOKUP = base64.b64decode(
    "oRcBxRI0q80DRUFvUgCRCmFnZW50MTAwMgCVCUNvbnRhY3RzAAOVCENvbnRhY3QAA5UIQWRkcmVzcwCRHnNpcDphZ2VudDEw"
    "MDJAMTI3LjAuMC4xOjIxNjcyAJUIRXhwaXJlcwAQPCVRAIL////////8GJUIQ2FsbC1JRACREjEtMjQ4NjdAMTI3LjAuMC4x"
    "AFVDU2VxABAClQtVc2VyLUFnZW50AEFuL2EAlQlSZWNlaXZlZACRCltub3Qgc2V0XQBVUGF0aACRGTxzaXA6MTI3LjAuMC4x"
    "OjEzMTE4O2xyPgBlU3RhdGUAcUNTX05FVwBlRmxhZ3MAAHVDRmxhZ3MAAHVTb2NrZXQAkQpbbm90IHNldF0AlQhNZXRob2Rz"
    "AED/////VVJ1aWQAkRV1bG9jLTZiMTVlYmE1LTUzZTctMgCVCUluc3RhbmNlAJEKW25vdCBzZXRdAHVSZWctSWQAAJUKU2Vy"
    "dmVyLUlkAACVC1RjcGNvbm4tSWQAQP////+VCktlZXBhbGl2ZQAAlQ9MYXN0LUtlZXBhbGl2ZQBAaxXr15UNS0EtUm91bmR0"
    "cmlwAACVDkxhc3QtTW9kaWZpZWQAQGsV69eDg4M=")
# `no.such` answered with a fault (cookie 0x01020304): code 500 and the message
FAULT = bytes.fromhex("a1331f010203042001f4911a636f6d6d616e64206e6f2e73756368206e6f7420666f756e6400")
TOPOLOGY = """\
cluster:
  proxies:
    edge-a: {sip: "127.0.0.1:5070"}
    edge-b: {sip: "127.0.0.2:5070"}
  nodes:
    ast-a: {sip: "127.0.0.1:45099", ami: "127.0.0.1:5038", rtp_start: 10000, rtp_end: 10999}
    ast-b: {sip: "127.0.0.1:45098", ami: "127.0.0.1:5039", rtp_start: 11000, rtp_end: 11999}
"""


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    d = tmp_path / "config"
    shutil.copytree(REPO / "config", d)
    (d / "cluster.yaml").write_text(TOPOLOGY)
    return d


# `htable.dump seat_ha1` as Kamailio 5.6 answered it (cookie 1234, 2 bytes): two slots, one key each;
# ctl writes each slot's array of items as a struct of bare structs
HTABLE_DUMP = base64.b64decode(
    "oRHIBNIDZWVudHJ5ABBmVXNpemUAEAFVc2xvdAADA1VuYW1lAJEKYWdlbnQxMDAyAGV2YWx1ZQCRIWFhYWE0NTY3ODlhYmNkZWYwMTIz"
    "NDU2Nzg5YWJjZGVmAFV0eXBlAEFzdHIAg4ODA2VlbnRyeQAQaVVzaXplABABVXNsb3QAAwNVbmFtZQCRCmFnZW50MTAwMQBldmFsdWUA"
    "kSEwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZgBVdHlwZQBBc3RyAIODgw==")


def test_the_recorded_htable_dump_decodes_into_each_seats_key() -> None:
    reply = kamrpc.decode_reply(HTABLE_DUMP, 1234)
    assert reply[0] == {"entry": 102, "size": 1, "slot": [
        {"name": "agent1002", "value": "aaaa456789abcdef0123456789abcdef", "type": "str"}]}
    assert running_keys(reply) == {"agent1002": "aaaa456789abcdef0123456789abcdef",
                                   "agent1001": "0123456789abcdef0123456789abcdef"}
    assert running_keys([]) == {}  # an empty table
    for end in range(len(HTABLE_DUMP)):
        try:
            kamrpc.decode_reply(HTABLE_DUMP[:end], 1234)
        except kamrpc.KamRpcError:
            continue
        raise AssertionError(f"a dump cut at {end} bytes decoded")


def test_the_recorded_dispatcher_list_decodes_into_each_destination() -> None:
    [reply] = kamrpc.decode_reply(DISPATCHER_LIST, COOKIE)
    assert reply["NRSETS"] == 1
    dests = reply["RECORDS"]["SET"]["TARGETS"]["DEST"]  # a repeated name becomes a list
    assert [d["URI"] for d in dests] == ["sip:127.0.0.1:45098", "sip:127.0.0.1:45099"]
    assert [d["ATTRS"]["DUID"] for d in dests] == ["ast-b", "ast-a"]
    assert dests[0]["ATTRS"]["WEIGHT"] == 50 and dests[0]["PRIORITY"] == 0


def test_a_usrloc_contact_with_a_64_bit_number_decodes() -> None:
    """Kamailio sends a 64-bit number (usrloc's Q) with the record's flag set and size 0; read as
    a length's length, the rest of the reply was cut short and no contact could be looked up."""
    [reply] = kamrpc.decode_reply(UL_LOOKUP, COOKIE)
    contact = reply["Contacts"]["Contact"]
    assert reply["AoR"] == "agent1002" and contact["Path"] == "<sip:127.0.0.1:13118;lr>"
    assert contact["Q"] == -1.0 and contact["CSeq"] == 2 and contact["Methods"] == -1
    assert contact["Address"] == "sip:agent1002@127.0.0.1:21672"


def test_the_dispatcher_view_names_nodes_and_their_probe_state(cfg: Path) -> None:
    s = load_config(cfg, environ={}).settings
    reply = kamrpc.decode_reply(DISPATCHER_LIST, COOKIE)
    assert dispatcher_view(reply, node_uris(s)) == {"ast-a": "inactive", "ast-b": "inactive"}
    up = kamrpc.decode_reply(DISPATCHER_LIST.replace(b"IP", b"AP", 1), COOKIE)  # ast-b answers its probes
    assert dispatcher_view(up, node_uris(s)) == {"ast-a": "inactive", "ast-b": "active"}
    trying = kamrpc.decode_reply(DISPATCHER_LIST.replace(b"IP", b"TP", 1), COOKIE)
    assert dispatcher_view(trying, node_uris(s))["ast-b"] == "probing"
    assert dispatcher_view(up, {}) == {"sip:127.0.0.1:45098": "active", "sip:127.0.0.1:45099": "inactive"}
    # what the proxy runs against what the topology wants: equal, so no reload
    assert running_list(reply) == wanted_list(s) == {("sip:127.0.0.1:45099", "ast-a", 50),
                                                     ("sip:127.0.0.1:45098", "ast-b", 50)}
    heavier = s.model_copy(update={"cluster": s.cluster.model_copy(update={"nodes": {  # type: ignore[union-attr]
        **s.cluster.nodes, "ast-a": s.cluster.nodes["ast-a"].model_copy(update={"weight": 3})}})})  # type: ignore[union-attr]
    assert running_list(reply) != wanted_list(heavier)  # 75 / 25 now: the proxies must reload


def test_a_fault_is_an_error_with_kamailios_message() -> None:
    with pytest.raises(kamrpc.KamRpcError, match="500 command no.such not found"):
        kamrpc.decode_reply(FAULT, 0x01020304)
    with pytest.raises(kamrpc.KamRpcError, match="cookie"):
        kamrpc.decode_reply(DISPATCHER_LIST, COOKIE + 1)  # an answer to someone else's request


def test_a_request_is_what_kamailio_reads() -> None:
    packet = kamrpc.encode_request("dispatcher.list", cookie=COOKIE)
    assert packet.hex() == "a10312" + "1234abcd" + "9110" + b"dispatcher.list\0".hex()
    kind, length, cookie, size = kamrpc.parse_header(packet)
    assert (kind, cookie, len(packet)) == (kamrpc.REQUEST, COOKIE, size + length)
    assert kamrpc.decode_body(packet[size:]) == ["dispatcher.list"]
    body = kamrpc.encode_request("m", 0, 7, 300, -1, "", cookie=1)[7:]
    assert kamrpc.decode_body(body) == ["m", 0, 7, 300, -1, ""]
    with pytest.raises(ValueError):
        kamrpc.encode_request("dispatcher.list\0core.kill", cookie=1)  # no second call smuggled in a name


@pytest.mark.parametrize("packet, reason", [
    (b"\xa2\x00\x00\x00", "not a BINRPC v1"),
    (bytes.fromhex("a11f0fffffff01020304"), "above"),  # a 256 MB body announced
    (bytes.fromhex("a10301"), "header cut short"),
    (bytes.fromhex("a100" "01" "00"), "body cut short"),
    (bytes.fromhex("a10002" "00") + bytes([0x91, 0xFF]), "cut short"),  # a string longer than the body
    (bytes.fromhex("a10001" "00") + bytes([0x83]), "outside"),  # a struct end with no struct
    (bytes.fromhex("a10001" "00") + bytes([0x0F]), "unknown type"),
    (bytes.fromhex("a10021" "00") + bytes([0x03]) * 33, "deeper"),  # nested structs without end
    (bytes.fromhex("a10003" "00") + bytes([0x03, 0x00, 0x83]), "without a name"),
])
def test_a_malformed_reply_is_refused_cleanly(packet: bytes, reason: str) -> None:
    with pytest.raises(kamrpc.KamRpcError, match=reason):
        kamrpc.decode_reply(packet, packet[3] if len(packet) > 3 else 0)  # the 1-byte cookie of these


def test_every_cut_of_the_recorded_reply_is_a_kamrpc_error_or_a_value() -> None:
    for end in range(len(DISPATCHER_LIST)):
        try:
            kamrpc.decode_reply(DISPATCHER_LIST[:end], COOKIE)
        except kamrpc.KamRpcError:
            continue
        raise AssertionError(f"a reply cut at {end} bytes decoded")


async def test_no_socket_is_a_kamrpc_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(kamrpc.KamRpcError, match="kamailio-edge-a.ctl"):
        await kamrpc.call(str(tmp_path / "kamailio-edge-a.ctl"), "dispatcher.list")


@pytest.mark.parametrize("run_dir, proxy", [
    ('/run/kamailio";loadmodule "/tmp/evil.so', "edge-a"),
    ("/run/kamailio\n#!include_file \"/etc/shadow\"", "edge-a"),
    ("run/kamailio", "edge-a"),  # relative: wherever the proxy was started
    ("/run/../etc", "edge-a"),
    ("/run/kamailio", 'edge";modparam("ctl","binrpc","tcp:0.0.0.0:2049'),
    ("/run/kamailio", "Edge-A"),
])
def test_the_control_socket_only_goes_through_the_checked_writer(run_dir: str, proxy: str) -> None:
    with pytest.raises(UnsafeValue):
        ctl_section(run_dir, proxy)


def test_a_render_with_a_hostile_socket_directory_is_refused(cfg: Path) -> None:
    s = load_config(cfg, environ={}).settings
    with pytest.raises(ConfigError, match="refused to render"):
        render(s, RenderOptions(ami_secret=fresh_secret(), agent_secrets={n: fresh_secret() for n in s.agents},
                                node="ast-a", kamailio_run_dir='/run";loadmodule "x'))


def test_the_real_kamailio_accepts_the_control_socket_on_a_unix_path_only(cfg: Path, tmp_path: Path) -> None:
    s = load_config(cfg, environ={}).settings
    out = tmp_path / "edge"
    files = render(s, RenderOptions(ami_secret=fresh_secret(), agent_secrets={n: fresh_secret() for n in s.agents},
                                    node="ast-a", kamailio_dir=str(out), kamailio_run_dir=str(out / "run")))
    cfg_text = files["kamailio-edge-b.cfg"]
    socket = ctl_socket(str(out / "run"), "edge-b")
    assert f'modparam("ctl", "binrpc", "unix:{socket}")' in cfg_text and 'modparam("ctl", "mode", 0600)' in cfg_text
    assert "tcp:" not in cfg_text and "udp:" + "127.0.0.2:5070" in cfg_text  # no RPC on the network
    out.mkdir()
    for name in ("dispatcher.list", SECRETS_FILE, "kamailio-edge-b.cfg"):  # SECRETS_FILE: the seats' keys
        (out / name).write_text(files[name])
    kamailio = shutil.which("kamailio")
    assert kamailio, "kamailio is not installed: ./run installs it"
    check = subprocess.run([kamailio, "-c", "-f", str(out / "kamailio-edge-b.cfg")], capture_output=True, text=True,
                           timeout=60)
    assert check.returncode == 0 and "config file ok" in check.stdout + check.stderr, check.stderr[-2000:]


@pytest.mark.parametrize("group", ["kamailio", "ivr-no-such-group"])
def test_the_control_group_opens_the_socket_to_that_group_and_the_real_kamailio_checks_it(
        cfg: Path, tmp_path: Path, group: str) -> None:
    """Debian's package makes the group ``kamailio``; a group the host lacks stops the proxy
    (``kamailio -c`` resolves it) instead of leaving the socket to whoever."""
    (cfg / "cluster.yaml").write_text(TOPOLOGY.replace("cluster:\n", f"cluster:\n  control_group: {group}\n"))
    s = load_config(cfg, environ={}).settings
    out = tmp_path / "edge"
    files = render(s, RenderOptions(ami_secret=fresh_secret(), agent_secrets={n: fresh_secret() for n in s.agents},
                                    node="ast-a", kamailio_dir=str(out), kamailio_run_dir=str(out / "run")))
    for proxy in ("edge-a", "edge-b"):
        ctl = files[f"kamailio-{proxy}.cfg"].split('loadmodule "ctl.so"\n', 1)[1].split("\n\n", 1)[0]
        assert ctl.splitlines()[1:] == ['modparam("ctl", "mode", 0660)', f'modparam("ctl", "group", "{group}")']
    out.mkdir()
    for name in ("dispatcher.list", SECRETS_FILE, "kamailio-edge-a.cfg"):
        (out / name).write_text(files[name])
    check = subprocess.run([str(shutil.which("kamailio")), "-c", "-f", str(out / "kamailio-edge-a.cfg")],
                           capture_output=True, text=True, timeout=60)
    if group == "kamailio":
        assert check.returncode == 0 and "config file ok" in check.stdout + check.stderr, check.stderr[-2000:]
    else:
        assert check.returncode != 0 and f"bad group name/gid number {group}" in check.stderr, check.stderr[-2000:]


@pytest.mark.parametrize("group", ['ivr")\nmodparam("ctl", "binrpc", "tcp:0.0.0.0:2049', "ivr kamctl", "Ivr", "-ivr",
                                   "a" * 33, ""])
def test_a_control_group_that_is_no_group_name_is_refused_by_the_config_and_the_writer(cfg: Path, group: str) -> None:
    with pytest.raises(UnsafeValue):
        ctl_section("/run/kamailio", "edge-a", group)
    (cfg / "cluster.yaml").write_text(TOPOLOGY.replace("cluster:\n", f"cluster:\n  control_group: {json.dumps(group)}\n"))
    with pytest.raises(ConfigError, match="control_group"):
        load_config(cfg, environ={})


def test_the_status_user_may_only_read(cfg: Path) -> None:
    s = load_config(cfg, environ={}).settings
    secret = fresh_secret()
    manager = render(s, RenderOptions(ami_secret=fresh_secret(), agent_secrets={n: fresh_secret() for n in s.agents},
                                      node="ast-a", status_ami_secret=secret))["manager.conf"]
    section = manager.split(f"[{s.ami.status_username}]\n", 1)[1].split("\n[", 1)[0]
    assert f"secret = {secret}" in section
    assert "read = \nwrite = reporting\n" in section  # no events, only the reporting (query) actions
    assert "permit = 127.0.0.1/255.255.255.255" in section and "deny = 0.0.0.0/0.0.0.0" in section
    without = render(s, RenderOptions(ami_secret=fresh_secret(), agent_secrets={n: fresh_secret() for n in s.agents},
                                      node="ast-a"))["manager.conf"]
    assert f"[{s.ami.status_username}]" not in without  # no secret, no user
    with pytest.raises(ConfigError):
        render(s, RenderOptions(ami_secret=fresh_secret(), agent_secrets={n: fresh_secret() for n in s.agents},
                                node="ast-a", status_ami_secret="x\n[evil]\nwrite = all"))


def test_node_directories_follow_the_template() -> None:
    assert node_dir(Path("/srv/ast/{node}/etc"), "ast-b") == Path("/srv/ast/ast-b/etc")
    assert node_dir(Path("/srv/ast"), "ast-b") == Path("/srv/ast/ast-b")


def test_the_status_table_says_what_is_down_and_why() -> None:
    status = ClusterStatus(
        proxies=[ProxyStatus("edge-a", "127.0.0.1:5070", True, nodes={"ast-a": "inactive", "ast-b": "active"}),
                 ProxyStatus("edge-b", "127.0.0.2:5070", False, why="/run/kamailio/kamailio-edge-b.ctl: No such file")],
        nodes=[NodeStatus("ast-a", "127.0.0.1:5038", False, maxcalls=30, why="cannot connect to AMI"),
               NodeStatus("ast-b", "127.0.0.1:5039", True, calls=2, channels=3, maxcalls=30,
                          leases={"follow": LeaseView("host:4573:9", 7, 2.5)})],
        engines={}, nodes_lease=LeaseView("host:4573:9", 3, 2.9))
    text = "\n".join(status_text(status))
    lines = text.splitlines()
    assert lines[0].split() == ["PROXY", "SIP", "STATE", "ast-a", "ast-b"]
    assert lines[1].split() == ["edge-a", "127.0.0.1:5070", "up", "inactive", "active"]
    assert lines[2].split() == ["edge-b", "127.0.0.2:5070", "DOWN", "-", "-"]
    assert "edge-b: /run/kamailio/kamailio-edge-b.ctl: No such file" in text
    assert any(line.split()[:5] == ["ast-a", "127.0.0.1:5038", "NO", "-", "30"] for line in lines)
    assert any(line.split()[:6] == ["ast-b", "127.0.0.1:5039", "yes", "2", "30", "host:4573:9"] for line in lines)
    assert "nodes lease (closes a dead node's calls): host:4573:9 #3" in text
    assert status.as_json()["nodes"][1]["calls"] == 2

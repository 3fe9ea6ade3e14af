"""What a cluster renders for the seats (issue 20, agents across nodes): the proxies' registrar and
lock, the seats' keys file, and on each node the seats' AORs at the proxies, the device-state
mesh and the queues' order; every new value through the checked writers. The real Kamailio runs
these in tests/ivr/test_kamailio_seats.py, the real Asterisk in tests/integration/test_node_seats.py."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

from ivr.asterisk_conf import RenderOptions, render
from ivr.asterisk_conf.kamailio_seats import REALM, SECRETS_FILE
from ivr.config import ConfigError, Settings, load_config
from ivr.core.secret_policy import fresh_secret
from queues.model import Agent

REPO = Path(__file__).resolve().parents[2]
TOPOLOGY = """\
cluster:
  proxies:
    edge-a: {sip: "127.0.0.1:5070"}
    edge-b: {sip: "127.0.0.1:5071"}
  nodes:
    ast-a: {sip: "127.0.0.1:5080", ami: "127.0.0.1:5038", rtp_start: 10000, rtp_end: 10999}
    ast-b: {sip: "127.0.0.1:5081", ami: "127.0.0.1:5039", rtp_start: 11000, rtp_end: 11999}
    ast-c: {sip: "127.0.0.3:5080", ami: "127.0.0.1:5040", rtp_start: 12000, rtp_end: 12999}
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    d = tmp_path / "config"
    shutil.copytree(REPO / "config", d)
    (d / "cluster.yaml").write_text(TOPOLOGY)
    return load_config(d, environ={}).settings


def files_for(settings: Settings, node: str | None = "ast-a", **secrets: str) -> dict[str, str]:
    passwords = {name: fresh_secret() for name in settings.agents} | secrets
    return render(settings, RenderOptions(ami_secret=fresh_secret(), agent_secrets=passwords, node=node,
                                          kamailio_dir="/etc/kamailio"))


def test_a_node_rings_each_seat_at_the_proxies_and_shares_the_seats_state_with_every_peer(settings: Settings) -> None:
    files = files_for(settings)
    pjsip = files["pjsip_generated.conf"]
    aor = pjsip.split("[agent1001]\ntype=aor\n")[1].split("\n\n")[0]
    assert aor == ("max_contacts=0\ncontact=sip:agent1001@127.0.0.1:5070\ncontact=sip:agent1001@127.0.0.1:5071\n"
                   "qualify_frequency=15\nqualify_timeout=3.0\nqualify_2xx_only=yes")  # no registration at the node;
    # the proxies, in order, probed as the phones are (phones.qualify) and reachable only on a 2xx
    seats = "^PJSIP/(" + "|".join(settings.agents) + ")$"
    for peer, address in (("ast-b", "127.0.0.1:5081"), ("ast-c", "127.0.0.3:5080")):
        assert f"[node.{peer}]\ntype=endpoint\ncontext=ivr-no-calls\nidentify_by=ip\ndisallow=all\n" in pjsip
        assert f"[node.{peer}]\ntype=identify\nendpoint=node.{peer}\nmatch={address}\n" in pjsip
        assert (f"[node.{peer}.devicestate]\ntype=outbound-publish\nserver_uri=sip:node.ast-a@{address}\n"
                f"event=asterisk-devicestate\n@device_state_filter={seats}\n") in pjsip
        assert (f"[node.{peer}]\ntype=inbound-publication\nendpoint=node.{peer}\n"
                f"event_asterisk-devicestate=node.{peer}\n") in pjsip
        assert (f"[node.{peer}]\ntype=asterisk-publication\ndevicestate_publish=node.{peer}.devicestate\n"
                f"device_state=yes\ndevice_state_filter={seats}\n") in pjsip
    assert "[node.ast-a]" not in pjsip  # not its own peer
    desk = settings.agents["agent1002"].model_copy(update={"contact": "sip:agent1002@127.0.0.1:6002"})
    fixed = files_for(settings.model_copy(update={"agents": {**settings.agents, "agent1002": desk}}))
    assert "[agent1002]\ntype=aor\nmax_contacts=1\nremove_existing=yes\nqualify_frequency=15\nqualify_timeout=3.0\n" \
           "contact=sip:agent1002@127.0.0.1:6002\n" in fixed["pjsip_generated.conf"]  # as given (config/ refuses it)
    assert "\nforce_longest_waiting_caller = yes\n" in files["queues.conf"].split("\n[")[0]
    modules = (REPO / "asterisk-conf" / "modules.conf").read_text()
    assert all(f"load => {m}.so" in modules for m in
               ("res_pjsip_pubsub", "res_pjsip_outbound_publish", "res_pjsip_publish_asterisk"))


def test_without_a_cluster_the_seats_register_at_the_node_as_before() -> None:
    settings = load_config(REPO / "config", environ={}).settings
    files = files_for(settings, None)
    aor = files["pjsip_generated.conf"].split("[agent1001]\ntype=aor\n")[1].split("\n\n")[0]
    assert aor == "max_contacts=1\nremove_existing=yes\nqualify_frequency=15\nqualify_timeout=3.0"  # phones: qualify
    assert "node." not in files["pjsip_generated.conf"] and "force_longest" not in files["queues.conf"]
    assert SECRETS_FILE not in files


def test_every_proxy_is_the_seats_registrar_and_lock_with_their_keys_in_one_file(settings: Settings) -> None:
    password = fresh_secret() + '"#!define\\'  # what Kamailio's syntax would choke on, as a password
    files = files_for(settings, agent1001=password)
    keys = files[SECRETS_FILE]
    ha1 = hashlib.md5(f"agent1001:{REALM}:{password}".encode()).hexdigest()
    assert f'    $sht(seat_ha1=>agent1001) = "{ha1}";\n' in keys
    assert re.findall(r'=>([a-z0-9]+)\) = "[0-9a-f]{32}";', keys) == list(settings.agents)  # hex only, no password
    assert password not in "".join(text for name, text in files.items() if name.startswith("kamailio"))
    for proxy, me, peer in (("edge-a", "127.0.0.1:5070", "127.0.0.1:5071"), ("edge-b", "127.0.0.1:5071", "127.0.0.1:5070")):
        cfg = files[f"kamailio-{proxy}.cfg"]
        assert f'#!include_file "/etc/kamailio/{SECRETS_FILE}"\n' in cfg
        assert f'modparam("dmq", "server_address", "sip:{me}")\n' in cfg
        assert f'modparam("dmq", "notification_address", "sip:{peer}")\n' in cfg
        assert f'append_hf("Path: <sip:{me};lr>\\r\\n");' in cfg  # the proxy's own Path, the phone's removed
        assert 'modparam("cfgutils", "lock_set_size", 8)' in cfg and 'set_dlg_profile("seat", "$var(seat)");' in cfg
        assert 'dlg_set_property("ka-src");' in cfg and 'dlg_set_property("ka-dst");' in cfg
        # a seat's INVITE rings 5 s longer than the longest queue ring, then is cancelled
        longest = max(q.ring_timeout for q in settings.queues.values())
        assert f"t_set_fr({(longest + 5) * 1000}, 4000);" in cfg
        nodes = "(src_ip == 127.0.0.1/32 && src_port == 5080) || (src_ip == 127.0.0.1/32 && src_port == 5081) || " \
                "(src_ip == 127.0.0.3/32 && src_port == 5080)"
        assert f'if (is_method("INVITE") && ({nodes} || (src_ip == 127.0.0.1/32 && src_port == {peer[-4:]}))) {{' in cfg


def test_the_proxies_probe_the_phones_registered_there_and_pass_a_nodes_probe_on_with_the_same_timing(
    settings: Settings,
) -> None:
    """docs/seats.md "Phones that stop answering": one ``phones.qualify`` for both levels."""
    files = files_for(settings)
    for index, proxy in enumerate(("edge-a", "edge-b"), 1):
        cfg = files[f"kamailio-{proxy}.cfg"]
        me = f"127.0.0.1:507{index - 1}"
        assert (f'server_id={index}\nmodparam("usrloc", "timer_interval", 15)\nmodparam("usrloc", "ka_mode", 1)\n'
                f'modparam("usrloc", "ka_filter", 1)\nmodparam("usrloc", "ka_timeout", 18)\n'
                f'modparam("usrloc", "ka_from", "sip:{proxy}@127.0.0.1")\n') in cfg  # its own contacts only
        assert 'modparam("registrar", "received_avp", "$avp(seat_contact)")' in cfg  # to the Contact, not the Path
        # a node's probe of a seat is looked at before the carrier's keepalive (200 from the proxy itself)
        assert cfg.index("route(SEAT_PROBE);") < cfg.index('if (is_method("OPTIONS") && uri == myself)')
        probe = cfg.split("route[SEAT_PROBE] {\n")[1].split("\n}\n")[0]
        assert 'sl_send_reply("480", "Seat Not Registered");' in probe and "t_set_fr(0, 2000);" in probe
        assert f'if ($ulc(phone=>path) != "<sip:{me};lr>") {{' in probe and "$ru = $ulc(phone=>addr);" in probe
    blind = files_for(settings.model_copy(update={"phones": settings.phones.model_copy(
        update={"qualify": settings.phones.qualify.model_copy(update={"every": 0})})}))
    aor = blind["pjsip_generated.conf"].split("[agent1001]\ntype=aor\n")[1].split("\n\n")[0]
    assert aor.endswith("contact=sip:agent1001@127.0.0.1:5071\nqualify_frequency=5")  # every: 0, dialed blind
    assert "ka_mode" not in blind["kamailio-edge-a.cfg"] and "SEAT_PROBE" not in blind["kamailio-edge-a.cfg"]


def test_a_phone_probe_out_of_range_is_refused_by_the_proxies_writer(settings: Settings) -> None:
    """As a field added later without the model's checks would carry it: the writer alone refuses it."""
    smuggled = settings.phones.qualify.model_construct(every=100_000, timeout=3.0, fixed=True)
    with pytest.raises(ConfigError, match="refused to render"):
        files_for(settings.model_copy(update={"phones": settings.phones.model_copy(update={"qualify": smuggled})}))


STRONG = "Qm7vT2xK9pLw4RzN"  # passes the secret policy; each case below adds what breaks it (fixed: test ids)


@pytest.mark.parametrize(("password", "reason"), [
    (STRONG + "\n#!define A 1", "line.break"),
    (STRONG + ";x", "';'"),
    ("short\"#!", "too weak"),
])
def test_a_seat_password_that_breaks_a_line_or_is_weak_is_refused(settings: Settings, password: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        files_for(settings, agent1001=password)


@pytest.mark.parametrize("seat", ['agent"x', "agent\n#!define X", "agent;x", "#!agent"])
def test_a_seat_name_that_would_break_the_proxies_or_nodes_files_is_refused(settings: Settings, seat: str) -> None:
    """As a field added later without the model's checks would carry it (``model_construct``):
    the writers alone must refuse it."""
    agents = {seat: Agent.model_construct(name="座席", skills={"general": 0}, contact=None)}
    smuggled = settings.model_copy(update={"agents": agents})
    with pytest.raises(ConfigError, match="refused to render"):
        files_for(smuggled, **{seat: fresh_secret()})


def test_a_seat_with_a_fixed_contact_behind_proxies_is_refused_at_its_line(tmp_path: Path) -> None:
    d = tmp_path / "config"
    shutil.copytree(REPO / "config", d)
    (d / "cluster.yaml").write_text(TOPOLOGY)
    queues = (d / "queues.yaml").read_text()
    line = "  agent1002: {name: 综合座席1002, skills: {general: 0}}"
    assert line in queues
    (d / "queues.yaml").write_text(queues.replace(line, line[:-1] + ', contact: "sip:agent1002@10.0.0.5"}'))
    number = next(i for i, text in enumerate((d / "queues.yaml").read_text().splitlines(), 1) if "agent1002:" in text)
    with pytest.raises(ConfigError, match=rf"queues.yaml:{number}:.*past|queues.yaml:{number}:.*lock"):
        load_config(d, environ={})


def test_a_proxy_with_a_seat_socket_forwards_the_seats_own_calls_from_it(tmp_path: Path) -> None:
    d = tmp_path / "config"
    shutil.copytree(REPO / "config", d)
    (d / "cluster.yaml").write_text(TOPOLOGY.replace('edge-a: {sip: "127.0.0.1:5070"}',
                                                     'edge-a: {sip: "127.0.0.1:5070", seat_sip: "127.0.0.1:5072"}'))
    files = files_for(load_config(d, environ={}).settings)
    a, b = files["kamailio-edge-a.cfg"], files["kamailio-edge-b.cfg"]
    assert "listen=udp:127.0.0.1:5072" in a and "force_send_socket(udp:127.0.0.1:5072);" in a
    # without one, a seat's own call is authenticated and refused: nothing leaves from the carrier's socket
    route = b.split("route[FROM_SEAT] {\n")[1].split("\n}\n")[0]
    assert route == ('    route(SEAT_AUTH);  # the node checks the phone again with its own challenge (Authorization)\n'
                     '    sl_send_reply("403", "Forbidden");  # no socket for the seats\' own calls (seat_sip)')
    assert "listen=udp:127.0.0.1:5072" not in b
    (d / "cluster.yaml").write_text(TOPOLOGY.replace('edge-a: {sip: "127.0.0.1:5070"}',
                                                     'edge-a: {sip: "127.0.0.1:5070", seat_sip: "127.0.0.1:5071"}'))
    with pytest.raises(ConfigError, match=r"cluster.yaml:3:[0-9]+: 127.0.0.1:5071 is already proxies edge-b sip"):
        load_config(d, environ={})


@pytest.mark.parametrize("seat_sip", ['127.0.0.1:5072";listen=udp:0.0.0.0:5060', "127.0.0.1:5072\n#!define X"])
def test_a_seat_socket_that_would_break_the_proxys_file_is_refused_by_the_writer(settings: Settings,
                                                                               seat_sip: str) -> None:
    assert settings.cluster
    proxies = dict(settings.cluster.proxies)
    proxies["edge-a"] = proxies["edge-a"].model_construct(sip="127.0.0.1:5070", seat_sip=seat_sip)
    smuggled = settings.model_copy(update={"cluster": settings.cluster.model_copy(update={"proxies": proxies})})
    with pytest.raises(ConfigError, match="refused to render"):
        files_for(smuggled)

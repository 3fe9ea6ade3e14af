"""The cluster topology (issue 20): validated with file:line, rendered into each node's Asterisk
files and the proxies' Kamailio files, which the real ``kamailio -c`` accepts; no cluster section:
nothing changes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ivr.asterisk_conf import RenderOptions, render
from ivr.asterisk_conf.kamailio_seats import SECRETS_FILE
from ivr.config import ConfigError, Settings, load_config
from ivr.config.cluster import ClusterSettings, Node, Proxy
from ivr.core.secret_policy import fresh_secret

REPO = Path(__file__).resolve().parents[2]
AMI_SECRET = fresh_secret()
TOPOLOGY = """\
cluster:
  proxies:
    edge-a: {sip: "127.0.0.1:5070"}
    edge-b: {sip: "127.0.0.2:5070"}
  nodes:
    ast-a:
      sip: "127.0.0.1:5080"
      ami: "127.0.0.1:5038"
      rtp_start: 10000
      rtp_end: 10999
      maxcalls: 200
      engines: ["127.0.0.1:4573", "127.0.0.1:4574"]
    ast-b:
      sip: "127.0.0.1:5081"
      ami: "127.0.0.1:5039"
      rtp_start: 11000
      rtp_end: 11999
      maxcalls: 150
      weight: 3
"""


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    d = tmp_path / "config"
    shutil.copytree(REPO / "config", d)
    (d / "cluster.yaml").write_text(TOPOLOGY)
    return d


def files_for(settings: Settings, node: str | None, kamailio_dir: str = "/etc/kamailio") -> dict[str, str]:
    agents = {name: fresh_secret() for name in settings.agents}
    return render(settings, RenderOptions(ami_secret=AMI_SECRET, agent_secrets=agents, node=node,
                                          kamailio_dir=kamailio_dir))


def test_without_a_cluster_section_nothing_changes() -> None:
    settings = load_config(REPO / "config", environ={}).settings
    files = files_for(settings, None)
    assert settings.cluster is None
    assert not [name for name in files if "kamailio" in name or name == "dispatcher.list"]
    assert "systemname = ivr12345\n" in files["asterisk.conf"] and "maxcalls" not in files["asterisk.conf"]
    assert files["rtp.conf"] == "[general]\nrtpstart=10000\nrtpend=10999\n"
    with pytest.raises(ConfigError, match="no cluster section"):
        files_for(settings, "ast-a")


def test_a_node_gets_its_own_name_cap_ports_engines_and_the_proxies_as_carrier(cfg: Path) -> None:
    files = files_for(load_config(cfg, environ={}).settings, "ast-b")
    assert "systemname = ast-b\n" in files["asterisk.conf"] and "maxcalls = 150\n" in files["asterisk.conf"]
    assert files["rtp.conf"] == "[general]\nrtpstart=11000\nrtpend=11999\n"
    pjsip = files["pjsip_generated.conf"]
    assert "bind=127.0.0.1:5081\n" in pjsip and "media_address=127.0.0.1\n" in pjsip
    identify = pjsip.split("[pstn]\ntype=identify\n")[1].split("\n\n")[0]
    assert identify == "endpoint=pstn\nmatch=127.0.0.1:5070\nmatch=127.0.0.2:5070"  # not the carrier: the proxies
    assert "bindaddr = 127.0.0.1\nport = 5039\n" in files["manager.conf"]
    a = files_for(load_config(cfg, environ={}).settings, "ast-a")
    assert "IVR_AGI_URL=agi://127.0.0.1:4573/ivr\nIVR_AGI_URL_1=agi://127.0.0.1:4574/ivr\n" in a["extensions_globals.conf"]
    assert a["kamailio-edge-a.cfg"] == files["kamailio-edge-a.cfg"]  # every node writes the same edge


def test_a_cluster_render_must_name_a_known_node(cfg: Path) -> None:
    settings = load_config(cfg, environ={}).settings
    with pytest.raises(ConfigError, match=r"--node: one of ast-a, ast-b"):
        files_for(settings, None)
    with pytest.raises(ConfigError, match=r"node 'ast-c' is not in the cluster"):
        files_for(settings, "ast-c")


def test_the_dispatcher_list_names_each_node_by_duid_with_weights_as_percentages(cfg: Path) -> None:
    files = files_for(load_config(cfg, environ={}).settings, "ast-a", "/srv/edge")
    assert files["dispatcher.list"].splitlines()[1:] == [
        "1 sip:127.0.0.1:5080 0 0 duid=ast-a;weight=25",
        "1 sip:127.0.0.1:5081 0 0 duid=ast-b;weight=75",
    ]
    edge = files["kamailio-edge-b.cfg"]
    assert "listen=udp:127.0.0.2:5070\n" in edge and 'ds_select_dst("1", "10")' in edge and "record_route();" in edge
    assert 'modparam("dispatcher", "list_file", "/srv/edge/dispatcher.list")' in edge
    assert 'modparam("dispatcher", "ds_probing_mode", 1)' in edge and "ds_next_dst()" in edge
    assert "if (!(src_ip == 127.0.0.1/32)) {" in edge  # the carrier of sip.pstn_match, and nobody else


def kamailio_check(cfg_file: Path) -> subprocess.CompletedProcess[str]:
    """The real ``kamailio -c``: parses the file, loads the modules, fixes up the routes' functions
    (not every parameter: an unknown pseudo-variable in xlog only fails at start-up, which
    tests/ivr/test_kamailio_edge.py covers)."""
    kamailio = shutil.which("kamailio")
    assert kamailio, "kamailio is not installed: ./run installs it (Debian package kamailio)"
    return subprocess.run([kamailio, "-c", "-f", str(cfg_file)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("balance", ["load", "weight"])
def test_the_real_kamailio_accepts_every_generated_proxy_config(cfg: Path, tmp_path: Path, balance: str) -> None:
    (cfg / "cluster.yaml").write_text(TOPOLOGY.replace("cluster:\n", f"cluster:\n  balance: {balance}\n"))
    engine = (cfg / "engine.yaml").read_text()
    carriers = 'pstn_match: [127.0.0.1, "10.1.0.0/16", "192.0.2.7:5060", "2001:db8::/32"]'
    (cfg / "engine.yaml").write_text(engine.replace("pstn_match: [127.0.0.1]", carriers))
    out = tmp_path / "edge"
    out.mkdir()
    files = files_for(load_config(cfg, environ={}).settings, "ast-a", str(out))
    for name in ("dispatcher.list", SECRETS_FILE):  # what the proxies read beside their config
        (out / name).write_text(files[name])
    assert f'ds_select_dst("1", "{ {"load": 10, "weight": 9}[balance] }")' in files["kamailio-edge-a.cfg"]
    assert ("ds_load_update();" in files["kamailio-edge-a.cfg"]) == (balance == "load")  # counting only for 10
    for proxy, listen in (("edge-a", "127.0.0.1]:5070"), ("edge-b", "127.0.0.2]:5070")):
        (out / f"kamailio-{proxy}.cfg").write_text(files[f"kamailio-{proxy}.cfg"])
        check = kamailio_check(out / f"kamailio-{proxy}.cfg")
        assert check.returncode == 0 and "config file ok" in check.stdout + check.stderr, check.stderr[-2000:]
        assert listen in check.stdout + check.stderr  # it would listen where the topology says


def test_the_shipped_sample_topology_renders_every_node_and_both_proxies(cfg: Path, tmp_path: Path) -> None:
    sample = (REPO / "deploy" / "cluster.yaml").read_text()
    # the proxies' control group a deployment creates (deploy/kamailio-ivr@.service); `kamailio -c`
    # resolves it, so here the group this host has
    assert "\n  control_group: ivr-kamctl " in sample
    (cfg / "cluster.yaml").write_text(sample.replace("control_group: ivr-kamctl ", "control_group: kamailio "))
    settings = load_config(cfg, environ={}).settings
    assert settings.cluster and list(settings.cluster.nodes) == ["ast-a", "ast-b"]
    for node in settings.cluster.nodes:
        files = files_for(settings, node, str(tmp_path))
        assert f"systemname = {node}\n" in files["asterisk.conf"]
    for name in ("dispatcher.list", SECRETS_FILE):
        (tmp_path / name).write_text(files[name])
    for proxy in settings.cluster.proxies:
        (tmp_path / f"{proxy}.cfg").write_text(files[f"kamailio-{proxy}.cfg"])
        assert kamailio_check(tmp_path / f"{proxy}.cfg").returncode == 0


def test_the_check_fails_on_a_broken_config(tmp_path: Path) -> None:
    """The check above can fail: kamailio refuses a route that calls an unknown function."""
    broken = tmp_path / "broken.cfg"
    broken.write_text('#!KAMAILIO\nlisten=udp:127.0.0.1:5070\nrequest_route {\n    ds_select_dst("1", "10");\n}\n')
    assert kamailio_check(broken).returncode != 0


def _line(text: str, marker: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if marker in line)


@pytest.mark.parametrize(("old", "new", "marker", "reason"), [
    ('    edge-b: {sip: "127.0.0.2:5070"}\n', "", "edge-a:", "one proxy would be a single point of failure"),
    ("  nodes:\n", "  nodes: {}\n  old_nodes:\n", "nodes: {}", "at least one Asterisk node"),
    ("      rtp_start: 11000", "      rtp_start: 10900", "rtp_start: 10900",
     "RTP ports 10900-11999 overlap node ast-a's 10000-10999"),
    ("      rtp_end: 11999", "      rtp_end: 10500", "rtp_start: 11000", "rtp_start must be below rtp_end"),
    ('      sip: "127.0.0.1:5081"', '      sip: "127.0.0.1:5070"', '      sip: "127.0.0.1:5070"',
     "127.0.0.1:5070 is already proxies edge-a sip"),
    ('      ami: "127.0.0.1:5039"', '      ami: "127.0.0.1:4574"', 'ami: "127.0.0.1:4574"',
     "127.0.0.1:4574 is already nodes ast-a engines 1"),
    ('      sip: "127.0.0.1:5081"', '      sip: "127.0.0.1:70000"', "70000", "is not host:port"),
    ('      sip: "127.0.0.1:5081"', '      sip: "0.0.0.0:5081"', "0.0.0.0", "not a wildcard"),
    ('      sip: "127.0.0.1:5081"', '      sip: "pbx.example.org:5060"', "pbx.example", "not a host name"),
    ("      rtp_end: 11999", "      rtp_end: 70000", "rtp_end: 70000", "less than or equal to 65535"),
    ("      maxcalls: 150", "      maxcalls: 0", "maxcalls: 0", "greater than or equal to 1"),
    # a name's error points at its node's first line
    ("    ast-b:", "    Ast_B:", 'sip: "127.0.0.1:5081"', "name 'Ast_B' must match"),
    ("    ast-b:", "    edge-a:", 'sip: "127.0.0.1:5081"', "'edge-a' already names a proxy"),
    ("      weight: 3", "      wieght: 3", "wieght", "unknown key 'wieght'"),
    ("  nodes:\n", "  balance: random\n  nodes:\n", "balance", "'load' or 'weight'"),
    # calls out through the proxies (cluster.carrier)
    ("  nodes:\n", '  carrier: ["10.9.9.9:5060"]\n  nodes:\n', "carrier", "is not in sip.pstn_match"),
    ("  nodes:\n", '  carrier: ["0.0.0.0:5060"]\n  nodes:\n', "carrier", "not a wildcard"),
    ("  nodes:\n", '  carrier: ["127.0.0.1:5060", "127.0.0.1:5060"]\n  nodes:\n', "carrier", "named twice"),
    ("  nodes:\n", '  carrier: ["gw.example.org:5060"]\n  nodes:\n', "carrier", "not a host name"),
    ('  proxies:\n    edge-a: {sip: "127.0.0.1:5070"}\n    edge-b: {sip: "127.0.0.2:5070"}\n',
     '  carrier: ["127.0.0.1:5060"]\n', "carrier", "calls out go through the proxies"),
])
def test_every_topology_error_names_its_file_and_line(cfg: Path, old: str, new: str, marker: str, reason: str) -> None:
    text = TOPOLOGY.replace(old, new)
    assert text != TOPOLOGY
    if "old_nodes" in text:  # drop the nodes, keep the rest parseable
        text = text.split("  old_nodes:\n")[0]
    (cfg / "cluster.yaml").write_text(text)
    line = _line(text, marker)
    with pytest.raises(ConfigError) as err:
        load_config(cfg, environ={})
    assert f"{cfg / 'cluster.yaml'}:{line}:" in str(err.value) and reason in str(err.value), str(err.value)


def test_the_proxies_check_the_carrier_by_address_not_by_name(cfg: Path) -> None:
    engine = (cfg / "engine.yaml").read_text()
    (cfg / "engine.yaml").write_text(engine.replace("pstn_match: [127.0.0.1]", "pstn_match: [127.0.0.1, gw.carrier.example]"))
    with pytest.raises(ConfigError) as err:
        load_config(cfg, environ={})
    line = _line((cfg / "engine.yaml").read_text(), "gw.carrier.example")
    assert f"{cfg / 'engine.yaml'}:{line}:" in str(err.value) and "not a host name" in str(err.value)
    (cfg / "cluster.yaml").write_text(TOPOLOGY.replace("  proxies:\n    edge-a: {sip: \"127.0.0.1:5070\"}\n"
                                                       "    edge-b: {sip: \"127.0.0.2:5070\"}\n", ""))
    assert load_config(cfg, environ={}).settings.cluster  # no proxies: the nodes' PJSIP may match by name


@pytest.mark.parametrize("yaml_value", ['"ast-b\\n#!define X"', '"ast-b;x"', '"ast-b\\"x"'])
def test_a_node_name_that_would_inject_into_kamailio_cfg_is_refused_at_its_line(cfg: Path, yaml_value: str) -> None:
    text = TOPOLOGY.replace("    ast-b:", f"    {yaml_value}:")
    (cfg / "cluster.yaml").write_text(text)
    line = _line(text, 'sip: "127.0.0.1:5081"')  # the node's first line
    with pytest.raises(ConfigError, match=rf"cluster.yaml:{line}:"):
        load_config(cfg, environ={})


def _smuggled(**change: object) -> Settings:
    """Settings whose cluster skipped the model's checks (``model_construct``), as a field added
    later without types would: the Kamailio writer alone must refuse what breaks its syntax."""
    a = Node.model_construct(sip="127.0.0.1:5080", ami="127.0.0.1:5038", rtp_start=10000, rtp_end=10999,
                             maxcalls=10, weight=1, engines=())
    proxies = {"edge-a": Proxy.model_construct(sip="127.0.0.1:5070"), "edge-b": Proxy.model_construct(sip="127.0.0.2:5070")}
    nodes = {"ast-a": a}
    if "node_name" in change:
        nodes = {str(change["node_name"]): a}
    if "proxy_name" in change:
        proxies = {str(change["proxy_name"]): proxies["edge-a"], "edge-b": proxies["edge-b"]}
    if "proxy_sip" in change:
        proxies["edge-b"] = Proxy.model_construct(sip=change["proxy_sip"])
    if "node_sip" in change:
        nodes = {"ast-a": a.model_copy(update={"sip": change["node_sip"]})}
    if "weight" in change:
        nodes = {"ast-a": a.model_copy(update={"weight": change["weight"]})}
    cluster = ClusterSettings.model_construct(balance="load", proxies=proxies, nodes=nodes)
    settings = load_config(REPO / "config", environ={}).settings
    sip = settings.sip.model_copy(update={"pstn_match": change.get("pstn_match", ("127.0.0.1",))})
    return settings.model_copy(update={"cluster": cluster, "sip": sip})


@pytest.mark.parametrize(("change", "node"), [
    ({"node_name": "ast-a;x"}, "ast-a;x"),
    ({"node_name": "x #!define A"}, "x #!define A"),
    ({"proxy_name": 'edge-a"x'}, "ast-a"),
    ({"proxy_sip": '127.0.0.2:5070";listen=udp:0.0.0.0:5060'}, "ast-a"),
    ({"node_sip": "127.0.0.1:5080;duid=x"}, "ast-a"),
    ({"node_sip": "sip.example.org:5080"}, "ast-a"),
    ({"pstn_match": ("127.0.0.1) || (1",)}, "ast-a"),
    ({"pstn_match": ("0.0.0.0/0 # all",)}, "ast-a"),
])
def test_the_kamailio_writer_refuses_what_would_change_the_files_structure(change: dict[str, object], node: str) -> None:
    with pytest.raises(ConfigError, match="refused to render"):
        files_for(_smuggled(**change), node)


def test_the_writer_refuses_a_dispatcher_path_that_breaks_its_string(cfg: Path) -> None:
    settings = load_config(cfg, environ={}).settings
    with pytest.raises(ConfigError, match="not an absolute path"):
        files_for(settings, "ast-a", '/etc/kamailio";loadmodule "x')
    assert files_for(_smuggled(), "ast-a")["dispatcher.list"].endswith("duid=ast-a;weight=100\n")  # the base is fine


def test_with_cluster_carrier_the_nodes_call_out_through_the_proxies_which_try_the_gateways_in_order(
    cfg: Path, tmp_path: Path,
) -> None:
    """docs/cluster.md "Calls out": the node's ``pstn`` AOR lists the proxies (qualified), the
    dispatcher's set 2 the gateways with the primary's priority higher; the real ``kamailio -c``
    accepts the proxy's config. Without ``cluster.carrier`` the node keeps ``sip.pstn_contact``."""
    plain = files_for(load_config(cfg, environ={}).settings, "ast-a", str(tmp_path))
    assert "2 sip:" not in plain["dispatcher.list"] and "TO_CARRIER" not in plain["kamailio-edge-a.cfg"]
    (cfg / "cluster.yaml").write_text(TOPOLOGY.replace("  nodes:\n", '  carrier: ["127.0.0.1:5060", "127.0.0.1:5062"]\n  nodes:\n'))
    files = files_for(load_config(cfg, environ={}).settings, "ast-a", str(tmp_path))
    assert files["dispatcher.list"].splitlines()[3:] == ["2 sip:127.0.0.1:5060 0 2", "2 sip:127.0.0.1:5062 0 1"]
    aor = files["pjsip_generated.conf"].split("[pstn]\ntype=aor\n", 1)[1].split("\n\n", 1)[0]
    assert aor.splitlines() == ["contact=sip:127.0.0.1:5070", "contact=sip:127.0.0.2:5070", "qualify_frequency=5"]
    edge = files["kamailio-edge-a.cfg"]
    assert 'ds_select_domain("2", "8")' in edge and "ds_next_domain()" in edge and 'ds_is_from_list("1")' in edge
    for name in ("dispatcher.list", SECRETS_FILE):
        (tmp_path / name).write_text(files[name])
    (tmp_path / "edge-a.cfg").write_text(edge)
    check = kamailio_check(tmp_path / "edge-a.cfg")
    assert check.returncode == 0 and "config file ok" in check.stdout + check.stderr, check.stderr[-2000:]

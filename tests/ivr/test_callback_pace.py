"""The node's room for callback stand-ins: which maxcalls applies, which channels count, and the
engine's AMI user hearing only its own Originates' answers."""

from __future__ import annotations

from pathlib import Path

import yaml

from ivr.asterisk_conf import RenderOptions, render
from ivr.asterisk_conf.node import node_settings
from ivr.callback_pace import counted_calls, node_maxcalls
from ivr.config import Settings, load_config
from ivr.config.cluster import ClusterSettings
from ivr.core.secret_policy import fresh_secret
from queues.callback import ACTION_PREFIX

REPO = Path(__file__).resolve().parents[2]


def settings(**sip: object) -> Settings:
    s = load_config(REPO / "config", environ={}).settings
    return s.model_copy(update={"sip": s.sip.model_copy(update=sip)})


def files(s: Settings) -> dict[str, str]:
    agents = {name: f"pw-{name}-Kq7Lm2Vx" for name in s.agents}
    return render(s, RenderOptions(ami_secret=fresh_secret(), agent_secrets=agents))


def test_a_single_node_renders_and_paces_by_sip_maxcalls_and_has_no_cap_without_it() -> None:
    assert node_maxcalls(settings()) is None and "maxcalls" not in files(settings())["asterisk.conf"]
    capped = settings(maxcalls=12)
    assert node_maxcalls(capped) == 12 and "\nmaxcalls = 12\n" in files(capped)["asterisk.conf"]


def test_a_cluster_engine_paces_by_the_maxcalls_of_the_node_whose_ami_it_follows() -> None:
    cluster = ClusterSettings.model_validate(yaml.safe_load((REPO / "deploy" / "cluster.yaml").read_text())["cluster"])
    cluster.nodes["ast-b"] = cluster.nodes["ast-b"].model_copy(update={"maxcalls": 40})
    s = settings(maxcalls=7).model_copy(update={"cluster": cluster})
    assert node_maxcalls(node_settings(s, "ast-a")) == 200
    assert node_maxcalls(node_settings(s, "ast-b")) == 40


def test_only_channels_running_the_dialplan_count_as_the_calls_maxcalls_limits() -> None:
    listing = [
        {"Response": "Success", "EventList": "start"},
        {"Event": "CoreShowChannel", "Application": "Queue", "ApplicationData": "q-general"},  # a caller waiting
        {"Event": "CoreShowChannel", "Application": "AppQueue", "ApplicationData": "(Outgoing Line)"},  # the seat rung
        {"Event": "CoreShowChannel", "Application": "Dial", "ApplicationData": "PJSIP/13900000001@pstn"},  # a stand-in
        {"Event": "CoreShowChannel", "Application": "AppDial", "ApplicationData": "(Outgoing Line)"},  # the citizen
        {"Event": "CoreShowChannel", "Application": "", "ApplicationData": ""},  # originated, not answered yet
        {"Event": "CoreShowChannelsComplete", "ListItems": "5"},
    ]
    assert counted_calls(listing) == 2


def test_the_engine_user_hears_originate_answers_only_for_the_callback_workers_action_ids() -> None:
    manager = files(settings())["manager.conf"]
    sections = {part.split("]", 1)[0]: part for part in manager.split("\n[")[1:]}
    line = f"eventfilter = Event: OriginateResponse.*ActionID: {ACTION_PREFIX}\n"
    assert line in sections["ivr"]
    assert not any(line in text for name, text in sections.items() if name != "ivr")

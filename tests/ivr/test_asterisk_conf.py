"""The rendered Asterisk configuration: one source of truth in config/, safe defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.asterisk_conf import (ENGINE_EVENTS, ENGINE_READ, QUIET_EVENTS, RELOAD_MODULES, STATIC_DIR, RenderOptions,
                               asterisk_queue, render)
from ivr.config import ConfigError, load_config
from ivr.core.secret_policy import fresh_secret
from ivr.prompts.catalog import load_catalog
from queues.agents import CALL_EVENTS, MEMBER_EVENTS
from queues.follower import LIVE_EVENTS
from tracking.tracker import HANDLED_EVENTS

REPO = Path(__file__).resolve().parents[2]
AMI_SECRET = fresh_secret()
AGENT_SUFFIX = "Kq7Lm2Vx"  # the agents' test passwords pass the strength rule (ivr/core/secret_policy.py)


@pytest.fixture
def files() -> dict[str, str]:
    settings = load_config(REPO / "config", environ={}).settings
    secrets = {name: f"pw-{name}-{AGENT_SUFFIX}" for name in settings.agents}
    return render(settings, RenderOptions(ami_secret=AMI_SECRET, agent_secrets=secrets))


def test_directories_are_not_a_template(files: dict[str, str]) -> None:
    assert files["asterisk.conf"].startswith("[directories]\n")  # not "[directories](!)"


def test_ami_listens_on_loopback_with_restricted_classes(files: dict[str, str]) -> None:
    manager = files["manager.conf"]
    assert "bindaddr = 127.0.0.1" in manager
    assert "permit = 127.0.0.1/255.255.255.255" in manager
    assert f"read = {ENGINE_READ}" in manager
    assert "agi" not in ENGINE_READ.split(",") and "dialplan" not in ENGINE_READ.split(",")
    # query actions (CoreShowChannels, CoreStatus for reconciling) and callbacks' Originate: never
    # system (with it, an Originate could run System()); the seat-control user only `agent`
    assert f"[ivr]\nsecret = {AMI_SECRET}" in manager and "write = reporting,originate\n" in manager
    assert "\nwrite = reporting,originate\n" in manager.split("[ivr]")[1].split("\n\n")[0]
    assert "[ivr-seats]" not in manager  # no seat-control secret given: no such user
    assert f"eventfilter = Event: ({'|'.join(ENGINE_EVENTS)})\n" in manager  # only the tracker's events
    assert "timestampevents = yes" in manager  # tickets carry Asterisk's own event times
    assert f"disabledevents = {','.join(QUIET_EVENTS)}\n" in manager
    assert "[testbed]" not in manager  # the read-all user exists only in test beds


def test_no_event_the_engine_reads_is_disabled() -> None:
    """Asterisk never builds a disabled event, so no session could ever see it: none may be one the
    engine's followers, its AMI user's filter or its callback worker wait for."""
    read = {*ENGINE_EVENTS, *HANDLED_EVENTS, *LIVE_EVENTS, *CALL_EVENTS, *MEMBER_EVENTS, "OriginateResponse"}
    assert not read & set(QUIET_EVENTS)
    assert {"Newexten", "VarSet", "AGIExecStart", "TestEvent"} <= set(QUIET_EVENTS)  # the bulk of a call's events


def test_no_cdr_events_are_built() -> None:
    """The engine reconciles from cdr_custom's file; a Cdr AMI event per call would only wake every
    AMI session (a stand-by engine's too) for nothing."""
    modules = (STATIC_DIR / "modules.conf").read_text(encoding="utf-8")
    assert "load => cdr_custom.so" in modules
    assert "load => cdr_manager.so" not in modules


def manager_user(name: str, **secrets: str) -> str:
    """The ``[name]`` section of manager.conf rendered with these AMI secrets."""
    settings = load_config(REPO / "config", environ={}).settings
    agents = {agent: fresh_secret() for agent in settings.agents}
    manager = render(settings, RenderOptions(ami_secret=AMI_SECRET, agent_secrets=agents, **secrets))["manager.conf"]
    return manager.split(f"[{name}]\n")[1].split("\n\n")[0]


def test_the_seat_control_user_may_only_add_remove_and_pause_members() -> None:
    key = fresh_secret()
    seats = manager_user("ivr-seats", seats_ami_secret=key)
    assert f"secret = {key}\n" in seats and "\nread = \n" in seats and "\nwrite = agent\n" in seats
    assert "permit = 127.0.0.1/255.255.255.255" in seats


def test_the_reload_user_may_reload_modules_and_place_no_call() -> None:
    key = fresh_secret()
    admin = manager_user("ivr-admin", admin_ami_secret=key)
    assert f"secret = {key}\n" in admin and "\nread = \n" in admin and "\nwrite = system\n" in admin
    assert RELOAD_MODULES == ("http", "res_pjsip.so", "app_queue.so", "pbx_config.so")


def test_the_transfer_user_may_move_calls_and_neither_originate_nor_reload() -> None:
    key = fresh_secret()
    transfer = manager_user("ivr-transfer", transfer_ami_secret=key)
    assert f"secret = {key}\n" in transfer and "\nread = \n" in transfer and "\nwrite = call\n" in transfer
    assert "[ivr-transfer]" not in manager_user("ivr")  # no secret given: no such user


def test_every_transfer_target_is_dialed_through_the_ivrs_transfer_route(files: dict[str, str]) -> None:
    for name in ("extensions_agent_transfers.conf", "extensions_transfers.conf"):
        text = files[name]
        block = text.split("exten => 12360,1,")[1].split("exten =>")[0]
        assert "Set(IVR_TRANSFER_TRUNK=customs)" in block and block.rstrip().endswith("Goto(ivr-route,transfer,1)")
        assert "exten => 110,1," in text and "exten => province,1," in text
    bridge = files["extensions_bridge.conf"].split("exten => 110,1,")[1].split("exten =>")[0]
    assert "Set(IVR_TRANSFER_TRUNK=emergency)" in bridge and bridge.rstrip().endswith("Goto(dial,1)")
    assert "atxfer => *2" in files["features.conf"] and "[ivr-caller]" in files["confbridge.conf"]
    assert "load => app_confbridge.so" in files["modules.conf"] and "load => res_pjsip_header_funcs.so" in files["modules.conf"]


def test_every_configured_queue_and_each_agents_skills_are_rendered(files: dict[str, str]) -> None:
    settings = load_config(REPO / "config", environ={}).settings
    for name in settings.queues:
        assert f"[{asterisk_queue(name)}]" in files["queues.conf"]
        callback = settings.queues[name].callback
        key, after = (callback.key, callback.after) if callback else ("", "")
        assert (f"exten => {name},1,Set(CDR(ivr_queue)={name})\n same => n,Set(IVR_IN_QUEUE={name})\n"
                f" same => n,Set(IVR_CALLBACK_KEY={key})\n same => n,Set(IVR_CALLBACK_AFTER={after})\n"
                f" same => n,Gosub(ivr-recording,queue,1(,))\n"  # recorded or not, and the notice
                f" same => n,Gosub(ivr-queue-place,s,1({asterisk_queue(name)}))\n"
                f" same => n,Queue({asterisk_queue(name)},") in files["extensions_queues.conf"]
    assert "member =>" not in files["queues.conf"]  # members are agents who logged in
    agents = files["extensions_agents.conf"]
    assert ("exten => expert2001,1,NoOp(人社专家座席2001)\n"
            " same => n,AddQueueMember(q-general,PJSIP/expert2001,10,,expert2001)\n"
            " same => n,AddQueueMember(q-expert-hrss,PJSIP/expert2001,0,,expert2001)\n same => n,Return()") in agents
    assert " same => n,RemoveQueueMember(q-expert-hrss,PJSIP/expert2001)\n" in agents
    queues = files["extensions_queues.conf"]
    # the seat hung up: a recording from answer ends (recording.py seat-gone), the caller rates the call
    survey = (' same => n,ExecIf($["${QUEUESTATUS}" = "CONTINUE"]?Gosub(ivr-recording,seat-gone,1))\n'
              ' same => n,GotoIf($["${QUEUESTATUS}" = "CONTINUE"]?ivr-survey,s,1)\n')
    assert (f"Queue(q-expert-hrss,tc,,,60,,ivr-agent-connected,,${{GOSUB_RETVAL}})\n{survey}"
            " same => n,UserEvent(IvrOverflow,Queue: expert-hrss,Overflow: general,Reason: ${QUEUESTATUS})\n"
            " same => n,Goto(general,1)") in queues
    assert f"Queue(q-general,tc,,,,,ivr-agent-connected,,${{GOSUB_RETVAL}})\n{survey} same => n,Hangup()" in queues
    conf = files["queues.conf"]
    general = conf[conf.index("[q-general]"):conf.index("[q-expert-hrss]")]
    expert = conf[conf.index("[q-expert-hrss]"):]
    assert "joinempty = yes\nleavewhenempty = no\n" in general  # 7×24: callers always wait
    assert "joinempty = unavailable,invalid\nleavewhenempty = unavailable,invalid\n" in expert
    leader = conf[conf.index("[q-leader]"):]
    leader = leader[:leader.find("\n[", 1) + 1 or None]
    assert "joinempty = paused,unavailable,invalid\nleavewhenempty = paused,unavailable,invalid\n" in leader  # no waiting for a held seat
    assert "wrapuptime = 5\n" in general and "announce-frequency = 30\n" in general
    assert "announce-to-first-user = no\n" in general
    assert "queue-thereare = ivr12345/queue_position_before\n" in general
    # the general queue offers a callback after 30 s: key 1 leaves it for [ivr-callback-request]
    assert "context = ivr-queue-keys\nperiodic-announce = ivr12345/callback_offer\n" in general
    assert "periodic-announce-startdelay = 30\n" in general and "context =" not in expert
    assert files["extensions_callback.conf"] == "exten => 1,1,Goto(ivr-callback-request,1,1)\n"
    assert "[pstn]\ntype=aor\ncontact=sip:127.0.0.1:5080\n" in files["pjsip_generated.conf"]


# every sound app_queue plays a waiting caller under the queues' settings (announce-position limit,
# announce-holdtime, thanks): the head of the queue hears queue-youarenext while no seat is free
CALLER_SOUNDS = ("queue-youarenext", "queue-thereare", "queue-callswaiting", "queue-holdtime", "queue-minutes",
                 "queue-minute", "queue-seconds", "queue-thankyou")


def test_waiting_callers_hear_only_mandarin_prompts_of_the_catalog(files: dict[str, str]) -> None:
    """app_queue's own sounds are English: each one a caller can hear is one of our prompts."""
    catalog = load_catalog(REPO / "prompts")
    conf = files["queues.conf"]
    for queue in conf.split("\n[")[1:]:
        if not queue.startswith("q-"):
            continue
        said = dict(line.split(" = ", 1) for line in queue.splitlines() if line.startswith("queue-"))
        assert set(CALLER_SOUNDS) <= set(said), queue.splitlines()[0]
        assert all(catalog.has(said[k].removeprefix("ivr12345/")) for k in CALLER_SOUNDS), said


def test_subcenter_trunks_and_agent_auth(files: dict[str, str]) -> None:
    pjsip = files["pjsip_generated.conf"]
    assert "[tax]\ntype=aor\ncontact=sip:127.0.0.1:5071" in pjsip
    assert "[tax]\ntype=identify\nendpoint=tax\nmatch=127.0.0.1:5071" in pjsip
    # trunks have no password: a From user naming them must not be enough to get in
    # pstn, five sub-centers, a city's tax line, emergency, the provincial platform
    assert pjsip.count("identify_by=ip") == 1 + 6 + 1 + 1
    assert "[province]\ntype=endpoint\ncontext=from-platform\nidentify_by=ip" in pjsip
    assert "set_var=TRANSFER_CONTEXT=ivr-transfers\nauth=agent1001-auth" in pjsip
    assert f"username=agent1001\npassword=pw-agent1001-{AGENT_SUFFIX}\n" in pjsip


def test_dialplan_disables_agi_sighup_before_calling_the_engine(files: dict[str, str]) -> None:
    dialplan = files["extensions.conf"]
    assert dialplan.index("Set(AGISIGHUP=no)") < dialplan.index("AGI(${IVR_ENGINE_URL}")
    assert "IVR_ROUTE" in dialplan and "exten => T," in dialplan


def test_agent_without_password_is_refused_even_with_a_fixed_contact() -> None:
    settings = load_config(REPO / "config", environ={}).settings
    desk = settings.agents["agent1001"].model_copy(update={"contact": "sip:agent1001@10.0.0.5:5060"})
    settings = settings.model_copy(update={"agents": {**settings.agents, "agent1001": desk}})
    with pytest.raises(ConfigError, match=r"agent agent1001: no SIP password \(set IVR_AGENT_SECRET_AGENT1001\)"):
        render(settings, RenderOptions(ami_secret=AMI_SECRET))


def test_out_of_scope_keys_are_features_of_agents_channels_only(files: dict[str, str]) -> None:
    """*8x (config/outofscope.yaml) run the explanation on the caller's channel (peer); the queue
    enables them on the agent's channel alone, as it connects it (Queue's gosub)."""
    assert "oos_petition => *83,peer,Gosub(ivr-out-of-scope,petition,1)" in files["features_out_of_scope.conf"]
    assert '#include "features_out_of_scope.conf"' in files["features.conf"].split("[applicationmap]", 1)[1]
    dialplan = files["extensions_out_of_scope.conf"]
    assert "[ivr-agent-connected]\nexten => s,1,Set(DYNAMIC_FEATURES=oos_litigation#oos_arbitration#oos_petition#" in dialplan
    assert "exten => petition,1,UserEvent(IvrOutOfScope,Matter: petition,Agent: ${BRIDGEPEER})\n" \
           " same => n,Playback(ivr12345/out_of_scope_petition)\n same => n,Return()" in dialplan
    assert all(",ivr-agent-connected,," in line for line in files["extensions_queues.conf"].splitlines() if "Queue(" in line)


def test_a_sub_center_with_hours_takes_its_closed_state_from_the_engines_global(tmp_path: Path) -> None:
    """Agents' own transfers (dial, REFER, atxfer) to a sub-center with hours run the IVR's
    ``closed`` path when the engine published it closed; without hours nothing is looked up."""
    import shutil

    from testbed.configs import edit_entry

    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    edit_entry(config / "subcenters.yaml", "customs", "port: 5072}", 'port: 5072, hours: {day: working, time: "08:30-17:30"}}')
    settings = load_config(config, environ={}).settings
    rendered = render(settings, RenderOptions(ami_secret=AMI_SECRET, agent_secrets={n: fresh_secret() for n in settings.agents}))
    for name in ("extensions_agent_transfers.conf", "extensions_transfers.conf"):
        text = rendered[name]
        customs = text.split("exten => 12360,1,")[1].split("exten =>")[0]
        assert " same => n,Set(IVR_TRANSFER_CLOSED=${IVR_SUBCENTER_CLOSED_CUSTOMS})\n" in customs
        assert customs.rstrip().endswith("Goto(ivr-route,transfer,1)")
        tobacco = text.split("exten => 12313,1,")[1].split("exten =>")[0]
        assert " same => n,Set(IVR_TRANSFER_CLOSED=)\n" in tobacco


def test_the_test_dialplan_is_rendered_only_when_a_test_bed_passes_it(files: dict[str, str]) -> None:
    # extensions.conf #includes it: production has the file, empty, and nothing of the test bed
    assert '#include "extensions_testbed.conf"' in files["extensions.conf"]
    assert files["extensions_testbed.conf"] == ""
    settings = load_config(REPO / "config", environ={}).settings
    secrets = {name: f"pw-{name}-{AGENT_SUFFIX}" for name in settings.agents}
    dialplan = "[ivr-test-caller]\nexten => s,1,Hangup()\n"  # a whole file: line breaks are its own
    bed = render(settings, RenderOptions(ami_secret=AMI_SECRET, agent_secrets=secrets,
                                         extra_files={"extensions_testbed.conf": dialplan}))
    assert bed["extensions_testbed.conf"] == dialplan
    assert {k: v for k, v in bed.items() if k != "extensions_testbed.conf"} == \
        {k: v for k, v in files.items() if k != "extensions_testbed.conf"}
    with pytest.raises(ConfigError, match="no such extra file"):
        render(settings, RenderOptions(ami_secret=AMI_SECRET, agent_secrets=secrets, extra_files={"../manager.conf": ""}))

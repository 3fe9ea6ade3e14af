"""Live supervision without Asterisk: what a request may name (every refusal happens before any
AMI action), the names Asterisk could not tell apart, and the files it renders: the supervise
AMI user, the supervisors' phones and the ``[ivr-supervise]`` extensions."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from pydantic import SecretStr

from ivr.asterisk_conf import RenderOptions, render
from ivr.asterisk_conf.kamailio_seats import REALM, SECRETS_FILE, seats_secrets_cfg
from ivr.config import ConfigError, Settings, load_config
from ivr.core.conftext import UnsafeValue
from ivr.core.secret_policy import fresh_secret
from supervision.ami import call_node, request_of, supervise, supervise_client
from supervision.model import SupervisionError, SupervisionSettings, check_phone_owner, choices, own_phone
from supervision.store import notice_for
from tests.ivr import test_seats_render as seats_render

REPO = Path(__file__).resolve().parents[2]
PHONE = "supervisor01"


def with_supervisor(settings: Settings, **extra: object) -> Settings:
    section = SupervisionSettings.model_validate({"supervisors": {PHONE: {"name": "值班长01"}}, **extra})  # extra may replace them
    return settings.model_copy(update={"supervision": section})


@pytest.fixture
def settings() -> Settings:
    return with_supervisor(load_config(REPO / "config", environ={}).settings)


def files(settings: Settings, **options: object) -> dict[str, str]:
    secrets = {n: fresh_secret() for n in [*settings.agents, *settings.supervision.supervisors]}
    return render(settings, RenderOptions(ami_secret=fresh_secret(), agent_secrets=secrets, **options))  # type: ignore[arg-type]


def test_a_request_names_a_configured_agent_phone_and_one_of_three_modes(settings: Settings) -> None:
    request = request_of(settings, "agent1001", "whisper", PHONE)
    assert (request.extension, request.label) == ("whisper-agent1001", "耳语")


@pytest.mark.parametrize(("agent", "mode", "phone", "why"), [
    ("agent9999", "listen", PHONE, "no such agent"),
    ("agent1001,qB)", "listen", PHONE, "no such agent"),  # would add ChanSpy options in a dial string
    ("agent1001\nexten => 1,1,Dial(PJSIP/110@emergency)", "listen", PHONE, "no such agent"),
    ("Local/agent1001@ivr-transfers", "listen", PHONE, "no such agent"),
    ("agent1001", "spy", PHONE, "no such mode"),
    ("agent1001", "listen;", PHONE, "no such mode"),
    ("agent1001", "barge", "agent1002", "no such supervisor"),  # an agent's phone is not a supervisor's
    ("agent1001", "barge", "PJSIP/13800138000@pstn", "no such supervisor"),
    ("agent1001", "listen", "supervisor01 ", "no such supervisor"),
])
async def test_anything_else_is_refused_before_any_ami_action(settings: Settings, agent: str, mode: str, phone: str,
                                                              why: str) -> None:
    with pytest.raises(SupervisionError, match=why) as refused:
        request_of(settings, agent, mode, phone)
    assert "\n" not in str(refused.value)  # the error quotes what was refused, escaped and cut


async def test_an_idle_agent_is_refused_before_any_ami_action(settings: Settings) -> None:
    """supervise() reads the agent's call first: none (this Redis answers nothing) and no AMI
    client is even made (the supervise user's secret is not set here, which would fail otherwise)."""

    class NoCall:
        async def hget(self, key: str, field: str) -> None:
            return None

    lines: list[dict[str, str]] = []

    async def audit(line: dict[str, str]) -> None:
        lines.append(line)

    with pytest.raises(SupervisionError, match="not talking to a caller"):
        await supervise(request_of(settings, "agent1001", "listen", PHONE), settings, NoCall(), audit)  # type: ignore[arg-type]
    assert lines == []  # refused: the audit line of a call is written only for a call that goes ahead


def test_agents_asterisk_cannot_tell_apart_and_phones_named_like_a_seat_are_refused(settings: Settings) -> None:
    agents = dict(settings.agents)
    agents["agent-1001"] = agents["agent1001"]
    clash = settings.model_copy(update={"agents": agents}).reference_problems()
    assert any(path == ("agents", "agent-1001") and "differ only by '-'" in why for path, why in clash)
    seat = with_supervisor(settings)
    seat = seat.model_copy(update={"supervision": SupervisionSettings.model_validate(
        {"supervisors": {"agent1002": {"name": "x"}, "pstn": {"name": "y"}}})})
    named = {path for path, _why in seat.reference_problems()}
    assert {("supervision", "supervisors", "agent1002"), ("supervision", "supervisors", "pstn")} <= named
    assert not settings.reference_problems()


def test_the_supervise_user_may_only_originate_and_reads_nothing(settings: Settings) -> None:
    key = fresh_secret()
    manager = files(settings, supervise_ami_secret=key)["manager.conf"]
    user = manager.split("[ivr-supervise]\n")[1].split("\n\n")[0]
    assert f"secret = {key}\n" in user and "\nread = \n" in user and "\nwrite = originate\n" in user
    assert "eventfilter" not in user
    assert re.findall(r"^permit = (.*)$", user, re.M) == ["127.0.0.1/255.255.255.255", "::1/128"]
    assert "deny = 0.0.0.0/0.0.0.0\ndeny = ::/0\n" in user
    assert "[ivr-supervise]" not in files(settings)["manager.conf"]  # no secret given: no such user


def test_each_extension_spies_on_its_own_agent_only_and_only_for_a_supervisor_phone(settings: Settings) -> None:
    rendered = files(settings)
    plan = rendered["extensions_supervise.conf"]
    extensions = re.findall(r"^exten => ([^,]+),1,", plan, re.M)
    assert len(extensions) == 3 * len(settings.agents)
    block = plan.split("exten => whisper-agent1001,1,")[1].split("exten => ")[0]
    assert f'GotoIf($["${{CHANNEL(endpoint)}}" = "{PHONE}"]?spy)' in block
    assert " same => n,Hangup(21)\n same => n(spy),ChanSpy(PJSIP/,qwbESg(agent1001))\n" in block
    assert "ChanSpy(PJSIP/,qbESg(agent1002))" in plan and "ChanSpy(PJSIP/,qBbESg(expert2001))" in plan
    # every channel of a seat's endpoint names the seat as its spy group; the phone is an endpoint of its own
    pjsip = rendered["pjsip_generated.conf"]
    assert "set_var=SPYGROUP=agent1001\n" in pjsip
    phone = pjsip.split(f"[{PHONE}]\ntype=endpoint\n")[1].split("\n\n")[0]
    assert "context=from-supervisors\n" in phone and phone.endswith(f"\nauth={PHONE}-auth")
    assert "SPYGROUP" not in phone and f"[{PHONE}-auth]\ntype=auth\nauth_type=userpass\nusername={PHONE}\n" in pjsip
    assert "load => app_chanspy.so" in rendered["modules.conf"]


def test_without_supervisors_nothing_can_be_spied_on(settings: Settings) -> None:
    bare = settings.model_copy(update={"supervision": SupervisionSettings()})
    assert files(bare)["extensions_supervise.conf"] == ""


def test_a_supervisor_phone_needs_its_own_strong_password(settings: Settings) -> None:
    agents = {n: fresh_secret() for n in settings.agents}
    with pytest.raises(ConfigError, match="IVR_SUPERVISOR_SECRET_SUPERVISOR01"):
        render(settings, RenderOptions(ami_secret=fresh_secret(), agent_secrets=agents))
    with pytest.raises(ConfigError, match="too weak"):
        render(settings, RenderOptions(ami_secret=fresh_secret(), agent_secrets={**agents, PHONE: "short"}))


def test_the_desk_shows_the_notice_only_while_its_call_is_the_connected_one() -> None:
    notice = json.dumps({"linkedid": "1733.7", "mode": "whisper", "label": "耳语", "supervisor": "值班长01", "at": 1.0})
    assert (notice_for(notice, {"state": "connected", "linkedid": "1733.7"}) or {}).get("mode") == "whisper"
    assert notice_for(notice, {"state": "ended", "linkedid": "1733.7"}) is None  # the call is over
    assert notice_for(notice, {"state": "connected", "linkedid": "1733.9"}) is None  # a later call
    assert notice_for(None, {"state": "connected", "linkedid": "1733.7"}) is None
    assert notice_for(notice, None) is None


@pytest.fixture
def cluster(tmp_path: Path) -> Settings:
    """config/ with the seats-render tests' cluster (two proxies, nodes ast-a, ast-b, ast-c), a
    softphone that registers (supervisor01) and a desk phone with a fixed contact (supervisor02)."""
    d = tmp_path / "config"
    shutil.copytree(REPO / "config", d)
    (d / "cluster.yaml").write_text(seats_render.TOPOLOGY)
    return with_supervisor(load_config(d, environ={}).settings, **{"supervisors": {
        PHONE: {"name": "值班长01"}, "supervisor02": {"name": "质检组长", "contact": "sip:10.0.0.8:5060"}}})


def test_on_a_cluster_a_supervisor_softphone_registers_at_the_proxies_like_a_seat(cluster: Settings) -> None:
    secrets = {n: fresh_secret() for n in [*cluster.agents, *cluster.supervision.supervisors]}
    files = render(cluster, RenderOptions(ami_secret=fresh_secret(), agent_secrets=secrets, node="ast-b",
                                          kamailio_dir="/etc/kamailio"))
    pjsip = files["pjsip_generated.conf"]
    aor = pjsip.split(f"[{PHONE}]\ntype=aor\n")[1].split("\n\n")[0]
    assert aor == (f"max_contacts=0\ncontact=sip:{PHONE}@127.0.0.1:5070\ncontact=sip:{PHONE}@127.0.0.1:5071\n"
                   "qualify_frequency=5")  # any node rings it through the proxies
    assert "[supervisor02]\ntype=aor\nmax_contacts=1\nremove_existing=yes\nqualify_frequency=0\n" \
           "contact=sip:10.0.0.8:5060\n" in pjsip  # a desk phone: dialed as configured
    keys = files[SECRETS_FILE]
    assert f'$sht(seat_ha1=>{PHONE}) = "{hashlib.md5(f"{PHONE}:{REALM}:{secrets[PHONE]}".encode()).hexdigest()}";' in keys
    assert "supervisor02" not in keys and '$sht(seat_ha1=>agent1001) = "' in keys
    with pytest.raises(UnsafeValue, match="IVR_SUPERVISOR_SECRET_SUPERVISOR01"):  # its own variable, also at the proxies
        seats_secrets_cfg({PHONE: "short"}, [PHONE])


async def test_on_a_cluster_the_node_of_the_call_is_asked_and_a_forged_call_names_none(cluster: Settings) -> None:
    assert call_node(cluster, "ast-b-1733000000.7") == "ast-b"
    client = supervise_client(cluster.model_copy(update={"ami": cluster.ami.model_copy(
        update={"supervise_secret": SecretStr(fresh_secret())})}), "ast-b")
    assert client.address == "127.0.0.1:5039"  # node B's AMI, whichever engine asks
    client.close()

    class OnDesk:
        def __init__(self, linkedid: str) -> None:
            self.doc = json.dumps({"state": "connected", "linkedid": linkedid})

        async def hget(self, key: str, field: str) -> str:
            return self.doc

    lines: list[dict[str, str]] = []

    async def audit(line: dict[str, str]) -> None:
        lines.append(line)

    for forged in ("10.0.0.99:5038-1733000000.7", "ast-z-1733000000.7", "1733000000.7"):
        with pytest.raises(SupervisionError, match="on no node"):  # before the audit line, any AMI client
            await supervise(request_of(cluster, "agent1001", "listen", PHONE), cluster, OnDesk(forged), audit)  # type: ignore[arg-type]
    assert lines == []


def test_a_supervisor_rings_their_own_or_a_shared_phone_and_only_an_admin_another_users() -> None:
    section = SupervisionSettings.model_validate({"supervisors": {
        "supervisor01": {"name": "值班长01", "user": "zhao"}, "supervisor02": {"name": "值班长02", "user": "qian"},
        "room": {"name": "督导室"}}})
    phones = section.supervisors
    assert own_phone("zhao", phones) == "supervisor01" and own_phone("sun", phones) is None
    assert choices(section, "zhao", "supervisor")["phones"] == {"supervisor01": "值班长01", "room": "督导室"}
    assert choices(section, "zhao", "supervisor")["mine"] == "supervisor01"  # the forms' default
    assert list(choices(section, "qian", "admin")["phones"]) == ["supervisor02", "supervisor01", "room"]  # own first
    assert choices(section, "sun", "supervisor")["phones"] == {"room": "督导室"} and choices(section, "sun", "supervisor")["mine"] is None
    check_phone_owner("zhao", "supervisor", "supervisor01", phones)
    check_phone_owner("sun", "supervisor", "room", phones)
    check_phone_owner("wang", "admin", "supervisor02", phones)
    with pytest.raises(SupervisionError, match="another user's own phone"):
        check_phone_owner("zhao", "supervisor", "supervisor02", phones)
    with pytest.raises(ValueError):  # a user name is a plain name
        SupervisionSettings.model_validate({"supervisors": {"x": {"name": "x", "user": "Zhao; drop"}}})


def test_a_console_user_has_one_own_phone_at_most(settings: Settings) -> None:
    twice = settings.model_copy(update={"supervision": SupervisionSettings.model_validate({"supervisors": {
        "supervisor01": {"name": "a", "user": "zhao"}, "supervisor02": {"name": "b", "user": "zhao"}}})})
    [(path, why)] = [p for p in twice.reference_problems() if p[0][:2] == ("supervision", "supervisors")]
    assert path == ("supervision", "supervisors", "supervisor02", "user") and "one own phone per user" in why

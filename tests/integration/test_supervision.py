"""Live supervision on the real bed (issue 21 item 5): a citizen talks to agent1001, each party's
phone playing its own tone (testbed.rtp: the sipp phone's SDP names a socket that plays and
records RTP); the engine rings supervisor01's sipp phone as the supervise AMI user and ChanSpy
joins it to the call. What each phone then receives is measured by frequency:

- listen (监听): the supervisor hears the agent and the citizen; nobody hears the supervisor;
- whisper (耳语, here through ``ivr supervise``): the agent hears the supervisor, the citizen does not;
- barge (强插): all three hear each other.

Then the attacks: an agent cannot supervise, a forged agent name never reaches Asterisk, and
the supervise AMI user is refused every action but the Originate it exists for. And in
headless Chromium a supervisor clicks 监听 on the wallboard's seat row, the phone rings, and the
seat's desk says who is listening."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, AsyncIterator, Awaitable, Callable, cast

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from ivr.ami.client import AmiClient, AmiError
from ivr.store import keyspace
from supervision.ami import request_of, supervise, supervise_client
from supervision.model import MESSAGES
from testbed.bed import TestBed
from testbed.browser import Browser
from testbed.calls import Phones, for_caller, only_seat, run_ivr, until
from testbed.console import ConsoleSite, add_user
from testbed.rtp import ToneLeg, party_levels
from testbed.sipp import Key

pytestmark = pytest.mark.usefixtures("no_call_outlives_the_test")

AGENT, PHONE = "agent1001", "supervisor01"
OWNER = "banzhang02"  # supervisor02's console user (tests/integration/conftest.py)
CITIZEN_HZ, AGENT_HZ, SUPERVISOR_HZ = 470.0, 1090.0, 1730.0  # no one a harmonic of another
HEARD, ABSENT = 0.05, 0.01  # share of a received second's energy at one frequency
SETTLE = 4000  # samples (0.5 s) after ChanSpyStart before measuring: the whisper hooks attach


def with_secret(bed: TestBed) -> Any:
    """The bed's settings with the supervise AMI user's secret (the engine has it from its environment)."""
    assert bed.state
    ami = bed.settings.ami.model_copy(update={"supervise_secret": SecretStr(bed.state.supervise_ami_secret)})
    return bed.settings.model_copy(update={"ami": ami})


@contextlib.asynccontextmanager
async def agent_talking(engine: TestBed, ami: AmiClient, phones: Phones, redis: aioredis.Redis
                        ) -> AsyncIterator[tuple[str, ToneLeg, ToneLeg]]:
    """A citizen's call (keys 0: a human) answered by AGENT; yields (linkedid, citizen's RTP,
    agent's RTP) once the desk shows the call connected. Keys go as SIP INFO: the citizen's RTP
    comes from the tone socket, and Asterisk's strict RTP would drop sipp's own DTMF packets."""
    await engine.log_in_agents([AGENT])  # whatever an earlier test did to the seat
    citizen = await ToneLeg("citizen", CITIZEN_HZ, phones.free_port()).start()
    agent = await ToneLeg("agent", AGENT_HZ, phones.free_port()).start()
    try:
        async with only_seat(engine, ami, AGENT):
            caller = phones.next_caller()
            await phones.agent(AGENT, caller, announce_media=agent.port)
            connected = ami.wait_for("AgentConnect", for_caller(caller))
            await phones.call("12345", [Key("0", 1500)], hold_ms=90_000, caller=caller, dtmf="info",
                              announce_media=citizen.port)
            linkedid = str((await asyncio.wait_for(connected, 40))["Linkedid"])

            async def on_desk() -> bool:
                doc = cast(str | None, await redis.hget(keyspace.desk(AGENT), "doc"))
                return bool(doc) and json.loads(doc or "{}").get("state") == "connected" \
                    and json.loads(doc or "{}").get("linkedid") == linkedid

            await until(on_desk, 20)
            yield linkedid, citizen, agent
    finally:
        citizen.close()
        agent.close()


async def levels(leg: ToneLeg, since: int) -> dict[str, float]:
    """What ``leg`` heard in one second from ``since``: each party's share of it."""
    return await party_levels(leg, since, {"citizen": CITIZEN_HZ, "agent": AGENT_HZ, "supervisor": SUPERVISOR_HZ})


async def supervised(ami: AmiClient, phones: Phones, start: Callable[[], Awaitable[Any]],
                     legs: tuple[ToneLeg, ToneLeg], spoken: tuple[str, ...] = ()) -> dict[str, dict[str, float]]:
    """Ring the supervisor's phone through ``start``; once ChanSpy runs on the agent's channel,
    one second of what citizen, agent and supervisor each receive; then the supervisor hangs up.
    ``spoken`` (whisper: the agent; barge: the agent and the citizen): the window starts once each
    of them hears the supervisor (within 5 s), since ChanSpy's hooks may attach well after
    ChanSpyStart on a loaded machine (measured: 0.05 of the second for a hook about 1.4 s late; a
    barge's hook on the citizen's side 0.03 once); listen waits a fixed SETTLE."""
    citizen, agent = legs
    supervisor = await ToneLeg("supervisor", SUPERVISOR_HZ, phones.free_port()).start()
    try:
        phone = await phones.supervisor(PHONE, AGENT, announce_media=supervisor.port)
        spying = ami.wait_for("ChanSpyStart", lambda e: str(e.get("SpyerChannel", "")).startswith(f"PJSIP/{PHONE}-"))
        await start()
        spy = await asyncio.wait_for(spying, 30)
        assert str(spy["SpyeeChannel"]).startswith(f"PJSIP/{AGENT}-"), spy  # the agent's own leg, nobody else's
        hearers = [leg for leg in legs if leg.name in spoken]
        if hearers:
            async def they_hear_supervisor() -> bool:
                return all([await leg.level(SUPERVISOR_HZ, leg.mark(), 0.2) > HEARD for leg in hearers])
            await until(they_hear_supervisor, 5, interval=0)
        marks = {leg.name: leg.mark() + (0 if spoken else SETTLE) for leg in (citizen, agent, supervisor)}
        heard = {leg.name: await levels(leg, marks[leg.name]) for leg in (citizen, agent, supervisor)}
        stopped = ami.wait_for("ChanSpyStop", lambda e: e.get("SpyerChannel") == spy["SpyerChannel"])
        await ami.action({"Action": "Hangup", "Channel": spy["SpyerChannel"]})
        await asyncio.wait_for(stopped, 10)
        assert await phone.wait(20) == 0, phone.output()
        assert supervisor.packets > 0 and supervisor.payload_types <= {0, 8}  # RTP arrived at the supervisor's phone
        return heard
    finally:
        supervisor.close()


async def desk_idle(redis: aioredis.Redis) -> bool:
    """An earlier test's call has left AGENT's desk."""
    doc = cast(str | None, await redis.hget(keyspace.desk(AGENT), "doc"))
    return not doc or json.loads(doc).get("state") != "connected"


class Audited:
    """The audit lines :func:`supervise` asks for (the console and the CLI write theirs to the log)."""

    def __init__(self) -> None:
        self.lines: list[dict[str, str]] = []

    async def append_line(self, line: dict[str, str]) -> None:
        self.lines.append(line)


async def test_listen_whisper_and_barge_reach_exactly_who_they_should(
    engine: TestBed, ami: AmiClient, phones: Phones, redis: aioredis.Redis, console: ConsoleSite,
) -> None:
    settings, audited, state = with_secret(engine), Audited(), engine.state
    assert state
    async with agent_talking(engine, ami, phones, redis) as (linkedid, citizen, agent):
        before = {leg.name: await levels(leg, leg.mark()) for leg in (citizen, agent)}
        assert before["citizen"]["agent"] > HEARD and before["agent"]["citizen"] > HEARD, before

        def by_engine(mode: str) -> Callable[[], Awaitable[Any]]:
            return lambda: supervise(request_of(settings, AGENT, mode, PHONE), settings, redis, audited.append_line)

        listen = await supervised(ami, phones, by_engine("listen"), (citizen, agent))
        assert listen["supervisor"]["agent"] > HEARD and listen["supervisor"]["citizen"] > HEARD, listen
        assert listen["citizen"]["supervisor"] < ABSENT and listen["agent"]["supervisor"] < ABSENT, listen
        assert listen["citizen"]["agent"] > HEARD, listen  # the call itself goes on

        async def by_cli() -> None:
            code, out = await run_ivr(state, "supervise", AGENT, "--mode", "whisper", "--phone", PHONE)
            assert code == 0 and f"joins {AGENT}'s call {linkedid}" in out, out

        whisper = await supervised(ami, phones, by_cli, (citizen, agent), spoken=("agent",))
        assert whisper["agent"]["supervisor"] > HEARD and whisper["agent"]["citizen"] > HEARD, whisper
        assert whisper["citizen"]["supervisor"] < ABSENT, whisper
        assert whisper["supervisor"]["agent"] > HEARD, whisper

        barge = await supervised(ami, phones, by_engine("barge"), (citizen, agent), spoken=("agent", "citizen"))
        assert barge["agent"]["supervisor"] > HEARD and barge["citizen"]["supervisor"] > HEARD, barge
        assert barge["supervisor"]["agent"] > HEARD and barge["supervisor"]["citizen"] > HEARD, barge
        assert barge["citizen"]["agent"] > HEARD and barge["agent"]["citizen"] > HEARD, barge

        # the agent's desk says who joined and how (supervision.notify_agent), for this call only
        notice = json.loads(cast(str, await redis.hget(keyspace.desk(AGENT), "supervision")))
        assert (notice["linkedid"], notice["mode"], notice["supervisor"]) == (linkedid, "barge", "值班长01")
    print(f"\nsupervision levels (share of energy per party): listen {listen}\nwhisper {whisper}\nbarge {barge}")
    cli = [e for e in console.audit() if e.command == "supervise" and e.what.get("mode") == "whisper"]
    assert cli and cli[-1].what == {"agent": AGENT, "mode": "whisper", "supervisor": PHONE, "linkedid": linkedid}
    assert [line["mode"] for line in audited.lines] == ["listen", "barge"] and audited.lines[0]["linkedid"] == linkedid


async def test_the_supervise_user_is_refused_every_action_but_its_originate(engine: TestBed, ami: AmiClient) -> None:
    def local_leg(context: str) -> Callable[[Any], bool]:
        return lambda e: (str(e.get("Channel", "")).startswith("Local/s@ivr-test-answer")
                          and str(e.get("Channel", "")).endswith(";1") and e.get("Context") == context)

    # a call that is up (a Local channel holding in [ivr-test-caller]): what a hostile holder of the
    # secret would redirect to 110, hang up or mark
    held = ami.wait_for("Newchannel", lambda e: str(e.get("Channel", "")).startswith("Local/s@ivr-test-answer")
                        and str(e.get("Channel", "")).endswith(";1"))
    await ami.action({"Action": "Originate", "Channel": "Local/s@ivr-test-answer", "Context": "ivr-test-caller",
                      "Exten": "s", "Priority": "1", "Async": "true"}, as_list=False)
    victim = str((await asyncio.wait_for(held, 10))["Channel"])
    client = supervise_client(with_secret(engine))
    await client.connect()
    try:
        for action in ({"Action": "Redirect", "Channel": victim, "Context": "ivr-transfers", "Exten": "110", "Priority": "1"},
                       {"Action": "Hangup", "Channel": victim},
                       {"Action": "Setvar", "Channel": victim, "Variable": "IVR_TRANSFER_TICKET", "Value": "x"},
                       {"Action": "Status"},
                       {"Action": "Command", "Command": "core show channels"},
                       {"Action": "Reload"}):
            with pytest.raises(AmiError, match="Permission denied"):
                await client.action(action)
        listing = await ami.action({"Action": "CoreShowChannels"}, as_list=True)
        assert victim in [e.get("Channel") for e in listing], "the refused Hangup or Redirect acted"
        # an Originate that would run a shell or another dialplan application of that kind
        with pytest.raises(AmiError, match="Originate Access Forbidden"):
            await client.action({"Action": "Originate", "Channel": f"PJSIP/{PHONE}", "Application": "System",
                                 "Data": "touch /tmp/supervise-was-here"})
        # another channel than a supervisor's phone sent into [ivr-supervise] is hung up before ChanSpy
        spied = ami.wait_for("ChanSpyStart", lambda e: True)
        gone = ami.wait_for("Hangup", local_leg("ivr-supervise"))
        await client.action({"Action": "Originate", "Channel": "Local/s@ivr-test-answer", "Context": "ivr-supervise",
                             "Exten": f"barge-{AGENT}", "Priority": "1", "Async": "true"}, as_list=False)
        hung_up = await asyncio.wait_for(gone, 20)
        assert hung_up["Cause"] == "21", hung_up  # Hangup(21): refused, not a ChanSpy that ended
        assert not spied.done()
        spied.cancel()
    finally:
        client.close()


async def test_an_agent_cannot_supervise_and_a_forged_seat_never_reaches_asterisk(
    engine: TestBed, ami: AmiClient, browser: Browser, console: ConsoleSite, redis: aioredis.Redis,
) -> None:
    await until(lambda: desk_idle(redis), 20)
    originated = ami.wait_for("Newchannel", lambda e: str(e.get("Channel", "")).startswith(f"PJSIP/{PHONE}-"))
    browser.sign_in(console.account("agent", AGENT))
    assert browser.fetch("/supervise", "POST", {"agent": AGENT, "mode": "listen", "phone": PHONE})["status"] == 403
    refused = [e for e in console.audit() if e.command == "console refused" and e.what.get("path") == "/supervise"]
    assert refused and refused[-1].user.startswith("agent-")
    browser.sign_out()

    browser.sign_in(console.account("supervisor"))
    before = len(console.audit())
    forms = [{"agent": forged, "mode": "barge", "phone": PHONE}
             for forged in ("agent1001,qB)", "agent1001\nexten => 1,1,Dial(PJSIP/110@emergency)", "../agent1002")]
    forms.append({"agent": AGENT, "mode": "listen", "phone": "PJSIP/110@emergency"})
    forms.append({"agent": AGENT, "mode": "listen", "phone": PHONE})  # agent1001 talks to nobody now
    for form in forms:
        reply = browser.fetch("/supervise", "POST", form)  # a plain form's post: back to the wallboard, refused
        assert reply["status"] == 200 and MESSAGES["failed"] in reply["text"], reply
    assert not originated.done()  # the supervisor's phone was never called
    originated.cancel()
    errors = [e.what["error"] for e in console.audit()[before:] if e.command == "supervise"]
    assert len(errors) == len(forms), errors  # each refusal audited, and only as a refusal
    assert [why.split(" ")[:3] for why in errors] == [["no", "such", "agent"]] * 3 + [["no", "such", "supervisor"]] + \
        [["agent", "agent1001", "is"]], errors
    assert "not talking" in errors[-1] and all("\n" not in why for why in errors)


async def test_a_supervisor_clicks_listen_on_the_wallboard_and_the_phone_rings(
    engine: TestBed, ami: AmiClient, phones: Phones, redis: aioredis.Redis, browser: Browser, console: ConsoleSite,
) -> None:
    """The wallboard is open before the seat talks: its row follows the live snapshot (通话中, and
    the buttons enabled only then) without a reload; then 监听 rings the phone."""
    await until(lambda: desk_idle(redis), 20)
    account = console.account("supervisor")
    browser.sign_in(account)
    browser.open("/wallboard")
    row = f'#seats tr[data-agent="{AGENT}"]'
    await asyncio.to_thread(browser.wait_for, f'{row}[data-state]:not([data-state="talking"])', 10)
    listen = f'{row} button[data-mode="listen"]'
    assert not browser.find(listen).is_enabled()  # nothing to listen to yet
    browser.driver.execute_script("window.sameDocument = true")  # gone if the page were loaded again
    async with agent_talking(engine, ami, phones, redis) as (linkedid, _citizen, _agent):
        phone = await phones.supervisor(PHONE, AGENT)
        spying = ami.wait_for("ChanSpyStart", lambda e: str(e.get("SpyerChannel", "")).startswith(f"PJSIP/{PHONE}-"))
        await asyncio.to_thread(browser.wait_text, f'{row} td[data-field="state"]', "通话中", 15)  # no reload
        await asyncio.to_thread(browser.wait, lambda _d: browser.find(listen).is_enabled(), 5)
        assert browser.driver.execute_script("return window.sameDocument === true")
        browser.find(listen).click()
        await asyncio.to_thread(browser.wait_text, "#supervise-message", "督导电话正在振铃", 10)
        spy = await asyncio.wait_for(spying, 30)  # the phone rang, answered and joined the call
        assert str(spy["SpyeeChannel"]).startswith(f"PJSIP/{AGENT}-")
        # the seat's desk (here opened by the supervisor) says who is on the call, and offers the same form
        browser.open(f"/desk/{AGENT}")
        await asyncio.to_thread(browser.wait_text, "#supervised", "督导 值班长01 正在监听本通话", 10)
        assert browser.find('.supervise-panel input[name="back"]').get_attribute("value") == "desk"
        desk_listen = '.supervise-panel button[data-mode="listen"]'
        assert browser.find(desk_listen).is_enabled()  # the seat talks
        await ami.action({"Action": "Hangup", "Channel": spy["SpyerChannel"]})
        assert await phone.wait(20) == 0, phone.output()
    line = [e for e in console.audit() if e.command == "supervise" and e.user == f"{account.name}@console"]
    assert line and line[-1].what == {"agent": AGENT, "mode": "listen", "supervisor": PHONE, "linkedid": linkedid}


async def test_a_supervisors_form_offers_their_own_phone_first_and_a_colleagues_phone_is_refused(
    engine: TestBed, ami: AmiClient, browser: Browser, console: ConsoleSite, redis: aioredis.Redis,
) -> None:
    """supervisor02 is console user banzhang02's own phone (the tests' config/supervision.yaml),
    supervisor01 a shared one. banzhang02's wallboard form has theirs chosen; another supervisor is
    not offered it, and posting it anyway is refused and audited, before any call; an admin may
    name it (refused here only because the seat talks to nobody)."""
    await until(lambda: desk_idle(redis), 20)
    rung = ami.wait_for("Newchannel", lambda e: str(e.get("Channel", "")).startswith("PJSIP/supervisor02-"))
    row = f'#seats tr[data-agent="{AGENT}"]'
    browser.sign_in(add_user(console.redis_url, OWNER, "supervisor"))
    browser.open("/wallboard")
    await asyncio.to_thread(browser.wait_for, row, 10)
    assert browser.find(f"{row} select[name=phone]").get_attribute("value") == "supervisor02"  # theirs, chosen
    assert [o.get_attribute("value") for o in browser.all(f"{row} select[name=phone] option")] == ["supervisor02", PHONE]
    # the idle seat's desk offers the same form, its buttons disabled once the live desk arrives
    browser.open(f"/desk/{AGENT}")
    await asyncio.to_thread(browser.wait_text, "#live-status", "实时", 10)
    assert browser.find('.supervise-panel select[name="phone"]').get_attribute("value") == "supervisor02"
    assert not any(b.is_enabled() for b in browser.all(".supervise-panel button"))
    browser.sign_out()

    other = console.account("supervisor")
    browser.sign_in(other)
    browser.open("/wallboard")
    await asyncio.to_thread(browser.wait_for, row, 10)
    assert [o.get_attribute("value") for o in browser.all(f"{row} select[name=phone] option")] == [PHONE]
    before = len(console.audit())
    reply = browser.fetch("/supervise", "POST", {"agent": AGENT, "mode": "listen", "phone": "supervisor02"})
    assert reply["status"] == 200 and MESSAGES["failed"] in reply["text"], reply
    browser.sign_out()
    browser.sign_in(console.account("admin"))
    reply = browser.fetch("/supervise", "POST", {"agent": AGENT, "mode": "listen", "phone": "supervisor02"})
    assert reply["status"] == 200 and MESSAGES["failed"] in reply["text"], reply
    browser.sign_out()
    assert not rung.done()  # the phone was never called
    rung.cancel()
    lines = [(e.user, e.what.get("supervisor"), e.what.get("error", "")) for e in console.audit()[before:]
             if e.command == "supervise"]
    assert [(user, phone) for user, phone, _ in lines] == [(f"{other.name}@console", "supervisor02"),
                                                           (f"{console.account('admin').name}@console", "supervisor02")]
    assert "another user's own phone" in lines[0][2] and "not talking" in lines[1][2], lines

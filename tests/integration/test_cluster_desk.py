"""Issue 20 item 5 on a real 2-node cluster bed: the desk, the transfer and the wallboard work
whichever node holds the call (docs/cluster.md "Whichever node holds the call").

A citizen calls through the proxy with node A disabled in both proxies' dispatchers (``dispatcher.
set_state d``: neither probes nor load bring it back), so the call lands on node B and a seat (one
phone registered at the proxies, logged in once) answers it from B. The desk page of that seat,
served by node A's engine, pops the call's ticket and transfers it to 12366: the tax sub-center's
gateway of node B (a port only B dials) takes the call and the ticket records the transfer,
answered. From node A too, ``ivr transfer`` moves another call on B by its ticket number, and the
desk links a third with 110 in a three-party bridge that B's dialplan dials. The wallboard of
either engine shows the talking seat with B's AMI, and, with no seat logged in, one caller waiting
on each node. Live supervision too (issue 21, docs/supervision.md): a supervisor on node A's console
listens to a call on B; B rings the supervisor's softphone, registered at the proxies like a seat's,
and only the supervisor hears the call (RTP measured by frequency, testbed/rtp.py). A web phone too
(issue 23): :data:`WEB_SEAT`'s phone is its desk page in headless Chromium, registered over
WebSocket at proxy 1; a citizen's call on node B rings it through the proxy, the agent answers in
the page and each hears the other (media straight between the browser and node B)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

import pytest

from ivr.ami.client import AmiClient
from ivr.asterisk_conf.dispatcher import CARRIER_SET, NODES_SET
from ivr.asterisk_conf.kamctl import ctl_socket
from ivr.cluster_status import destinations
from ivr.kamrpc import call
from ivr.store import keyspace
from testbed.browser import FAKE_MIC_HZ, Browser, phone_flowing
from testbed.calls import closed_ticket, hang_up_all, run_ivr, until
from testbed.cluster import ClusterBed
from testbed.cluster_calls import Carrier
from testbed.console import bed_site, board_until, http_client, json_get, sign_in_http
from testbed.ports import PortAllocator
from testbed.rtp import ToneLeg, party_levels
from testbed.pytest_plugin import kept_logs
from testbed.cluster_seats import (contact_received, general_seats, log_in, log_out, member_status, members,
                                   seat_phones)
from testbed.sipp import sip_peer
from tickets.store import TicketStore
import cluster_fixtures

tickets, carrier, amis = cluster_fixtures.tickets, cluster_fixtures.carrier, cluster_fixtures.amis
pytestmark = pytest.mark.timeout(240)  # the first test's setup starts the bed (75 s on a loaded machine)
_ports = PortAllocator()
WEB_SEAT = "agent1003"  # its phone is the desk page's (ClusterBed web_seats): the other tests leave it out


@pytest.fixture(scope="module")
def cluster(config_dir: Path) -> Iterator[ClusterBed]:
    # calls_out: the nodes call out through the proxies to the carrier's gateway (cluster.carrier)
    bed = ClusterBed(config_dir, nodes=2, engines=1, name=f"desk-{os.getpid()}", maxcalls=30, calls_out=True,
                     web_seats=(WEB_SEAT,))
    with bed.running(kept_logs("testbed-logs-cluster-desk")) as running:
        yield running


@contextlib.asynccontextmanager
async def only_node(cluster: ClusterBed, index: int) -> AsyncIterator[None]:
    """New calls through either proxy go to node ``index``: the other is disabled in both
    dispatchers for the block, active again after."""
    assert cluster.state
    other = cluster.state.node_names[1 - index]

    async def set_state(state: str) -> None:
        for proxy in cluster.state.proxy_names:  # type: ignore[union-attr]
            socket = ctl_socket(str(cluster.kamailio_dir), proxy)
            [uri] = [d["URI"] for d in destinations(await call(socket, "dispatcher.list"), NODES_SET)
                     if d["ATTRS"]["DUID"] == other]
            await call(socket, "dispatcher.set_state", state, NODES_SET, uri)

    await set_state("d")
    try:
        yield
    finally:
        await set_state("a")


async def talking_on_b(cluster: ClusterBed, carrier: Any, amis: list[AmiClient], *callers: str,
                       announce_media: int | None = None) -> list[tuple[str, str]]:
    """``callers`` call through the proxies with node A disabled: node B takes each call and a seat
    answers it there; each call's linkedid and seat (``announce_media``: the calls' RTP port)."""
    assert cluster.state
    connected = [amis[1].wait_for("AgentConnect", calling(caller)) for caller in callers]
    async with only_node(cluster, 1):
        await carrier.calls(len(callers), hold_ms=90_000, callers=list(callers), announce_media=announce_media)
        events = await asyncio.wait_for(asyncio.gather(*connected), 60)
    calls = [(str(e["Linkedid"]), str(e["Interface"]).removeprefix("PJSIP/")) for e in events]
    assert all(linkedid.startswith(f"{cluster.state.node_names[1]}-") for linkedid, _ in calls)  # node B holds them
    return calls


def calling(caller: str) -> Callable[[Any], bool]:
    return lambda e: bool(e.get("CallerIDNum") == caller)


@pytest.fixture
async def seats(cluster: ClusterBed, amis: list[AmiClient], tmp_path: Path) -> AsyncIterator[list[str]]:
    """Every general seat's phone registered at the proxies, answering and talking for a minute; each
    logged in once (through the wish: every node adds it), logged out after."""
    names = general_seats(cluster)
    phones = await seat_phones(cluster, tmp_path, names, talk_ms=60_000)
    try:
        await log_in(cluster, amis, names)
        yield names
    finally:
        await log_out(cluster, names)
        for p in phones.values():
            await p.close()


async def test_the_desk_on_node_a_pops_the_ticket_and_transfers_a_call_node_b_holds(
    cluster: ClusterBed, carrier: Any, amis: list[AmiClient], tickets: TicketStore, seats: list[str],
    tmp_path: Path,
) -> None:
    a, b = cluster.nodes
    assert a.state and b.state and cluster.state
    caller = carrier.next_caller()
    tax = await sip_peer(tmp_path, port=b.state.subcenter_ports["tax"], media_port=_ports.block(4), caller=caller,
                         mode="answer", talk_ms=3000, name="tax-b")
    try:
        [(linkedid, agent)] = await talking_on_b(cluster, carrier, amis, caller)
        ticket = await until(lambda: tickets.get(linkedid), 30)

        site = bed_site(a.state)  # the console of node A's engine
        async with http_client() as http:
            csrf = await sign_in_http(http, site, site.account("agent", agent))

            async def popped() -> Any:
                desk = await json_get(http, site, f"/desk/{agent}/state")
                return desk if (desk["call"] or {}).get("linkedid") == linkedid and desk["seat"]["state"] == "talking" else None

            desk = await until(popped, 30)
            assert desk["call"]["stub"]["number"] == ticket.number  # the ticket pop on node A's desk

            seat = {"agent": agent, "state": "talking", "node": f"127.0.0.1:{b.state.ami_port}"}
            for bed in cluster.nodes:  # the wallboard of either engine: the seat talks on node B
                await board_until(bed_site(bed.state), lambda board: seat in board["seats"])
            # B is chosen because its member is in the call, not by the order of the nodes' names
            # (the shared device state may have the seat "talking" on A too)
            composed = json.loads(str(await tickets.redis.hget(keyspace.SEATS, agent)))
            assert any(q["in_call"] for q in composed["queues"].values()), composed

            transferred = amis[1].wait_for("BlindTransfer", lambda e: e.get("TransfereeLinkedid") == linkedid)
            tax_answered = amis[1].wait_for("DialEnd", lambda e: e.get("Linkedid") == linkedid and e.get(
                "DialStatus") == "ANSWER" and e.get("DestChannel", "").startswith("PJSIP/tax-"))
            async with http.post(site.url + f"/desk/{agent}/transfer", data={"target": "12366"},
                                 headers={"X-CSRF-Token": csrf, "Accept": "application/json"}) as reply:
                body = await reply.json()
            assert reply.status == 200 and body["ok"], body
            assert body["linkedid"] == linkedid and body["number"] == ticket.number
            await asyncio.wait_for(transferred, 20)  # the move happened on node B's Asterisk
            await asyncio.wait_for(tax_answered, 30)  # B dialed its tax gateway, which answered
        await hang_up_all(amis[1])  # the citizen hangs up: the ticket closes

        async def answered() -> Any:
            t = await tickets.get(linkedid)
            return t if t and any(x.kind == "subcenter" and x.number == "12366" and x.result == "ANSWER"
                                  for x in t.transfers) else None
        done = await until(answered, 60)
        assert [(x.kind, x.number) for x in done.transfers][:2] == [("blind", "12366"), ("subcenter", "12366")]
    finally:
        await tax.stop()
        await hang_up_all(amis[1])


async def test_from_node_a_a_call_node_b_holds_goes_to_12366_by_ticket_number_and_another_meets_110_three_party(
    cluster: ClusterBed, carrier: Any, amis: list[AmiClient], tickets: TicketStore, seats: list[str],
    tmp_path: Path,
) -> None:
    """Two citizens talk to seats on node B. (a) ``ivr transfer NUMBER 12366`` on node A's host: the
    ticket number names the first call, its linkedid names node B, and B's Asterisk blind-transfers
    it to B's tax gateway. (b) 三方通话 from node A's desk: the second citizen, the seat and 110 meet
    in one ConfBridge on B, the 110 leg dialed by B's dialplan over B's emergency trunk (a sipp
    standing for 110, which checks it is shown the citizen's number). Each ticket has its transfer
    or its emergency link once."""
    a, b = cluster.nodes
    assert a.state and b.state
    callers = [carrier.next_caller(), carrier.next_caller()]
    # gateways of node B only (ports no other node dials): each answers its citizen, hangs up after 3 s
    tax = await sip_peer(tmp_path, port=b.state.subcenter_ports["tax"], media_port=_ports.block(4),
                         caller=callers[0], mode="hangup", talk_ms=3000, name="tax-b-by-number")
    police = await sip_peer(tmp_path, port=b.state.subcenter_ports["emergency"], media_port=_ports.block(4),
                            caller=callers[1], mode="hangup", talk_ms=3000, name="emergency-b")
    try:
        (moved, _), (linked, agent) = await talking_on_b(cluster, carrier, amis, *callers)
        number = (await until(lambda: tickets.get(moved), 30)).number
        transferred = amis[1].wait_for("BlindTransfer", lambda e: e.get("TransfereeLinkedid") == moved)
        code, out = await run_ivr(a.state, "transfer", number, "12366", "--json")  # an operator on node A's host
        assert code == 0, out
        result = json.loads(out.strip().splitlines()[-1])
        assert (result["linkedid"], result["ticket"], result["method"]) == (moved, number, "blind")
        assert (await asyncio.wait_for(transferred, 20))["Result"] == "Success"  # made by node B's Asterisk

        ticket = await until(lambda: tickets.get(linked), 30)
        joined: list[dict[str, Any]] = []
        amis[1].on("ConfbridgeJoin", lambda e: joined.append(dict(e)) if e.get("Conference") == f"ivr-{linked}" else None)
        site = bed_site(a.state)  # the console of node A's engine
        async with http_client() as http:
            csrf = await sign_in_http(http, site, site.account("agent", agent))
            async with http.post(site.url + f"/desk/{agent}/transfer", data={"target": "110", "three_party": "1"},
                                 headers={"X-CSRF-Token": csrf, "Accept": "application/json"}) as reply:
                body = await reply.json()
        assert reply.status == 200 and body["ok"], body
        assert body["linkedid"] == linked and body["number"] == ticket.number
        await until(lambda: len(joined) >= 3, 30)  # on node B's Asterisk
        assert {e["Channel"].split("/")[1].rsplit("-", 1)[0] for e in joined} == {"pstn", agent, "emergency"}
        assert any(e["Uniqueid"] == linked for e in joined)  # the citizen's own channel

        assert await tax.wait(40) == 0, tax.output()  # B's tax gateway took the first citizen, then hung up
        assert await police.wait(40) == 0, police.output()  # 110 joined the second, then left
        await hang_up_all(amis[1])  # the second citizen and the seat hang up
        by_number = await closed_ticket(tickets, callers[0], timeout=40)
        three_party = await closed_ticket(tickets, callers[1], timeout=40)
    finally:
        await tax.stop()
        await police.stop()
        await hang_up_all(amis[1])
    assert by_number.linkedid == moved and by_number.disposition == "transferred"
    assert [(x.kind, x.number, x.result) for x in by_number.transfers] == \
        [("blind", "12366", "Success"), ("subcenter", "12366", "ANSWER")]
    assert three_party.linkedid == linked and three_party.disposition == "emergency_linked" and three_party.emergency_linked
    [link] = [x for x in three_party.transfers if x.kind == "emergency"]  # the link, once
    assert (link.number, link.target, link.result, link.three_party, link.then) == \
        ("110", "emergency", "ANSWER", True, "three-party bridge")


async def test_a_call_out_of_node_b_reaches_the_carriers_gateway_through_a_proxy(
    cluster: ClusterBed, amis: list[AmiClient], tmp_path: Path,
) -> None:
    """docs/cluster.md "Calls out", on the bed whose ``cluster.carrier`` is the carrier's gateway:
    node B dials a citizen as a callback does (``PJSIP/<number>@pstn``); B knows only the proxies
    for its calls out (its ``pstn`` AOR), yet the gateway answers the call and B's dialog is with it:
    a proxy sent it on."""
    assert cluster.state
    st = cluster.state
    # answers the hotline's number (480 to any other caller); it does not exit by itself here (the
    # proxies' probes keep it busy): the call is followed on B instead
    gateway = await sip_peer(tmp_path, port=st.gateway_port, media_port=_ports.block(4), caller="12345",
                             mode="answer", name="carrier-gateway")
    try:
        async def gateway_up() -> bool:  # the proxies probe it every second: once it answers, both use it
            for proxy in st.proxy_names:
                dests = destinations(await call(ctl_socket(str(cluster.kamailio_dir), proxy), "dispatcher.list"),
                                     CARRIER_SET)
                if [str(d["FLAGS"])[:1] for d in dests] != ["A"]:
                    return False
            return True
        await until(gateway_up, 20)
        citizen = Carrier.next_caller()
        up = amis[1].wait_for("Newstate", lambda e: e.get("Channel", "").startswith("PJSIP/pstn-")
                              and e.get("ChannelStateDesc") == "Up")
        await amis[1].action({"Action": "Originate", "Channel": f"PJSIP/{citizen}@pstn", "Application": "Wait",
                              "Data": "2", "CallerID": "12345 <12345>", "Async": "true"}, as_list=False)
        channel = (await asyncio.wait_for(up, 20))["Channel"]  # answered at the gateway
        reply = await amis[1].action({"Action": "Getvar", "Channel": channel, "Variable": "CHANNEL(pjsip,target_uri)"},
                                     as_list=False)
        assert reply.get("Value") == f"sip:127.0.0.1:{st.gateway_port}", reply  # B's call is with the gateway...
        listing = await amis[1].action({"Action": "PJSIPShowEndpoint", "Endpoint": "pstn"}, as_list=True)
        [aor] = [e for e in listing if e.get("Event") == "AorDetail"]
        # ... though B knows only the proxies for its calls out: a proxy sent it on
        assert set(str(aor["Contacts"]).split(",")) == {f"pstn/sip:127.0.0.1:{port}" for port in st.proxy_ports}, aor
    finally:
        await gateway.stop()
        await hang_up_all(amis[1])


async def test_the_wallboard_of_either_engine_shows_the_callers_waiting_on_both_nodes(
    cluster: ClusterBed, carrier: Any, amis: list[AmiClient],
) -> None:
    assert cluster.state
    for ami in amis:  # no seat logged in (the bed starts so; the desk test logs its seats out): callers wait
        assert not await members(ami)
    try:
        # one carrier sipp (it has one address), a call every 10 s: the first forced to A, the second to B
        callers = [carrier.next_caller(), carrier.next_caller()]
        on_a = amis[0].wait_for("Newstate", calling(callers[0]))
        joined = [ami.wait_for("QueueCallerJoin", calling(c)) for ami, c in zip(amis, callers)]
        async with only_node(cluster, 0):
            await carrier.calls(2, hold_ms=90_000, rate=0.1, callers=callers)
            await asyncio.wait_for(on_a, 15)
        async with only_node(cluster, 1):
            await asyncio.wait_for(asyncio.gather(*joined), 60)
        expected = {f"127.0.0.1:{bed.state.ami_port}": 1 for bed in cluster.nodes if bed.state}
        for bed in cluster.nodes:
            board = await board_until(bed_site(bed.state), lambda board: board["platform"]["waiting_by_node"] == expected)
            assert board["platform"]["waiting"] == 2
    finally:
        for ami in amis:
            await hang_up_all(ami)


async def test_a_supervisor_on_node_a_listens_to_a_call_node_b_holds_from_a_phone_at_the_proxies(
    cluster: ClusterBed, carrier: Any, amis: list[AmiClient], tickets: TicketStore, tmp_path: Path,
) -> None:
    """One seat logged in, its phone and the supervisor's softphone registered at the proxies, each
    party's RTP a tone socket (citizen 470 Hz, agent 1090 Hz, supervisor 1730 Hz). The citizen's call
    lands on node B; a supervisor on node A's console asks 监听: node A's engine originates on B's AMI
    as the supervise user, B rings the phone through a proxy, and ChanSpy on B joins it to the
    seat's call: the supervisor hears the seat and the citizen, neither of them hears the supervisor."""
    a, b = cluster.nodes
    assert a.state and b.state
    seat, phone = next(iter(a.settings.agents)), "supervisor01"
    tones = {"citizen": 470.0, "agent": 1090.0, "supervisor": 1730.0}
    legs = {name: await ToneLeg(name, hz, _ports.one()).start() for name, hz in tones.items()}
    phones = await seat_phones(cluster, tmp_path, [seat, phone],
                               announce_media={seat: legs["agent"].port, phone: legs["supervisor"].port})
    try:
        await log_in(cluster, amis, [seat])
        caller = carrier.next_caller()
        [(linkedid, agent)] = await talking_on_b(cluster, carrier, amis, caller, announce_media=legs["citizen"].port)
        assert agent == seat

        async def on_desk() -> bool:  # the follower of node B says the seat talks on this call
            doc = json.loads(str(await tickets.redis.hget(keyspace.desk(seat), "doc") or "{}"))
            return bool(doc.get("state") == "connected" and doc.get("linkedid") == linkedid)
        await until(on_desk, 30)

        spying = amis[1].wait_for("ChanSpyStart", lambda e: str(e.get("SpyerChannel", "")).startswith(f"PJSIP/{phone}-"))
        site = bed_site(a.state)  # node A's console: the call is on B
        account = site.account("supervisor")
        async with http_client() as http:
            csrf = await sign_in_http(http, site, account)
            async with http.post(site.url + "/supervise", data={"agent": seat, "mode": "listen", "phone": phone},
                                 headers={"X-CSRF-Token": csrf, "Accept": "application/json"}) as reply:
                body = await reply.json()
        assert reply.status == 200 and body["ok"] and body["linkedid"] == linkedid, body
        spy = await asyncio.wait_for(spying, 30)  # on node B's Asterisk: the phone answered at the proxy
        assert str(spy["SpyeeChannel"]).startswith(f"PJSIP/{seat}-"), spy
        marks = {name: leg.mark() + 4000 for name, leg in legs.items()}  # 0.5 s for ChanSpy's hooks to attach
        heard = {name: await party_levels(leg, marks[name], tones) for name, leg in legs.items()}
        print(f"\nsupervision across nodes, listen (share of energy per party): {heard}")
        assert heard["supervisor"]["agent"] > 0.05 and heard["supervisor"]["citizen"] > 0.05, heard
        assert heard["citizen"]["supervisor"] < 0.01 and heard["agent"]["supervisor"] < 0.01, heard
        assert heard["citizen"]["agent"] > 0.05 and heard["agent"]["citizen"] > 0.05, heard  # the call itself goes on
        assert legs["supervisor"].packets > 0 and legs["supervisor"].payload_types <= {0, 8}
        line = [e for e in site.audit() if e.command == "supervise" and e.user == f"{account.name}@console"]
        assert line and line[-1].what == {"agent": seat, "mode": "listen", "supervisor": phone, "linkedid": linkedid,
                                          "node": cluster.state.node_names[1]}  # type: ignore[union-attr]
    finally:
        await hang_up_all(amis[1])
        await log_out(cluster, [seat])
        for p in phones.values():
            await p.close()
        for leg in legs.values():
            leg.close()


async def test_a_web_phone_registered_over_websocket_at_a_proxy_answers_a_citizen_on_node_b(
    cluster: ClusterBed, carrier: Any, amis: list[AmiClient], tickets: TicketStore, chromium: Browser,
) -> None:
    a, b = cluster.nodes
    assert a.state and b.state and cluster.state
    site = bed_site(a.state)  # node A's console; the call will be on B
    browser = chromium.at(site.url)
    citizen = await ToneLeg("citizen", 600.0, _ports.one()).start()
    try:
        browser.sign_in(site.account("agent", WEB_SEAT))
        browser.open(f"/desk/{WEB_SEAT}")
        await asyncio.to_thread(browser.wait_for, '#phone[data-state="registered"]', 30)
        # proxy 1's usrloc: the browser's contact is its WebSocket connection (the one the page opened)
        received = await contact_received(cluster, 0, WEB_SEAT)
        assert len(received) == 1 and received[0].startswith("sip:127.0.0.1:") and received[0].endswith(";transport=ws")
        # registered, the page logs the seat in; every node adds it, reachable through the proxies
        # (their probe is passed on to the browser, which answers)
        await asyncio.to_thread(browser.wait_text, "#desk-message", "已签入", 20)
        await until(lambda: _free_on_every_node(amis), 30)

        caller = carrier.next_caller()
        connected = amis[1].wait_for("AgentConnect", calling(caller))
        async with only_node(cluster, 1):
            await carrier.calls(1, hold_ms=60_000, callers=[caller], announce_media=citizen.port)
            await asyncio.to_thread(browser.wait_for, '#phone[data-state="ringing"]', 60)
        browser.find("#phone-answer").click()
        event = await asyncio.wait_for(connected, 15)
        assert event["Interface"] == f"PJSIP/{WEB_SEAT}" and str(event["Linkedid"]).startswith(
            f"{cluster.state.node_names[1]}-")  # node B rang the page through the proxy
        await asyncio.to_thread(browser.wait_for, '#phone[data-state="talking"]', 10)
        # both ways: the agent's microphone at the citizen (its RTP counted and measured), the
        # citizen's audio counted in the page
        await until(lambda: _hears_the_agent(citizen), 10)
        assert citizen.packets > 0 and citizen.payload_types <= {0, 8}  # G.711 from node B, no transcoding to Opus
        flowing = await until(lambda: phone_flowing(browser), 10)
        assert flowing["packetsReceived"] > 0 and flowing["packetsSent"] > 0, flowing
        browser.find("#phone-hangup").click()
        await asyncio.to_thread(browser.wait_for, '#phone[data-state="registered"]', 10)
        await hang_up_all(amis[1])  # the citizen need not wait for its hold to end
        ticket = await closed_ticket(tickets, caller, timeout=30)
        assert ticket.agent == WEB_SEAT and ticket.linkedid == event["Linkedid"]
    finally:
        citizen.close()
        await hang_up_all(amis[1])
        browser.open("/static/console.css")  # the page (and its phone) closed: the WebSocket goes
        await log_out(cluster, [WEB_SEAT])


async def _hears_the_agent(leg: ToneLeg) -> bool:
    """Whether the next half second ``leg`` receives is mostly the page's fake microphone."""
    return await leg.level(FAKE_MIC_HZ, leg.mark(), 0.5) > 0.5


async def _free_on_every_node(amis: list[AmiClient]) -> bool:
    return all([await member_status(ami, WEB_SEAT, "1") for ami in amis])

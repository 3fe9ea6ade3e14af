"""The proxies as the seats' registrar and lock (issue 20, docs/cluster.md "Agents across nodes"):
two real Kamailio processes on loopback running the generated configs, a seat's phone that is sipp
(its digest REGISTER and its answers), and the two Asterisk nodes as UDP sockets of this test
that place seat INVITEs as a node's app_queue does (``sip:<seat>@<proxy>``). The carrier is
127.0.0.9; a stranger sends from 127.0.0.1 (not a node's port)."""

from __future__ import annotations

import asyncio
import grp
import hashlib
import os
import re
import select
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from ivr.asterisk_conf import RenderOptions
from ivr.asterisk_conf.files import write
from ivr.asterisk_conf.kamailio_seats import REALM, SECRETS_FILE
from ivr.asterisk_conf.kamctl import ctl_socket
from ivr.cluster_seat_keys import apply_seat_keys
from ivr.config import Settings, load_config
from ivr.core.secret_policy import fresh_secret
from testbed.ports import PortAllocator
from testbed.sipp.run import Sipp, register
from testbed.sip_sockets import WAIT_S, Sent, credentials, final, header, next_request, request, status
from testbed.sipp.seat import ok, seat_phone

REPO = Path(__file__).resolve().parents[2]
SEAT, OTHER = "agent1001", "agent1002"
_ports = PortAllocator()


def _socket(address: str = "127.0.0.1") -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((address, _ports.one()))
    return s


@dataclass
class Cluster:
    proxies: list[int]  # UDP ports of edge-a, edge-b
    nodes: list[socket.socket]  # ast-a, ast-b
    secrets: dict[str, str]
    workdir: Path
    procs: list[subprocess.Popen[bytes]]
    logs: list[Path]
    seat_sip: list[int]  # each proxy's socket for the seats' own calls
    settings: Settings
    run_dir: Path  # the proxies' control sockets (0755, as /run/kamailio of deploy/kamailio-ivr@.service)
    group: str  # the cluster's control_group: stands for the engines' group

    def send(self, sock: socket.socket, proxy: int, text: str) -> None:
        sock.sendto(text.encode(), ("127.0.0.1", proxy))

    def invite(self, node: socket.socket, proxy: int, seat: str = SEAT) -> Sent:
        """A node rings ``seat`` through ``proxy``, as its AOR's contact ``sip:<seat>@<proxy>``."""
        sent = Sent(node, f"node-{uuid.uuid4().hex}", f"sip:{seat}@127.0.0.1:{proxy}")
        self.send(node, proxy, request("INVITE", sent.uri, node, sent.call_id, 1, to=sent.uri))
        return sent

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-2500:] for p in self.logs)


def hang_up(cluster: Cluster, sent: Sent, answer: str) -> str:
    """ACK the seat's 200 and end the call with a BYE, both along the Record-Route (through the
    proxy that holds the seat's lock); returns the BYE's answer."""
    routes = header(answer, "Record-Route")
    contact = header(answer, "Contact")[0].strip("<>")
    proxy = int(re.search(r":(\d+);", routes[0]).group(1))  # type: ignore[union-attr]
    tag = ";" + header(answer, "To")[0].split(";", 1)[1]
    route = "".join(f"Route: {r}\r\n" for r in routes)
    cluster.send(sent.sock, proxy, request("ACK", contact, sent.sock, sent.call_id, 1, to=sent.uri, to_tag=tag,
                                            extra=route))
    cluster.send(sent.sock, proxy, request("BYE", contact, sent.sock, sent.call_id, 2, to=sent.uri, to_tag=tag,
                                            extra=route))
    return final(sent)


def digest_register(cluster: Cluster, proxy: int, user: str, password_ha1: str, *, to_user: str | None = None,
                    contact_port: int = 9, extra: str = "") -> str:
    """A REGISTER answered with digest credentials computed from ``password_ha1`` (what an attacker
    would send); returns the final answer to the second REGISTER."""
    to_user = to_user or user
    with _socket() as sock:
        aor = f"sip:{to_user}@127.0.0.1:{proxy}"
        call_id = f"reg-{uuid.uuid4().hex}"
        contact = "Expires: 60\r\n"
        cluster.send(sock, proxy, request("REGISTER", f"sip:127.0.0.1:{proxy}", sock, call_id, 1, to=aor, user=to_user,
                                           extra=contact + extra, contact_port=contact_port))
        challenge = final(Sent(sock, call_id, aor))
        assert status(challenge) == 401, challenge
        uri = f"sip:127.0.0.1:{proxy}"
        auth = credentials(challenge, "REGISTER", uri, user, password_ha1)
        cluster.send(sock, proxy, request("REGISTER", uri, sock, call_id, 2, to=aor, user=to_user,
                                           extra=contact + extra + auth, contact_port=contact_port))
        return final(Sent(sock, call_id, aor))


def ha1(user: str, password: str) -> str:
    return hashlib.md5(f"{user}:{REALM}:{password}".encode()).hexdigest()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    kamailio = shutil.which("kamailio")
    assert kamailio, "kamailio is not installed: ./run installs it (Debian package kamailio)"
    nodes = [_socket(), _socket()]
    proxies = [_ports.one(), _ports.one()]
    cfg = tmp_path / "config"
    shutil.copytree(REPO / "config", cfg)
    engine = (cfg / "engine.yaml").read_text()
    (cfg / "engine.yaml").write_text(engine.replace("pstn_match: [127.0.0.1]", "pstn_match: [127.0.0.9]"))
    node_lines = "".join(
        f'    ast-{i}: {{sip: "127.0.0.1:{s.getsockname()[1]}", ami: "127.0.0.1:{_ports.one()}", '
        f"rtp_start: {20000 + 1000 * i}, rtp_end: {20999 + 1000 * i}}}\n" for i, s in enumerate(nodes))
    seat_sip = [_ports.one(), _ports.one()]  # where each proxy forwards the seats' own calls from
    # the control sockets' group: as root (the proxies drop to nobody) Debian's kamailio group, whose
    # user then plays the engine's; otherwise this user's own group (a proxy sets only a group it is in)
    group = "kamailio" if os.geteuid() == 0 else grp.getgrgid(os.getegid()).gr_name
    run_dir = Path(tempfile.mkdtemp(prefix="ivr-kamctl-"))
    run_dir.chmod(0o755)  # tmp_path is root's alone: others could not even reach the sockets
    (cfg / "cluster.yaml").write_text(
        f'cluster:\n  control_group: {group}\n'
        f'  proxies:\n    edge-a: {{sip: "127.0.0.1:{proxies[0]}", seat_sip: "127.0.0.1:{seat_sip[0]}"}}\n'
        f'    edge-b: {{sip: "127.0.0.1:{proxies[1]}", seat_sip: "127.0.0.1:{seat_sip[1]}"}}\n  nodes:\n{node_lines}')
    settings = load_config(cfg, environ={}).settings
    # the seat's password holds what Kamailio's syntax would choke on: only its HA1 is written
    secrets = {name: fresh_secret() for name in settings.agents} | {SEAT: fresh_secret() + '"#!define\\'}
    out = tmp_path / "edge"
    write(settings, RenderOptions(ami_secret=fresh_secret(), node="ast-0", kamailio_dir=str(out),
                                  kamailio_run_dir=str(run_dir),  # the proxies' control sockets: not the host's
                                  agent_secrets=secrets), out)
    procs, logs = [], []
    user = ["-u", "nobody", "-g", "nogroup"] if os.geteuid() == 0 else []
    for proxy in ("edge-a", "edge-b"):
        run = tmp_path / f"run-{proxy}"
        run.mkdir()
        logs.append(tmp_path / f"{proxy}.log")
        with logs[-1].open("w") as log:
            procs.append(subprocess.Popen([kamailio, "-DD", "-E", *user, "-f", str(out / f"kamailio-{proxy}.cfg"),
                                           "-Y", str(run), "-w", str(run)],
                                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    c = Cluster(proxies, nodes, secrets, tmp_path, procs, logs, seat_sip, settings, run_dir, group)
    try:
        for proxy in proxies:
            ready(c, proxy)
        yield c
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for s in nodes:
            s.close()
        shutil.rmtree(run_dir, ignore_errors=True)


def ready(cluster: Cluster, proxy: int) -> None:
    """The proxy answers OPTIONS (asked again until it listens, bounded)."""
    node = cluster.nodes[0]
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and all(p.poll() is None for p in cluster.procs):
        sent = Sent(node, f"ready-{uuid.uuid4().hex}", f"sip:127.0.0.1:{proxy}")
        cluster.send(node, proxy, request("OPTIONS", sent.uri, node, sent.call_id, 1, to=sent.uri))
        try:
            if status(final(sent, 0.5)) == 200:
                return
        except AssertionError:
            continue
    raise AssertionError("a proxy did not answer OPTIONS:\n" + cluster.log())


async def registered_seat(cluster: Cluster, proxy: int, seat: str = SEAT) -> tuple[Sipp, int]:
    """The seat's phone listening, then registered through ``proxy`` with its password (sipp's
    digest); returns the phone and its port."""
    port = _ports.one()
    phone = await seat_phone(cluster.workdir, port=port, media_port=_ports.block(4), name=f"seat-{seat}-{port}")
    reg = await register(cluster.workdir, sip_port=proxy, local_port=_ports.one(), agent=seat,
                         secret=cluster.secrets[seat], contact_port=port, expires=60)
    assert await reg.wait(20) == 0, reg.output() + cluster.log()
    return phone, port


async def reached(cluster: Cluster, node: socket.socket, proxy: int, seat: str = SEAT) -> tuple[Sent, str]:
    """A node's INVITE to the seat through ``proxy`` until the proxy knows the registration (a
    registration at the other proxy reaches this one by DMQ: 480 until then, bounded)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        sent = cluster.invite(node, proxy, seat)
        answer = await asyncio.to_thread(final, sent)
        if status(answer) != 480 or time.monotonic() > deadline:
            return sent, answer
        await asyncio.sleep(0.2)


async def test_a_seat_registers_only_with_its_own_password(cluster: Cluster) -> None:
    proxy = cluster.proxies[0]
    wrong = digest_register(cluster, proxy, SEAT, ha1(SEAT, fresh_secret()))  # the 401 first: checked inside
    assert status(wrong) == 403, wrong
    # another seat's credentials for this seat's registration (auth user ≠ To user)
    assert status(digest_register(cluster, proxy, OTHER, ha1(OTHER, cluster.secrets[OTHER]), to_user=SEAT)) == 403
    # a user the proxy has no key for, answering with the digest of an empty key: would pass if the
    # proxy checked it against "no key"
    assert status(digest_register(cluster, proxy, "intruder", "")) == 403
    assert status(digest_register(cluster, proxy, OTHER, ha1(OTHER, cluster.secrets[OTHER]))) == 200
    phone, _ = await registered_seat(cluster, proxy)  # sipp's digest, a password with '"', '#!' and '\'
    await phone.stop()
    keys = cluster.workdir / "edge" / SECRETS_FILE
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert cluster.secrets[SEAT] not in keys.read_text() and ha1(SEAT, cluster.secrets[SEAT]) in keys.read_text()


async def test_a_node_reaches_the_seat_through_the_other_proxy_and_the_bye_passes_the_seats_proxy(
        cluster: Cluster) -> None:
    phone, port = await registered_seat(cluster, cluster.proxies[0])
    try:
        sent, answer = await reached(cluster, cluster.nodes[1], cluster.proxies[1])  # replicated by DMQ
        assert status(answer) == 200, answer + cluster.log()
        assert header(answer, "Contact") == [f"<sip:127.0.0.1:{port}>"]  # the seat's phone answered
        # the proxy the phone registered through record-routes (and holds the seat's lock)
        assert [f":{cluster.proxies[0]};lr" in r for r in header(answer, "Record-Route")] == [True], answer
        assert status(hang_up(cluster, sent, answer)) == 200
    finally:
        await phone.stop()


async def test_two_calls_to_one_seat_at_once_one_reaches_it_the_other_gets_486_until_the_bye(
        cluster: Cluster) -> None:
    phone, _ = await registered_seat(cluster, cluster.proxies[0])
    try:
        await asyncio.to_thread(_warm_up, cluster)
        a, b = cluster.invite(cluster.nodes[0], cluster.proxies[0]), cluster.invite(cluster.nodes[1], cluster.proxies[1])
        answers = {status(x): (sent, x) for sent, x in zip((a, b), await asyncio.gather(
            asyncio.to_thread(final, a), asyncio.to_thread(final, b)))}
        assert sorted(answers) == [200, 486], cluster.log()
        loser = answers[486][0]
        assert not [x for x in loser.answers if status(x) == 180]  # the phone never rang for it
        again = cluster.invite(loser.sock, cluster.proxies[1])
        assert status(await asyncio.to_thread(final, again)) == 486  # still busy while the call lasts
        assert status(hang_up(cluster, *answers[200])) == 200
        free = cluster.invite(loser.sock, cluster.proxies[1])
        answer = await asyncio.to_thread(final, free)
        assert status(answer) == 200, answer  # the BYE freed the seat
        assert status(hang_up(cluster, free, answer)) == 200
    finally:
        await phone.stop()
    assert phone.statistics().get("IncomingCall", 0) <= 2


def _warm_up(cluster: Cluster) -> None:
    """Both proxies know the registration (DMQ) before the race: a call through the other proxy."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        sent = cluster.invite(cluster.nodes[1], cluster.proxies[1])
        answer = final(sent)
        if status(answer) == 200:
            assert status(hang_up(cluster, sent, answer)) == 200
            return
        assert status(answer) == 480, answer
    raise AssertionError("the registration never reached the other proxy:\n" + cluster.log())


async def test_only_the_nodes_may_ring_a_seat_and_only_the_proxies_may_replicate(cluster: Cluster) -> None:
    phone, _ = await registered_seat(cluster, cluster.proxies[0])
    try:
        with _socket() as stranger:  # 127.0.0.1, but not a node's port
            for proxy in cluster.proxies:
                sent = cluster.invite(stranger, proxy)
                assert status(await asyncio.to_thread(final, sent)) == 403
            # a forged replication: this address as the seat's contact
            body = ('{"action":1,"aor":"agent1001","ruid":"x","c":"sip:agent1001@127.0.0.1:9","received":"",'
                    '"path":"","callid":"x","user_agent":"x","instance":"","expires":9999999999,"cseq":1,'
                    '"flags":0,"cflags":0,"q":1000,"last_modified":1,"methods":4294967295,"reg_id":0}')
            sent = Sent(stranger, f"kdmq-{uuid.uuid4().hex}", f"sip:usrloc@127.0.0.1:{cluster.proxies[0]}")
            cluster.send(stranger, cluster.proxies[0], request(
                "KDMQ", sent.uri, stranger, sent.call_id, 1, to=sent.uri,
                extra="Content-Type: application/json\r\n")[:-len("Content-Length: 0\r\n\r\n")]
                + f"Content-Length: {len(body)}\r\n\r\n{body}")
            assert status(await asyncio.to_thread(final, sent)) == 403
    finally:
        await phone.stop()


async def test_a_path_the_phone_sends_is_not_trusted(cluster: Cluster) -> None:
    """A REGISTER carrying its own Path would route the seat's calls through the sender's hop."""
    with _socket() as evil, _socket() as contact:
        path = f"Path: <sip:127.0.0.1:{evil.getsockname()[1]};lr>\r\n"
        answer = digest_register(cluster, cluster.proxies[0], OTHER, ha1(OTHER, cluster.secrets[OTHER]),
                                 contact_port=contact.getsockname()[1], extra=path)
        assert status(answer) == 200, answer
        sent = cluster.invite(cluster.nodes[0], cluster.proxies[0], OTHER)
        ready_socks = await asyncio.to_thread(select.select, [evil, contact], [], [], WAIT_S)
        assert ready_socks[0] == [contact], "the INVITE went to the Path the phone sent"
        assert contact.recv(65535).decode().startswith(f"INVITE sip:{OTHER}@127.0.0.1:{contact.getsockname()[1]} ")
        del sent


async def test_a_seats_own_call_is_authenticated_and_leaves_for_a_node_from_the_seats_socket(cluster: Cluster) -> None:
    """``*74`` from the phone: the proxy asks for its digest (407), refuses a wrong one, then sends
    the call to a node from ``seat_sip`` (which no node identifies as the carrier, so the node
    identifies the seat by name and challenges it again itself: that Authorization passes on)."""
    proxy = cluster.proxies[0]
    uri = f"sip:*74@127.0.0.1:{proxy}"

    def call(sock: socket.socket, auth: str = "", user: str = SEAT) -> Sent:
        sent = Sent(sock, f"seat-{uuid.uuid4().hex}", uri)
        cluster.send(sock, proxy, request("INVITE", uri, sock, sent.call_id, 1, to=uri, user=user, extra=auth))
        return sent

    with _socket() as phone, _socket("127.0.0.9") as carrier:
        challenge = await asyncio.to_thread(final, call(phone))
        assert status(challenge) == 407, challenge
        wrong = credentials(challenge, "INVITE", uri, SEAT, ha1(SEAT, fresh_secret()))
        assert status(await asyncio.to_thread(final, call(phone, wrong))) == 403
        other = credentials(challenge, "INVITE", uri, OTHER, ha1(OTHER, cluster.secrets[OTHER]))
        assert status(await asyncio.to_thread(final, call(phone, other))) == 403  # as agent1002, From agent1001
        # the carrier's socket claiming to be a seat is no citizen: it must prove it too
        assert status(await asyncio.to_thread(final, call(carrier))) == 407
        node_auth = 'Authorization: Digest username="agent1001", realm="asterisk", nonce="n", uri="x", response="r"\r\n'
        good = credentials(challenge, "INVITE", uri, SEAT, ha1(SEAT, cluster.secrets[SEAT]))
        sent = call(phone, good + node_auth)
        ready = await asyncio.to_thread(select.select, cluster.nodes, [], [], WAIT_S)
        assert ready[0], "the seat's call reached no node:\n" + cluster.log()
        data, source = ready[0][0].recvfrom(65535)
        invite = data.decode()
        assert invite.startswith(f"INVITE {uri} ") and header(invite, "Call-ID") == [sent.call_id]
        assert source == ("127.0.0.1", cluster.seat_sip[0])  # not the carrier's socket
        assert header(invite, "Proxy-Authorization") == [] and header(invite, "Authorization") == [node_auth[15:-2]]
        assert len(header(invite, "Record-Route")) == 2  # phone side and node side: the BYE passes the proxy


async def test_the_agent_hanging_up_frees_the_seat_at_the_proxy(cluster: Cluster) -> None:
    """The BYE comes from the phone (the agent ends the call): it passes the proxy along the
    Record-Route, reaches the node, and the next call reaches the seat."""
    with _socket() as phone:
        phone.settimeout(WAIT_S)
        port = phone.getsockname()[1]
        assert status(digest_register(cluster, cluster.proxies[0], OTHER, ha1(OTHER, cluster.secrets[OTHER]),
                                      contact_port=port)) == 200
        node = cluster.nodes[0]
        for round_ in range(2):  # the second call reaches the seat only if the first one's BYE freed it
            sent = cluster.invite(node, cluster.proxies[0], OTHER)
            invite = (await asyncio.to_thread(phone.recvfrom, 65535))[0].decode()
            routes, via_proxy = header(invite, "Record-Route"), ("127.0.0.1", cluster.proxies[0])
            tag = ";tag=phone"
            phone.sendto((ok(invite, "".join(f"Record-Route: {r}\r\n" for r in routes)
                             + f"Contact: <sip:{OTHER}@127.0.0.1:{port}>\r\n")).replace(
                f"To: <{sent.uri}>", f"To: <{sent.uri}>{tag}").encode(), via_proxy)
            answer = await asyncio.to_thread(final, sent)
            assert status(answer) == 200, (round_, answer)
            bye = request("BYE", header(invite, "Contact")[0].strip("<>"), phone, sent.call_id, 1, to="sip:12345@x",
                           user=OTHER, extra="".join(f"Route: {r}\r\n" for r in routes))
            bye = bye.replace("tag=node\r\nTo: <sip:12345@x>", f"tag=phone\r\nTo: {header(invite, 'From')[0]}")
            phone.sendto(bye.encode(), via_proxy)
            arrived = await asyncio.to_thread(next_request, node)
            assert arrived.startswith("BYE ") and header(arrived, "Call-ID") == [sent.call_id], arrived
            node.sendto(ok(arrived).encode(), via_proxy)
            reply = (await asyncio.to_thread(phone.recvfrom, 65535))[0].decode()
            assert reply.startswith("SIP/2.0 200 ") and header(reply, "CSeq") == ["1 BYE"], reply



def rpc_as(user: str, socket_path: str) -> str:
    """``core.version`` over the control socket by a process of ``user`` (Debian's python3, the
    project's BINRPC client): the answer, or the error."""
    code = ("import asyncio, sys; sys.path.insert(0, sys.argv[1]); import kamrpc\n"
            "try:\n    print(asyncio.run(kamrpc.call(sys.argv[2], 'core.version')))\n"
            "except kamrpc.KamRpcError as exc:\n    print('error:', exc)\n")
    # a copy the other user can read (the checkout may sit in a directory only root enters);
    # kamrpc imports nothing of the project
    with tempfile.TemporaryDirectory() as copy:
        os.chmod(copy, 0o755)
        shutil.copy(REPO / "ivr" / "kamrpc.py", copy)
        os.chmod(Path(copy) / "kamrpc.py", 0o644)
        done = subprocess.run(["runuser", "-u", user, "--", "/usr/bin/python3", "-I", "-c", code, copy, socket_path],
                              capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


def test_the_control_sockets_open_to_the_proxys_user_and_the_engines_group_only(cluster: Cluster) -> None:
    gid = grp.getgrnam(cluster.group).gr_gid
    for proxy in ("edge-a", "edge-b"):
        path = ctl_socket(str(cluster.run_dir), proxy)
        st = os.stat(path)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == gid, oct(st.st_mode)
        if os.geteuid() == 0:  # another user's processes: only root starts them
            assert "kamailio 5." in rpc_as("kamailio", path)  # in the group (the proxy itself runs as nobody)
            assert "Permission denied" in rpc_as("daemon", path)  # neither the proxy's user nor in the group


async def test_a_changed_password_reaches_the_running_proxies_and_other_registrations_stay(cluster: Cluster) -> None:
    """What ``ivr reload --asterisk`` does for the seats' keys (ivr/cluster_seat_keys.py), on the
    running proxies: no restart, so the other seat's phone stays registered."""
    out, old, new = cluster.workdir / "edge", cluster.secrets[SEAT], fresh_secret()
    other, _ = await registered_seat(cluster, cluster.proxies[0], OTHER)
    try:
        assert status(digest_register(cluster, cluster.proxies[1], SEAT, ha1(SEAT, old))) == 200
        changed = {**cluster.secrets, SEAT: new}
        results = await apply_seat_keys(cluster.settings, out, str(cluster.run_dir), changed)
        assert [(r.proxy, r.set, r.removed, r.why) for r in results] == [("edge-a", 1, 0, ""), ("edge-b", 1, 0, "")]
        for proxy in cluster.proxies:
            assert status(digest_register(cluster, proxy, SEAT, ha1(SEAT, old))) == 403
            assert status(digest_register(cluster, proxy, SEAT, ha1(SEAT, new))) == 200
        for proxy in cluster.proxies:  # the other seat's phone is still registered: a node reaches it
            sent, answer = await reached(cluster, cluster.nodes[0], proxy, OTHER)
            assert status(answer) == 200, answer + cluster.log()
            assert status(hang_up(cluster, sent, answer)) == 200
        keys = out / SECRETS_FILE  # a proxy started later reads the new key
        assert ha1(SEAT, new) in keys.read_text() and ha1(SEAT, old) not in keys.read_text()
        assert stat.S_IMODE(keys.stat().st_mode) == 0o600
        again = await apply_seat_keys(cluster.settings, out, str(cluster.run_dir), changed)
        assert [(r.set, r.removed, r.why) for r in again] == [(0, 0, ""), (0, 0, "")]
        # an agent taken out of config/: its phone cannot register any more, at either proxy
        fewer = cluster.settings.model_copy(update={"agents": {n: a for n, a in cluster.settings.agents.items()
                                                               if n != OTHER}})
        gone = await apply_seat_keys(fewer, out, str(cluster.run_dir), changed)
        assert [(r.set, r.removed, r.why) for r in gone] == [(0, 1, ""), (0, 1, "")]
        for proxy in cluster.proxies:
            assert status(digest_register(cluster, proxy, OTHER, ha1(OTHER, cluster.secrets[OTHER]))) == 403
    finally:
        await other.stop()

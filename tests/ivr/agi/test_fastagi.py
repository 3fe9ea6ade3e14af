"""The FastAGI server over real sockets, with a fake Asterisk peer."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from ivr.agi.channel import AgiChannel
from ivr.agi.fastagi import FastAgiServer
from ivr.agi.peers import PeerPolicy
from ivr.config import AgiSettings
from ivr.core.channel import CallerHungUp, CallInfo, ChannelError

ENV = b"agi_network_script: ivr\nagi_channel: PJSIP/pstn-1\nagi_uniqueid: 1700000000.1\nagi_callerid: 13800138000\nagi_arg_1: 12345\n\n"


def wait_until(predicate, timeout: float = 3.0) -> None:
    """Bounded wait for a handler (running in the server thread) to record its outcome."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "handler did not finish"
        time.sleep(0.005)


class ServerThread:
    """The server on its own event loop in a thread: if that loop froze, the test still runs."""

    def __init__(self, handler, allowed_peers: tuple[str, ...] = ("127.0.0.1",)) -> None:
        self.port = 0
        self.allowed_peers = allowed_peers
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.handler = handler
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            server = FastAgiServer(header_timeout=1.0, allowed_peers=self.allowed_peers)
            self.server = server
            server.route("ivr", self.handler)
            await server.start("127.0.0.1", 0)
            assert server._server
            self.port = server._server.sockets[0].getsockname()[1]
            self.stopping = asyncio.Event()
            self.ready.set()
            await self.stopping.wait()
            await server.stop(grace=0.5)
            leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in leftovers:
                task.cancel()
            await asyncio.gather(*leftovers, return_exceptions=True)

        try:
            self.loop.run_until_complete(main())
        finally:
            self.loop.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(5)


def agi_session(port: int, replies: list[bytes]) -> list[str]:
    """Play Asterisk: send the environment, answer each command, return the commands seen."""
    seen: list[str] = []
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(ENV)
        f = s.makefile("rwb")
        for reply in replies:
            line = f.readline()
            if not line:
                break
            seen.append(line.decode().strip())
            f.write(reply)
            f.flush()
    return seen


def test_a_bare_connect_and_close_does_not_freeze_the_server() -> None:
    calls: list[CallInfo] = []

    async def handler(call: CallInfo, channel: AgiChannel) -> None:
        calls.append(call)
        await channel.stream("beep")

    server = ServerThread(handler)
    try:
        for _ in range(3):  # port scanners and health checks do exactly this
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
        started = time.monotonic()
        seen = agi_session(server.port, [b"200 result=0 endpos=100\n"])
        assert seen == ['STREAM FILE "beep" ""']
        assert calls[0].dialed == "12345" and calls[0].caller == "13800138000"
        assert time.monotonic() - started < 2, "the event loop was stuck"
    finally:
        server.stop()


def test_a_silent_peer_is_dropped_after_the_header_timeout() -> None:
    server = ServerThread(lambda call, channel: asyncio.sleep(0))
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(b"agi_network_script: ivr\n")  # never finishes the header
            s.settimeout(3)
            assert s.recv(10) == b"", "server should close the connection"
    finally:
        server.stop()


def test_after_a_hangup_no_further_command_is_sent() -> None:
    outcome: dict[str, object] = {}

    async def handler(call: CallInfo, channel: AgiChannel) -> None:
        try:
            await channel.get_data("main_menu", 3000, 1)
        except CallerHungUp:
            outcome["first"] = "hung up"
        try:
            await channel.set_variable("IVR_ROUTE", "queue")
        except CallerHungUp:
            outcome["second"] = "refused locally"
        outcome["sent"] = channel.commands_sent

    server = ServerThread(handler)
    try:
        seen = agi_session(server.port, [b"HANGUP\n", b"200 result=1\n"])
        wait_until(lambda: "sent" in outcome)
        assert seen == ['GET DATA "main_menu" 3000 1']
        assert outcome == {"first": "hung up", "second": "refused locally", "sent": 1}
    finally:
        server.stop()


@pytest.mark.parametrize("reply, expected", [(b"200 result=12 (timeout)\n", "12"), (b"200 result= (timeout)\n", "")])
def test_get_data_returns_the_digits(reply: bytes, expected: str) -> None:
    got: list[str] = []

    async def handler(call: CallInfo, channel: AgiChannel) -> None:
        got.append(await channel.get_data("x", 1000, 2))

    server = ServerThread(handler)
    try:
        agi_session(server.port, [reply])
        wait_until(lambda: bool(got))
        assert got == [expected]
    finally:
        server.stop()


@pytest.mark.parametrize(
    "probe, outcome",
    [(b"511 Command Not Permitted on a dead channel or intercept routine\n", "hung up"), (b"200 result=6\n", "failed")],
)
def test_minus_one_is_resolved_by_probing_the_channel(probe: bytes, outcome: str) -> None:
    """STREAM FILE answers -1 both for a missing file and for a caller who hung up."""
    got: list[str] = []

    async def handler(call: CallInfo, channel: AgiChannel) -> None:
        try:
            await channel.stream("ivr12345/missing")
        except CallerHungUp:
            got.append("hung up")
        except ChannelError:
            got.append("failed")

    server = ServerThread(handler)
    try:
        seen = agi_session(server.port, [b"200 result=-1 endpos=0\n", probe])
        wait_until(lambda: bool(got))
        assert seen == ['STREAM FILE "ivr12345/missing" ""', "CHANNEL STATUS"]
        assert got == [outcome]
    finally:
        server.stop()


def test_route_variables_are_set_in_one_round_trip_with_commas_escaped() -> None:
    async def handler(call: CallInfo, channel: AgiChannel) -> None:
        await channel.set_variables({"IVR_QUEUE": "general", "NOTE": "a,b", "IVR_ROUTE": "queue"})

    server = ServerThread(handler)
    try:
        seen = agi_session(server.port, [b"200 result=0\n"])
        # the AGI parser turns \\, into \, and MSet then reads it as a literal comma
        assert seen == ['EXEC MSet "IVR_QUEUE=general,NOTE=a\\\\,b,IVR_ROUTE=queue"']
    finally:
        server.stop()


def test_a_reply_arriving_with_the_environment_is_not_lost() -> None:
    got: list[str] = []

    async def handler(call: CallInfo, channel: AgiChannel) -> None:
        got.append(await channel.stream("beep", "0123456789"))

    server = ServerThread(handler)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=3) as s:
            s.sendall(ENV + b"200 result=49 endpos=80\n")  # one segment: header and a reply
            assert s.makefile("rb").readline() == b'STREAM FILE "beep" "0123456789"\n'
            wait_until(lambda: bool(got))
        assert got == ["1"]
    finally:
        server.stop()


def test_a_peer_flooding_lines_fails_the_command_and_is_cut_off() -> None:
    got: list[str] = []

    async def handler(call: CallInfo, channel: AgiChannel) -> None:
        try:
            await channel.stream("beep")
            await channel.stream("beep")
        except ChannelError as exc:
            got.append(type(exc).__name__)

    server = ServerThread(handler)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=3) as s:
            s.sendall(ENV)
            f = s.makefile("rb")
            assert f.readline().startswith(b"STREAM FILE")
            s.sendall(b"200 result=0 endpos=1\n" + b"junk\n" * 200)
            wait_until(lambda: bool(got))
            s.settimeout(3)
            assert f.read() == b"", "the server should close the connection"
        assert got == ["ChannelError"]
    finally:
        server.stop()


def test_stopping_closes_peers_still_sending_their_environment() -> None:
    server = ServerThread(lambda call, channel: asyncio.sleep(0))
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"agi_network_script: ivr\n")  # header not finished
        wait_until(lambda: bool(server.server.connections))
        started = time.monotonic()
        server.stop()
        s.settimeout(3)
        assert s.recv(10) == b""
        assert time.monotonic() - started < 0.9, "closed by stop(), not by the 1 s header timeout"


def forged_session(port: int, source: str) -> bytes:
    """A made-up AGI environment from ``source``: what the engine sends back before it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=3, source_address=(source, 0)) as s:
        try:
            s.sendall(ENV)
            return s.recv(4096)
        except ConnectionResetError:
            return b""


def test_an_environment_from_an_address_not_allowed_is_cut_off_before_it_is_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The attack: any local or network host connects and hands over a made-up environment."""
    calls: list[CallInfo] = []

    async def handler(call: CallInfo, channel: AgiChannel) -> None:
        calls.append(call)
        await channel.set_variable("IVR_ROUTE", "queue")

    st = ServerThread(handler, allowed_peers=("127.0.0.2", "10.0.0.0/8"))
    try:
        assert forged_session(st.port, "127.0.0.1") == b""  # no command, just the cut
        assert forged_session(st.port, "127.0.0.3") == b""
        wait_until(lambda: st.server.peers.refused == 2)
        assert calls == [] and not st.server.connections
        assert forged_session(st.port, "127.0.0.2").startswith(b"SET VARIABLE")  # the configured Asterisk
        wait_until(lambda: len(calls) == 1)
    finally:
        st.stop()
    refusals = [r.getMessage() for r in caplog.records if "refused FastAGI" in r.getMessage()]
    assert [m.split(":")[0] for m in refusals] == ["refused FastAGI connection from 127.0.0.1",
                                                   "refused FastAGI connection from 127.0.0.3"]


def test_allowed_peers_come_from_config_and_a_bad_entry_is_refused() -> None:
    assert AgiSettings().allowed_peers == ("127.0.0.1", "::1")  # loopback only by default
    assert AgiSettings(allowed_peers=("192.0.2.7", "10.1.0.0/16")).allowed_peers == ("192.0.2.7", "10.1.0.0/16")
    with pytest.raises(ValueError, match="asterisk.example"):
        AgiSettings(allowed_peers=("asterisk.example",))
    policy = PeerPolicy(("127.0.0.1",))
    assert policy.allows(("::ffff:127.0.0.1", 1, 0, 0)) and not policy.allows(("::1", 1, 0, 0))
    assert not policy.allows("")  # a socket without an IP peer

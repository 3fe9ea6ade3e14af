"""AMI client: a Chinese caller name split across TCP reads survives, replies panoramisk
mishandles keep the connection, a dropped connection comes back, and a closed client stays
closed."""

from __future__ import annotations

import asyncio
import logging

import pytest
from panoramisk.ami_protocol import AMIProtocol

from ivr.ami.client import AmiClient, AmiError, Utf8AMIProtocol
from ivr.ami.logfilter import scrub
from testbed.calls import until
from testbed.ports import PortAllocator

EVENT = "Event: Newchannel\r\nChannel: PJSIP/pstn-1\r\nCallerIDName: 张三\r\nCallerIDNum: 13800138000\r\n\r\n".encode()


class FakeFactory:
    def __init__(self) -> None:
        self.events: list[dict[str, str]] = []

    def dispatch(self, message) -> None:
        self.events.append(dict(message))


class FastFactory(FakeFactory):
    """A factory that takes plain events framed by the protocol (as ClosableManager does)."""

    def __init__(self) -> None:
        super().__init__()
        self.fast: list[dict[str, str]] = []
        self.fast_events = self.fast.append


class FakeTransport:
    closed = False

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def feed(protocol_class: type[AMIProtocol], chunks: list[bytes], factory: FakeFactory | None = None) -> list[dict[str, str]]:
    proto = protocol_class()
    proto.connection_made(FakeTransport())  # type: ignore[arg-type]
    factory = factory or FakeFactory()
    proto.factory = factory
    proto.encoding = "utf-8"
    proto.version = "11.0.0"
    for chunk in chunks:
        proto.data_received(chunk)
    return factory.events


def split_inside(data: bytes, char: str) -> list[bytes]:
    cut = data.index(char.encode()) + 1  # one byte into the 3-byte character
    return [data[:cut], data[cut:]]


def test_a_character_split_across_reads_survives() -> None:
    events = feed(Utf8AMIProtocol, split_inside(EVENT, "张"))
    assert events[0]["CallerIDName"] == "张三"


def test_panoramisk_alone_loses_it() -> None:
    """Documents the defect the subclass fixes (if panoramisk fixes it, drop the subclass)."""
    events = feed(AMIProtocol, split_inside(EVENT, "张"))
    assert events[0]["CallerIDName"] != "张三"


def test_byte_by_byte() -> None:
    events = feed(Utf8AMIProtocol, [bytes([b]) for b in EVENT])
    assert events[0]["CallerIDName"] == "张三"


def test_given_a_fast_factory_then_plain_events_arrive_as_dicts_and_list_events_take_panoramisks_path() -> None:
    listed = b"Event: CoreShowChannel\r\nActionID: 42\r\nChannel: PJSIP/pstn-1\r\n\r\n"
    factory = FastFactory()
    feed(Utf8AMIProtocol, split_inside(EVENT + listed + EVENT, "张"), factory)
    assert [e["CallerIDName"] for e in factory.fast] == ["张三", "张三"]
    assert factory.fast[0] == {"Event": "Newchannel", "Channel": "PJSIP/pstn-1", "CallerIDName": "张三",
                               "CallerIDNum": "13800138000"}
    assert [e["Event"] for e in factory.events] == ["CoreShowChannel"]  # with its ActionID, for the action


def test_given_a_user_event_whose_value_smuggled_headers_then_asterisks_own_headers_win() -> None:
    """What an unfiltered `${CALLERID(num)}` in a UserEvent sent (issue 17): its comma made
    `Queue:` and `Linkedid:` headers after Asterisk's own, and the last one used to win."""
    block = ("Event: UserEvent\r\nChannel: PJSIP/pstn-1\r\nUniqueid: 1796000000.7\r\nLinkedid: 1796000000.7\r\n"
             "UserEvent: IvrCallback\r\nStage: requested\r\nQueue: general\r\nNumber: 00900123\r\nQueue: vip\r\n"
             "Linkedid: 1796000000.1\r\n\r\n").encode()
    factory = FastFactory()
    feed(Utf8AMIProtocol, [block], factory)
    assert (factory.fast[0]["Queue"], factory.fast[0]["Linkedid"]) == ("general", "1796000000.7")


def test_given_a_peer_that_never_ends_a_message_then_the_connection_is_cut() -> None:
    proto = Utf8AMIProtocol()
    transport = FakeTransport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    proto.factory = FastFactory()
    chunk = b"Event: Flood\r\nX: " + b"y" * 65536
    sent = 0
    while not transport.closed and sent < 100:
        proto.data_received(chunk)
        sent += 1
    assert transport.closed and sent == 16 and proto._pending == ""  # cut past 1 MiB, nothing kept


class FakeAsterisk:
    """Just enough AMI over a real socket: banner, Login, and PlayDTMF's real response; Getvar
    answers from ``variables``; ``after_login`` is sent once logged in (events)."""

    def __init__(self, variables: dict[str, str] | None = None, after_login: bytes = b"") -> None:
        self.actions: list[str] = []
        self.connections: list[asyncio.StreamWriter] = []
        self.variables, self.after_login = variables or {}, after_login

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.append(writer)
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        while True:
            try:
                block = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            headers = dict(line.split(": ", 1) for line in block.decode().strip().split("\r\n"))
            self.actions.append(headers["Action"])
            reply = {"Login": "Message: Authentication accepted", "PlayDTMF": "Message: DTMF successfully queued"}
            message = reply.get(headers["Action"], "Message: ok")
            if headers["Action"] == "Getvar":
                name = headers["Variable"]
                message = f"Variable: {name}\r\nValue: {self.variables.get(name, '')}"
            writer.write(f"Response: Success\r\nActionID: {headers['ActionID']}\r\n{message}\r\n\r\n".encode())
            if headers["Action"] == "Login":
                writer.write(self.after_login)
            await writer.drain()


async def test_an_action_answered_successfully_queued_does_not_kill_the_connection() -> None:
    """panoramisk reads action['async'] for such replies; without the header: KeyError, connection lost."""
    fake = FakeAsterisk()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = AmiClient("127.0.0.1", port, "testbed", "secret")
    try:
        await client.connect(timeout=5)
        reply = await client.action({"Action": "PlayDTMF", "Channel": "Local/1@x-1;1", "Digit": "5"}, timeout=5)
        assert reply["Message"] == "DTMF successfully queued"
        assert (await client.action({"Action": "Ping"}, timeout=5))["Response"] == "Success"
        assert client.connected
    finally:
        client.close()
        server.close()


RECONNECT_S = 1  # AmiClient's reconnect_timeout


async def test_a_dropped_connection_comes_back_and_logs_in_again() -> None:
    fake = FakeAsterisk()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    client = AmiClient("127.0.0.1", server.sockets[0].getsockname()[1], "testbed", "secret")
    try:
        await client.connect(timeout=5)
        fake.connections[0].close()  # Asterisk restarted, say
        await until(lambda: fake.actions.count("Login") == 2 and client.connected, timeout=5 * RECONNECT_S)
    finally:
        client.close()
        server.close()


async def test_booted_only_once_asterisk_says_fully_booted_and_again_after_each_reconnect() -> None:
    """AMI answers a restarted Asterisk's login before its modules are loaded; FullyBooted comes
    once they are (or right after the login, when they already were)."""
    fake = FakeAsterisk()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    client = AmiClient("127.0.0.1", server.sockets[0].getsockname()[1], "testbed", "secret")
    try:
        await client.connect(timeout=5)
        assert client.connected and not client.booted
        fake.connections[0].write(b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n")
        await until(lambda: client.booted, timeout=5)
        fake.connections[0].close()  # Asterisk restarted
        await until(lambda: not client.connected, timeout=5)
        assert not client.booted
        await until(lambda: fake.actions.count("Login") == 2 and client.connected, timeout=5 * RECONNECT_S)
        assert not client.booted, "the FullyBooted of the connection before does not count"
        fake.connections[1].write(b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n")
        await until(lambda: client.booted, timeout=5)
    finally:
        client.close()
        server.close()
    assert not client.booted


async def test_a_closed_client_never_reconnects() -> None:
    fake = FakeAsterisk()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    client = AmiClient("127.0.0.1", server.sockets[0].getsockname()[1], "testbed", "secret")
    await client.connect(timeout=5)
    client.close()
    await asyncio.sleep(2.5 * RECONNECT_S)  # what is checked is that nothing happens
    server.close()
    assert len(fake.connections) == 1 and not client.connected


async def test_a_client_that_could_not_connect_stops_dialing_once_closed() -> None:
    """The engine retries AMI with a new client every 2 s while Asterisk is down; each given-up
    client used to keep dialing every second forever, and to log in once Asterisk was back."""
    port = PortAllocator().one()
    client = AmiClient("127.0.0.1", port, "testbed", "secret")
    with pytest.raises(AmiError, match="cannot connect"):
        await client.connect(timeout=5)
    client.close()
    fake = FakeAsterisk()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", port)  # Asterisk is back
    try:
        await asyncio.sleep(2.5 * RECONNECT_S)
        assert fake.connections == []
    finally:
        server.close()


async def test_a_client_closed_while_connecting_gives_up_quietly(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeAsterisk()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    client = AmiClient("127.0.0.1", server.sockets[0].getsockname()[1], "testbed", "secret")
    attempt = asyncio.create_task(client.connect(timeout=5))
    await asyncio.sleep(0)  # the attempt has started
    client.close()
    try:
        with pytest.raises(AmiError, match="closed while connecting"):
            await attempt
        await asyncio.sleep(2.5 * RECONNECT_S)
        assert fake.actions == [] and not client.connected
        assert not [r for r in caplog.records if r.levelname == "ERROR"]
        with pytest.raises(AmiError, match="is closed"):
            await client.connect(timeout=5)
    finally:
        server.close()


def test_event_name_patterns_match_as_globs_do() -> None:
    import fnmatch

    from ivr.ami.client import _matcher

    names = ["QueueMemberAdded", "QueueMemberStatus", "QueueCallerJoin", "UserEvent", "Hangup"]
    for pattern in ("*", "QueueMember*", "UserEvent", "Queue*Join", "Hang?p", "Nothing"):
        assert [n for n in names if _matcher(pattern)(n)] == [n for n in names if fnmatch.fnmatchcase(n, pattern)], pattern


def newchannel(n: int) -> bytes:
    return f"Event: Newchannel\r\nChannel: PJSIP/pstn-{n}\r\nUniqueid: u{n}\r\n\r\n".encode()


async def batched_client(fake: FakeAsterisk, server: asyncio.Server) -> tuple[AmiClient, list[str]]:
    """A client reading events at most every 30 s under load (far longer than any test waits)."""
    client = AmiClient("127.0.0.1", server.sockets[0].getsockname()[1], "testbed", "secret", event_batch=30)
    seen: list[str] = []
    client.on("Newchannel", lambda e: seen.append(e["Channel"]))
    await client.connect(timeout=5)
    fake.connections[0].write(newchannel(1))
    await until(lambda: seen == ["PJSIP/pstn-1"], timeout=5)
    return client, seen


async def test_given_an_event_batch_then_the_socket_rests_after_a_read() -> None:
    fake = FakeAsterisk()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    client, _seen = await batched_client(fake, server)
    try:
        transport = client._manager.protocol.transport
        assert not transport.is_reading()  # the window after the read of event 1
        client._manager.protocol.resume_reading()  # the window's end (its timer)
        assert transport.is_reading()
    finally:
        client.close()
        server.close()


async def test_given_an_event_batch_then_an_action_is_answered_at_once_after_the_events_before_it() -> None:
    """The window holds events, never a response: sending an action reads on; what Asterisk
    wrote before the response is delivered first, in order."""
    fake = FakeAsterisk()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    client, seen = await batched_client(fake, server)
    try:
        fake.connections[0].write(newchannel(2) + newchannel(3))
        await fake.connections[0].drain()
        reply = await client.action({"Action": "Ping"}, timeout=5)  # 30 s window: held, this would time out
        assert reply["Response"] == "Success"
        assert seen == ["PJSIP/pstn-1", "PJSIP/pstn-2", "PJSIP/pstn-3"]
    finally:
        client.close()
        server.close()


async def test_at_debug_level_no_ami_exchange_logs_a_callers_number_or_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The leak: panoramisk logs each AMI message it parses (and queued actions) in full."""
    caplog.set_level(logging.DEBUG)
    fake = FakeAsterisk({"CALLERID(num)": "13900000001"}, after_login=EVENT)  # a caller's channel event
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    client = AmiClient("127.0.0.1", server.sockets[0].getsockname()[1], "testbed", "s3cret-ami-pass")
    events: list[dict[str, str]] = []
    client.on("Newchannel", lambda event: events.append(dict(event)))
    try:
        await client.connect(timeout=5)
        reply = await client.action({"Action": "Getvar", "Channel": "PJSIP/pstn-1", "Variable": "CALLERID(num)"},
                                    timeout=5)
        assert reply["Value"] == "13900000001"  # the engine gets it in full…
        await until(lambda: events, timeout=5)
        assert events[0]["CallerIDNum"] == "13800138000"
    finally:
        client.close()
        server.close()
    logged = "\n".join(r.getMessage() for r in caplog.records)  # …its log does not
    assert "13900000001" not in logged and "13800138000" not in logged and "s3cret-ami-pass" not in logged
    assert not [r for r in caplog.records if r.name.startswith("panoramisk") and r.levelno < logging.WARNING]


def test_what_panoramisk_may_still_log_is_scrubbed() -> None:
    text = scrub("Fail to send b'Action: Originate\\r\\nChannel: Local/13900000001@x\\r\\nSecret: hunter2\\r\\n'")
    assert "13900000001" not in text and "139****0001" in text and "hunter2" not in text and "\r" not in text

"""FastAGI server: panoramisk's route table over an asyncio Protocol that cannot spin.

panoramisk 1.4's own handler loops forever when a peer connects and closes (it never checks
for EOF) and freezes the event loop. Here the AGI environment is read by a bounded parser
(:class:`ivr.agi.protocol.EnvironmentReader`) under a header timeout, and replies are parsed by
:func:`ivr.agi.protocol.parse_reply`, which raises on hang-ups and errors instead of returning
error dicts.

Each connection is a :class:`FastAgiChannel`, an ``asyncio.Protocol`` rather than a stream
pair: a call exchanges a handful of short lines, and callbacks spare the stream layers' work
on every read and write (CPU per call is a target, see ``benchmarks/``). A call's task starts
only once its environment is complete.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Awaitable, Callable, Sequence

from panoramisk.fast_agi import Application

from ivr.agi.channel import AgiChannel
from ivr.agi.peers import PeerPolicy
from ivr.agi.call_guard import identity_problem
from ivr.agi.protocol import MAX_REPLY_BYTES, AgiProtocolError, EnvironmentReader, call_info
from ivr.core.channel import CallerHungUp, CallInfo, ChannelError

log = logging.getLogger(__name__)

CallHandler = Callable[[CallInfo, AgiChannel], Awaitable[None]]
MAX_PENDING_LINES = 64  # Asterisk sends one reply per command; more unread lines is not AGI


class FastAgiChannel(AgiChannel, asyncio.Protocol):
    """One FastAGI connection: first the environment, then the call's channel."""

    def __init__(self, server: FastAgiServer):
        super().__init__()
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._environment: EnvironmentReader | None = EnvironmentReader()
        self._header_timer: asyncio.TimerHandle | None = None
        self._buffer = b""
        self._lines: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False  # end of stream, or connection lost
        self._too_long = False  # the peer sent more than replies: the call's next command fails

    # --- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        if not self._server.peers.allows(peer):  # before a byte of the environment is read
            self._environment = None
            self._ended = True
            self._server.peers.refuse(peer)
            transport.abort()
            return
        self._server.connections.add(self)
        self._header_timer = self._server.loop.call_later(
            self._server.header_timeout, self._drop, f"no AGI environment within {self._server.header_timeout:g} s")

    def data_received(self, data: bytes) -> None:
        if self._ended:
            return
        if self._environment is not None:
            self._read_environment(data)
            return
        self._buffer += data
        if b"\n" in self._buffer:
            *lines, self._buffer = self._buffer.split(b"\n")
            self._lines.extend(lines)
        if len(self._buffer) > MAX_REPLY_BYTES or len(self._lines) > MAX_PENDING_LINES:
            self._too_long = True  # not a peer we can follow: stop reading, fail the call's command
            self._buffer = b""
            assert self._transport
            self._transport.close()
        self._wake()

    def eof_received(self) -> bool:
        if self._environment is not None:
            self._read_environment(b"")
        self._ended = True
        self._wake()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended = True
        if self._header_timer:
            self._header_timer.cancel()
        self._server.connections.discard(self)
        self._wake()

    def _read_environment(self, data: bytes) -> None:
        assert self._environment is not None
        try:
            if not self._environment.feed(data):
                return
        except AgiProtocolError as exc:
            self._drop(str(exc))
            return
        env, rest = self._environment.environment, self._environment.rest
        assert env is not None
        self._environment = None
        if self._header_timer:
            self._header_timer.cancel()
        if rest:
            self.data_received(rest)
        self._server.start_call(env, self)

    def _drop(self, reason: str) -> None:
        assert self._transport
        log.warning("dropped FastAGI connection from %s: %s", self._transport.get_extra_info("peername"), reason)
        self._environment = None
        self._ended = True
        self._transport.close()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # --- AgiChannel transport -----------------------------------------------------------

    async def _write(self, command: str) -> None:
        assert self._transport
        if self._too_long:
            raise ChannelError("AGI peer sent more than a reply")
        if self._ended or self._transport.is_closing():
            raise CallerHungUp("AGI connection lost")
        self._transport.write(command.encode("utf-8") + b"\n")  # a short line: no backpressure to wait for

    async def _readline(self) -> str:
        while not self._lines:
            if self._too_long:
                raise ChannelError("AGI reply too long")
            if self._ended:
                raise CallerHungUp("AGI connection lost: end of stream")
            self._waiter = self._server.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        raw = self._lines.popleft()
        if len(raw) > MAX_REPLY_BYTES:
            raise ChannelError("AGI reply too long")
        return raw.decode("utf-8", errors="replace").rstrip("\r")

    async def _close(self) -> None:
        self.close()

    @property
    def awaiting_environment(self) -> bool:
        return self._environment is not None

    def close(self) -> None:
        if self._transport:
            self._transport.close()


class FastAgiServer(Application):
    """Routes FastAGI requests (``agi://host:port/<route>``) to call handlers, for peers in
    ``allowed_peers`` only (:mod:`ivr.agi.peers`)."""

    def __init__(self, header_timeout: float = 5.0, allowed_peers: Sequence[str] = ("127.0.0.1", "::1")):
        super().__init__(loop=asyncio.get_running_loop())
        self.header_timeout = header_timeout
        self.peers = PeerPolicy(allowed_peers)
        self.connections: set[FastAgiChannel] = set()
        self._stopping = False
        self._server: asyncio.base_events.Server | None = None
        self._calls: set[asyncio.Task[None]] = set()

    def route(self, path: str, handler: CallHandler) -> None:
        if path in self._route:
            raise ValueError(f"FastAGI route {path!r} is already taken")
        # not add_route: it wraps a handler that is not a coroutine function (a lambda returning
        # a coroutine, say) with asyncio.coroutine, which Python 3.11 no longer has
        self._route[path] = handler

    def start_call(self, env: dict[str, str], channel: FastAgiChannel) -> None:
        """The environment is complete: run the route's handler for this call."""
        handler = self._route.get(env.get("agi_network_script", ""))
        if self._stopping:  # the dialplan's fallback takes this caller
            channel.close()
            return
        problem = identity_problem(env)
        if problem is not None:  # not Asterisk's: no flow, no record
            channel._drop(problem)
            return
        if handler is None:
            log.error("no FastAGI route %r", env.get("agi_network_script", ""))
            channel.close()
            return
        task = self.loop.create_task(self._run_call(handler, env, channel))
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    async def _run_call(self, handler: CallHandler, env: dict[str, str], channel: FastAgiChannel) -> None:
        try:
            await handler(call_info(env), channel)
        except Exception:
            log.exception("FastAGI handler failed")
        finally:
            channel.close()

    async def start(self, host: str, port: int) -> None:
        self._server = await self.loop.create_server(lambda: FastAgiChannel(self), host, port)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting; let calls in progress finish within ``grace``, then cancel the rest
        (the engine still writes their records; the dialplan's fallback takes the callers)."""
        self._stopping = True
        if self._server:
            self._server.close()
        for connection in list(self.connections):  # peers still sending their environment
            if connection.awaiting_environment:
                connection.close()
        if self._calls:
            await asyncio.wait(set(self._calls), timeout=grace)
        left = set(self._calls)
        for task in left:
            task.cancel()
        if left:
            await asyncio.gather(*left, return_exceptions=True)

    @property
    def active_calls(self) -> int:
        return len(self._calls)

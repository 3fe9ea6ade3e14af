"""AMI client: panoramisk's Manager with the defects of 1.4 handled.

- Text is decoded incrementally: panoramisk decodes each TCP chunk on its own with
  ``errors='ignore'``, so a Chinese character split across two reads vanished (张三 → 三); framing and
  parsing are the pure :mod:`ivr.ami.protocol`.
- ``connect()`` returns only after the login succeeded (panoramisk returns before it).
- A ``Response: Error`` raises :class:`AmiError` instead of coming back as a message.
- Every action carries an ``Async`` header: panoramisk reads ``action['async']`` for any
  response ending in "successfully queued" (PlayDTMF, ...) and a KeyError there kills the
  whole connection.
- ``close()`` is final: panoramisk's reconnect timer outlives its ``close()``, so every client
  that once failed to connect kept dialing AMI each second, forever, and logged in as soon as
  Asterisk came back. An engine retrying while AMI was down piled up such loops.
- Plain events (an ``Event:`` block without ``ActionID``, the call tracker's whole diet) are
  framed and parsed here into dicts and handed straight to the subscribers: panoramisk's
  ``Message`` objects and regex-per-pattern dispatch cost the engine more per event than the
  tracker itself (benchmarks/README.md). Responses, list events and ``Shutdown`` keep
  panoramisk's path. A repeated header keeps its last value (the tracker reads none such).
- Events can be read in batches (``event_batch``, seconds): after a read the socket is left
  alone that long, so that under load one wake-up of the engine reads and handles the events
  of the whole window instead of one each (most of what an event costs is the wake-up and
  running the handlers with cold caches). Nothing is reordered or dropped; an event waits at
  most the window; an action's response is never held back (sending an action, or one still
  unanswered, reads at once) and a backlog is read without pause.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from typing import Any, Callable

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from ivr.ami import logfilter
from ivr.ami.protocol import EOM, AmiFramingError, Framer, is_plain_event, parse_event


class AmiError(Exception):
    """AMI refused an action, or the connection/login failed."""


BACKLOG = 1 << 16  # bytes: a read this large may have left more behind: read on without a pause


class Utf8AMIProtocol(AMIProtocol):
    """Decodes the byte stream incrementally so multi-byte characters survive any split, and
    frames messages itself: plain events go to ``factory.fast_events`` as dicts."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._framer = Framer()
        self._resume: asyncio.TimerHandle | None = None

    @property
    def _pending(self) -> str:
        """The unfinished message (tests check that a cut connection keeps none)."""
        return self._framer.pending

    def data_received(self, data: bytes) -> None:
        try:
            blocks = self._framer.feed(data)
        except AmiFramingError:
            self.transport.close()  # panoramisk's connection_lost follows: reconnect, log in again
            return
        fast = getattr(self.factory, "fast_events", None)
        events = 0
        for block in blocks:
            if fast is not None and is_plain_event(block):
                fast(parse_event(block))
                events += 1
            else:  # whole messages only: panoramisk's own framing sees exactly one at a time
                super().data_received((block + EOM).encode("utf-8"))
        pause = getattr(self.factory, "event_batch", 0.0)
        if pause > 0 and events and len(data) < BACKLOG and not self.responses and not self.closed \
                and self._resume is None:
            self.transport.pause_reading()
            self._resume = asyncio.get_running_loop().call_later(pause, self.resume_reading)

    def resume_reading(self) -> None:
        """End the batch window now (its timer, an action to send, the connection's end)."""
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
            self.transport.resume_reading()  # a no-op once closing

    def send(self, data: Any, as_list: bool = False) -> Any:
        self.resume_reading()  # its response is read as soon as it comes
        return super().send(data, as_list)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        super().connection_lost(exc)


class ClosableManager(Manager):
    """A Manager whose ``close()`` also ends its reconnect loop (see the module docstring)."""

    closed = False
    was_connected = False  # until then, AmiClient.connect() reports failures; no retry here
    _connecting: asyncio.Task[Any] | None = None
    fast_events: Callable[[dict[str, str]], None] | None = None  # plain events, framed by the protocol
    event_batch = 0.0  # s the protocol leaves the socket alone after a read (Utf8AMIProtocol)

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        if self.closed:  # a reconnect timer set before close()
            return None
        self._connecting = super().connect(*args, **kwargs)
        return self._connecting

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        if f.cancelled() or (f.exception() is not None and not self.was_connected):
            return
        if self.closed:  # connected after close(): let go of it quietly
            if f.exception() is None:
                transport, protocol = f.result()
                protocol.closed = True  # panoramisk's connection_lost would call a factory it never got
                transport.close()
            return
        self.was_connected = self.was_connected or f.exception() is None
        super().connection_made(f)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            super().connection_lost(exc)

    def close(self) -> None:
        self.closed = True
        if self._connecting is not None:
            self._connecting.cancel()  # a reconnect's handshake that may hang
        super().close()


EventCallback = Callable[[Message], Any]


def _matcher(pattern: str) -> Callable[[str], bool]:
    """A test for event names: ``*`` (all), ``Prefix*``, an exact name, or any other glob."""
    if pattern == "*":
        return lambda _name: True
    if not any(c in pattern for c in "*?[]"):
        return pattern.__eq__
    if pattern.endswith("*") and not any(c in pattern[:-1] for c in "*?[]"):
        prefix = pattern[:-1]
        return lambda name: name.startswith(prefix)
    return lambda name: fnmatch.fnmatchcase(name, pattern)


class AmiClient:
    def __init__(self, host: str, port: int, username: str, secret: str, *, events: str = "on",
                 event_batch: float = 0.0):
        """``event_batch``: read events at most once per that many seconds under load (see the
        module docstring; 0: each as it comes). For a client that follows events, not actions."""
        logfilter.install()  # panoramisk would log callers' numbers and the secret (ivr/ami/logfilter.py)
        self._manager = ClosableManager(
            host=host,
            port=port,
            username=username,
            secret=secret,
            events=events,
            encoding="utf-8",
            protocol_factory=Utf8AMIProtocol,
            ping_delay=30,
            reconnect_timeout=1,
            loop=asyncio.get_running_loop(),
            on_login=self._on_login,
            on_disconnect=self._on_disconnect,
        )
        self._logged_in = asyncio.Event()
        self._booted = False  # FullyBooted heard on this connection
        self._login_listeners: list[Callable[["AmiClient"], Any]] = []
        self._disconnect_listeners: list[Callable[[], Any]] = []
        self._waiters: list[tuple[str, Callable[[Message], bool], asyncio.Future[Message]]] = []
        self._matchers: list[tuple[Callable[[str], bool], EventCallback]] = []
        self._manager.fast_events = self._deliver
        self._manager.event_batch = event_batch
        self._manager.register_event("*", lambda _m, event: self._deliver(event))  # events panoramisk framed
        self.address = f"{host}:{port}"

    def _on_login(self, _manager: Manager) -> None:
        self._logged_in.set()
        for listener in self._login_listeners:
            listener(self)

    def _on_disconnect(self, _manager: Manager, _exc: Exception | None) -> None:
        self._logged_in.clear()
        self._booted = False
        for listener in self._disconnect_listeners:
            listener()

    def on_login(self, callback: Callable[["AmiClient"], Any]) -> None:
        """Call ``callback(client)`` after every login: the first and each reconnect (the moment
        to reconcile state with Asterisk: events in between were missed)."""
        self._login_listeners.append(callback)

    def on_disconnect(self, callback: Callable[[], Any]) -> None:
        self._disconnect_listeners.append(callback)

    async def connect(self, timeout: float = 10.0) -> None:
        """Connect and log in; raise :class:`AmiError` with the reason on failure."""
        if self._manager.closed:
            raise AmiError(f"AMI client for {self.address} is closed")
        try:
            await asyncio.wait_for(self._manager.connect(), timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise AmiError(f"cannot connect to AMI at {self.address}: {exc}") from None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self._manager.closed and not (task and task.cancelling()):
                raise AmiError(f"AMI client for {self.address} was closed while connecting") from None
            raise
        try:
            await asyncio.wait_for(self._logged_in.wait(), timeout)
        except asyncio.TimeoutError:
            raise AmiError(f"AMI login to {self.address} failed (wrong username or secret?)") from None

    @property
    def connected(self) -> bool:
        return self._logged_in.is_set()

    @property
    def booted(self) -> bool:
        """Logged in and Asterisk fully booted. AMI answers before the modules are loaded (a
        restarted node's dialplan and queues may not exist yet): Asterisk says FullyBooted to a
        new session once they are, or as it logs in when they already were. Only for a user that
        reads ``system`` events; any other never sees it."""
        return self._booted and self._logged_in.is_set()

    async def action(self, action: dict[str, str], *, as_list: bool | None = None, timeout: float = 10.0) -> Any:
        """Send an action; return its response (a list for actions that stream events)."""
        if not self.connected:
            raise AmiError(f"AMI at {self.address} is not connected")
        action = {"Async": "false", **action}
        result = await asyncio.wait_for(self._manager.send_action(action, as_list=as_list), timeout)
        first = result[0] if isinstance(result, list) else result
        if first.get("Response") == "Error":
            raise AmiError(f"AMI {action.get('Action')}: {first.get('Message', 'error')}")
        return result

    async def command(self, cli: str) -> str:
        """Run an Asterisk CLI command (needs the `command` write class)."""
        result = await self.action({"Action": "Command", "Command": cli})
        output = result.get("Output", "") if hasattr(result, "get") else ""
        return "\n".join(output) if isinstance(output, list) else str(output or result.content)

    def on(self, pattern: str, callback: EventCallback) -> None:
        """Call ``callback(event)`` for every event whose name matches ``pattern`` (glob)."""
        self._matchers.append((_matcher(pattern), callback))

    def _deliver(self, event: Any) -> None:
        name = event.get("Event", "")
        if name == "FullyBooted":
            self._booted = True
        for matches, callback in self._matchers:  # every event passes here: no glob per event
            if matches(name):
                callback(event)
        if self._waiters:
            self._dispatch(self._manager, event)

    def wait_for(
        self, event: str, where: Callable[[Message], bool] = lambda _e: True
    ) -> asyncio.Future[Message]:
        """A future for the next event named ``event`` (glob) that satisfies ``where``.

        Create it *before* triggering the event, then ``await asyncio.wait_for(fut, t)``.
        """
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiters.append((event, where, fut))
        return fut

    def _dispatch(self, _manager: Manager, event: Message) -> None:
        name = event.get("Event", "")
        for item in list(self._waiters):
            pattern, where, fut = item
            if fut.done():
                self._waiters.remove(item)
            elif fnmatch.fnmatchcase(name, pattern) and where(event):
                fut.set_result(event)
                self._waiters.remove(item)

    async def connect_retrying(self, every: float, log: logging.Logger, what: str = "") -> None:
        """The first login, tried every ``every`` s until Asterisk answers (later ones: the
        client reconnects by itself); each failure is logged as a warning."""
        while True:
            try:
                await self.connect()
                return
            except AmiError as exc:
                log.warning("%s%s; retrying", what, exc)
                await asyncio.sleep(every)

    def close(self) -> None:
        """Disconnect for good: no reconnect follows, whatever state the connection was in."""
        self._logged_in.clear()
        self._booted = False
        self._manager.close()

"""FastAGI server: panoramisk's route table with a header read that cannot spin.

panoramisk 1.4's own handler loops forever when a peer connects and closes (it never checks
for EOF) and freezes the event loop. Here the AGI environment is read with a bounded,
time-limited read (:class:`ivr.agi.protocol.EnvironmentReader`), and replies are parsed by
:func:`ivr.agi.protocol.parse_reply`, which raises on hang-ups and errors instead of
returning error dicts.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from panoramisk.fast_agi import Application

from ivr.agi.channel import AgiChannel
from ivr.agi.protocol import MAX_REPLY_BYTES, AgiProtocolError, EnvironmentReader, call_info
from ivr.channel import CallerHungUp, CallInfo, ChannelError

log = logging.getLogger(__name__)

CallHandler = Callable[[CallInfo, AgiChannel], Awaitable[None]]


class StreamChannel(AgiChannel):
    """AGI over an asyncio stream pair (one FastAGI connection)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        super().__init__()
        self._reader = reader
        self._writer = writer

    async def _write(self, command: str) -> None:
        try:
            self._writer.write(command.encode("utf-8") + b"\n")
            await self._writer.drain()
        except ConnectionError as exc:
            raise CallerHungUp(f"AGI connection lost: {exc}") from None

    async def _close(self) -> None:
        self._writer.close()

    async def _readline(self) -> str:
        try:
            raw = await self._reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise ChannelError("AGI reply too long") from None
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            raise CallerHungUp(f"AGI connection lost: {exc}") from None
        if len(raw) > MAX_REPLY_BYTES:
            raise ChannelError("AGI reply too long")
        return raw.decode("utf-8", errors="replace").rstrip("\r\n")


class FastAgiServer(Application):
    """Routes FastAGI requests (``agi://host:port/<route>``) to call handlers."""

    def __init__(self, header_timeout: float = 5.0):
        super().__init__(loop=asyncio.get_running_loop())
        self.header_timeout = header_timeout
        self._server: asyncio.base_events.Server | None = None
        self._calls: set[asyncio.Task[None]] = set()

    def route(self, path: str, handler: CallHandler) -> None:
        async def endpoint(request: tuple[CallInfo, AgiChannel]) -> None:
            await handler(*request)

        self.add_route(path, endpoint)

    async def read_environment(self, reader: asyncio.StreamReader) -> dict[str, str]:
        parser = EnvironmentReader()
        async with asyncio.timeout(self.header_timeout):
            while not parser.feed(await reader.read(4096)):
                pass
        assert parser.environment is not None
        return parser.environment

    async def handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._calls.add(task)
        try:
            env = await self.read_environment(reader)
            script = env.get("agi_network_script", "")
            endpoint = self._route.get(script)
            if endpoint is None:
                log.error("no FastAGI route %r", script)
                return
            await endpoint((call_info(env), StreamChannel(reader, writer)))
        except (AgiProtocolError, TimeoutError) as exc:
            log.warning("dropped FastAGI connection from %s: %s", writer.get_extra_info("peername"), exc)
        except Exception:
            log.exception("FastAGI handler failed")
        finally:
            self._calls.discard(task)
            writer.close()

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self.handler, host, port, limit=MAX_REPLY_BYTES)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting; let calls in progress finish within ``grace``, then cancel the rest
        (the engine still writes their records; the dialplan's fallback takes the callers)."""
        if self._server:
            self._server.close()
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

"""The :class:`ivr.core.channel.Channel` interface spoken as AGI commands.

Both transports (FastAGI over TCP, process AGI over stdin/stdout) share this class; they only
provide :meth:`AgiChannel._write` and :meth:`AgiChannel._readline`. Once a reply says the caller is gone, the channel is
dead and every later command raises at once: after a hang-up Asterisk's replies can no longer
be trusted to line up with commands.
"""

from __future__ import annotations

import time
from typing import Callable, ClassVar

from ivr.agi.protocol import CommandFailed, Reply, parse_reply, quote
from ivr.core.channel import CallerHungUp, ChannelError

SILENCE = "silence/1"  # GET DATA needs a file even when there is nothing to say


class AgiChannel:
    # (command, seconds from sending it to its reply), told after every reply: `ivr serve`
    # measures its AGI round trips with it (ivr/core/latency.py)
    on_roundtrip: ClassVar[Callable[[str, float], None] | None] = None

    def __init__(self) -> None:
        self.dead = False
        self.commands_sent = 0

    async def _write(self, command: str) -> None:
        raise NotImplementedError

    async def _readline(self) -> str:
        """One reply line without its newline; raise CallerHungUp at end of stream."""
        raise NotImplementedError

    async def _close(self) -> None:
        """End the AGI session: Asterisk then goes on with the dialplan."""
        raise NotImplementedError

    async def release(self) -> None:
        self.dead = True
        await self._close()

    async def _roundtrip(self, command: str) -> str:
        """Send one command line, return the final reply line."""
        await self._write(command)
        while True:
            line = await self._readline()
            if line.startswith("100 "):  # "100 result=0 Trying..." precedes EXEC results
                continue
            if line.startswith("520-"):  # usage text runs until "520 End of proper usage."
                while not line.startswith("520 "):
                    line = await self._readline()
            return line

    async def command(self, command: str) -> Reply:
        if self.dead:
            raise CallerHungUp("channel already hung up")
        try:
            return await self._send(command)
        except CommandFailed as failed:
            # -1 means "failed or hung up" (a missing prompt file looks the same as a hang-up).
            await self._send("CHANNEL STATUS")  # raises CallerHungUp on a dead channel
            raise ChannelError(f"{command.split(' ', 2)[:2]} failed: {failed}") from None

    async def _send(self, command: str) -> Reply:
        self.commands_sent += 1
        sent = time.perf_counter()
        try:
            line = await self._roundtrip(command)
            if AgiChannel.on_roundtrip is not None:
                AgiChannel.on_roundtrip(command, time.perf_counter() - sent)
            return parse_reply(line)
        except CallerHungUp:
            self.dead = True
            raise

    async def stream(self, sound: str, escape_digits: str = "") -> str:
        reply = await self.command(f"STREAM FILE {quote(sound)} {quote(escape_digits)}")
        return reply.digit

    async def get_data(self, sound: str, timeout_ms: int, max_digits: int) -> str:
        reply = await self.command(f"GET DATA {quote(sound or SILENCE)} {int(timeout_ms)} {int(max_digits)}")
        return reply.result  # the digits typed ('' on timeout with none)

    async def wait_for_digit(self, timeout_ms: int) -> str:
        return (await self.command(f"WAIT FOR DIGIT {int(timeout_ms)}")).digit

    async def say_digits(self, digits: str, escape_digits: str = "") -> str:
        if not digits or not all(c in "0123456789*#" for c in digits):
            raise ChannelError(f"SAY DIGITS needs digits, got {len(digits)} other characters")
        return (await self.command(f"SAY DIGITS {digits} {quote(escape_digits)}")).digit

    async def say_number(self, number: int, escape_digits: str = "") -> str:
        return (await self.command(f"SAY NUMBER {int(number)} {quote(escape_digits)}")).digit

    async def set_variable(self, name: str, value: str) -> None:
        await self.command(f"SET VARIABLE {name} {quote(value)}")

    async def set_variables(self, variables: dict[str, str]) -> None:
        # MSet takes name=value pairs separated by commas; a comma inside a value is escaped.
        pairs = ",".join(f"{name}={value.replace(',', chr(92) + ',')}" for name, value in variables.items())
        await self.exec("MSet", pairs)

    async def get_variable(self, name: str) -> str | None:
        reply = await self.command(f"GET VARIABLE {quote(name)}")
        return reply.data if reply.result == "1" else None

    async def exec(self, application: str, args: str = "") -> str:
        return (await self.command(f"EXEC {application} {quote(args)}")).result

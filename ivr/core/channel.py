"""What the hotline logic may do to a live call, independent of the protocol.

The flow runner talks only to :class:`Channel`; the FastAGI adapter (panoramisk) and the
process-AGI adapter (pyst2) implement it. A caller hanging up surfaces as one exception,
:class:`CallerHungUp`, raised by the adapter and handled in one place by the runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class CallerHungUp(Exception):
    """The caller hung up (or the channel went away) while the engine was talking to it."""


class ChannelError(Exception):
    """Asterisk refused or failed a command (not a hang-up)."""


@dataclass(frozen=True)
class CallInfo:
    """The facts Asterisk hands over when a call reaches the engine."""

    unique_id: str
    channel: str
    dialed: str  # the number the citizen dialed (12345, 12333, an old department number…)
    caller: str  # caller id number; mask before logging (ivr.core.masking)
    language: str = "zh"
    arguments: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)


class InMemoryVariables:
    """Channel variables kept in a dict: for channels without Asterisk (simulator, tests)."""

    def __init__(self) -> None:
        self.variables: dict[str, str] = {}

    async def set_variable(self, name: str, value: str) -> None:
        self.variables[name] = value

    async def set_variables(self, variables: dict[str, str]) -> None:
        for name, value in variables.items():
            await self.set_variable(name, value)

    async def get_variable(self, name: str) -> str | None:
        return self.variables.get(name)

    async def release(self) -> None:
        pass


class Channel(Protocol):
    """One live call. Digits are returned as strings ('' = none/timeout)."""

    async def stream(self, sound: str, escape_digits: str = "") -> str:
        """Play ``sound``; return the digit that interrupted it, or ''."""

    async def get_data(self, sound: str, timeout_ms: int, max_digits: int) -> str:
        """Play ``sound`` (interruptible) then collect up to ``max_digits`` digits.

        One AGI round trip. ``#`` ends input early and is not returned.
        """

    async def wait_for_digit(self, timeout_ms: int) -> str: ...

    async def say_digits(self, digits: str, escape_digits: str = "") -> str: ...

    async def say_number(self, number: int, escape_digits: str = "") -> str: ...

    async def set_variable(self, name: str, value: str) -> None: ...

    async def set_variables(self, variables: dict[str, str]) -> None:
        """Set several variables in one step, in order (one AGI round trip)."""

    async def get_variable(self, name: str) -> str | None: ...

    async def exec(self, application: str, args: str = "") -> str: ...

    async def release(self) -> None:
        """Hand the call back to the dialplan now; no command may follow."""


def endpoint_of(channel: str) -> str:
    """``PJSIP/agent1001-0000001a`` → ``agent1001``; ``PJSIP/agent1001`` (an interface) too."""
    name = channel.split("/", 1)[-1]
    head, sep, tail = name.rpartition("-")
    return head if sep and len(tail) == 8 else name

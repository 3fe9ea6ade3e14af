"""What every node type shares: the pydantic base, the registry, edges, steps and call state.

A node module declares one model (``extra="forbid"``, frozen) with a ``type`` literal, registers
it with :func:`node_type`, and implements two things:

* ``edges(timing)``: where it can go next and the worst-case seconds spent in it before each
  move. The validator reads the targets, the compliance lint reads the seconds, so one
  description of the node serves both and they cannot drift apart.
* ``async run(ctx) -> Step``: one step of a live call (one AGI round trip where possible).

Terminal nodes (queue, transfer, hangup, subflow) have no edges and say how they end instead.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Awaitable, Callable, ClassVar, Literal, Protocol

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from ivr.core.channel import CallInfo, Channel
from ivr.core.route import Route
from queues.sessions import active_session

if TYPE_CHECKING:
    from ivr.config import Settings
    from ivr.core.calendar import HolidayCalendar
    from tickets.model import Ticket


class NodeModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


def _seconds(value: Any) -> Any:
    """Accept ``3``, ``2.5``, ``"3s"``, ``"1.5s"`` or ``"800ms"``; admins write all of them."""
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s)?\s*", value)
        if not m:
            raise ValueError(f"{value!r} is not a duration (write e.g. 3s, 1.5s or 800ms)")
        number = float(m.group(1))
        return number / 1000 if m.group(2) == "ms" else number
    return value


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


Regex = Annotated[str, AfterValidator(_regex), Field(description="regular expression the whole value must match")]

Seconds = Annotated[float, BeforeValidator(_seconds), Field(ge=0, le=600)]
"""A duration in seconds; YAML may say ``3s`` or ``800ms``."""

Texts = Annotated[tuple[str, ...], BeforeValidator(_one_or_many)]
"""One string or a list of strings."""

PromptId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="prompt id in prompts/catalog.yaml")]
PromptIds = Annotated[tuple[PromptId, ...], BeforeValidator(_one_or_many)]
Target = Annotated[str, Field(description="id of another node in this flow")]
Digits = Annotated[str, Field(pattern=r"^[0-9*#]$")]
VarName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")]


@dataclass(frozen=True)
class Edge:
    """A possible move from a node, as the validator and the lint see it."""

    label: str  # "next", "key 1", "exhausted", "case 1", "else" — printed in lint paths
    target: str
    path: tuple[str | int, ...]  # where the target is written, relative to the node
    seconds: float  # worst-case time spent in the node before taking this edge
    limit: int | None = None  # taken at most this many times per call (menu visits, goto max_times)


class Timing(Protocol):
    """Worst-case durations the lint uses (see :mod:`ivr.flows.lint`)."""

    def prompt(self, prompt_id: str) -> float: ...

    def digits(self, count: int) -> float: ...

    def max_length(self, var: str) -> int: ...

    def explanation(self, matter: str) -> float: ...

    def session_prompt(self) -> float: ...


@dataclass(frozen=True)
class Step:
    """What one node step decided: a next node, a route, or another flow."""

    goto: str | None = None
    route: Route | None = None
    flow: str | None = None
    outcome: str = ""  # for the call record: "key 1", "timeout", "case 2", …


class Prompts(Protocol):
    def sound(self, prompt_id: str) -> str: ...


class TicketLookup(Protocol):
    """Finds a ticket for the progress query (办理进度自助查询); the ticket store implements it.

    ``number`` is a ticket number's digits. The ``ticket_query`` node passes exactly what the
    caller keyed: digits only, ``#`` removed, never dashes. Ticket numbers are written with
    dashes (``20261201-12345-00017``), so an implementation compares them with the dashes
    removed (:func:`keyed_number`) and accepts the written form too. It returns ``None`` when
    no ticket has that number and raises when it cannot tell (the store is down): the node
    then says the query service is unavailable. Whether the ticket is the caller's own is
    the node's check, not the lookup's.
    """

    async def find(self, number: str) -> "Ticket | None": ...


OWN_TICKETS_WAIT = 0.3
"""Seconds a flow waits at most for the engine's look-up of the caller's recent tickets (a
``branch`` on ``open_ticket``, a ``ticket_query`` with ``own_first``); the lint counts them.
The look-up starts with the call, so it is usually done long before: past it, no tickets."""

CallerTickets = Callable[[], Awaitable[list[tuple[str, bool]]]]
"""The caller's recent tickets (number, case still open), oldest first: the engine's look-up."""


def keyed_number(number: str) -> str:
    """A ticket number as a caller keys it: ``20261201-12345-00017`` → ``202612011234500017``."""
    return number.replace("-", "")


@dataclass
class CallContext:
    """The small per-call state a node may read or change; behaviour lives in the nodes."""

    call: CallInfo
    channel: Channel
    settings: "Settings"
    prompts: Prompts
    calendar: "HolidayCalendar"
    now: Callable[[], datetime]
    node_id: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    typeahead: str = ""  # a digit that interrupted a prompt, for the next menu
    # Channel variables to set with the route: the dialplan reads them only after the engine
    # returns, so they ride along in the route's single round trip.
    channel_variables: dict[str, str] = field(default_factory=dict)
    tickets: TicketLookup | None = None  # for ticket_query; None: the query says it is unavailable
    caller_tickets: CallerTickets | None = None  # None: no look-up (no open ticket is known)
    # The leader session (领导接听) a queue node with ``session: true`` marked the call with: the
    # engine's own reading of config/sessions.yaml, never a flow variable (no caller data).
    leader_session: str = ""
    _recent: list[tuple[str, bool]] | None = field(default=None, init=False, repr=False)

    async def recent_tickets(self) -> list[tuple[str, bool]]:
        """The caller's recent tickets (number, open), oldest first, asked once per call; empty
        without a look-up, or when it fails or takes longer than :data:`OWN_TICKETS_WAIT`."""
        if self._recent is None:
            self._recent = []
            if self.caller_tickets is not None:
                try:
                    async with asyncio.timeout(OWN_TICKETS_WAIT):
                        self._recent = list(await self.caller_tickets())
                except Exception:  # noqa: BLE001 - late or failed: the caller is simply not offered it
                    self._recent = []
        return self._recent

    def session_now(self) -> str | None:
        """The leader session on now for this call's line (:mod:`queues.sessions`), if any."""
        return active_session(self.settings.sessions, self.now(), self.call.dialed)

    def sound(self, prompt_id: str) -> str:
        return self.prompts.sound(prompt_id)

    def press(self, digits: str) -> str:
        if digits:
            self.keys.append(digits)
        return digits

    def count_visit(self) -> int:
        """Count one more entry into the current node; return the count (1 = first)."""
        self.counters[self.node_id] = self.counters.get(self.node_id, 0) + 1
        return self.counters[self.node_id]

    def expand(self, text: str) -> str:
        """Replace ``${name}`` with a variable, the dialed number or the caller number."""
        builtins = {"dialed": self.call.dialed, "caller": self.call.caller}
        return re.sub(r"\$\{([a-z_][a-z0-9_]*)\}", lambda m: self.variables.get(m[1], builtins.get(m[1], "")), text)

    async def play(self, prompt_id: str | None) -> None:
        if prompt_id:
            await self.channel.stream(self.sound(prompt_id))


NODE_TYPES: dict[str, type["Node"]] = {}


def node_type(cls: type["Node"]) -> type["Node"]:
    """Register a node model under its ``type`` literal."""
    name = cls.model_fields["type"].default
    NODE_TYPES[name] = cls
    return cls


class Node(NodeModel):
    """Base of every node model."""

    type: str
    note: str = Field("", description="free text for the admin; ignored by the engine")

    ends: ClassVar[Literal["human", "hangup", "subflow"] | None] = None

    def edges(self, timing: Timing) -> list[Edge]:
        return []

    def prompt_refs(self) -> list[tuple[tuple[str | int, ...], str]]:
        """(path relative to the node, prompt id) for every prompt the node names."""
        out: list[tuple[tuple[str | int, ...], str]] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name.endswith("prompt") and isinstance(value, str) and value:
                out.append(((name,), value))
            elif name == "prompts":
                out.extend(((name, i), p) for i, p in enumerate(value))
        return out

    def end_seconds(self, timing: Timing) -> float:
        """Worst-case seconds a terminal node spends before the call leaves the engine."""
        return 0.0

    def human_escape(self) -> str | None:
        """Where the human key leads at any moment inside this node, if it does (a self-service
        node). A menu key into such a node is the caller's choice to serve themselves: the lint
        stops counting there, and checks the escape reaches a human."""
        return None

    def config_refs(self) -> list[tuple[tuple[str | int, ...], str, str]]:
        """(path, section, name) for names that must exist in config (queues, sub-centers)."""
        return []

    async def run(self, ctx: CallContext) -> Step:  # pragma: no cover - every type overrides
        raise NotImplementedError


class Linear(Node):
    """A node that always continues to ``next``."""

    next: Target

    def edges(self, timing: Timing) -> list[Edge]:
        return [Edge("next", self.next, ("next",), self.seconds(timing))]

    def seconds(self, timing: Timing) -> float:
        return 0.0


class Terminal(Node):
    """A node that ends the flow: optionally says one prompt, then hands the call a route."""

    prompt: PromptId | None = Field(None, description="said before the call leaves the engine")

    def end_seconds(self, timing: Timing) -> float:
        return timing.prompt(self.prompt) if self.prompt else 0.0

    def route(self, settings: "Settings") -> Route:  # pragma: no cover - every type overrides
        raise NotImplementedError

    async def run(self, ctx: CallContext) -> Step:
        await ctx.play(self.prompt)
        return Step(route=self.route(ctx.settings), outcome="route")

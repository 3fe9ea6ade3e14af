"""Walk a compiled flow with typed keys and no phone: the admin's test before publishing.

The simulator is the real runner over :class:`ScriptedChannel`, a fake channel that takes the
caller's input from a script (or a prompt on the terminal) and writes what the caller would
hear, with a virtual clock that advances by each prompt's duration and each wait's timeout —
so the times printed are the same worst-case arithmetic the lint uses.

Script entries, one per input the flow asks for: digits (``1``, ``110101199001011234``),
``-`` or nothing for silence (the wait times out), ``hangup`` for the caller hanging up.
When the script runs out the caller stays silent.

The progress query (``ticket_query``) looks numbers up in :class:`InMemoryTickets`; unless
told otherwise the simulator holds one demo ticket of the simulated caller
(:data:`DEMO_TICKET_NUMBER`, keyed ``202612011234500017``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable, Iterable, Iterator

from ivr.core.channel import CallerHungUp, CallInfo, InMemoryVariables
from ivr.flows.base import TicketLookup, keyed_number
from ivr.flows.lint import CatalogTiming, timing_for
from ivr.flows.flowset import FlowSet
from ivr.flows.progress import TicketQuery
from ivr.flows.sim_words import EN, Words
from ivr.flows.runner import CallRecord, run_call
from ivr.core.route import HangupRoute, QueueRoute, Route, TransferRoute
from tickets.model import Deadline, Ticket

TYPING_SECONDS = 1.0  # a caller who answers is assumed to take this long after the prompt
HANGUP = "hangup"
Ask = Callable[[str], str | None]  # question → answer; None = the caller hangs up


def script(entries: Iterable[str]) -> Ask:
    """An ``Ask`` that answers from a list, then stays silent."""
    it: Iterator[str] = iter(entries)

    def ask(_question: str) -> str | None:
        answer = next(it, "-").strip()
        return None if answer == HANGUP else answer

    return ask


class InMemoryTickets:
    """A :class:`~ivr.flows.base.TicketLookup` over a dict, for the simulator and tests."""

    def __init__(self, tickets: Iterable[Ticket] = ()):
        self.tickets = {keyed_number(t.number): t for t in tickets}

    async def find(self, number: str) -> Ticket | None:
        return self.tickets.get(keyed_number(number))


DEMO_TICKET_NUMBER = "20261201-12345-00017"


def demo_ticket(caller: str) -> Ticket:
    """A consultation received on 2026-12-01: due in 3 working days, on 2026-12-04."""
    return Ticket(
        linkedid="simulated.1",
        line="12345",
        caller=caller,
        received="2026-12-01T09:30:00+08:00",
        number=DEMO_TICKET_NUMBER,
        line_mode="main",
        request_type="consult",
        deadline=Deadline(due="2026-12-04", rule="3 working days"),
    )


class ScriptedChannel(InMemoryVariables):
    """A :class:`~ivr.core.channel.Channel` that answers from ``ask`` and reports to ``say``."""

    def __init__(self, flows: FlowSet, ask: Ask, say: Callable[[str], None], timing: CatalogTiming,
                 words: Words = EN):
        self.ask, self.say, self.timing, self.words = ask, say, timing, words
        self.catalog = flows.catalog
        self.prompt_of = {flows.catalog.sound(pid): pid for pid in flows.catalog.prompts}
        self.clock = 0.0
        super().__init__()

    def now(self) -> float:
        return self.clock

    def _emit(self, kind: str, **fields: object) -> None:
        self.say(f"{self.clock:6.1f}s  {self.words[kind].format(**fields)}")

    def _play(self, sound: str) -> None:
        pid = self.prompt_of.get(sound)
        if pid is None:
            self._emit("play_sound", sound=sound)
            return
        seconds = self.timing.prompt(pid)
        estimated = self.words["estimated"] if pid in self.timing.estimated else ""
        self._emit("play", pid=pid, text=self.catalog.prompts[pid].text_zh, seconds=seconds, estimated=estimated)
        self.clock += seconds

    def _input(self, timeout_ms: int, max_digits: int) -> str:
        timeout = timeout_ms / 1000
        self._emit("wait_digits" if max_digits > 1 else "wait", seconds=timeout, digits=max_digits)
        answer = self.ask(f"keys (up to {max_digits}, empty = silence)> ")
        if answer is None:
            self._emit("hangs_up")
            raise CallerHungUp()
        digits = "".join(c for c in answer.split("#")[0] if c in "0123456789*")[:max_digits]
        if digits:
            self.clock += TYPING_SECONDS
            self._emit("presses", digits=digits)
        else:
            self.clock += timeout * max_digits
            self._emit("timeout")
        return digits

    async def stream(self, sound: str, escape_digits: str = "") -> str:
        self._play(sound)
        return ""

    async def get_data(self, sound: str, timeout_ms: int, max_digits: int) -> str:
        self._play(sound)
        return self._input(timeout_ms, max_digits)

    async def wait_for_digit(self, timeout_ms: int) -> str:
        return self._input(timeout_ms, 1)

    async def say_digits(self, digits: str, escape_digits: str = "") -> str:
        self._emit("say_digits", digits=digits)
        self.clock += self.timing.digits(len(digits))
        return ""

    async def say_number(self, number: int, escape_digits: str = "") -> str:
        self._emit("say_number", number=number)
        self.clock += self.timing.digits(len(str(number)))
        return ""

    async def exec(self, application: str, args: str = "") -> str:
        self._emit("exec", application=application, args=args)
        return "0"


def describe_route(route: Route, words: Words = EN, title: Callable[[str], str] = str) -> str:
    """Where the call went; ``title`` names queues and sub-centers as staff know them."""
    if isinstance(route, QueueRoute):
        return words["queue"].format(queue=title(route.queue), priority=route.priority)
    if isinstance(route, TransferRoute):
        kind = "closed" if route.closed else "transfer"
        return words[kind].format(trunk=title(route.trunk), fallback=title(route.fallback_queue), number=route.number,
                                  ring=route.ring_timeout)
    assert isinstance(route, HangupRoute)
    return words["hangup"]


async def simulate(
    flows: FlowSet,
    dialed: str,
    ask: Ask,
    say: Callable[[str], None],
    *,
    caller: str = "13800000000",
    at: datetime | None = None,
    tickets: TicketLookup | None = None,
    words: Words = EN,
) -> CallRecord:
    """Run one simulated call and report it through ``say``, line by line, in ``words``'s language
    (with :data:`~ivr.flows.sim_words.ZH`, queues and sub-centers by their display names).

    ``tickets`` is what a progress query finds; by default one demo ticket of ``caller``.
    """
    matters = {m: x.prompt for m, x in flows.settings.out_of_scope.items()}
    channel = ScriptedChannel(flows, ask, say, timing_for(flows.catalog, flows.flows, matters), words)
    call = CallInfo(unique_id="simulated", channel="Local/simulated", dialed=dialed, caller=caller)
    started = at or datetime.now().astimezone()
    say(words["start"].format(dialed=dialed, caller=caller, at=started, version=flows.version))
    for problem in flows.lint_problems:
        say(words["lint"].format(problem=problem))
    if tickets is None:
        tickets = InMemoryTickets([demo_ticket(caller)])
        if any(isinstance(n, TicketQuery) for f in flows.flows.values() for n in f.nodes.values()):
            say(words["demo"].format(number=DEMO_TICKET_NUMBER, caller=caller, key=keyed_number(DEMO_TICKET_NUMBER)))
    record = await run_call(flows, call, channel, now=lambda: started, clock=channel.now, tickets=tickets)
    say(words["path"].format(path=" → ".join(f"{v.flow}/{v.node}" for v in record.visits) or words["no_path"]))
    keys = ",".join(record.keys) or words["no_keys"]
    if record.hung_up:
        say(words["hung_up"].format(seconds=channel.clock, keys=keys))
    else:
        title = str if words is EN else _titles(flows)
        say(words["routed"].format(route=describe_route(record.route, words, title), seconds=channel.clock, keys=keys))
    if record.error:
        say(words["error"].format(error=record.error))
    return record


def _titles(flows: FlowSet) -> Callable[[str], str]:
    """Queue and sub-center names → their titles (the wallboard's)."""
    titles = {**{n: s.title for n, s in flows.settings.subcenters.items()},
              **{n: q.title for n, q in flows.settings.queues.items()}}
    return lambda name: titles.get(name) or name

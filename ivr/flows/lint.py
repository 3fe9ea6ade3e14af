"""Compliance lint: how long, at worst, from answer to a human, and can ``0`` always get there.

The national benchmark is "answered within 15 s" and GB/T 33358 discourages menus between a
caller and a seat. For every flow this walks every path to a queue or transfer, respecting
the per-call limits on menus and gotos, and keeps the slowest. A path's seconds are the
nodes' own worst cases (see each node's ``edges``): whole prompts (a caller may not barge
in), timeouts × digits × attempts, retry notices. A flow with ``budget`` fails when its worst
path exceeds it, and the path is printed node by node.

A menu key into a self-service node whose human key (0) reaches a seat at any moment (the
progress query, ``ticket_query`` with ``on_human``) ends the count: the caller chose to serve
themselves and may leave for a seat whenever they like; that escape must reach a human.

Prompt durations come from the catalog (the prompt build's manifest). A prompt without one
is estimated from its Mandarin text at :data:`CHARS_PER_SECOND` characters per second — a
slow, announcer-like pace, so the estimate errs long — and reported as estimated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

from ivr.flows.base import Edge
from ivr.flows.collect import Collect
from ivr.flows.compiler import Flow
from ivr.flows.menu import Menu
from ivr.core.yamlsource import SourceError

if TYPE_CHECKING:
    from ivr.prompts.catalog import PromptCatalog

CHARS_PER_SECOND = 4.0  # Mandarin read slowly and clearly
MIN_PROMPT_SECONDS = 1.0
DIGIT_SECONDS = 0.8  # one digit of SAY DIGITS, with its pause
DEFAULT_VAR_DIGITS = 18  # a variable no collect fills is assumed to be as long as an ID number
MAX_STATES = 200_000


class CatalogTiming:
    """Worst-case durations from a prompt catalog; remembers which ones it had to estimate."""

    def __init__(self, catalog: "PromptCatalog", var_lengths: Mapping[str, int] | None = None,
                 explanations: Mapping[str, str] | None = None, session_prompts: Iterable[str] = ()):
        self.catalog = catalog
        self.var_lengths = dict(var_lengths or {})
        self.explanations = dict(explanations or {})  # out-of-scope matter → its prompt id
        self.session_prompts = tuple(session_prompts)  # every configured leader session's announcement
        self.estimated: dict[str, float] = {}

    def prompt(self, prompt_id: str) -> float:
        known = self.catalog.duration(prompt_id) if self.catalog.has(prompt_id) else None
        if known is not None:
            return known
        text = self.catalog.prompts[prompt_id].text_zh if self.catalog.has(prompt_id) else ""
        seconds = max(MIN_PROMPT_SECONDS, round(len(text) / CHARS_PER_SECOND, 2))
        self.estimated[prompt_id] = seconds
        return seconds

    def digits(self, count: int) -> float:
        return count * DIGIT_SECONDS

    def max_length(self, var: str) -> int:
        return self.var_lengths.get(var, DEFAULT_VAR_DIGITS)

    def explanation(self, matter: str) -> float:
        """An out-of-scope matter's explanation (0 for a matter the config lacks: refused anyway)."""
        prompt = self.explanations.get(matter)
        return self.prompt(prompt) if prompt else 0.0

    def session_prompt(self) -> float:
        """The longest announcement of any configured leader session (0 with none configured)."""
        return max((self.prompt(p) for p in self.session_prompts), default=0.0)


def timing_for(catalog: "PromptCatalog", flows: Mapping[str, Flow] | Flow,
               explanations: Mapping[str, str] | None = None, session_prompts: Iterable[str] = ()) -> CatalogTiming:
    """A timing that knows how long each collected variable can be (and, given
    ``explanations``, each out-of-scope matter's prompt; given ``session_prompts``, the leader
    sessions' announcements)."""
    all_flows = [flows] if isinstance(flows, Flow) else list(flows.values())
    lengths: dict[str, int] = {}
    for flow in all_flows:
        for node in flow.nodes.values():
            if isinstance(node, Collect):
                lengths[node.var] = max(lengths.get(node.var, 0), node.max_digits)
    return CatalogTiming(catalog, lengths, explanations, session_prompts)


@dataclass(frozen=True)
class PathStep:
    flow: str
    node: str
    label: str  # the way out taken, or the route for the last step
    seconds: float


@dataclass(frozen=True)
class FlowLint:
    flow: str
    worst_seconds: float | None  # None: no path reaches a human
    worst_path: tuple[PathStep, ...]
    budget: float | None

    @property
    def over_budget(self) -> bool:
        return self.budget is not None and (self.worst_seconds is None or self.worst_seconds > self.budget + 1e-9)

    def describe_path(self) -> str:
        return " → ".join(f"{s.node}[{s.label}] {s.seconds:g}s" for s in self.worst_path)


Worst = tuple[float, tuple[PathStep, ...]] | None


def lint_flows(flows: Mapping[str, Flow], timing: CatalogTiming) -> tuple[dict[str, FlowLint], list[SourceError]]:
    """Worst path per flow, plus located errors for budgets and the human key."""
    memo: dict[str, Worst] = {}
    reports: dict[str, FlowLint] = {}
    errors: list[SourceError] = []
    human = _AlwaysHuman(flows)
    for name, flow in flows.items():
        try:
            worst = _flow_worst(flows, name, timing, memo)
        except _TooComplex:
            errors.append(flow.error(None, (), "too many paths to bound the time to a human; simplify the loops"))
            continue
        seconds, path = worst if worst else (None, ())
        report = FlowLint(name, seconds, path, flow.header.budget)
        reports[name] = report
        if report.over_budget:
            where = flow.source.where(("budget",))
            got = "no path reaches a human" if seconds is None else f"worst case {seconds:g}s"
            errors.append(SourceError(
                where, f"flow {name!r}: {got} to a human exceeds budget {report.budget:g}s: {report.describe_path()}"))
        errors.extend(_human_key_errors(flow, human))
    return reports, errors


class _TooComplex(Exception):
    pass


def _flow_worst(flows: Mapping[str, Flow], name: str, timing: CatalogTiming, memo: dict[str, Worst]) -> Worst:
    if name not in memo:
        memo[name] = _PathSearch(flows, flows[name], timing, lambda sub: _flow_worst(flows, sub, timing, memo)).run()
    return memo[name]


def worst_from(flows: Mapping[str, Flow], name: str, start: str, timing: CatalogTiming) -> Worst:
    """The worst path of flow ``name`` entered at node ``start`` (a merged number's
    ``after_notice``); None when no path reaches a human. Raises nothing: too complex a flow
    is reported by :func:`lint_flows` already, and counts as reaching no human here."""
    memo: dict[str, Worst] = {}
    search = _PathSearch(flows, flows[name], timing, lambda sub: _flow_worst(flows, sub, timing, memo))
    try:
        return search.worst(start, ())
    except _TooComplex:
        return None


class _PathSearch:
    """Longest path to a human end; state = (node, uses of each limited node so far)."""

    def __init__(self, flows: Mapping[str, Flow], flow: Flow, timing: CatalogTiming, subflow: Callable[[str], Worst]):
        self.flow, self.timing, self.subflow = flow, timing, subflow
        self.edges = {nid: node.edges(timing) for nid, node in flow.nodes.items()}
        self.memo: dict[tuple[str, tuple[tuple[str, int], ...]], Worst] = {}

    def run(self) -> Worst:
        return self.worst(self.flow.start, ())

    def worst(self, nid: str, used: tuple[tuple[str, int], ...]) -> Worst:
        key = (nid, used)
        if key in self.memo:
            return self.memo[key]
        if len(self.memo) > MAX_STATES:
            raise _TooComplex
        node = self.flow.nodes[nid]
        result: Worst = None
        if node.ends == "human":
            result = node.end_seconds(self.timing), (PathStep(self.flow.name, nid, node.type, node.end_seconds(self.timing)),)
        elif node.ends == "subflow":
            sub = self.subflow(node.flow)  # type: ignore[attr-defined]
            if sub:
                result = sub[0], (PathStep(self.flow.name, nid, f"flow {node.flow}", 0.0),) + sub[1]  # type: ignore[attr-defined]
        # A node whose limit is used up goes straight, silently, to its unlimited way out.
        spent = any(e.limit is not None and dict(used).get(nid, 0) >= e.limit for e in self.edges[nid])
        for e in self.edges[nid]:
            counts = dict(used)
            if e.limit is not None:
                if spent:
                    continue
                counts[nid] = counts.get(nid, 0) + 1
            seconds = 0.0 if spent else e.seconds
            rest = self._self_service(e) or self.worst(e.target, tuple(sorted(counts.items())))
            if rest and (result is None or seconds + rest[0] > result[0]):
                result = seconds + rest[0], (PathStep(self.flow.name, nid, e.label, seconds),) + rest[1]
        self.memo[key] = result
        return result


    def _self_service(self, edge: Edge) -> Worst:
        """A menu key into a node with a human escape: the path ends with the caller's choice."""
        if edge.path[:1] != ("keys",) or self.flow.nodes[edge.target].human_escape() is None:
            return None
        return 0.0, (PathStep(self.flow.name, edge.target, "self-service, 0 reaches a human", 0.0),)


class _AlwaysHuman:
    """Does every path from a node end with a human (queue/transfer, or a flow that does)?"""

    def __init__(self, flows: Mapping[str, Flow]):
        self.flows = flows
        self.memo: dict[tuple[str, str], bool] = {}

    def flow(self, name: str) -> bool:
        flow = self.flows[name]
        return self.node(flow, flow.start)

    def node(self, flow: Flow, start: str) -> bool:
        key = (flow.name, start)
        if key not in self.memo:
            self.memo[key] = True  # cycles are bounded and exit elsewhere; assume, then check
            seen, todo, ok = set(), [start], True
            while todo and ok:
                nid = todo.pop()
                if nid in seen:
                    continue
                seen.add(nid)
                node = flow.nodes[nid]
                if node.ends == "hangup":
                    ok = False
                elif node.ends == "subflow":
                    ok = self.flow(node.flow)  # type: ignore[attr-defined]
                todo.extend(e.target for e in node.edges(_ZERO))
            self.memo[key] = ok
        return self.memo[key]


class _ZeroTiming:
    def prompt(self, prompt_id: str) -> float:
        return 0.0

    def digits(self, count: int) -> float:
        return 0.0

    def max_length(self, var: str) -> int:
        return 0

    def explanation(self, matter: str) -> float:
        return 0.0

    def session_prompt(self) -> float:
        return 0.0


_ZERO = _ZeroTiming()


def _human_key_errors(flow: Flow, human: _AlwaysHuman) -> list[SourceError]:
    key = flow.header.human_key
    if key is None:
        return []
    errors = []
    for nid, node in flow.nodes.items():
        escape = node.human_escape()
        if escape is not None and not human.node(flow, escape):
            errors.append(flow.error(nid, ("on_human",),
                                     f"{node.type} {nid!r}: key {key} can end without a human (a hangup is reachable from {escape!r})"))
        if not isinstance(node, Menu):
            continue
        target = node.choices().get(key)
        if target is None:
            errors.append(flow.error(nid, ("keys",), f"menu {nid!r}: key {key} must lead to a human (human_key); it is not mapped"))
        elif not human.node(flow, target):
            errors.append(flow.error(nid, ("keys", key),
                                     f"menu {nid!r}: key {key} can end without a human (a hangup is reachable from {target!r})"))
    return errors


"""Whole-flow checks that no single node can make: references and the shape of the graph.

Refused, each with its location: a target that names no node, a node the start cannot reach,
a node from which no path ever ends, a loop that no bounded counter stops, a prompt id the
catalog lacks, a queue or sub-center the config lacks, a one-key-to-human queue (``one_key``)
that anything other than a menu key leads to.

Loops: an edge with a ``limit`` (a menu's or collect's ``max_visits``, a goto's ``max_times``)
can only be taken that many times per call. Remove those edges; whatever cycle is left can
spin forever and is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable

from ivr.flows.base import Edge, Timing
from ivr.flows.compiler import Flow, suggest
from ivr.flows.menu import Menu
from ivr.flows.queue import Queue
from ivr.core.yamlsource import SourceError

if TYPE_CHECKING:
    from ivr.config import Settings
    from ivr.prompts.catalog import PromptCatalog


def check_flow(flow: Flow, settings: "Settings", catalog: "PromptCatalog", timing: Timing) -> list[SourceError]:
    """Every reference and graph problem in ``flow``; empty when it is sound."""
    errors = list(_reference_errors(flow, settings, catalog))
    edges = {nid: node.edges(timing) for nid, node in flow.nodes.items()}
    for nid, out in edges.items():
        for e in out:
            if e.target not in flow.source.data["nodes"]:
                errors.append(flow.error(nid, e.path, f"{e.target!r} is not a node in this flow{suggest(e.target, flow.nodes)}"))
    if len(flow.nodes) != len(flow.source.data["nodes"]) or errors:
        return errors  # graph checks on a partial graph would only repeat the errors above
    errors.extend(_one_key_errors(flow, edges))
    reachable = _closure([flow.start], lambda n: (e.target for e in edges[n]))
    for nid in flow.nodes:
        if nid not in reachable:
            errors.append(flow.error(nid, (), f"node {nid!r} is unreachable from the start {flow.start!r}", at_key=True))
    ends = {nid for nid, node in flow.nodes.items() if node.ends}
    into: dict[str, list[str]] = {nid: [] for nid in flow.nodes}
    for nid, out in edges.items():
        for e in out:
            into[e.target].append(nid)
    can_end = _closure(ends, lambda n: into[n])
    for nid in flow.nodes:
        if nid in reachable and nid not in can_end:
            errors.append(flow.error(nid, (), f"no path from node {nid!r} ever ends (add a queue, transfer or hangup)", at_key=True))
    unbounded = {n: [e.target for e in edges[n] if e.limit is None] for n in flow.nodes if n in reachable and n in can_end}
    for cycle in _cycles(unbounded):
        first = min(cycle, key=list(flow.nodes).index)
        shown = " → ".join(_rotate(cycle, first) + [first])
        errors.append(flow.error(first, (), f"unbounded loop {shown}: put a menu or a goto with max_times in it", at_key=True))
    return errors


def _reference_errors(flow: Flow, settings: "Settings", catalog: "PromptCatalog") -> Iterable[SourceError]:
    for nid, node in flow.nodes.items():
        for path, prompt_id in node.prompt_refs():
            if not catalog.has(prompt_id):
                yield flow.error(nid, path, f"prompt {prompt_id!r} is not in the prompt catalog{suggest(prompt_id, catalog.prompts)}")
        for path, section, name in node.config_refs():
            known = getattr(settings, section)
            if name not in known:
                what, file = {"queues": ("queue", "queues"), "out_of_scope": ("out-of-scope matter", "outofscope")}.get(
                    section, ("sub-center", section))
                yield flow.error(nid, path, f"{what} {name!r} is not defined in config/{file}.yaml{suggest(name, known)}")


def _one_key_errors(flow: Flow, edges: dict[str, list[Edge]]) -> Iterable[SourceError]:
    """A ``one_key`` queue raises the priority of whoever reaches it, so it must be reached only
    by pressing a menu key for it (or the human key of a self-service node's ``on_human``): not as
    the start, not after a timeout, not from another node."""
    one_key = {nid for nid, node in flow.nodes.items() if isinstance(node, Queue) and node.one_key}
    if flow.start in one_key:
        yield flow.error(flow.start, ("one_key",), f"one-key queue {flow.start!r} is the flow's start: only a menu key may lead to it")
    for nid, out in edges.items():
        for e in out:
            pressed = e.path[:1] == ("keys",) if isinstance(flow.nodes[nid], Menu) else e.path == ("on_human",)
            if e.target in one_key and not pressed:
                yield flow.error(nid, e.path, f"{e.label} leads to one-key queue {e.target!r}: only a menu key may "
                                 "(a caller who pressed nothing did not choose 一键转人工)")


def _closure(seeds: Iterable[str], step: Callable[[str], Iterable[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(seeds)
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(step(n))
    return seen


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components that contain a cycle (Tarjan), nodes in DFS order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(n: str) -> None:
        index[n] = low[n] = len(index)
        stack.append(n)
        for m in graph[n]:
            if m not in graph:
                continue
            if m not in index:
                visit(m)
                low[n] = min(low[n], low[m])
            elif m in stack:
                low[n] = min(low[n], index[m])
        if low[n] == index[n]:
            component = []
            while True:
                m = stack.pop()
                component.append(m)
                if m == n:
                    break
            if len(component) > 1 or n in graph[n]:
                out.append(sorted(component, key=index.__getitem__))

    for n in graph:
        if n not in index:
            visit(n)
    return out


def _rotate(cycle: list[str], first: str) -> list[str]:
    i = cycle.index(first)
    return cycle[i:] + cycle[:i]


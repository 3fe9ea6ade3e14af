"""The layout's own rules (issue 18): every module imports on its own, and no import cycle.

The one-way layers and the independence of sibling features are import-linter's contracts
(``[tool.importlinter]`` in pyproject.toml, run by ``./run test``); this file checks what
import-linter does not: a clean import of each module in a fresh interpreter, and cycles,
including imports inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["ivr", "queues", "transfer", "tickets", "tracking", "console", "testbed"]

# Cycles that still exist, each with the work package of issue 18 that breaks it. A WP that
# breaks one deletes its entry here; the test fails both on a new cycle and on a stale entry.
KNOWN_CYCLES: dict[frozenset[str], str] = {
}


def modules() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            if parts[-1] == "__main__":  # runs the CLI
                continue
            found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def import_alone(module: str) -> str | None:
    done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO, capture_output=True, text=True, timeout=120)
    if done.returncode == 0:
        return None
    return f"{module}: {(done.stderr.strip().splitlines() or ['exit ' + str(done.returncode)])[-1]}"


def test_every_module_imports_on_its_own() -> None:
    names = modules()
    assert "ivr.flows.runner" in names and "testbed.bed" in names
    with ThreadPoolExecutor(4) as pool:
        failures = [f for f in pool.map(import_alone, names) if f]
    assert failures == []


def strongly_connected(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Tarjan's algorithm, iterative; components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
    return found


def import_graph() -> dict[str, set[str]]:
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=False)
    edges: dict[str, set[str]] = defaultdict(set)
    for module in graph.modules:
        edges[module] |= graph.find_modules_directly_imported_by(module)
        if "." in module:  # importing a.b.c first runs a.b's __init__
            edges[module].add(module.rsplit(".", 1)[0])
    for targets in list(edges.values()):
        for target in targets:
            edges.setdefault(target, set())
    return edges


def is_facade(component: frozenset[str]) -> bool:
    """A package and its own submodules only (``ivr/store/__init__`` re-exporting keyspace):
    the parent edge closes it, but it is not a cycle between modules."""
    top = min(component, key=len)
    return all(m == top or m.startswith(top + ".") for m in component)


def test_no_import_cycles_but_the_known_ones() -> None:
    found = {c for c in strongly_connected(import_graph()) if not is_facade(c)}
    new = [sorted(c) for c in found if c not in KNOWN_CYCLES]
    gone = [KNOWN_CYCLES[c] for c in KNOWN_CYCLES if c not in found]
    assert new == [], "new import cycle(s); break them (docs/architecture.md)"
    assert gone == [], "a known cycle is broken: delete its KNOWN_CYCLES entry"

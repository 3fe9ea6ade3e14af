"""The layout's own rules (issue 18): every module imports on its own, and no import cycle.

The one-way layers and the independence of sibling features are import-linter's contracts
(``[tool.importlinter]`` in pyproject.toml, run by ``./run test``); this file checks what
import-linter does not: a clean import of each module in a fresh interpreter, and cycles,
including imports inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import subprocess
import tomllib
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["ivr", "queues", "transfer", "tickets", "tracking", "console", "supervision", "recording", "quality", "reports", "testbed"]

# A clean interpreter that has loaded the third-party and standard libraries the project imports
# (none of the project) forks one child per project module, and the child imports that module
# alone: the same as `python -c "import M"` for the project's own import order, at a fraction of
# the cost of starting ~300 interpreters that each load pydantic, aiohttp and redis again. Its
# stdin: the libraries to load first (``+module`` or ``+module:name``, a name a module takes from
# it: pydantic and aiohttp load their parts on first access; a name that is a submodule, as in
# ``from aiohttp import web``, is imported), then the project's modules. A library that fails to
# load here is left to the child, which then fails on it.
# `import a.b.c` runs a's __init__ in a clean process, then a.b's with a loaded, then a.b.c's with
# a.b loaded: so the children fork along the packages. The child that imported a.b forks one child
# per module of a.b; each still starts its module where `python -c "import a.b.c"` would, and a
# package's __init__ (ivr.asterisk_conf's loads the config models) runs once, not per module.
ZYGOTE = """
import importlib, os, sys, traceback
names = []
for word in sys.stdin.read().split():
    if not word.startswith("+"):
        names.append(word)
        continue
    module, _, attribute = word[1:].partition(":")
    try:
        loaded = importlib.import_module(module)
        if attribute and not hasattr(loaded, attribute):
            importlib.import_module(f"{module}.{attribute}")
    except Exception:
        pass
tops = {name.split(".")[0] for name in names}
assert not tops & {m.split(".")[0] for m in sys.modules}, "a project module is loaded before the forks"

def report(modules, why):
    for name in modules:
        os.write(1, f"{name}: {why}\\n".encode())

def visit(package, below):
    \"\"\"In a process where `package` (a clean one: "") is imported as `import package` leaves it,
    import each module under it in a child of its own, the packages' children from theirs.\"\"\"
    children = {}
    for name in below:
        head = name[len(package) + 1:] if package else name
        children.setdefault(f"{package}.{head.split('.')[0]}" if package else head.split(".")[0], []).append(name)
    for child, modules in children.items():
        pid = os.fork()
        if pid == 0:
            try:
                __import__(child)
            except BaseException:
                report(modules, traceback.format_exc().strip().splitlines()[-1])
                os._exit(0)
            visit(child, [m for m in modules if m != child])
            os._exit(0)
        if os.waitpid(pid, 0)[1] != 0:
            report(modules, "died")

visit("", names)
"""


def libraries() -> list[str]:
    """What the project's modules import at module level from outside the project, for the
    zygote to load first (``+module`` or ``+module:name``)."""
    found: set[str] = set()
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                if isinstance(node, ast.Import):
                    found |= {f"+{alias.name}" for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found |= {f"+{node.module}:{alias.name}" for alias in node.names}
    return sorted(w for w in found if w[1:].split(".")[0].split(":")[0] not in [*PACKAGES, "__future__"])


def modules() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            if parts[-1] == "__main__":  # runs the CLI
                continue
            found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def test_every_module_imports_on_its_own() -> None:
    names = modules()
    assert "ivr.flows.runner" in names and "testbed.bed" in names
    zygotes = [subprocess.Popen([sys.executable, "-c", ZYGOTE], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]  # one per core
    preload = libraries()
    assert "+pydantic:BaseModel" in preload and not any(w.startswith(("+ivr", "+testbed")) for w in preload)
    halves = [names[0::2], names[1::2]]  # each zygote has every package: the halves cost the same (in order: ~14 and ~23 s)
    with ThreadPoolExecutor(2) as pool:  # side by side: one communicate() after the other ran them in turn
        answers = list(pool.map(lambda z, half: z.communicate(" ".join([*preload, *half]), timeout=600), zygotes, halves))
    assert [z.returncode for z in zygotes] == [0, 0], [err for _, err in answers]
    assert [line for out, _ in answers for line in out.splitlines()] == []


def test_a_module_that_only_imports_in_one_order_is_found(tmp_path: Path) -> None:
    """The check itself: two modules that import each other's names fail alone, as in issue 18."""
    (tmp_path / "cyc").mkdir()
    (tmp_path / "cyc" / "__init__.py").write_text("")
    (tmp_path / "cyc" / "a.py").write_text("from cyc.b import B\nA = 1\n")
    (tmp_path / "cyc" / "b.py").write_text("from cyc.a import A\nB = 2\n")
    (tmp_path / "cyc" / "c.py").write_text("import no_such_library\nC = 3\n")  # preloading it fails: c still does
    done = subprocess.run([sys.executable, "-c", ZYGOTE], cwd=tmp_path, input="+no_such_library +json cyc cyc.a cyc.b cyc.c",
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [line.split(":")[0] for line in done.stdout.splitlines()] == ["cyc.a", "cyc.b", "cyc.c"]


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


def test_no_import_cycles() -> None:
    found = [sorted(c) for c in strongly_connected(import_graph()) if not is_facade(c)]
    assert found == [], "import cycle(s): break them by moving the shared piece down a layer (docs/architecture.md)"


def test_every_module_of_a_feature_folder_has_its_place_in_the_folders_layers() -> None:
    """A feature folder's contract (``containers``) names each module's layer; a module it does not
    name would escape the one-way rule inside the folder, so a new module must be placed there."""
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    folders = [c for c in contracts if c.get("containers")]
    assert {f for c in folders for f in c["containers"]} >= {"transfer", "tickets", "queues", "supervision"}
    for contract in folders:
        placed = {name.strip() for layer in contract["layers"] for name in layer.replace("|", ":").split(":")}
        for folder in contract["containers"]:
            modules = {p.stem for p in (REPO / folder).glob("*.py") if p.stem != "__init__"}
            assert modules - placed == set(), f"{folder}: place these in contract {contract['id']!r}"

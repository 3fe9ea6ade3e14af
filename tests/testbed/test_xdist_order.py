"""The workers' order (testbed/xdist_order.py): under ``--dist loadfile`` the costliest module
goes first and a worker is given its next module only when one test of its current one is left;
the controller writes each module's seconds. The first test runs a small suite on two real xdist
workers in a subprocess, as ``./run test`` runs the real one."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from testbed.xdist_order import LongestFirst, estimate, module_seconds

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
# each test notes its module in its worker's file, in the order the worker runs them
NOTE = """import os
from pathlib import Path

def note():
    with open(Path(os.environ["ORDER_DIR"]) / os.environ["PYTEST_XDIST_WORKER"], "a") as f:
        f.write(__name__ + "\\n")
"""


def test_given_measured_modules_then_each_worker_starts_with_one_of_the_two_costliest(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # xdist's own order starts with test_many (most tests); the measured seconds say otherwise
    files = {"test_long.py": 1, "test_medium.py": 1, "test_many.py": 6, "test_short.py": 1}
    for name, count in files.items():
        tests = "".join(f"\n\ndef test_{i}():\n    note()\n" for i in range(count))
        (pytester.path / name).write_text(NOTE + tests)
    (pytester.path / "seconds.json").write_text(json.dumps({"test_long.py": 300, "test_medium.py": 120,
                                                            "test_short.py": 0.1}))
    order = pytester.path / "order"
    order.mkdir()
    monkeypatch.setenv("ORDER_DIR", str(order))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.delenv("IVR_REQUIRE_REAL", raising=False)  # CI's rule is for the real suite, not this toy one
    result = pytester.runpytest_subprocess("-p", "testbed.pytest_plugin", "-p", "no:cacheprovider", "-n", "2",
                                           "--dist", "loadfile", "-o", "ivr_module_seconds=seconds.json")

    assert result.ret == pytest.ExitCode.OK
    ran = {worker.name: worker.read_text().split() for worker in order.iterdir()}
    assert sorted(modules[0] for modules in ran.values()) == ["test_long", "test_medium"], ran
    assert sorted(m for modules in ran.values() for m in modules) == sorted(
        m.removesuffix(".py") for m, count in files.items() for _ in range(count))
    written = json.loads((pytester.path / "build" / "module-seconds.json").read_text())
    assert sorted(written) == sorted(files) and all(s >= 0 for s in written.values())


class Worker:
    """What the scheduler sees of a worker: its name, the tests it was sent, whether it was shut down."""

    def __init__(self, name: str) -> None:
        self.gateway = SimpleNamespace(id=name)
        self.shutting_down = False
        self.sent: list[int] = []

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


def test_a_worker_gets_its_next_module_only_when_one_test_of_its_current_one_is_left(pytester: pytest.Pytester) -> None:
    (pytester.path / "seconds.json").write_text(json.dumps({"a.py": 100, "b.py": 50, "c.py": 10, "d.py": 5}))
    config = pytester.parseconfig("-p", "xdist", "--tx", "2*popen", "--dist", "loadfile", "-o", "ivr_module_seconds=seconds.json",
                                  "-p", "testbed.pytest_plugin")
    sched = LongestFirst(config)
    collection = ["a.py::t1", "a.py::t2", "a.py::t3", "b.py::t", "c.py::t", "d.py::t"]
    one, two = Worker("gw0"), Worker("gw1")
    for w in (one, two):
        sched.add_node(w)  # type: ignore[arg-type]
        sched.add_node_collection(w, collection)  # type: ignore[arg-type]
    sched.schedule()
    assert (one.sent, two.sent) == ([0, 1, 2], [3, 4])  # a (3 tests); b, then c behind its one test
    sched.mark_test_complete(one, 0)  # type: ignore[arg-type]
    assert one.sent == [0, 1, 2]  # two of a's tests left: xdist's own would queue d here
    sched.mark_test_complete(one, 1)  # type: ignore[arg-type]
    assert one.sent == [0, 1, 2, 5] and not sched.workqueue


def test_a_module_nobody_measured_is_estimated_by_its_tier_and_seconds_add_up_per_module() -> None:
    known = {"tests/integration/test_a.py": 42.0}
    assert estimate("tests/integration/test_a.py", 3, known) == 42.0
    assert estimate("tests/integration/test_b.py", 2, known) > estimate("tests/ivr/test_c.py", 50, known)
    assert module_seconds({"tests/x.py::t[1]": 1.2, "tests/x.py::t[2]": 2.0, "tests/y.py::C::t": 0.5}) == {
        "tests/x.py": 3.2, "tests/y.py": 0.5}

"""Which test module a pytest-xdist worker runs next under ``./run test`` (``--dist loadfile``):
the longest first, so both workers end together.

xdist's own loadfile order hands out the modules with the most tests first. The cluster modules
(a few tests of minutes each, behind a bed of their own) came last, and its prefetch (a worker is
given the next module while it still has two tests to run) queued several of them behind each
other on one worker while the other had nothing left to do. Here the costliest module left goes
to the worker that asks, and a worker is given its next module only when one test of its current
one is left: the least xdist allows, since a worker runs a test once it knows the next one (to
tear down the fixtures that one does not share).

A module's cost is the seconds it took in a full run (``tests/module_seconds.json``, refreshed by
hand from the ``build/module-seconds.json`` each xdist run writes; the ini option
``ivr_module_seconds`` names another file), else an estimate by its tier.
The order changes nothing but the order: every module still runs whole on one worker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import pytest
from xdist.scheduler import LoadFileScheduling  # type: ignore[import-untyped]
from xdist.workermanage import WorkerController  # type: ignore[import-untyped]

MEASURED_INI = "ivr_module_seconds"  # the ini option naming the file, relative to the rootdir
MEASURED = "tests/module_seconds.json"
# a module nobody measured yet: the median seconds per test of each tier in the full run
# tests/module_seconds.json comes from (a real-Asterisk test places calls that last seconds)
ESTIMATE_S = {"integration": 13.0, "other": 0.1}


def known_seconds(path: Path) -> dict[str, float]:
    """Each module's seconds as measured (an empty map when the file is missing)."""
    if not path.exists():
        return {}
    return {str(k): float(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}


def estimate(module: str, tests: int, known: Mapping[str, float]) -> float:
    """The seconds a module is expected to take: measured, else its test count times its tier's."""
    if module in known:
        return known[module]
    tier = "integration" if "/integration/" in f"/{module}" else "other"
    return tests * ESTIMATE_S[tier]


class LongestFirst(LoadFileScheduling):
    """loadfile with the costliest module first and the least prefetch."""

    def __init__(self, config: pytest.Config, log: object | None = None) -> None:
        super().__init__(config, log)
        self.known = known_seconds(config.rootpath / str(config.getini(MEASURED_INI)))

    def _assign_work_unit(self, node: WorkerController) -> None:
        costliest = max(self.workqueue, key=lambda scope: estimate(scope, len(self.workqueue[scope]), self.known))
        self.workqueue.move_to_end(costliest, last=False)  # the base class pops the first
        super()._assign_work_unit(node)

    def _reschedule(self, node: WorkerController) -> None:
        if node.shutting_down:
            return
        if not self.workqueue:
            node.shutdown()
            return
        if self._pending_of(self.assigned_work[node]) > 1:  # xdist's is 2: a whole module queued early
            return
        self._assign_work_unit(node)


def module_seconds(durations: Mapping[str, float]) -> dict[str, float]:
    """Test ids' seconds (setup, call and teardown summed) added up per module, rounded."""
    out: dict[str, float] = {}
    for nodeid, seconds in durations.items():
        module = nodeid.split("::", 1)[0]
        out[module] = out.get(module, 0.0) + seconds
    return {m: round(s, 1) for m, s in sorted(out.items())}


class ModuleClock:
    """On the controller of an xdist run: every test's seconds from the workers' reports, written
    per module at the end, the numbers tests/module_seconds.json is refreshed from."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.seconds: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + report.duration

    def pytest_sessionfinish(self) -> None:
        if self.seconds:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.out.write_text(json.dumps(module_seconds(self.seconds), indent=1) + "\n", encoding="utf-8")

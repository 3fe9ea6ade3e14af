"""The test bed's pytest plugin (loaded by pyproject.toml's addopts), with suite-wide rules.

Tests under tests/integration/ are the real-Asterisk tier and are counted in the summary.
With ``IVR_REQUIRE_REAL`` set (CI), nothing may skip and that tier must have run: a missing
Asterisk, Redis or sipp is a failure there, never a skip.

Under pytest-xdist (``./run test`` runs workers) every worker sends each test's report, marks
included, to the controller, which prints the summary and applies the rule over all workers'
results (tests/testbed/test_pytest_plugin.py runs that on a small suite). The controller hands
out the costliest module first and writes each module's seconds to ``build/module-seconds.json``
(testbed/xdist_order.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from testbed.xdist_order import MEASURED, MEASURED_INI, LongestFirst, ModuleClock

INTEGRATION_DIR = "integration"  # tests/integration/: the real-Asterisk tier
BUILD = Path(__file__).resolve().parents[1] / "build"


def kept_logs(name: str) -> Path:
    """Where a bed's logs are copied when it stops: ``build/NAME``, or ``build/NAME/gwN`` on an
    xdist worker (each worker runs a bed of its own; one must not wipe another's logs)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return BUILD / name / worker if worker else BUILD / name


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(MEASURED_INI, "each test module's measured seconds (JSON), for the workers' order", default=MEASURED)


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("dist", "no") != "no" and not hasattr(config, "workerinput"):  # the xdist controller
        config.pluginmanager.register(ModuleClock(config.rootpath / "build" / "module-seconds.json"), "ivr-module-clock")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> LongestFirst | None:
    """``--dist loadfile`` hands out the costliest module first (testbed/xdist_order.py)."""
    return LongestFirst(config, log) if config.getoption("dist") == "loadfile" else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in Path(str(item.fspath)).parent.parts:
            item.add_marker(pytest.mark.asterisk)


def real_tier_counts(reporter) -> dict[str, int]:
    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    for outcome in counts:
        for report in reporter.stats.get(outcome, []):
            if "asterisk" in getattr(report, "keywords", {}):
                counts[outcome] += 1
    return counts


def pytest_terminal_summary(terminalreporter) -> None:
    c = real_tier_counts(terminalreporter)
    terminalreporter.write_line(
        f"real-Asterisk tests: {c['passed']} passed, {c['failed'] + c['error']} failed, {c['skipped']} skipped"
    )


def pytest_sessionfinish(session: pytest.Session) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if not os.environ.get("IVR_REQUIRE_REAL") or reporter is None or session.config.option.collectonly:
        return
    c = real_tier_counts(reporter)
    if reporter.stats.get("skipped") or c["passed"] == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

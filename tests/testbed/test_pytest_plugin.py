"""The real-Asterisk summary and CI's rule (IVR_REQUIRE_REAL) count every xdist worker's tests:
``./run test`` runs workers, and each one alone sees only its share. Run on a small suite of
its own in a subprocess, with two workers, as ``./run test`` runs the real one."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
PASSING = "def test_passes():\n    pass\n"
SKIPPED = "import pytest\n\ndef test_skips():\n    pytest.skip('no Asterisk here')\n"
FAILING = "def test_fails():\n    assert False\n"


def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, files: dict[str, str],
        require_real: bool) -> pytest.RunResult:
    for name, text in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    if require_real:
        monkeypatch.setenv("IVR_REQUIRE_REAL", "1")
    else:
        monkeypatch.delenv("IVR_REQUIRE_REAL", raising=False)
    return pytester.runpytest_subprocess("-p", "testbed.pytest_plugin", "-p", "no:cacheprovider",
                                         "-n", "2", "--dist", "loadfile")


def test_given_real_tier_tests_on_two_workers_then_the_summary_counts_them_all(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run(pytester, monkeypatch, {
        "integration/test_one.py": PASSING + FAILING,
        "integration/test_two.py": PASSING.replace("passes", "passes_too") + SKIPPED,
        "unit/test_unit.py": PASSING,
    }, require_real=False)

    result.stdout.fnmatch_lines(["real-Asterisk tests: 2 passed, 1 failed, 1 skipped"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_given_ci_when_a_worker_skipped_a_test_then_the_run_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run(pytester, monkeypatch, {
        "integration/test_one.py": PASSING,
        "integration/test_two.py": SKIPPED,
    }, require_real=True)

    result.stdout.fnmatch_lines(["real-Asterisk tests: 1 passed, 0 failed, 1 skipped"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_given_ci_when_one_worker_ran_only_unit_tests_then_the_run_passes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run(pytester, monkeypatch, {
        "integration/test_one.py": PASSING,
        "unit/test_unit.py": PASSING,
    }, require_real=True)

    result.stdout.fnmatch_lines(["real-Asterisk tests: 1 passed, 0 failed, 0 skipped"])
    assert result.ret == pytest.ExitCode.OK

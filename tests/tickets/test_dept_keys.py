"""A department that cannot sign is named by ``ivr check`` before its first write-back is refused
(401): its key variable unset, its key file missing or empty, or a key anyone could guess."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ivr import cli
from tickets.settings import Department
from tickets.settings import department_key, department_key_problems

REPO = Path(__file__).resolve().parents[2]
STRONG = "civil-key-7fQ2xLr9TmWc4Zp"


def test_each_department_without_a_usable_key_is_named_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "empty.key").write_text("\n")
    (tmp_path / "weak.key").write_text("12345678\n")
    (tmp_path / "good.key").write_text(STRONG + "\n")
    departments = {
        "housing": Department(title="市住建局", key_env="IVR_DEPT_KEY_HOUSING"),
        "water": Department(title="市水务局", key_file=str(tmp_path / "missing.key")),
        "roads": Department(title="市交通局", key_file=str(tmp_path / "empty.key")),
        "parks": Department(title="市园林局", key_file=str(tmp_path / "weak.key")),
        "civil": Department(title="省民政厅", key_file=str(tmp_path / "good.key")),
        "tax": Department(title="市税务局", key_env="IVR_DEPT_KEY_TAX"),
    }
    problems = department_key_problems(departments, {"IVR_DEPT_KEY_TAX": STRONG})
    assert [p.split(" ", 2)[1] for p in problems] == ["'housing'", "'water'", "'roads'", "'parks'"]
    assert problems[0] == ("department 'housing' (市住建局) cannot sign write-backs: IVR_DEPT_KEY_HOUSING is not set")
    assert "cannot read" in problems[1] and "is not set" in problems[2] and "too weak" in problems[3]
    assert department_key(departments["civil"]) == STRONG.encode()


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "config", tmp_path / "config")
    (tmp_path / "prompts").symlink_to(REPO / "prompts")
    return tmp_path / "config"


def test_ivr_check_refuses_a_department_whose_key_file_is_missing(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tickets = cfg / "tickets.yaml"
    text = tickets.read_text(encoding="utf-8")
    assert "\n  departments: {}\n" in text
    gone = cfg.parent / "housing.key"
    tickets.write_text(text.replace("\n  departments: {}\n", (
        f"\n  departments:\n    housing: {{title: 市住建局, key_file: {gone}}}\n")), encoding="utf-8")
    assert cli.main(["--config", str(cfg), "check"]) == 1
    out = capsys.readouterr().out
    assert f"department 'housing' (市住建局) cannot sign write-backs: cannot read {gone}" in out
    gone.write_text(STRONG + "\n")
    assert cli.main(["--config", str(cfg), "check"]) == 0, capsys.readouterr().out

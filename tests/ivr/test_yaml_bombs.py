"""YAML bombs (issue 17, finding 3): aliases and anchors are refused with file:line:reason
before anything is expanded, and files are capped in size and values. ``ivr check`` runs as
its own process under an address-space limit, so a loader that expands the bomb fails the
test (out of memory) instead of taking the machine."""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.core import yamlsource
from testbed.hostile import ISSUE_BOMB, KIB_BOMB
from ivr.core.yamlsource import SourceError, parse

REPO = Path(__file__).resolve().parents[2]
LIMIT = 1 << 30  # bytes of address space for `ivr check`: the whole config needs ~250 MiB


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "config", tmp_path / "config")
    (tmp_path / "prompts").symlink_to(REPO / "prompts")
    return tmp_path / "config"


def ivr_check(cfg: Path) -> subprocess.CompletedProcess[str]:
    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))

    return subprocess.run([sys.executable, "-m", "ivr", "--config", str(cfg), "check"], capture_output=True,
                          text=True, timeout=120, preexec_fn=limited)


@pytest.mark.parametrize("bomb", [ISSUE_BOMB, KIB_BOMB], ids=["issue-387-bytes", "1-KiB"])
def test_ivr_check_refuses_an_alias_bomb_flow_with_its_line(cfg: Path, bomb: str) -> None:
    assert len(bomb.encode()) <= 1024
    (cfg / "flows" / "bomb.yaml").write_text(bomb, encoding="utf-8")
    proc = ivr_check(cfg)
    assert proc.returncode == 1, proc.stderr
    assert f"{cfg / 'flows' / 'bomb.yaml'}:2:5: anchor &l0 is not allowed" in proc.stdout


def test_ivr_check_refuses_a_merge_key_in_a_number_plan(cfg: Path) -> None:
    plan = cfg / "plans" / "anhui-2021.yaml"
    text = plan.read_text(encoding="utf-8")
    text = text.replace('  "12345": {', '  "12345": &main {', 1).replace(
        '  "8000":  {', '  "8001": {<<: *main, title: 别名}\n  "8000":  {', 1)
    plan.write_text(text, encoding="utf-8")
    proc = ivr_check(cfg)
    line = text[: text.index("&main")].count("\n") + 1
    assert proc.returncode == 1, proc.stderr
    assert f"{plan}:{line}:12: anchor &main is not allowed" in proc.stdout


def test_an_alias_is_refused_where_it_is_used() -> None:
    with pytest.raises(SourceError, match=r"^draft.yaml:2:4: alias \*a is not allowed"):
        parse("a: 1\nb: *a\n", "draft.yaml")


def test_a_file_is_capped_in_values_and_in_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlsource, "MAX_NODES", 100)
    with pytest.raises(SourceError, match=r"draft.yaml:1:\d+: more than 100 values in one file"):
        parse("[" + ", ".join(["x"] * 200) + "]", "draft.yaml")
    monkeypatch.setattr(yamlsource, "MAX_BYTES", 1000)
    with pytest.raises(SourceError, match=r"^draft.yaml:1:1: file is 1001 bytes, more than 1000"):
        parse("#" * 1000 + "\n", "draft.yaml")

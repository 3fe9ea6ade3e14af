"""`ivr elderly` against a real redis-server: every change audited first (with no number in
the audit line), nothing printed that names a registered number, clear one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ivr import cli

REPO = Path(__file__).resolve().parents[2]
KEY = "cli-test-caller-key-0123456789"


@pytest.fixture
def audit(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The environment pointing the CLI at the test Redis; the audit log it writes."""
    monkeypatch.setenv("IVR_REDIS_URL", redis_url)
    monkeypatch.setenv("IVR_CALLER_KEY", KEY)
    monkeypatch.setenv("IVR_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("IVR_AUDIT_LOG", raising=False)
    monkeypatch.delenv("SUDO_USER", raising=False)
    return tmp_path / "state" / "audit" / "unmasked.jsonl"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["--config", str(REPO / "config"), "elderly", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_given_numbers_added_then_check_finds_them_and_list_shows_no_digit_of_them(audit, capsys) -> None:
    assert run(capsys, "add", "13900000001", "+86 139-0000-0002", "--reason", "登记表 2026-001")[1] == (
        "2 added, 0 already registered\n")
    code, out, _ = run(capsys, "check", "8613900000002")
    assert code == 0 and out.startswith("13900000002: registered (id ")
    assert run(capsys, "check", "13900000009")[:2] == (1, "13900000009: not registered\n")
    code, out, _ = run(capsys, "list")
    assert code == 0 and "1390000000" not in out
    assert out.splitlines()[-1].startswith("2 registered elderly numbers")
    assert all("登记表 2026-001" in line for line in out.splitlines()[:2])


def test_given_every_change_then_one_audit_line_each_without_a_number(audit, tmp_path, capsys) -> None:
    numbers = tmp_path / "batch.txt"
    numbers.write_text("\ufeff# 第二批\n13900000003\n13900000004\n", encoding="utf-8")
    run(capsys, "add", "13900000001", "--reason", "登记表1")
    run(capsys, "import", str(numbers), "--reason", "登记表2")
    run(capsys, "remove", "13900000001", "--reason", "本人申请撤销")
    run(capsys, "check", "13900000003")
    run(capsys, "list")
    entries = lines(audit)
    assert [(e["command"], e["callers"], e["reason"]) for e in entries] == [
        ("elderly add", 1, "登记表1"), ("elderly import", 2, "登记表2"), ("elderly remove", 1, "本人申请撤销")]
    assert "1390000000" not in audit.read_text()
    assert run(capsys, "list")[1].splitlines()[-1].startswith("2 registered")


def test_given_an_import_file_with_bad_lines_then_each_is_located_and_nothing_is_added(audit, tmp_path, capsys) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("13900000001\nabc\n", encoding="utf-8")
    code, _out, err = run(capsys, "import", str(bad), "--reason", "r")
    assert code == 2 and err == f"ivr elderly: {bad}:2:1: 'abc' is not a phone number (5-15 digits, optionally +86)\n"
    assert run(capsys, "list")[1].startswith("0 registered") and lines(audit) == []


def test_given_an_entry_removed_by_its_listed_id_then_it_is_gone(audit, capsys) -> None:
    run(capsys, "add", "13900000001", "--reason", "r")
    entry_id = run(capsys, "list")[1].split()[0]
    assert run(capsys, "remove", "--id", entry_id, "--reason", "号码已注销")[1] == "1 removed, 0 were not registered\n"
    assert run(capsys, "check", "13900000001")[0] == 1


def test_given_no_caller_key_then_one_line_says_how_to_set_it(audit, monkeypatch, capsys) -> None:
    monkeypatch.delenv("IVR_CALLER_KEY")
    code, _out, err = run(capsys, "add", "13900000001", "--reason", "r")
    assert code == 2 and err.startswith("ivr elderly: missing caller key: set IVR_CALLER_KEY")
    assert lines(audit) == []  # nothing changed, nothing audited


def test_given_an_unwritable_audit_log_then_nothing_changes(audit, monkeypatch, tmp_path, capsys) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("")
    monkeypatch.setenv("IVR_AUDIT_LOG", str(blocked / "audit.jsonl"))  # a file where a directory must be
    code, _out, err = run(capsys, "add", "13900000001", "--reason", "r")
    assert code == 2 and "refusing to change the elderly list unaudited" in err
    monkeypatch.delenv("IVR_AUDIT_LOG")
    assert run(capsys, "check", "13900000001")[0] == 1


def test_given_a_bad_number_or_no_reason_then_refused_before_anything_changes(audit, capsys) -> None:
    code, _out, err = run(capsys, "add", "13900000001", "12", "--reason", "r")
    assert code == 2 and err == "ivr elderly: '12' is not a phone number (5-15 digits, optionally +86); nothing changed\n"
    code, _out, err = run(capsys, "add", "13900000001", "--reason", "  ")
    assert code == 2 and "--reason must say why" in err
    assert lines(audit) == [] and run(capsys, "check", "13900000001")[0] == 1

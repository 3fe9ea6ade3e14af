"""`ivr tickets list|show|export` against a real redis-server: filters, masking by default, the
audit log before any unmasked caller number, CSV for Excel, and a dead Redis as one line."""

from __future__ import annotations

import asyncio
import csv
import getpass
import io
import json
import os
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ivr import cli
from tickets.store import TicketStore
from testbed.ports import PortAllocator
from tickets.audit import read_audit
from tickets.export import HEADER
from tickets.model import AgentAttempt, Deadline, IvrPath, Ticket, TimelineEntry, Transfer

CALLER_KEY = b"test-caller-key-not-a-secret"  # keys the caller index (IVR_CALLER_KEY)

REPO = Path(__file__).resolve().parents[2]
NOW = datetime.now().astimezone()
TEN_DAYS_AGO = (NOW - timedelta(days=10)).replace(hour=10, minute=0, second=0, microsecond=0)
DAY = TEN_DAYS_AGO.date().isoformat()
NEXT_DAY = (TEN_DAYS_AGO + timedelta(days=1)).date().isoformat()


def ticket(linkedid: str, received: datetime, *, line: str = "12345", caller: str = "13900000001",
           request_type: str = "consult", disposition: str = "answered", **more: object) -> Ticket:
    return Ticket(linkedid=linkedid, line=line, caller=caller, received=received.isoformat(timespec="milliseconds"),
                  request_type=request_type, disposition=disposition, **more)  # type: ignore[arg-type]


FULL = ticket(
    "1700000000.1", TEN_DAYS_AGO, line="12366", caller="13800138000", request_type="complaint",
    disposition="transfer_failed", line_mode="subcenter", line_title="税务", queue="general",
    queued=(TEN_DAYS_AGO + timedelta(seconds=40)).isoformat(), wait_seconds=12.4, agent="agent-1",
    answered=(TEN_DAYS_AGO + timedelta(seconds=52)).isoformat(), talk_seconds=95.0,
    after_transfer="queue general: answered by agent-1", hangup_by="caller", hangup_cause="16 Normal Clearing",
    agents_rung=[AgentAttempt("agent-2", (TEN_DAYS_AGO + timedelta(seconds=41)).isoformat(), 5.0, False),
                 AgentAttempt("agent-1", (TEN_DAYS_AGO + timedelta(seconds=47)).isoformat(), 5.0, True)],
    transfers=[Transfer("subcenter", "tax", "12366", (TEN_DAYS_AGO + timedelta(seconds=10)).isoformat(),
                        result="NOANSWER", cause="19", then="queue general")],
    satisfaction=5, satisfaction_status="rated",
    deadline=Deadline(due="2099-01-12", rule="7 working days", provisional=True),
    ivr=IvrPath(flow="main", nodes=["main/welcome", "main/menu"], keys=["2"], route="transfer"),
    repeat_of=["20261101-12345-00007"],
    timeline=[TimelineEntry(TEN_DAYS_AGO.isoformat(), "received", "12366"),
              TimelineEntry((TEN_DAYS_AGO + timedelta(seconds=10)).isoformat(), "transfer dialed", "12366 via tax")],
)
TICKETS = [
    FULL,
    ticket("1700000000.2", TEN_DAYS_AGO + timedelta(hours=1), caller="13900000002", disposition="abandoned_queue"),
    ticket("1700000000.3", TEN_DAYS_AGO + timedelta(days=1), caller="13900000003", request_type="help"),
    ticket("1700000000.4", NOW - timedelta(days=1), caller="13900000004"),  # yesterday
    ticket("1700000000.5", NOW, caller="13900000005"),  # today
]




async def _write(url: str, spool: Path, tickets: list[Ticket]) -> list[str]:
    store = TicketStore(url, spool, "seed", retention_days=3650, timeout=1.0, caller_key=CALLER_KEY)
    try:
        for t in tickets:
            await store.write(t, "closed")
        await store.drain()
        stored = [await store.get(t.linkedid) for t in tickets]
    finally:
        await store.close()
    return [s.number for s in stored if s is not None]


@pytest.fixture
def numbers(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tickets above in Redis, the environment pointing the CLI at it; their numbers."""
    monkeypatch.setenv("IVR_REDIS_URL", redis_url)
    monkeypatch.setenv("IVR_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("IVR_AUDIT_LOG", raising=False)
    monkeypatch.delenv("SUDO_USER", raising=False)
    written = asyncio.run(_write(redis_url, tmp_path / "seed-spool", TICKETS))
    assert len(written) == len(TICKETS)
    return written


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["--config", str(REPO / "config"), "tickets", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def listed(out: str) -> list[str]:
    """The ticket numbers in a list table, in order."""
    return [line.split()[0] for line in out.splitlines()[1:] if re.match(r"[0-9]{8}-[0-9]+-[0-9]+ ", line)]


def audit_log(tmp_path: Path) -> Path:
    return tmp_path / "state" / "audit" / "unmasked.jsonl"


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ivr tickets: ")
    return lines[0]


# --- list ---

def test_given_no_since_when_listed_then_only_todays_tickets_are_shown(
    numbers: list[str], capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _err = run(capsys, "list")
    assert code == 0
    assert listed(out) == [numbers[4]]
    assert out.splitlines()[-1].startswith("1 ticket received since " + NOW.strftime("%Y-%m-%d") + " 00:00")


def test_given_since_and_until_dates_when_listed_then_the_range_covers_whole_local_days(
    numbers: list[str], capsys: pytest.CaptureFixture[str],
) -> None:
    assert listed(run(capsys, "list", "--since", DAY)[1]) == numbers  # through today
    assert listed(run(capsys, "list", "--since", DAY, "--until", DAY)[1]) == numbers[:2]
    assert listed(run(capsys, "list", "--since", NEXT_DAY, "--until", NEXT_DAY)[1]) == [numbers[2]]
    later = (TEN_DAYS_AGO + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    assert listed(run(capsys, "list", "--since", later, "--until", NEXT_DAY)[1]) == numbers[1:3]


def test_given_line_type_and_disposition_filters_when_listed_then_only_matching_tickets_are_shown(
    numbers: list[str], capsys: pytest.CaptureFixture[str],
) -> None:
    assert listed(run(capsys, "list", "--since", DAY, "--line", "12366")[1]) == [numbers[0]]
    assert listed(run(capsys, "list", "--since", DAY, "--type", "投诉")[1]) == [numbers[0]]
    assert listed(run(capsys, "list", "--since", DAY, "--type", "help")[1]) == [numbers[2]]
    assert listed(run(capsys, "list", "--since", DAY, "--disposition", "abandoned_queue")[1]) == [numbers[1]]
    assert listed(run(capsys, "list", "--since", DAY, "--line", "12345", "--type", "consult",
                      "--disposition", "answered")[1]) == numbers[3:]


def test_given_a_limit_when_listed_then_the_last_n_matching_are_shown_and_the_total_is_said(
    numbers: list[str], capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _err = run(capsys, "list", "--since", DAY, "--limit", "2")
    assert code == 0 and listed(out) == numbers[3:]
    assert "5 tickets (the last 2 of 5)" in out


def test_given_a_ticket_when_listed_then_its_row_reads_in_mandarin_labels_with_the_caller_masked(
    numbers: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    _code, out, _err = run(capsys, "list", "--since", DAY, "--until", DAY)
    header, first = out.splitlines()[0], out.splitlines()[1]
    assert header.split() == ["number", "received", "line", "type", "disposition", "status", "queue", "wait", "s",
                              "agent", "deadline", "caller"]
    assert first.split() == [numbers[0], DAY, "10:00:00", "12366", "投诉", "转接失败", "已受理", "general", "12", "agent-1",
                             "2099-01-12*", "138****8000"]
    assert "13800138000" not in out and "13900000002" not in out
    assert "* provisional deadline" in out
    assert not audit_log(tmp_path).exists()  # nothing unmasked, nothing audited


@pytest.mark.parametrize(("argv", "names"), [
    (["--type", "其他"], ["咨询/consult", "投诉/complaint", "建议/suggestion"]),
    (["--disposition", "hung_up"], ["answered (已接听)", "abandoned_queue", "transfer_failed"]),
    (["--since", "yesterday"], ["2026-12-01", "2026-12-01T08:30"]),
    (["--until", "12/01"], ["2026-12-01", "2026-12-01T08:30"]),
    (["--line", "12345a"], ["digits only"]),
    (["--limit", "0"], ["1 or more"]),
    (["--since", DAY, "--until", DAY + "T00:00"], ["--until", "not after"]),
])
def test_given_a_bad_filter_when_listed_or_exported_then_one_line_names_what_is_accepted_and_exit_2(
    numbers: list[str], capsys: pytest.CaptureFixture[str], argv: list[str], names: list[str],
) -> None:
    for action in (["list"], ["export", "--csv"]):
        code, out, err = run(capsys, *action, *argv)
        line = one_error_line(err)
        assert (code, out) == (2, "")
        assert all(name in line for name in names), line


# --- unmasked reads and the audit log ---

def test_given_show_caller_without_a_reason_when_run_then_it_is_refused_and_nothing_is_shown(
    numbers: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    for argv in (["list", "--since", DAY], ["show", numbers[0]], ["export", "--csv"]):
        code, out, err = run(capsys, *argv, "--show-caller")
        assert (code, out) == (2, "")
        assert "--show-caller needs --reason" in one_error_line(err)
        code, out, err = run(capsys, *argv, "--show-caller", "--reason", "   ")
        assert (code, out) == (2, "")
        code, out, err = run(capsys, *argv, "--reason", "callback")  # a reason alone unmasks nothing
        assert (code, out) == (2, "") and "--reason goes with --show-caller" in one_error_line(err)
    assert not audit_log(tmp_path).exists()


def test_given_show_caller_with_a_reason_when_listed_then_full_numbers_and_exactly_one_audit_line(
    numbers: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SUDO_USER", "wang.supervisor")
    before = datetime.now().astimezone()
    code, out, _err = run(capsys, "list", "--since", DAY, "--until", DAY, "--line", "12345", "--show-caller",
                          "--reason", "回访 工单 " + numbers[1])
    assert code == 0
    assert "13900000002" in out and "139****0002" not in out
    [entry] = read_audit(audit_log(tmp_path))
    assert (entry.user, entry.sudo_user, entry.command) == (getpass.getuser(), "wang.supervisor", "tickets list")
    assert entry.reason == "回访 工单 " + numbers[1]
    assert (entry.tickets, entry.callers) == (1, 1)
    assert entry.what["line"] == "12345" and entry.what["type"] is None and entry.what["disposition"] is None
    assert datetime.fromisoformat(entry.what["since"]) == datetime.fromisoformat(DAY + "T00:00").astimezone()
    at = datetime.fromisoformat(entry.at)
    assert at.utcoffset() == timedelta(0) and before - timedelta(seconds=1) <= at <= datetime.now().astimezone()
    assert os.stat(audit_log(tmp_path)).st_mode & 0o777 == 0o600


def test_given_show_caller_with_a_reason_when_shown_then_the_audit_line_names_the_ticket_number(
    numbers: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = tmp_path / "elsewhere" / "audit.jsonl"
    monkeypatch.setenv("IVR_AUDIT_LOG", str(log))
    digits = numbers[0].replace("-", "")
    code, out, _err = run(capsys, "show", digits, "--json", "--show-caller", "--reason", "callback")
    assert code == 0 and json.loads(out)["caller"] == "13800138000"
    [entry] = read_audit(log)
    assert (entry.command, entry.what, entry.tickets, entry.callers) == ("tickets show", {"number": digits}, 1, 1)
    assert not audit_log(tmp_path).exists()  # IVR_AUDIT_LOG moved it


def test_given_an_unwritable_audit_log_when_show_caller_then_refused_and_no_caller_number_printed(
    numbers: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IVR_AUDIT_LOG", str(tmp_path))  # a directory: no file can be opened there (even as root)
    output = tmp_path / "out.csv"
    for argv in (["list", "--since", DAY], ["show", numbers[0]], ["export", "--csv", "--output", str(output)]):
        code, out, err = run(capsys, *argv, "--show-caller", "--reason", "callback")
        line = one_error_line(err)
        assert (code, out) == (2, "")
        assert "audit log" in line and "refusing" in line
    assert not output.exists()
    code, out, _err = run(capsys, "list", "--since", DAY)  # masked reads need no audit
    assert code == 0 and len(listed(out)) == 5


# --- show ---

def test_given_a_ticket_number_when_shown_then_everything_on_the_ticket_is_printed_masked(
    numbers: list[str], capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _err = run(capsys, "show", numbers[0])
    assert code == 0
    assert out.startswith(f"工单 {numbers[0]}")
    facts = {line[:16].strip(): line[16:] for line in out.splitlines()[1:] if line[2] != " " and not line.endswith(":")}
    assert facts["caller"] == "138****8000"
    assert facts["type"] == "投诉 complaint"
    assert facts["disposition"] == "转接失败 transfer_failed → queue general: answered by agent-1"
    assert facts["deadline"].startswith("2099-01-12 (7 working days) provisional")
    assert facts["satisfaction"] == "5 of 5"
    assert facts["hung up by"] == "caller, 16 Normal Clearing"
    assert facts["ivr"] == "flow main main/welcome→main/menu keys 2 route transfer"
    assert facts["repeat of"] == "20261101-12345-00007"
    assert out.index("  timeline:") < out.index("    10:00:00  received: 12366") < out.index("    10:00:10  transfer dialed")
    assert "    10:00:10  subcenter 12366 via tax: NOANSWER (cause 19) → queue general" in out
    assert "    10:00:41  agent-2 rang 5 s, no answer" in out and "    10:00:47  agent-1 rang 5 s, answered" in out
    assert "13800138000" not in out


def test_given_json_when_shown_then_the_whole_ticket_comes_back_with_the_caller_masked(
    numbers: list[str], capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _err = run(capsys, "show", numbers[0], "--json")
    assert code == 0
    shown = Ticket.from_json(json.loads(out))
    assert shown.caller == "138****8000"
    assert shown == Ticket.from_json({**FULL.to_json(), "number": numbers[0], "caller": "138****8000"})


def test_given_an_unknown_number_when_shown_then_one_clear_line_and_exit_1(
    numbers: list[str], capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "show", "20261201-12345-99999")
    assert (code, out) == (1, "")
    assert one_error_line(err) == "ivr tickets: no ticket 20261201-12345-99999 (tickets are kept 180 days)"
    code, out, err = run(capsys, "show", "no-such")
    assert (code, out) == (2, "") and "bad ticket number" in one_error_line(err)


# --- export ---

def test_given_tickets_when_exported_as_csv_then_a_bom_a_header_and_one_masked_row_each(
    numbers: list[str], capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    code = cli.main(["--config", str(REPO / "config"), "tickets", "export", "--csv", "--since", DAY])
    captured = capsysbinary.readouterr()
    assert code == 0
    assert captured.out.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 only with it
    rows = list(csv.reader(io.StringIO(captured.out[3:].decode("utf-8"), newline="")))
    assert tuple(rows[0]) == HEADER
    assert [r[0] for r in rows[1:]] == numbers
    first = dict(zip(HEADER, rows[1]))
    assert (first["caller"], first["request_type_label"], first["disposition_label"]) == ("138****8000", "投诉", "转接失败")
    assert (first["wait_seconds"], first["deadline"], first["deadline_provisional"]) == ("12.4", "2099-01-12", "yes")
    assert first["transfers"] == "subcenter 12366 via tax: NOANSWER (cause 19) → queue general"
    assert first["received"] == TEN_DAYS_AGO.strftime("%Y-%m-%d %H:%M:%S")
    assert b"13800138000" not in captured.out
    assert captured.err.decode() == f"exported 5 tickets received since {DAY} 00:00\n"


def test_given_show_caller_and_an_output_file_when_exported_then_the_file_is_private_and_the_export_audited(
    numbers: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    output = tmp_path / "tickets.csv"
    code, out, _err = run(capsys, "export", "--csv", "--since", DAY, "--type", "咨询", "--output", str(output),
                          "--show-caller", "--reason", "monthly callback review")
    assert (code, out) == (0, "")
    data = output.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and os.stat(output).st_mode & 0o777 == 0o600
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert [r["caller"] for r in rows] == ["13900000002", "13900000004", "13900000005"]  # the consultations
    [entry] = read_audit(audit_log(tmp_path))
    assert (entry.command, entry.tickets, entry.callers) == ("tickets export", 3, 3)
    assert entry.what["type"] == "consult" and entry.what["output"] == str(output)


def test_given_a_caller_id_that_looks_like_a_formula_when_exported_then_excel_gets_it_as_text(
    redis_url: str, numbers: list[str], tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    asyncio.run(_write(redis_url, tmp_path / "seed-spool", [ticket("1700000000.9", NOW, caller="=HYPERLINK(1)")]))
    code = cli.main(["--config", str(REPO / "config"), "tickets", "export", "--csv", "--show-caller", "--reason", "x"])
    rows = list(csv.DictReader(io.StringIO(capsysbinary.readouterr().out.decode("utf-8-sig"), newline="")))
    assert code == 0 and [r["caller"] for r in rows] == ["13900000005", "'=HYPERLINK(1)"]


# --- Redis down ---

def test_given_redis_down_when_any_reading_action_runs_then_one_clear_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    port = PortAllocator().one()  # nothing listens there
    monkeypatch.setenv("IVR_REDIS_URL", f"redis://:s3cret@127.0.0.1:{port}/0")
    monkeypatch.setenv("IVR_STATE_DIR", str(tmp_path / "state"))
    for argv in (["list"], ["show", "20261201-12345-00001"], ["export", "--csv"]):
        code, out, err = run(capsys, *argv)
        line = one_error_line(err)
        assert (code, out) == (2, "")
        assert line.startswith(f"ivr tickets: Redis at 127.0.0.1:{port} does not answer") and "s3cret" not in line
    assert not (tmp_path / "state" / "spool").exists() or not any((tmp_path / "state" / "spool").iterdir())


# --- overdue (超期) ---

def test_given_open_tickets_past_their_deadline_when_listed_overdue_then_only_those_show_and_stats_count_them(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("IVR_REDIS_URL", redis_url)
    monkeypatch.setenv("IVR_STATE_DIR", str(tmp_path / "state"))
    past = (NOW - timedelta(days=3)).date().isoformat()
    late = ticket("1700000001.1", TEN_DAYS_AGO, deadline=Deadline(due=past, rule="3 working days"))
    done = ticket("1700000001.2", TEN_DAYS_AGO, status="closed", deadline=Deadline(due=past, rule="3 working days"))
    due_later = ticket("1700000001.3", NOW, deadline=Deadline(due="2099-01-12", rule="3 working days"))
    numbers = asyncio.run(_write(redis_url, tmp_path / "seed-spool", [late, done, due_later]))
    code, out, _err = run(capsys, "list", "--overdue")
    assert code == 0 and listed(out) == [numbers[0]]
    assert "已受理 超期" in out and out.splitlines()[-1].startswith("1 ticket received since")
    assert listed(run(capsys, "list", "--since", DAY)[1]) == numbers  # without --overdue: all three
    code = cli.main(["--config", str(REPO / "config"), "stats"])
    assert code == 0
    assert "超期未办结 overdue open 1；已办结 closed 0，按时办结率 closed on time -" in capsys.readouterr().out

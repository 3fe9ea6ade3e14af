"""Who may play which recording, and the grant that lets a browser fetch it by range: verified
once against the ticket (size, SHA-256), then bound to one user, session, recording and file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from ivr.config import WebSettings
from recording.grants import Checked, FileMark, Grant, check, session_digest
from recording.rules import RecordingSettings, playback_refusal
from tickets.model import Recording


@pytest.mark.parametrize("role, agent, ticket_agent, own, allowed", [
    ("supervisor", None, "agent1001", False, True),
    ("admin", None, "agent1001", False, True),
    ("agent", "agent1001", "agent1001", True, True),  # its own call, where the policy allows it
    ("agent", "agent1001", "agent1001", False, False),  # its own call, the policy says no
    ("agent", "agent1002", "agent1001", True, False),  # another seat's call
    ("agent", "agent100", "agent1001", True, False),  # a seat's name is matched whole
    ("agent", None, "", True, False),  # an agent without a seat, a ticket nobody answered
    ("viewer", None, "agent1001", True, False),  # a role that does not exist
])
def test_supervisors_and_admins_play_any_call_and_an_agent_only_its_own_where_the_policy_allows(
        role: str, agent: str | None, ticket_agent: str, own: bool, allowed: bool) -> None:
    refusal = playback_refusal(role, agent, {ticket_agent} - {""}, own)
    assert (refusal is None) == allowed, refusal
    if refusal:
        assert any("\u4e00" <= c <= "\u9fff" for c in refusal), "the refusal is shown to staff: Mandarin"


def test_agents_play_own_is_off_unless_configured_and_only_a_boolean() -> None:
    assert RecordingSettings().agents_play_own is False
    assert RecordingSettings.model_validate({"agents_play_own": True}).agents_play_own is True
    with pytest.raises(ValidationError):
        RecordingSettings.model_validate({"agents_play_own": "sometimes"})


def test_the_console_url_is_the_base_url_or_its_own_address_and_nothing_else() -> None:
    assert WebSettings().url() == "http://127.0.0.1:8345"
    assert WebSettings(base_url="https://rx.example.gov.cn/console/").url() == "https://rx.example.gov.cn/console"
    for bad in ("javascript:alert(1)", "https://x/?a=1", "https://x/#frag", "ftp://x", "https://x y"):
        with pytest.raises(ValidationError):
            WebSettings(base_url=bad)


def kept(root: Path, data: bytes = b"OggS" + bytes(range(256)) * 8) -> Recording:
    path = root / "2026/12/06/20261206-12345-00017.opus"
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    return Recording(file="2026/12/06/20261206-12345-00017.opus", mode="answer", seconds=4.0, size=len(data),
                     sha256=hashlib.sha256(data).hexdigest())


def test_a_file_is_served_only_when_it_is_the_one_on_the_ticket(tmp_path: Path) -> None:
    rec = kept(tmp_path)
    path = tmp_path / rec.file
    ok = check(rec, tmp_path)
    assert ok.state == "ok" and ok.path == path and ok.mark == FileMark.of(path)

    data = bytearray(path.read_bytes())
    data[100] ^= 0x01  # one bit, same size
    path.write_bytes(bytes(data))
    assert check(rec, tmp_path) == Checked("altered")
    path.unlink()
    assert check(rec, tmp_path) == Checked("missing")


@pytest.mark.parametrize("file", ["../../etc/passwd", "/etc/passwd", "2026/../../../etc/passwd", ""])
def test_a_ticket_whose_file_leads_outside_the_directory_is_missing_never_read(tmp_path: Path, file: str) -> None:
    root = tmp_path / "recordings"
    root.mkdir()
    rec = Recording(file=file, size=os.stat("/etc/passwd").st_size,
                    sha256=hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest())
    assert check(rec, root) == Checked("missing")


def test_a_deleted_recording_is_deleted_even_if_a_file_lies_there(tmp_path: Path) -> None:
    rec = kept(tmp_path)
    rec.deleted, rec.deleted_why = "2027-06-04T10:00:00+08:00", "retention"
    assert check(rec, tmp_path) == Checked("deleted")


def test_a_grant_holds_for_its_user_session_and_recording_only_while_the_file_is_untouched(tmp_path: Path) -> None:
    rec = kept(tmp_path)
    checked = check(rec, tmp_path)
    assert checked.mark is not None
    grant = Grant("supervisor-1", session_digest("cookie-a"), "20261206-12345-00017", 1, rec.file, checked.mark, "play")
    assert grant.matches("supervisor-1", "cookie-a", "20261206-12345-00017", 1)
    assert not grant.matches("supervisor-2", "cookie-a", "20261206-12345-00017", 1)  # another user
    assert not grant.matches("supervisor-1", "cookie-b", "20261206-12345-00017", 1)  # another session
    assert not grant.matches("supervisor-1", "cookie-a", "20261206-12345-00017", 2)  # another recording
    assert not grant.matches("supervisor-1", "cookie-a", "20261206-12345-00018", 1)  # another ticket
    assert grant.intact(tmp_path) == tmp_path / rec.file

    path = tmp_path / rec.file
    path.write_bytes(path.read_bytes())  # same bytes, written again: no longer the file verified
    os.utime(path, ns=(checked.mark.mtime_ns + 1_000_000, checked.mark.mtime_ns + 1_000_000))
    assert grant.intact(tmp_path) is None
    path.unlink()
    assert grant.intact(tmp_path) is None

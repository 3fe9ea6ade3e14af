"""What a ticket says its recording should be (recording/expect.py): a file cut short, a call the
policy recorded that left no file, the seats that may play a recording as their own; and why no
file could be created at all (recording/rules.py disk_problem: the disk alarm shows it)."""

from __future__ import annotations

from recording.expect import cut_short, seats_of, should_have_file, talk_expected
from recording.rules import RecordingSettings, disk_alarm, disk_problem, incomplete_label
from tickets.model import QueueVisit, Recording, Ticket

RECEIVED, ENDED = "2026-12-07T10:00:00.000+08:00", "2026-12-07T10:01:00.000+08:00"


def ticket(talk: float | None = 30.0, line: str = "12345", queue: str = "general", matter: str = "",
           answered_by: str = "agent1001") -> Ticket:
    visits = [QueueVisit(queue, RECEIVED, outcome="answered", agent=answered_by)] if answered_by else []
    return Ticket(linkedid="n-1.1", line=line, caller="13900000001", received=RECEIVED, ended=ENDED, number="x",
                  answered=RECEIVED if answered_by else "", agent=answered_by, talk_seconds=talk, queue=queue,
                  queue_visits=visits, request_type=matter, disposition="answered")


def test_a_file_much_shorter_than_the_talk_is_cut_short_and_a_frame_or_a_second_less_is_not() -> None:
    assert cut_short(4.0, 12.0) and cut_short(20.0, 30.0)
    assert not cut_short(11.0, 12.0) and not cut_short(10.1, 12.0), "within 2 s: the hook's start, TalkTime's rounding"
    assert not cut_short(270.0, 295.0) and cut_short(260.0, 295.0), "a long talk may miss a tenth"
    assert not cut_short(0.5, None), "no talk time on the ticket: nothing to judge by"
    assert incomplete_label(4.0, 12.0) == "录音不完整（录到 4 秒，通话 12 秒）"


def test_the_talk_to_expect_is_the_seats_from_answer_the_calls_from_the_start_and_none_for_a_callback() -> None:
    t = ticket(talk=30.0)
    assert talk_expected(t, "answer", "n-1.1.answer") == 30.0
    assert talk_expected(t, "start", "n-1.1.start") == 60.0
    assert talk_expected(t, "answer", "n-1.1-cb-n-2.7.answer") is None, "the stand-in's talk is not on the ticket"
    assert talk_expected(ticket(talk=None), "answer", "n-1.1.answer") is None


def test_a_call_the_policy_recorded_that_talked_must_have_a_file() -> None:
    s = RecordingSettings(default="answer", lines={"12369": "never", "12396": "start"}, queues={"expert-legal": "never"},
                          matters={"report": "never"})
    assert should_have_file(s, ticket())
    assert not should_have_file(s, ticket(talk=0.4)), "less than a second with a seat"
    assert not should_have_file(s, ticket(answered_by="")), "never reached a seat"
    assert not should_have_file(s, ticket(line="12369")) and not should_have_file(s, ticket(queue="expert-legal"))
    assert not should_have_file(s, ticket(matter="report"))
    assert should_have_file(s, ticket(line="12396", answered_by="")), "from the start: the IVR is recorded"
    assert not should_have_file(RecordingSettings(), ticket()), "no policy: nothing is recorded"


def test_the_seats_of_a_recording_are_the_tickets_agent_and_those_that_talked_on_that_call() -> None:
    t = ticket(answered_by="agent1001")
    t.agent = "agent1003"  # the seat that took the callback's last attempt
    t.callback = {"attempts": [{"agent": "agent1002", "answered": True}, {"agent": "agent1003", "answered": False}]}
    call, called_back = Recording(file="a", source="n-1.1.answer"), Recording(file="b", source="n-1.1-cb-n-2.7.answer")
    assert seats_of(t, call) == {"agent1001", "agent1003"}
    assert seats_of(t, called_back) == {"agent1002", "agent1003"}
    assert seats_of(ticket(answered_by=""), call) == frozenset()


def test_no_free_inode_or_a_directory_not_writable_raise_the_alarm_whatever_the_free_space() -> None:
    assert disk_problem(2048, 0, True) == "no-inodes" and disk_problem(2048, 15, True) == "no-inodes"
    assert disk_problem(2048, 2000, False) == "not-writable"
    assert disk_problem(0, 0, True) == "", "a file system without a fixed inode count (btrfs)"
    assert disk_problem(2048, 2000, True) == ""
    s = RecordingSettings(disk_alarm_percent=80, disk_min_free_mb=1)
    assert not disk_alarm(s, 10 << 30, 9 << 30) and disk_alarm(s, 10 << 30, 9 << 30, "no-inodes")

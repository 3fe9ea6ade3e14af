"""The department write-back's rules: the body's strict validation, the transition table, who
may write, extensions within bounds, overdue and on-time (tickets/workflow.py)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest

from ivr.core.calendar import load_calendar
from tickets.model import Deadline, Ticket
from tickets.push import sign, signature_problem
from tickets.workflow import (
    MAX_BODY, TRANSITIONS, BadEvent, DeptEvent, Refused, apply, closed_on_time, overdue, parse_event, returned_by,
)

CAL = load_calendar()
NOW = datetime(2026, 12, 7, 10, 0).astimezone()
TITLE = "市住建局"


def body(**fields: object) -> bytes:
    return json.dumps({"id": "evt-1", **fields}, ensure_ascii=False).encode()


def ticket(status: str = "accepted", department: str = TITLE, due: str = "2026-12-10") -> Ticket:
    return Ticket(linkedid="1.1", line="12345", caller="13900000001", received="2026-12-07T09:00:00+08:00",
                  number="20261207-12345-00001", status=status, department=department,
                  deadline=Deadline(due=due, rule="3 working days"))


def event(kind: str, **fields: str) -> DeptEvent:
    return parse_event(body(event=kind, **fields))


@pytest.mark.parametrize("fields, why", [
    ({"event": "handling", "extra": "x"}, "extra"),  # known fields only
    ({"event": "reopen"}, "event"),
    ({"event": "closed"}, "needs text"),  # the reply is required
    ({"event": "returned", "text": ""}, "needs text"),
    ({"event": "dispatched"}, "needs unit"),
    ({"event": "extend", "text": "材料补正"}, "needs due"),
    ({"event": "handling", "text": "x"}, "takes no text"),
    ({"event": "closed", "text": "已答复\x1b[31m"}, "control character"),
    ({"event": "closed", "text": "已答复\u202e"}, "control character"),  # a bidi override hides text
    ({"event": "dispatched", "unit": "a\nb"}, "one line"),
    ({"event": "closed", "text": "长" * 2001}, "2000"),
    ({"event": "handling", "id": "../../etc"}, "pattern"),
    ({"event": "handling", "id": 7}, "id"),  # strict: no number for a text
])
def test_given_a_bad_body_then_it_is_refused_with_the_field(fields: dict[str, object], why: str) -> None:
    with pytest.raises(BadEvent, match=why):
        parse_event(json.dumps({"id": "evt-1", **fields}, ensure_ascii=False).encode())


def test_given_no_json_or_an_oversized_body_then_refused() -> None:
    with pytest.raises(BadEvent):
        parse_event(b"{not json")
    with pytest.raises(BadEvent, match="over"):
        parse_event(b" " * (MAX_BODY + 1))


def test_a_reply_keeps_its_line_breaks_and_loses_outer_blanks() -> None:
    assert event("closed", text="  已为您协调。\n请留意短信。 ").text == "已为您协调。\n请留意短信。"


@pytest.mark.parametrize("kind, fields", [
    ("dispatched", {"unit": "瑶海区住建局"}), ("handling", {}), ("closed", {"text": "已答复"}),
    ("returned", {"text": "非本单位职责"}), ("extend", {"due": "2026-12-14", "text": "需现场核查"}),
])
def test_every_status_against_the_table(kind: str, fields: dict[str, str]) -> None:
    for status in ("accepted", "dispatched", "handling", "replied", "closed", "returned"):
        t = ticket(status)
        if status == "returned":  # returned by another department; this one is newly assigned
            t.note("2026-12-07T09:30:00+08:00", "dept returned", "市水务局：退回原因：x")
        before = len(t.timeline)
        if status in TRANSITIONS[kind]:
            apply(t, event(kind, **fields), TITLE, NOW, calendar=CAL, max_extension_days=15)
            assert t.timeline[-1].event == f"dept {kind}" and t.timeline[-1].detail.startswith(TITLE + "：")
            assert t.status == (status if kind == "extend" else kind)
        else:
            with pytest.raises(Refused) as refused:
                apply(t, event(kind, **fields), TITLE, NOW, calendar=CAL, max_extension_days=15)
            assert refused.value.status == 409 and t.status == status and len(t.timeline) == before


def test_a_closed_ticket_does_not_go_back_to_handling() -> None:
    t = ticket("closed")
    with pytest.raises(Refused, match="handling not allowed after closed"):
        apply(t, event("handling"), TITLE, NOW, calendar=CAL, max_extension_days=15)


def test_a_department_writes_only_to_its_own_tickets() -> None:
    for department in ("", "市水务局"):
        with pytest.raises(Refused) as refused:
            apply(ticket(department=department), event("handling"), TITLE, NOW, calendar=CAL, max_extension_days=15)
        assert refused.value.status == 403


def test_a_department_that_returned_a_ticket_cannot_take_it_back() -> None:
    t = ticket()
    apply(t, event("returned", text="非本单位职责"), TITLE, NOW, calendar=CAL, max_extension_days=15)
    assert t.status == "returned" and returned_by(t) == TITLE
    with pytest.raises(Refused, match="re-dispatches"):
        apply(t, event("handling"), TITLE, NOW, calendar=CAL, max_extension_days=15)


def test_an_extension_moves_the_deadline_within_bounds() -> None:
    t = ticket(due="2026-12-10")
    change = apply(t, event("extend", due="2026-12-17", text="需现场核查"), TITLE, NOW, calendar=CAL, max_extension_days=15)
    assert change.due == "2026-12-17" == t.deadline.due  # type: ignore[union-attr]
    assert "2026-12-10 → 2026-12-17" in t.timeline[-1].detail
    for due, why in (("2026-12-09", "later"), ("2026-12-17", "later"), ("2027-03-01", "15 working days"),
                     ("2026-12-19", "not a working day"), ("17.12.2026", "ISO date")):
        with pytest.raises(Refused, match=why):
            apply(t, event("extend", due=due, text="再延"), TITLE, NOW, calendar=CAL, max_extension_days=15)
    assert t.deadline.due == "2026-12-17"  # type: ignore[union-attr]


def test_a_crisis_deadline_extends_by_hours_with_an_offset() -> None:
    t = ticket(due="2026-12-08T09:00:00+08:00")
    apply(t, event("extend", due="2026-12-09T09:00:00+08:00", text="夜间无法施工"), TITLE, NOW, calendar=CAL,
          max_extension_days=1)
    assert t.deadline.due == "2026-12-09T09:00:00+08:00"  # type: ignore[union-attr]
    with pytest.raises(Refused, match="offset"):
        apply(t, event("extend", due="2026-12-09T12:00:00", text="x"), TITLE, NOW, calendar=CAL, max_extension_days=1)
    with pytest.raises(Refused, match="1 days past"):
        apply(t, event("extend", due="2026-12-10T12:00:00+08:00", text="x"), TITLE, NOW, calendar=CAL,
              max_extension_days=1)


def test_overdue_is_open_and_past_the_whole_due_day() -> None:
    due = NOW.date().isoformat()
    assert not overdue(ticket(due=due), NOW)  # due today: not yet
    assert overdue(ticket(due=(NOW.date() - timedelta(days=1)).isoformat()), NOW)
    assert not overdue(ticket("closed", due=(NOW.date() - timedelta(days=1)).isoformat()), NOW)
    assert overdue(ticket(due=(NOW - timedelta(minutes=1)).isoformat()), NOW)  # crisis hours


def test_closed_on_time_compares_the_closing_with_the_deadline() -> None:
    t = ticket(due="2026-12-07")
    apply(t, event("closed", text="已答复"), TITLE, NOW, calendar=CAL, max_extension_days=15)
    assert closed_on_time(t) is True
    late = ticket(due="2026-12-04")
    apply(late, event("closed", text="已答复"), TITLE, NOW, calendar=CAL, max_extension_days=15)
    assert closed_on_time(late) is False
    assert closed_on_time(ticket()) is None


def test_the_signature_check_says_why() -> None:
    key, data, now = b"k" * 20, b'{"id":"x"}', 1_800_000_000
    good = sign(key, now, data)
    assert signature_problem(key, data, str(now), good, now=now) == ""
    assert signature_problem(key, data + b" ", str(now), good, now=now) == "bad signature"
    assert signature_problem(key, data, str(now), good, now=now + 301) == "timestamp outside window"
    assert signature_problem(key, data, str(now - 400), sign(key, now - 400, data), now=now) == "timestamp outside window"
    for stamp in ("", "-5", "1e9", "１２３", "9" * 40):
        assert signature_problem(key, data, stamp, good, now=now) == "bad timestamp"
    assert signature_problem(key, data, str(now), "sha256=é", now=now) == "bad signature"  # no crash on non-ASCII


def test_a_workflow_event_reaches_endpoints_that_filter_on_workflow() -> None:
    from tickets.push import TicketEvent, wants
    from tickets.settings import Webhook

    streamed = TicketEvent("workflow:31:ab12cd34", "1.1", "20261207-12345-00001", "12345", {})
    assert wants(Webhook(url="https://dept.example/h", events=("workflow",)), streamed)
    assert not wants(Webhook(url="https://dept.example/h", events=("opened", "closed")), streamed)
    assert date.fromisoformat("2026-12-07")  # the calendar's year is covered

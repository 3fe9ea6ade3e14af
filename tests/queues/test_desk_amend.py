"""What an agent may set on a ticket from the desk (pure): the five request types by their
Mandarin or English names, only the plan's departments, bounded notes; applied, the type says
it came from the agent. The desk's stub never holds the caller's number unmasked."""

from __future__ import annotations

import json

import pytest

from queues.waiting import Amend, desk_stub, request_label
from tickets.model import Ticket

DEPARTMENTS = {"省民政厅", "省商务厅"}


def test_an_amend_takes_the_mandarin_type_a_known_department_and_notes() -> None:
    amend = Amend.checked("L1", "agent1001", "举报", " 省民政厅 ", "  需回访 ", DEPARTMENTS)
    assert (amend.request_type, amend.department, amend.notes) == ("report", "省民政厅", "需回访")
    ticket = Ticket(linkedid="L1", line="12345", caller="13900000001", received="2026-12-02T08:00:00+08:00",
                    request_type="complaint", request_type_source="ivr")
    amend.apply(ticket)
    assert (ticket.request_type, ticket.request_type_source, ticket.department) == ("report", "agent", "省民政厅")
    assert Amend.from_json(json.loads(json.dumps(amend.to_json()))) == amend
    assert request_label("report") == "举报" and request_label("") == "" and request_label("other") == ""


@pytest.mark.parametrize("kind, department, notes, says", [
    ("表扬", "", "", "unknown request type"),
    ("help", "省外单位", "", "未知的承办单位"),
    ("help", "", "长" * 2001, "备注过长"),
])
def test_an_amend_with_a_field_that_is_not_acceptable_is_refused(kind: str, department: str, notes: str,
                                                                 says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Amend.checked("L1", "agent1001", kind, department, notes, DEPARTMENTS)


def test_the_desk_stub_masks_the_caller() -> None:
    ticket = Ticket(linkedid="L1", line="12345", caller="13900000001", received="2026-12-02T08:00:00+08:00",
                    queued="2026-12-02T08:00:20+08:00")
    stub = desk_stub(ticket, "L1", "general", ticket_time(ticket.queued) + 5)
    assert stub["caller"] == "139****0001" and "13900000001" not in json.dumps(stub)
    assert stub["wait_seconds"] == 5.0
    assert desk_stub(None, "L2", "general", 0.0) == {"linkedid": "L2", "queue": "general", "offered_at": 0.0}


def ticket_time(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()

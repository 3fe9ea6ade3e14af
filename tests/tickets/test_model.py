"""The ticket model: masked views, request types, dispositions decided from what was seen."""

from __future__ import annotations

import pytest

from tickets.model import Disposition, RequestType, Ticket, Transfer, decide_disposition


def ticket(**kw: object) -> Ticket:
    return Ticket(linkedid="x.1", line="12345", caller="13900000001", received="2026-12-01T10:00:00+08:00", **kw)  # type: ignore[arg-type]


def test_a_masked_view_masks_every_number_of_the_caller() -> None:
    t = ticket(callback={"number": "13900000002", "state": "pending"})
    masked = t.view(unmasked=False)
    assert masked["caller"] == "139****0001" and masked["callback"]["number"] == "139****0002"
    assert t.view(unmasked=True)["callback"]["number"] == "13900000002"


def test_request_types_parse_from_mandarin_or_english_and_refuse_anything_else() -> None:
    assert RequestType.parse("投诉") is RequestType.parse("COMPLAINT") is RequestType.COMPLAINT
    with pytest.raises(ValueError, match="咨询/consult"):
        RequestType.parse("praise")


@pytest.mark.parametrize(("seen", "expected"), [
    ({}, (Disposition.ABANDONED_IVR, "")),
    ({"queued": "t1", "queue": "general"}, (Disposition.ABANDONED_QUEUE, "")),
    ({"queued": "t1", "answered": "t2", "agent": "a1"}, (Disposition.ANSWERED, "")),
    ({"transfers": [Transfer("subcenter", "tax", "12366", "t", result="ANSWER")]}, (Disposition.TRANSFERRED, "")),
    ({"transfers": [Transfer("subcenter", "tax", "12366", "t", result="BUSY")], "queued": "t1", "queue": "general",
      "answered": "t2", "agent": "a1"}, (Disposition.TRANSFER_FAILED, "queue general: answered by a1")),
    ({"transfers": [Transfer("emergency", "pstn", "110", "t", result="ANSWER")]}, (Disposition.EMERGENCY_LINKED, "")),
])
def test_the_disposition_follows_from_what_the_call_went_through(seen: dict[str, object], expected: object) -> None:
    assert decide_disposition(ticket(**seen)) == expected


def test_a_call_the_platform_lost_before_anyone_answered_is_an_error() -> None:
    assert decide_disposition(ticket(queued="t1", queue="general"), failed=True) == (Disposition.ERROR, "")


def test_a_ticket_survives_its_json_unchanged_and_the_json_shares_nothing_with_it() -> None:
    t = ticket(transfers=[Transfer("subcenter", "tax", "12366", "t", result="BUSY")], repeat_of=["n1"])
    t.note("t1", "received")
    data = t.to_json()
    assert Ticket.from_json(data) == t
    data["transfers"][0]["result"] = "changed"
    data["timeline"].append({"at": "t2", "event": "x", "detail": ""})
    assert t.transfers[0].result == "BUSY" and len(t.timeline) == 1

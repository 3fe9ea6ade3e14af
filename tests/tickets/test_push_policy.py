"""Push rules without I/O: who gets which event, what the body shows of the caller, how the
signature is made and checked, how long retries wait."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from ivr.config import PushSettings, Webhook
from tickets.model import QualityScore, Ticket
from tickets.push import (
    EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, MalformedEvent, TicketEvent, backoff_delay,
    backoff_schedule, delivered, endpoint_problems, gives_up, payload, recipients, sign, signed_headers,
    verify_signature,
)

STRONG_KEY = "tax-key-for-tests-0123"
URL = "https://dept.example/12345"
KEY = "s3cret"
NOW = 1_800_000_000


def event(kind: str = "opened", line: str = "12345", caller: str = "13800138000") -> TicketEvent:
    ticket = Ticket(linkedid="1700000000.42", line=line, caller=caller, received="2026-12-01T09:30:00+08:00")
    fields = {"event": kind, "linkedid": ticket.linkedid, "number": "20261201-12345-00017", "line": line,
              "ticket": json.dumps(ticket.to_json())}
    return TicketEvent.from_fields(fields)


def test_given_empty_filters_when_any_event_comes_then_the_endpoint_gets_it() -> None:
    assert recipients({"all": Webhook(url=URL)}, event("rated", line="12366")) == ["all"]


@pytest.mark.parametrize("kind, line, expected", [
    ("opened", "12345", ["city"]), ("closed", "12366", ["closings", "tax"]), ("opened", "12366", ["tax"]),
    ("updated", "12345", ["city"]), ("closed", "12345", ["closings"]), ("rated", "12360", []),
])
def test_given_event_and_line_filters_when_an_event_comes_then_only_matching_endpoints_get_it(
        kind: str, line: str, expected: list[str]) -> None:
    webhooks = {
        "closings": Webhook(url=URL, events=("closed",), lines=("12366", "12345")),
        "tax": Webhook(url=URL, lines=("12366",)),
        "city": Webhook(url=URL, lines=("12345",), events=("opened", "updated")),
    }
    assert sorted(recipients(webhooks, event(kind, line))) == sorted(expected)


def test_given_a_masking_endpoint_when_the_body_is_built_then_the_caller_is_masked_and_the_number_filled() -> None:
    body = json.loads(payload(event(), Webhook(url=URL)))
    assert body["ticket"]["caller"] == "138****8000"
    assert "13800138000" not in json.dumps(body)
    assert body["id"] == "1700000000.42:opened"
    assert body["number"] == body["ticket"]["number"] == "20261201-12345-00017"


def test_given_a_scored_ticket_when_the_body_is_built_then_the_seats_quality_scores_stay_in_the_platform() -> None:
    ticket = Ticket(linkedid="1700000000.43", line="12345", caller="13800138000", received="2026-12-01T09:30:00+08:00",
                    quality=[QualityScore(by="zhao@console", at="2026-12-02T10:00:00+08:00", scores={"greeting": 3},
                                          total=3, comment="态度生硬")])
    scored = TicketEvent.from_fields({"event": "quality:31:ab12cd34", "linkedid": ticket.linkedid, "number": "20261201-12345-00018",
                                      "line": "12345", "ticket": json.dumps(ticket.to_json())})
    body = json.loads(payload(scored, Webhook(url=URL, unmasked_caller=True)))
    assert "quality" not in body["ticket"] and "态度生硬" not in json.dumps(body, ensure_ascii=False)
    assert body["ticket"]["caller"] == "13800138000"


def test_given_an_unmasked_endpoint_when_the_body_is_built_then_the_caller_is_in_full() -> None:
    body = json.loads(payload(event(), Webhook(url=URL, unmasked_caller=True)))
    assert body["ticket"]["caller"] == "13800138000"


def test_given_one_event_when_the_body_is_built_twice_then_the_bytes_are_equal() -> None:
    assert payload(event(), Webhook(url=URL)) == payload(event(), Webhook(url=URL))


@pytest.mark.parametrize("fields, reason", [
    ({"event": "opened", "linkedid": "1.1", "number": "n", "line": "12345"}, "lacks ticket"),
    ({"event": "opened", "linkedid": "1.1", "number": "n", "line": "12345", "ticket": "{"}, "not JSON"),
    ({"event": "opened", "linkedid": "1.1", "number": "n", "line": "12345", "ticket": "[]"}, "not a JSON object"),
])
def test_given_a_broken_stream_entry_when_read_then_it_is_refused_with_the_reason(
        fields: dict[str, str], reason: str) -> None:
    with pytest.raises(MalformedEvent, match=reason):
        TicketEvent.from_fields(fields)


def test_given_a_ticket_missing_required_fields_when_the_body_is_built_then_it_is_refused() -> None:
    broken = TicketEvent("opened", "1.1", "n", "12345", {"line": "12345"})
    with pytest.raises(MalformedEvent, match="does not fit"):
        payload(broken, Webhook(url=URL))


def test_given_signed_headers_when_the_receiver_verifies_then_it_accepts_only_the_same_body_and_key() -> None:
    body = payload(event(), Webhook(url=URL))
    headers = signed_headers("1700000000.42:opened", KEY, body, NOW)
    assert headers[EVENT_ID_HEADER] == "1700000000.42:opened"
    assert headers[TIMESTAMP_HEADER] == str(NOW)
    assert headers[SIGNATURE_HEADER].startswith("sha256=") and len(headers[SIGNATURE_HEADER]) == 7 + 64
    ts, sig = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
    assert verify_signature(KEY, body, ts, sig, now=NOW + 10)
    assert not verify_signature("other", body, ts, sig, now=NOW)
    assert not verify_signature(KEY, body + b" ", ts, sig, now=NOW)
    assert not verify_signature(KEY, body, str(NOW + 1), sig, now=NOW)  # the timestamp is signed too
    assert not verify_signature(KEY, body, "soon", sig, now=NOW)


def test_given_an_old_signature_when_verified_then_it_is_refused_as_a_replay() -> None:
    body = b"{}"
    assert verify_signature(KEY, body, str(NOW), sign(KEY, NOW, body), now=NOW + 299)
    assert not verify_signature(KEY, body, str(NOW), sign(KEY, NOW, body), now=NOW + 301)


def test_given_the_documented_recipe_when_a_receiver_computes_it_then_it_matches() -> None:
    body = b'{"id":"1.1:opened"}'
    expected = hmac.new(KEY.encode(), f"{NOW}.".encode() + body, hashlib.sha256).hexdigest()
    assert sign(KEY, NOW, body) == f"sha256={expected}"


def test_given_backoff_settings_when_retries_are_planned_then_waits_double_up_to_the_cap() -> None:
    push = PushSettings(max_tries=8, backoff=1.0, max_backoff=20.0)
    assert backoff_schedule(push) == [1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0]
    assert backoff_delay(1, push) == 1.0 and backoff_delay(50, push) == 20.0


def test_given_max_tries_when_attempts_fail_then_it_gives_up_exactly_at_the_last_one() -> None:
    push = PushSettings(max_tries=3)
    assert [gives_up(n, push) for n in (1, 2, 3)] == [False, False, True]
    assert len(backoff_schedule(push)) == 2


@pytest.mark.parametrize("status, ok", [(200, True), (204, True), (299, True), (301, False), (404, False),
                                        (500, False)])
def test_given_a_status_when_judged_then_only_2xx_is_a_delivery(status: int, ok: bool) -> None:
    assert delivered(status) is ok


def test_given_endpoints_without_keys_or_with_unknown_events_when_checked_then_each_is_named() -> None:
    webhooks = {"city-affairs": Webhook(url=URL), "tax": Webhook(url=URL, events=("openned",))}
    problems = endpoint_problems(webhooks, {"city-affairs": None, "tax": STRONG_KEY})
    assert problems == [
        "webhook 'city-affairs' has no signing key: set IVR_WEBHOOK_SECRET_CITY_AFFAIRS",
        "webhook 'tax': unknown event(s) openned (ticket events: opened, closed, rated, updated, workflow)",
    ]
    assert endpoint_problems({"tax": Webhook(url=URL)}, {"tax": STRONG_KEY}) == []


def test_a_weak_signing_key_is_refused() -> None:
    """Anyone who guesses the key forges ticket events to the department."""
    for weak in ("k", "dept-key", "aaaaaaaaaaaaaaaaaaaaaaaa", "tax-key-for;tests-123"):
        [problem] = endpoint_problems({"tax": Webhook(url=URL)}, {"tax": weak})
        assert problem.startswith("webhook 'tax': IVR_WEBHOOK_SECRET_TAX")

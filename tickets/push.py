"""Pushing ticket events to department webhooks (001 §4): the rules, without any I/O.

Which endpoint gets which event (its ``events`` and ``lines`` filters), the JSON body it
receives (the caller masked unless the endpoint handles the case and needs the number), how a
delivery is signed and checked, and how long to wait before each retry. The delivery worker
(:mod:`tickets.webhooks`) does the Redis and HTTP work around these.

Signing, for receivers: every POST carries

- ``X-Ivr-Event-Id``: ``<linkedid>:<event>``, the same for every retry and every worker (the
  ticket repository streams each phase of a ticket once), so a receiver can drop duplicates;
- ``X-Ivr-Timestamp``: unix seconds when this attempt was signed;
- ``X-Ivr-Signature``: ``sha256=`` + hex HMAC-SHA256 over ``b"<timestamp>." + body`` with the
  endpoint's key. :func:`verify_signature` is the check a receiver runs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any, Mapping

from ivr.core.secret_policy import secret_problem
from tickets.model import Ticket
from tickets.settings import PushSettings, Webhook, webhook_secret_variable

EVENT_KINDS = ("opened", "closed", "rated", "updated", "workflow")  # the phases the ticket repository streams
# (a later change names its phase ``<kind>:<rev>:<id>``: a filter names the kind)
EVENT_ID_HEADER = "X-Ivr-Event-Id"
TIMESTAMP_HEADER = "X-Ivr-Timestamp"
SIGNATURE_HEADER = "X-Ivr-Signature"
SIGNATURE_TOLERANCE = 300.0  # s: a receiver refuses older (replayed) or far-future signatures


class MalformedEvent(ValueError):
    """A stream entry that is not a ticket event: it can never be delivered, only parked."""


def stable_id(linkedid: str, event: str) -> str:
    """Stable across retries, workers and restarts: what receivers dedupe on."""
    return f"{linkedid}:{event}"


@dataclass(frozen=True)
class TicketEvent:
    """One entry of the ticket event stream, as the push rules read it."""

    event: str
    linkedid: str
    number: str  # authoritative (the ticket JSON's own "number" may still be empty)
    line: str
    ticket: Mapping[str, Any]

    @property
    def event_id(self) -> str:
        return stable_id(self.linkedid, self.event)

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> "TicketEvent":
        missing = [f for f in ("event", "linkedid", "number", "line", "ticket") if not fields.get(f)]
        if missing:
            raise MalformedEvent(f"stream entry lacks {', '.join(missing)}")
        try:
            ticket = json.loads(fields["ticket"])
        except ValueError as exc:
            raise MalformedEvent(f"ticket is not JSON: {exc}") from None
        if not isinstance(ticket, dict):
            raise MalformedEvent("ticket is not a JSON object")
        return cls(fields["event"], fields["linkedid"], fields["number"], fields["line"], ticket)


def wants(webhook: Webhook, event: TicketEvent) -> bool:
    """An empty filter lets everything through."""
    kind = event.event.partition(":")[0]
    return (not webhook.events or kind in webhook.events) and (not webhook.lines or event.line in webhook.lines)


def recipients(webhooks: Mapping[str, Webhook], event: TicketEvent) -> list[str]:
    """The endpoints (by name) that get ``event``."""
    return [name for name, webhook in webhooks.items() if wants(webhook, event)]


def payload(event: TicketEvent, webhook: Webhook) -> bytes:
    """The POST body: identical for every attempt (only the signature headers change)."""
    try:
        ticket = Ticket.from_json(dict(event.ticket))
    except (TypeError, ValueError) as exc:
        raise MalformedEvent(f"ticket does not fit the model: {exc}") from None
    view = ticket.view(unmasked=webhook.unmasked_caller)
    del view["quality"]  # the platform's own inspection of its seats (质检): not the departments' to read
    view["number"] = event.number
    body = {"id": event.event_id, "event": event.event, "number": event.number, "line": event.line,
            "linkedid": event.linkedid, "ticket": view}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def _key(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else key


def sign(key: str | bytes, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>`` over ``b"<timestamp>." + body``: the timestamp is signed so an old
    delivery cannot be replayed as new."""
    digest = hmac.new(_key(key), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signed_headers(event_id: str, key: str | bytes, body: bytes, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        EVENT_ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(key, timestamp, body),
    }


def verify_signature(key: str | bytes, body: bytes, timestamp: str, signature: str, *,
                     now: float | None = None, tolerance: float = SIGNATURE_TOLERANCE) -> bool:
    """What a receiver checks: the signature matches the body and the timestamp, and the
    timestamp is within ``tolerance`` seconds of ``now`` (default: the clock)."""
    return not signature_problem(key, body, timestamp, signature, now=now, tolerance=tolerance)


def signature_problem(key: str | bytes, body: bytes, timestamp: str, signature: str, *,
                      now: float | None = None, tolerance: float = SIGNATURE_TOLERANCE) -> str:
    """Why a signed request is refused ("" when it is not): the check of :func:`verify_signature`,
    with its reason, for the department write-back that receives requests signed this same way."""
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return "bad timestamp"
    signed_at = int(timestamp)
    now = time.time() if now is None else now
    if abs(now - signed_at) > tolerance:
        return "timestamp outside window"
    if not hmac.compare_digest(sign(key, signed_at, body).encode(), signature.encode("utf-8", "replace")):
        return "bad signature"
    return ""


def delivered(status: int) -> bool:
    """Only a 2xx counts; a redirect is not followed (the signed body stays with its URL)."""
    return 200 <= status < 300


def backoff_delay(failures: int, push: PushSettings) -> float:
    """Seconds to wait after the ``failures``-th failed attempt: backoff, doubling, capped."""
    return min(push.backoff * 2 ** max(failures - 1, 0), push.max_backoff)


def gives_up(failures: int, push: PushSettings) -> bool:
    """After ``max_tries`` failed attempts the event is parked as a dead letter."""
    return failures >= push.max_tries


def backoff_schedule(push: PushSettings) -> list[float]:
    """The waits between the ``max_tries`` attempts of one event (one fewer than attempts)."""
    return [backoff_delay(n, push) for n in range(1, push.max_tries)]


def endpoint_problems(webhooks: Mapping[str, Webhook], secrets: Mapping[str, str | None]) -> list[str]:
    """Why push cannot start: an endpoint without a key (or a weak one), or a filter naming no ticket event."""
    problems = []
    for name, webhook in webhooks.items():
        key = secrets.get(name)
        if not key:
            problems.append(f"webhook {name!r} has no signing key: set {webhook_secret_variable(name)}")
        elif weak := secret_problem(webhook_secret_variable(name), key):
            problems.append(f"webhook {name!r}: {weak}")
        unknown = [e for e in webhook.events if e not in EVENT_KINDS]
        if unknown:
            problems.append(f"webhook {name!r}: unknown event(s) {', '.join(unknown)} "
                            f"(ticket events: {', '.join(EVENT_KINDS)})")
    return problems

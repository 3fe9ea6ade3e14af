"""The ``tickets:`` section of the configuration: deadlines, retention, repeat callers and the
department webhooks (owned here, composed by :mod:`ivr.config.settings`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from ivr.core.secret_policy import secret_problem
from ivr.core.strict import Strict

RequestTypeName = Literal["consult", "help", "complaint", "report", "suggestion"]


class Webhook(Strict):
    """A department endpoint that receives ticket events (secret: ``IVR_WEBHOOK_SECRET_<NAME>``)."""

    url: str = Field(pattern=r"^https?://")
    events: tuple[str, ...] = Field((), description="ticket events to send (opened, closed, …); empty: all")
    lines: tuple[str, ...] = Field((), description="only tickets of these dialed numbers; empty: all")
    timeout: float = Field(5.0, gt=0, le=60)
    unmasked_caller: bool = Field(False, description="send the caller number in full (the handling staff need it)")
    plain_http: bool = Field(False, description="allow an http:// url with unmasked_caller: only where the path is "
                             "trusted end to end (a TLS sidecar on the same host); otherwise caller numbers cross "
                             "the network in clear text")

    @model_validator(mode="after")
    def _caller_numbers_travel_encrypted(self) -> "Webhook":
        if self.unmasked_caller and self.url.lower().startswith("http://") and not self.plain_http:
            raise ValueError("unmasked_caller sends caller numbers in full: the url must be https:// "
                             "(or set plain_http: true for a trusted local hop)")
        return self


class Department(Strict):
    """A department that writes its handling back (tickets/writeback.py): ``title`` is the name the
    desk assigns cases to (the number plan's 责任单位); its HMAC key is read, at each request, from
    the environment variable ``key_env`` or the file ``key_file`` (outside the repo), never from here."""

    title: str = Field(min_length=1, max_length=40, description="the department's name on the ticket (承办单位)")
    key_env: str = Field("", pattern=r"^([A-Z][A-Z0-9_]{2,63})?$", description="environment variable holding the key")
    key_file: str = Field("", max_length=400, description="file holding the key (one line; mode 0600)")

    @model_validator(mode="after")
    def _one_key_source(self) -> "Department":
        if bool(self.key_env) == bool(self.key_file):
            raise ValueError("name exactly one of key_env (an environment variable) or key_file (a file outside the repo)")
        return self


class KeyMissing(Exception):
    """The department's key is not set (or too weak): its requests cannot be checked."""


def department_key(department: Department, environ: dict[str, str] | None = None) -> bytes:
    """The HMAC key, read now (a rotated key applies at once); KeyMissing names what is wrong."""
    if department.key_env:
        value = (os.environ if environ is None else environ).get(department.key_env, "")
        label = department.key_env
    else:
        try:
            value = Path(department.key_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise KeyMissing(f"cannot read {department.key_file}: {exc.strerror or exc}") from None
        label = department.key_file
    if not value:
        raise KeyMissing(f"{label} is not set")
    if problem := secret_problem(label, value):
        raise KeyMissing(problem)
    return value.encode()


def department_key_problems(departments: dict[str, Department], environ: dict[str, str] | None = None) -> list[str]:
    """Why a department's every write-back would be refused (401): its key is unset, unreadable or
    weak. ``ivr check`` names them before the department's first request does."""
    problems = []
    for name, department in departments.items():
        try:
            department_key(department, environ)
        except KeyMissing as exc:
            problems.append(f"department {name!r} ({department.title}) cannot sign write-backs: {exc}")
    return problems


class PushSettings(Strict):
    max_tries: int = Field(6, ge=1, le=100, description="attempts per event and endpoint before it is dead-lettered")
    backoff: float = Field(1.0, gt=0, description="seconds before the first retry; doubles with each try")
    max_backoff: float = Field(300.0, gt=0)


class TicketSettings(Strict):
    """Ticket stubs: handling deadlines, retention of personal data, repeat callers, push."""

    retention_days: int = Field(
        180, ge=1, le=3650, description="tickets and caller numbers expire after this many days (Redis TTL, CDR rotation)",
    )
    kpi_retention_days: int = Field(
        400, ge=1, le=3650, description="daily service-level counters (no personal data) expire after this many days; "
        "5-minute buckets after 3 days",
    )
    deadlines: dict[RequestTypeName, int] = Field(
        {"consult": 3, "help": 3, "complaint": 7, "report": 7, "suggestion": 3},
        description="handling deadline in working days, counted from the day after receipt",
    )
    crisis: bool = Field(False, description="crisis mode: deadlines in hours (crisis_hours) instead of working days")
    crisis_hours: dict[RequestTypeName, int] = {"consult": 24, "help": 24, "complaint": 48, "report": 48, "suggestion": 24}
    repeat_days: int = Field(30, ge=0, le=365, description="a caller with a ticket this recent is a repeat caller")
    satisfaction: bool = Field(True, description="ask the caller for a 1–5 rating after the agent hangs up")
    satisfaction_timeout: int = Field(8, ge=1, le=60, description="seconds the caller has to key a rating")
    satisfaction_low: int = Field(2, ge=1, le=4, description="a rating at or below this is counted as low "
                                  "(dissatisfied: a callback visit, 回访, is due)")
    webhooks: dict[str, Webhook] = {}
    push: PushSettings = PushSettings()
    departments: dict[str, Department] = Field(
        {}, description="departments that write their handling back over the signed inbound API (docs/tickets.md)")
    max_extension_days: int = Field(
        15, ge=1, le=60, description="an extension (延期) moves the deadline at most this many working days (crisis: "
        "this many days of hours) past the current one")


def webhook_secret_variable(endpoint: str) -> str:
    """Where a department webhook's HMAC key comes from: ``IVR_WEBHOOK_SECRET_<ENDPOINT>``."""
    return "IVR_WEBHOOK_SECRET_" + endpoint.upper().replace("-", "_")

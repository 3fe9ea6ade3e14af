"""A web-phone seat's per-sign-in SIP account as Asterisk keeps it in AstDB (issue 23).

sorcery.conf (asterisk-conf/) gives PJSIP's ``auth`` objects a second home after pjsip.conf:
res_sorcery_astdb, prefix ``ivr_phone``, which stores an object in family ``<prefix>/<type>``
under its id, as a JSON object of its fields. The console writes one there for each sign-in
(ivr/ami/phone_auth.py) and the generated pjsip_generated.conf names it from the seat's endpoint
(``auth=<seat>-auth``). Nothing here comes from a caller; every value is still checked, since it
travels in AMI headers (``Key``, ``Val``) and Asterisk's JSON."""

from __future__ import annotations

import json
import re
import secrets

AUTH_FAMILY = "ivr_phone/auth"  # sorcery.conf: auth=astdb,ivr_phone (+ "/auth", the object type)
_SEAT = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # a seat's name as the config allows it (queues.model)
_PASSWORD = re.compile(r"[A-Za-z0-9_-]{22,128}")  # what secrets.token_urlsafe gives


class BadAccount(ValueError):
    """A seat name or password that may not go into AMI headers or Asterisk's store."""


def auth_id(seat: str) -> str:
    """The auth object's id, as the seat's endpoint names it (``auth=<seat>-auth``)."""
    if not _SEAT.fullmatch(seat):
        raise BadAccount(f"not a seat name: {seat!r}")
    return f"{seat}-auth"


def new_password() -> str:
    """A fresh password for one sign-in (192 random bits)."""
    return secrets.token_urlsafe(24)


def auth_value(seat: str, password: str) -> str:
    """The JSON res_sorcery_astdb reads back as the seat's digest account (user = the seat)."""
    auth_id(seat)
    if not _PASSWORD.fullmatch(password):
        raise BadAccount("a phone password is URL-safe base64 of at least 22 characters")
    return json.dumps({"auth_type": "userpass", "username": seat, "password": password}, separators=(",", ":"))

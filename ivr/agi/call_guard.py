"""What one AGI session may claim and write: a well-formed identity, bounded fields.

The AGI environment is the peer's word (:mod:`ivr.agi.peers` limits who the peer may be): its
uniqueid names the call record's Redis key and the call the record is applied to, its caller
and the digits it answers end up in that record. So the identity is checked where it enters —
an environment whose uniqueid or channel is not Asterisk's shape is refused before any flow
runs — and the record is bounded before it is stored: a peer answering GET DATA with 8 KiB of
digits, or a caller ID of 16 KiB, writes at most some 64 KiB per call (a real one: 1–3 KiB). The record also names its
channel and whether the AMI follower saw that channel live (``confirmed``): a record is stored
once per uniqueid, and only a confirmed one may replace another (:data:`ivr.store.SAVE_RECORDS`).

Several engines serve one Asterisk, and a call whose engine vanished mid-IVR reaches the next one
with the resume point the first left on the channel (:mod:`ivr.flows.resume`): a second session
of the same uniqueid and channel, which may replace the first's record. Only an engine can have
written that point: it is signed with a key of the engines (derived from the caller key they
share), over the call's uniqueid and channel, so an environment that claims a resume without
the signature, or replays one onto another call, is refused before any flow runs.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any, Mapping

# Asterisk's uniqueid: <epoch>.<sequence>, prefixed by "<systemname>-" when asterisk.conf sets one,
# or whatever an AMI Originate gave as ChannelId (AST_MAX_UNIQUEID 150): only its characters and
# length are Asterisk's rule, and they are what keeps it a safe part of a Redis key and a log line
UNIQUEID = re.compile(r"[A-Za-z0-9_.-]{1,150}")
# a channel name: technology/resource (PJSIP/carrier-0000001a, Local/12345@from-pstn-00000003;2)
CHANNEL = re.compile(r"[A-Za-z0-9]{1,16}/[A-Za-z0-9_.@:;+#*=~-]{1,160}")
MAX_TEXT = 256  # characters of one value (caller, dialed, a variable, an error)
MAX_ITEMS = 32  # keys, variables, channel variables of one call
MAX_VISITS = 128  # nodes one call visits (a flow's deadline ends it long before)
MAX_NAME = 40  # characters of a key pressed (an ID number is 18) and of a visit's field


def identity_problem(env: Mapping[str, str]) -> str | None:
    """Why an AGI environment's identity cannot be Asterisk's (None: it can)."""
    if not UNIQUEID.fullmatch(env.get("agi_uniqueid", "")):
        return f"agi_uniqueid {env.get('agi_uniqueid', '')[:40]!r} is not an Asterisk uniqueid"
    if not CHANNEL.fullmatch(env.get("agi_channel", "")):
        return f"agi_channel {env.get('agi_channel', '')[:40]!r} is not a channel name"
    return None


RESUME_TAG = 16  # hex characters of the signature (64 bits: a forger gets one try per call)


def resume_key(caller_key: bytes) -> bytes:
    """The engines' signing key for resume points (not the caller key itself)."""
    return hmac.new(caller_key, b"ivr12345 resume point", hashlib.sha256).digest()


def _tag(key: bytes, unique_id: str, channel: str, body: str) -> str:
    message = f"{unique_id}\n{channel}\n{body}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:RESUME_TAG]


def sign_resume(key: bytes, unique_id: str, channel: str, body: str) -> str:
    """``body`` (an encoded resume point) with its signature, as the channel carries it."""
    return f"{body}:{_tag(key, unique_id, channel, body)}"


def verified_resume(key: bytes | None, unique_id: str, channel: str, token: str) -> str | None:
    """The body of a resume point an engine signed for this very call, or None."""
    body, _, tag = token.rpartition(":")
    if key is None or not body or not hmac.compare_digest(tag, _tag(key, unique_id, channel, body)):
        return None
    return body


def _text(value: Any, limit: int = MAX_TEXT) -> Any:
    return value[:limit] if isinstance(value, str) else value


def _mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k)[:MAX_TEXT]: _text(v) for k, v in list(values.items())[:MAX_ITEMS]}


def bounded(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with every value, list and mapping cut to its bound (a new dict)."""
    out = {k: _text(v) for k, v in record.items()}
    out["keys"] = [_text(k, MAX_NAME) for k in record.get("keys", [])[:MAX_ITEMS]]
    out["visits"] = [{k: _text(v, MAX_NAME) for k, v in visit.items()} for visit in record.get("visits", [])[:MAX_VISITS]]
    for name in ("variables", "channel_variables"):
        out[name] = _mapping(record.get(name) or {})
    return out

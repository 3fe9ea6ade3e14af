"""Caller IDs from outside: what a number may look like, and which numbers may be called back.

A caller ID is whatever the carrier (or anyone behind it) put in the SIP From user: Asterisk
decodes ``%40`` and passes ``&``, ``/``, ``@``, ``,`` and CR/LF through. The dialplan keeps
only digits and one leading ``+`` where a call enters (``[ivr-answer]``, the raw value apart in
``IVR_CALLER_RAW`` for the record); :func:`normalize` is the same rule in Python, applied again
wherever the engine reads a caller (AGI environment, AMI events), so nothing else ever reaches
a dial string, an AMI header or a call record's routing.

A callback dials the citizen through the carrier, so only numbers of :class:`CallerSettings`'
``callable`` pattern are called back: national mobiles and fixed lines by default; no
international prefix, no short codes (110, 12345), no ``+`` unless the pattern allows it.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pydantic import Field, field_validator

from ivr.core.strict import Strict

# 11-digit mobiles 13x-19x; fixed lines: 0, an area code not starting with 0, 7-8 digits
DEFAULT_CALLABLE = r"1[3-9][0-9]{9}|0[1-9][0-9]{8,10}"
MAX_DIGITS = 20  # longer is no phone number (E.164: 15); a cap on what is kept and logged


class CallerSettings(Strict):
    """``callers:`` in config/engine.yaml."""

    callable: str = Field(
        DEFAULT_CALLABLE,
        description="regular expression (Python, whole number) of the caller numbers a callback may dial: "
        "the normalized caller ID, digits and at most one leading +",
    )

    @field_validator("callable")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"callable is not a valid regular expression: {exc}") from None
        return value


def normalize(raw: str) -> str:
    """Digits and one leading ``+``, as ``[ivr-answer]`` does: ``13900000777&Local/110@x/n`` →
    ``13900000777110``; ``anonymous`` → ``""``."""
    digits = "".join(c for c in raw if c in "0123456789")[:MAX_DIGITS]
    return ("+" + digits if raw.startswith("+") else digits) if digits else ""


@lru_cache(maxsize=16)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def is_callable(settings: CallerSettings, number: str) -> bool:
    """Whether a callback may dial ``number``: already normalized, and whole-matching the pattern
    (a number that normalizing would change is refused, whatever the pattern)."""
    return bool(number) and normalize(number) == number and _pattern(settings.callable).fullmatch(number) is not None

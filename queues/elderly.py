"""The registered elderly list (适老化): numbers whose callers skip the menu for a human.

Admins keep the list (``ivr elderly``) from registrations the city collects. It is stored only
as keyed digests (:func:`ivr.store.keyspace.caller_digest`), so the list in Redis — or a dump of it —
says nothing about whose numbers they are; even the admin sees a number again only by checking
it. This module is the pure part: how a number is written (so the one an admin types and the
one the carrier presents give one digest), the import file, and what a list entry shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from ivr.core.yamlsource import Location, SourceError, SourceErrors

_SEPARATORS = re.compile(r"[\s\-()]")
NUMBER_DIGITS = (5, 15)  # a short municipal line up to an international number


def normalize_number(text: str) -> str:
    """``+86 139-0000-0001`` → ``13900000001``: separators removed, the country code dropped
    (``+86``, ``0086``, or a bare ``86`` before a mobile number); ValueError if not a number."""
    number = _SEPARATORS.sub("", text)
    for prefix in ("+86", "0086"):
        if number.startswith(prefix):
            number = number[len(prefix):]
    if len(number) == 13 and number.startswith("861"):
        number = number[2:]
    low, high = NUMBER_DIGITS
    if not number.isdigit() or not low <= len(number) <= high:
        raise ValueError(f"{text.strip()!r} is not a phone number ({low}-{high} digits, optionally +86)")
    return number


def caller_number(caller: str) -> str | None:
    """The caller id as the list holds it, or None (withheld, ``anonymous``, not a number)."""
    try:
        return normalize_number(caller)
    except ValueError:
        return None


def parse_numbers(text: str, file: str) -> list[str]:
    """An import file: one number a line; blank lines and ``#`` comments are ignored. Every bad
    line is reported (``file:line:col``) and then nothing is imported."""
    numbers: list[str] = []
    errors: list[SourceError] = []
    for n, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0]
        if not content.strip():
            continue
        try:
            numbers.append(normalize_number(content))
        except ValueError as exc:
            errors.append(SourceError(Location(file, n, len(content) - len(content.lstrip()) + 1), str(exc)))
    if errors:
        raise SourceErrors(errors)
    return list(dict.fromkeys(numbers))


@dataclass(frozen=True)
class ElderlyEntry:
    """One registered number as anyone may see it: no digit of the number, only the first
    characters of its digest (to tell entries apart), when and by whom it was added."""

    id: str
    added: str  # ISO time
    by: str
    reason: str


class ElderlyRegister(Protocol):
    """Is this caller registered? The engine's question; the Redis list answers it."""

    async def contains(self, number: str) -> bool: ...

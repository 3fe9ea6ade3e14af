"""The dialed numbers this platform answers (the number plan) as dialplan."""

from __future__ import annotations

from ivr.config import Settings
from ivr.core.conftext import comment, word


def numbers_dialplan(s: Settings) -> str:
    """The dialed numbers this platform answers: exactly those of the number plan."""
    return "".join(f"exten => {word(number)},1,Goto(ivr-answer,${{EXTEN}},1) ; {entry.mode}: {comment(entry.title)}\n"
                   for number, entry in sorted(s.numbers.items()))

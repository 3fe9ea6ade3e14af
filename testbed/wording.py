"""English words on a page meant for Mandarin-speaking staff.

A word is any run of two or more ASCII letters. Not counted: tokens that carry a digit (agent1003,
ticket numbers, versions, times), the names of things staff type or configure themselves (``names``:
seats, flows, nodes, files), paths (a token with ``/`` or ``.``) and a short list of acronyms
that the hotline's staff use as they are (units: MB, GB).
"""

from __future__ import annotations

import re
from typing import Iterable

ACRONYMS = frozenset({"IVR", "CSV", "SIP", "ID", "AMI", "YAML", "UTC", "VIP", "DTMF", "CDR", "PSTN", "MB", "GB"})
_TOKEN = re.compile(r"[^\s，。；：、（）()「」【】,;:\"'=→/]+(?:/[^\s，。；：、（）()「」【】,;:\"'=→]+)*")
_WORD = re.compile(r"[A-Za-z]{2,}")


def english_words(text: str, names: Iterable[str] = ()) -> list[str]:
    """The English words in ``text``, in order, each once."""
    known = set(names)
    found: list[str] = []
    for token in _TOKEN.findall(text):
        if token in known or any(c.isdigit() for c in token) or "/" in token or "." in token.strip("."):
            continue
        for word in _WORD.findall(token):
            if word not in ACRONYMS and word not in known and word not in found:
                found.append(word)
    return found

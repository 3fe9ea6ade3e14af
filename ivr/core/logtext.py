"""Text from outside as one log line: control characters escaped, length capped.

A webhook receiver's answer, an exception's message, a peer's address: whoever sent them may
put CR/LF in them (a forged line in the log, ``… INFO ivr.push: … delivered``), terminal escape
sequences (a log read with ``less -R`` or ``tail``) or Unicode line separators (U+2028, U+0085:
lines to some log viewers). :func:`one_line` escapes every one of them the way Python's
``repr`` would, and cuts what is left.
"""

from __future__ import annotations

import unicodedata

ELLIPSIS = "…"
SHORT = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}


def _escaped(ch: str) -> str:
    if ch in SHORT:
        return SHORT[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def one_line(text: str, limit: int = 200) -> str:
    """``text`` with every control, format and separator character (categories C* and Z* but
    the plain space) escaped, and at most ``limit`` characters of it (then ``…``)."""
    out = []
    for ch in text[:limit]:
        if ch == "\\":
            out.append("\\\\")
        elif ch != " " and unicodedata.category(ch)[0] in "CZ":
            out.append(_escaped(ch))
        else:
            out.append(ch)
    return "".join(out) + (ELLIPSIS if len(text) > limit else "")

"""Dialed numbers as the number plan knows them (the call tracker and the IVR record both use it)."""

from __future__ import annotations


def normalize_line(dialed: str) -> str:
    """The dialed number as the number plan knows it: the ``+86`` and ``+`` prefixes go, and
    ``s`` (no number) leads to 12345, as the dialplan routes them."""
    digits = dialed.removeprefix("+86") if dialed.startswith("+86") else dialed.lstrip("+")
    if not digits or not digits.isdigit():
        return "12345" if dialed in ("", "s") else dialed
    return digits

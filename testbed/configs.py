"""Editing a test's own copy of config/: one entry changed, and the line it is on (for the
file:line an error must name)."""

from __future__ import annotations

from pathlib import Path


def edit_entry(path: Path, key: str, old: str, new: str) -> int:
    """In the line of ``path`` that starts with ``key:``, replace ``old`` by ``new``; returns
    that line's number. Raises when there is no such line, or ``old`` is not on it."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    number = next(i for i, ln in enumerate(lines, 1) if ln.lstrip().startswith(f"{key}:"))
    if old not in lines[number - 1]:
        raise ValueError(f"{path}:{number}: no {old!r} in {lines[number - 1].strip()!r}")
    lines[number - 1] = lines[number - 1].replace(old, new)
    path.write_text("".join(lines), encoding="utf-8")
    return number

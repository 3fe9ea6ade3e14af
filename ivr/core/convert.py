"""Lenient conversions of the text that AMI, Redis and the CDR hand over (issue 18).

One home for the helpers that were redefined per module (``_int``/``_float`` in queues/agents.py,
``_float`` in tracking/tracker.py, ``_epoch`` in ivr/store.py and queues/live.py). Each keeps the
exact behaviour of the copy it replaces; the later work packages switch their modules to it.
"""

from __future__ import annotations

from datetime import datetime


def to_int(text: str | None) -> int:
    """``int(text)``; 0 for None, "" or text that is not an integer (queues/agents.py ``_int``)."""
    try:
        return int(text or 0)
    except ValueError:
        return 0


def to_float(text: str | None) -> float:
    """``float(text)``; 0.0 for None, "" or text that is not a number (queues/agents.py ``_float``)."""
    try:
        return float(text or 0)
    except ValueError:
        return 0.0


def to_float_or_none(text: str | None) -> float | None:
    """``float(text)``; None for None, "" or text that is not a number (tracking/tracker.py ``_float``)."""
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def epoch(iso: str) -> float:
    """Seconds since the epoch of an ISO 8601 time; raises ValueError on bad text (ivr/store ``_epoch``)."""
    return datetime.fromisoformat(iso).timestamp()


def epoch_or_none(iso: str) -> float | None:
    """Seconds since the epoch of an ISO 8601 time; None for "" or bad text (queues/waiting.py ``_epoch``)."""
    try:
        return datetime.fromisoformat(iso).timestamp() if iso else None
    except ValueError:
        return None

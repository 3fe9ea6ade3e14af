"""Callback visits (回访): a caller who rated the call low is called back by a supervisor.

Pure rules, no I/O. A ticket is due a visit when its caller keyed a rating at or below
``tickets.satisfaction_low`` (2 by default, on the survey's 1–5 scale); the visit is done when
its timeline holds a :data:`DONE` entry, written by the console's 回访 page with who did it and
the note (tickets/revisit_views.py). The timeline is the one record: the ticket page shows it,
the departments' webhooks get it with the ticket, and nothing else has to agree with it.
"""

from __future__ import annotations

from tickets.model import Ticket, TimelineEntry

DONE = "revisit done"  # the timeline event of a finished visit (tickets/timeline.py: 回访完成)
NOTE_CHARS = 500


def due(ticket: Ticket, low: int) -> bool:
    """The caller rated the call ``low`` or worse."""
    return ticket.satisfaction_status == "rated" and ticket.satisfaction is not None and ticket.satisfaction <= low


def visit(ticket: Ticket) -> TimelineEntry | None:
    """The entry of the finished visit (the last one, should two supervisors have closed it)."""
    return next((e for e in reversed(ticket.timeline) if e.event == DONE), None)


def check_note(text: str) -> str:
    """The note as it goes onto the timeline; ValueError when there is none or it is too long."""
    note = " ".join(text.split())  # one line: no line breaks from a form in the timeline
    if not note:
        raise ValueError("请填写回访记录")
    if len(note) > NOTE_CHARS:
        raise ValueError(f"回访记录最长 {NOTE_CHARS} 字")
    return note

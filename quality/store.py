"""An inspection onto its ticket: under the ticket's lock (tickets/lock.py), read the ticket again,
append the score, write it as every later ticket change is written (journaled, idempotent per
phase, its rev after the stored one, streamed as a ``quality:…`` ticket event for the departments'
webhooks). Two supervisors scoring at the same moment both keep their score; the write carries no
follow-lease token, so a console whose engine stands by scores too, as departments write back."""

from __future__ import annotations

import secrets
from datetime import datetime

from quality.model import QualitySettings, Scored, rubric_version
from tickets.lock import TicketBusy, TicketLock
from tickets.model import QualityScore, Ticket
from tickets.store import TicketStore


class TicketGone(LookupError):
    """The ticket expired (or was never there) between the page and the write."""


class NotStored(RuntimeError):
    """Redis did not take the write (a failing Redis: the write waits in the journal; another
    console kept the ticket too long); the supervisor must not be told it was saved."""


async def add_inspection(tickets: TicketStore, linkedid: str, scored: Scored, rubric: QualitySettings,
                         by: str) -> QualityScore:
    """Append ``scored`` to the ticket of ``linkedid`` and wait until Redis has it (the page that
    follows reads it back); NotStored when it is not there after the write."""
    try:
        async with TicketLock(tickets.redis, linkedid):
            return await _append(tickets, linkedid, scored, rubric, by)
    except TicketBusy:
        raise NotStored(linkedid) from None


async def _append(tickets: TicketStore, linkedid: str, scored: Scored, rubric: QualitySettings,
                  by: str) -> QualityScore:
    ticket: Ticket | None = await tickets.get(linkedid)
    rev = await tickets.revision(linkedid)
    if ticket is None:
        raise TicketGone(linkedid)
    now = datetime.now().astimezone().isoformat(timespec="milliseconds")
    score = QualityScore(by=by, at=now, scores=dict(scored.scores), total=scored.total, comment=scored.comment,
                         rubric_version=rubric_version(rubric))
    ticket.quality.append(score)
    ticket.note(now, "quality scored", f"{by}: {scored.total}/{rubric.total}")
    await tickets.write(ticket, f"quality:{rev + 1}:{secrets.token_hex(4)}", rev + 1, fenced=False)
    await tickets.drain()
    after = await tickets.get(linkedid)
    if after is None or not any(q.at == score.at and q.by == by for q in after.quality):
        raise NotStored(linkedid)
    return score

"""Asterisk's own CDR, read back: how a call that ended while the engine was not following it
(engine dead, AMI cut) is finished.

``asterisk-conf/cdr_custom.conf`` writes one line per call leg with :data:`COLUMNS` in this
order — the ``linkedid`` first, and the facts the dialplan leaves for the ticket
(``CDR(ivr_*)``: the dialed line, the route, the request type, the queue, a transfer's result,
the rating). Pure parsing here; reading the file is the adapter's job.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, fields
from datetime import datetime

from ivr.core.callerid import normalize as normalize_caller
from ivr.core.channel import endpoint_of
from tickets.model import Ticket, Transfer


@dataclass(frozen=True)
class CdrRow:
    linkedid: str
    uniqueid: str
    src: str
    dst: str
    dcontext: str
    channel: str
    dstchannel: str
    lastapp: str
    start: str
    answer: str
    end: str
    duration: str
    billsec: str
    disposition: str
    ivr_line: str
    ivr_route: str
    ivr_request_type: str
    ivr_queue: str
    ivr_transfer: str  # "12366@tax:BUSY"
    ivr_rating: str


COLUMNS = tuple(f.name for f in fields(CdrRow))


def parse(text: str) -> list[CdrRow]:
    """CDR lines → rows; a line of another shape (a half-written last line) is skipped."""
    rows = []
    for values in csv.reader(io.StringIO(text)):
        if len(values) == len(COLUMNS):
            rows.append(CdrRow(*values))
    return rows


def by_call(rows: list[CdrRow]) -> dict[str, list[CdrRow]]:
    out: dict[str, list[CdrRow]] = {}
    for row in rows:
        out.setdefault(row.linkedid, []).append(row)
    return out


def _iso(cdr_time: str) -> str:
    """``2026-12-01 21:35:09`` (Asterisk's local time) → ISO with the local offset."""
    return datetime.strptime(cdr_time, "%Y-%m-%d %H:%M:%S").astimezone().isoformat(timespec="milliseconds")


def apply_cdr(t: Ticket, rows: list[CdrRow], agents: frozenset[str] = frozenset()) -> None:
    """Fill what the live events did not tell into ``t`` (what they told is kept)."""
    rows = sorted(rows, key=lambda r: r.start)
    first = rows[0]
    t.received = t.received or _iso(first.start)
    t.caller = t.caller or normalize_caller(first.src)
    t.line = t.line or first.ivr_line
    last_end = max((r.end for r in rows if r.end), default="")
    if last_end:
        t.ended = t.ended or _iso(last_end)
    for r in rows:
        if r.ivr_request_type and not t.request_type:
            t.request_type, t.request_type_source = r.ivr_request_type, "ivr"
        if r.ivr_route and not t.ivr.route:
            t.ivr.route = r.ivr_route
        if r.ivr_queue:
            t.queue = r.ivr_queue
            t.skill = t.skill or r.ivr_queue
            if not t.queued:
                t.queued = _iso(r.start)
        if r.ivr_transfer:
            target, _, status = r.ivr_transfer.rpartition(":")
            number, _, trunk = target.partition("@")
            if not any(x.number == number for x in t.transfers):
                t.transfers.append(Transfer(kind="subcenter", target=trunk, number=number, at=_iso(r.start),
                                            result=status))
        if r.ivr_rating in ("1", "2", "3", "4", "5"):
            t.satisfaction, t.satisfaction_status = int(r.ivr_rating), "rated"
        agent = endpoint_of(r.dstchannel) if r.dstchannel else ""
        is_agent = agent in agents if agents else r.lastapp == "Queue"
        if is_agent and r.disposition == "ANSWERED" and r.answer and not t.answered:
            t.answered, t.agent = _iso(r.answer), agent
            t.talk_seconds = float(r.billsec or 0)
            if t.queued:
                t.wait_seconds = round((datetime.fromisoformat(t.answered)
                                        - datetime.fromisoformat(t.queued)).total_seconds(), 3)
    for x in t.transfers:  # a failed transfer went on to the queue the CDR shows next
        if x.result != "ANSWER" and not x.then and t.queue:
            x.then = f"queue {t.queue}"

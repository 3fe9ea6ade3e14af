"""How ``ivr tickets`` prints tickets: the ``list`` table and ``show``'s one-fact-a-line view."""

from __future__ import annotations

from datetime import datetime

from ivr.commands.common import text_width
from queues.callback import leg_text
from queues.priority import priority_label
from tickets import export
from tickets.model import Ticket
from tickets.workflow import STATUS_LABELS, overdue

TABLE = ("number", "received", "line", "type", "disposition", "status", "queue", "wait s", "agent", "deadline", "caller")


def row(t: Ticket) -> tuple[str, ...]:
    due = export.deadline_due(t.deadline) + ("*" if t.deadline and t.deadline.provisional else "")
    wait = "" if t.wait_seconds is None else f"{t.wait_seconds:.0f}"
    status = STATUS_LABELS.get(t.status, t.status) + (" 超期" if overdue(t, datetime.now()) else "")
    return (t.number, export.local_time(t.received), t.line, export.type_label(t.request_type),
            export.disposition_label(t.disposition) or "(in progress)", status, t.queue, wait, t.agent, due, t.caller)


def table(tickets: list[Ticket]) -> str:
    rows = [TABLE, *(tuple(cell or "-" for cell in row(t)) for t in tickets)]
    widths = [max(text_width(r[i]) for r in rows) for i in range(len(TABLE))]
    return "\n".join("  ".join(cell + " " * (w - text_width(cell)) for cell, w in zip(r, widths)).rstrip() for r in rows)


def details(t: Ticket) -> str:
    """Everything on the ticket, one fact a line, the timeline last."""
    out: list[str] = []

    def fact(name: str, value: object) -> None:
        if value not in ("", None, []):
            out.append(f"  {name:<14}{value}")

    def clock(iso: str) -> str:
        return export.local_time(iso)[11:]

    out.append(f"工单 {t.number}   ({t.status}; linkedid {t.linkedid})")
    fact("received", export.local_time(t.received))
    fact("line", " ".join(x for x in (t.line, f"({t.line_mode})" if t.line_mode else "", t.line_title) if x))
    fact("caller", t.caller)
    fact("caller as sent", t.caller_raw)  # what the carrier sent, when it was no plain number (never routed on)
    if t.request_type:
        fact("type", f"{export.type_label(t.request_type)} {t.request_type}"
             + (f" (set by {t.request_type_source})" if t.request_type_source else ""))
    fact("disposition", (f"{export.disposition_label(t.disposition)} {t.disposition}" if t.disposition else "(in progress)")
         + (f" → {t.after_transfer}" if t.after_transfer else ""))
    fact("ivr", " ".join(x for x in (
        f"flow {t.ivr.flow}" if t.ivr.flow else "", "→".join(t.ivr.nodes), f"keys {' '.join(t.ivr.keys)}" if t.ivr.keys else "",
        f"route {t.ivr.route}" if t.ivr.route else "", "(dialplan fallback)" if t.ivr.fallback else "",
        f"error {t.ivr.error}" if t.ivr.error else "") if x))
    fact("skill", t.skill)
    fact("queue", t.queue and (f"{t.queue}, joined {clock(t.queued)}" if t.queued else t.queue)
         + (f", waited {t.wait_seconds:.0f} s" if t.wait_seconds is not None else ""))
    fact("priority", "" if t.priority is None else f"{t.priority}" + (
        f" ({priority_label(t.priority_reason)} {t.priority_reason})" if t.priority_reason else "")
        + (", registered elderly caller" if t.elderly else ""))
    fact("session", t.session and f"{t.session} (领导接听 leader session)")  # config/sessions.yaml
    fact("agent", t.agent and t.agent + (f", answered {clock(t.answered)}" if t.answered else "")
         + (f", talked {t.talk_seconds:.0f} s" if t.talk_seconds is not None else ""))
    fact("ended", export.local_time(t.ended))
    fact("hung up by", ", ".join(x for x in (t.hangup_by, t.hangup_cause) if x))
    fact("emergency", "linked" if t.emergency_linked else "")
    fact("callback", t.callback and " ".join(x for x in (
        str(t.callback.get("status", "requested")), str(t.callback.get("queue", "")),
        f"({t.callback['reason']})" if t.callback.get("reason") else "") if x))
    fact("satisfaction", f"{t.satisfaction} of 5" if t.satisfaction is not None else
         {"no_rating": "asked, no rating keyed", "not_asked": ""}.get(t.satisfaction_status, t.satisfaction_status))
    fact("status", f"{STATUS_LABELS.get(t.status, t.status)} {t.status}" + (" 超期 overdue" if overdue(t, datetime.now()) else ""))
    fact("department", t.department)
    if t.deadline:
        fact("deadline", f"{export.deadline_due(t.deadline)} ({t.deadline.rule})"
             + (" provisional: that year's official holiday calendar is not out yet" if t.deadline.provisional else ""))
    fact("repeat of", " ".join(t.repeat_of))
    fact("from platform", t.from_platform and f"{t.from_platform}, its ticket {t.from_ticket or '(none sent)'}")
    fact("closed by", t.closed_by)
    if t.agents_rung:
        out.append("  agents rung:")
        out += [f"    {clock(a.rung_at)}  {a.agent}" + (f" rang {a.ring_seconds:.0f} s" if a.ring_seconds is not None else "")
                + (", answered" if a.answered else ", no answer") for a in t.agents_rung]
    if t.seat_collisions:  # rung by this node while taken on another: the proxy's 486, not a ring
        out.append("  seats taken on another node (collisions):")
        out += [f"    {clock(c.at)}  {c.agent}" for c in t.seat_collisions]
    if len(t.queue_visits) > 1 or any(v.outcome != "answered" for v in t.queue_visits[:1]):
        out.append("  queue visits:")
        out += [f"    {clock(v.joined) if v.joined else '?'}  {v.queue} {v.outcome or 'waiting'}"
                + (f" after {v.wait_seconds:.0f} s" if v.wait_seconds is not None else "")
                + (f" by {v.agent}" if v.agent else "") for v in t.queue_visits]
    if t.callback and t.callback.get("attempts"):
        out.append("  callback legs:")
        out += [f"    {leg_text(leg)}" for leg in t.callback["attempts"]]
    if t.transfers:
        out.append("  transfers:")
        out += [f"    {clock(x.at)}  {export.transfer_text(x)}" for x in t.transfers]
    if t.timeline:
        out.append("  timeline:")
        out += [f"    {clock(e.at)}  {e.event}" + (f": {e.detail}" if e.detail else "") for e in t.timeline]
    return "\n".join(out)

"""Transfers seen on a call: the dials to sub-centers, emergency lines and other platforms
(``DialBegin``/``DialEnd``), an agent's blind and attended transfers, and the dialplan's
``IvrTransfer``/``IvrBridge`` results (a transfer's fallback, a three-party bridge)."""

from __future__ import annotations

from datetime import datetime
from typing import Mapping

from ivr.core.channel import endpoint_of
from tickets.model import Ticket, Transfer
from tracking.channels import Directory, Event, event_time, iso, local_exten
from tracking.state import Call, Change
from transfer.model import EMERGENCY_NUMBERS

AGENT_MOVES = frozenset({"blind", "attended"})  # an agent's transfer, not the dial it leads to


def dial_begin(directory: Directory, call: Call, event: Event, at: datetime) -> None:
    dest = event.get("DestChannel", "")
    endpoint = endpoint_of(dest)
    number = event.get("DialString", "").split("@", 1)[0]
    if endpoint in directory.platforms:
        kind = "platform"
    elif endpoint in directory.subcenters:
        kind = "emergency" if number in EMERGENCY_NUMBERS else "subcenter"
    elif number in EMERGENCY_NUMBERS:
        kind = "emergency"
    else:
        return  # a queue ringing an agent: the Agent* events tell that story
    transfer = Transfer(kind=kind, target=endpoint, number=number, at=iso(at))
    call.ticket.transfers.append(transfer)
    call.dials[dest] = transfer
    call.ticket.note(iso(at), "transfer dialed", f"{number} via {endpoint}")


def dial_end(directory: Directory, call: Call, event: Event, at: datetime) -> None:
    transfer = call.dials.get(event.get("DestChannel", ""))
    if transfer is not None:
        transfer.result = event.get("DialStatus", "")
        call.ticket.note(iso(at), "transfer result", f"{transfer.number}: {transfer.result}")


def blind_or_attended(calls: Mapping[str, Call], event: Event) -> list[Change]:
    """An agent's ``BlindTransfer`` or ``AttendedTransfer``: named by the transferer's call."""
    name = event.get("Event", "")
    prefix = "Transferer" if name == "BlindTransfer" else "OrigTransferer"
    call = calls.get(event.get(f"{prefix}Linkedid", ""))
    if call is None:
        return []
    at = event_time(event)
    if name == "BlindTransfer":
        number, target = event.get("Extension", ""), event.get("Context", "")
    else:
        # an agent's atxfer (*2 and a number) consulted a target we saw dialed (or whose Local
        # channel is still there, its extension the number keyed)
        leg = event.get("TransferTargetChannel", "")
        dialed = call.dials.get(leg)
        number = dialed.number if dialed else local_exten(leg)
        if not number:  # the consultation's own attempt, else what the target showed (digits only:
            # a connected-line update may show the dialplan's "transfer" or 12345 instead)
            attempts = [t for t in call.ticket.transfers if t.kind not in ("blind", "attended")]
            shown = (event.get("SecondTransfererConnectedLineNum", ""), event.get("TransferTargetCallerIDNum", ""))
            number = attempts[-1].number if attempts else next((n for n in shown if n.isdigit()), "")
        target = endpoint_of(event.get("SecondTransfererChannel", ""))
    result = event.get("Result", "")
    call.ticket.transfers.append(Transfer(kind="blind" if name == "BlindTransfer" else "attended", target=target,
                                          number=number, at=iso(at), result=result))
    call.ticket.note(iso(at), f"{name}", f"{number} ({result})")
    return []


# Why Asterisk made no call leg at all (CHANUNAVAIL), as Q.850 numbers it names: with the trunks
# qualified, a gateway that stopped answering OPTIONS has no reachable contact (chan_pjsip: 3).
NO_LEG_CAUSES = {"3": "No route to destination (gateway unreachable)", "20": "Subscriber absent",
                 "34": "Circuit/channel congestion", "38": "Network out of order"}


def ivr_transfer(directory: Directory, t: Ticket, event: Event, at: datetime) -> None:
    """``UserEvent(IvrTransfer)``: the dialplan's transfer ended; its result and what came next."""
    attempt = dial_attempt(t, event, at)
    attempt.result = attempt.result or event.get("DialStatus", "")
    if not attempt.cause and (cause := event.get("Cause", "")).isdigit():  # no leg was made: the dial's own cause
        attempt.cause = f"{cause} {NO_LEG_CAUSES.get(cause, '')}".strip()
    fallback = event.get("Fallback", "")
    attempt.then = f"queue {fallback}" if fallback else ("connected" if attempt.result == "ANSWER" else "hangup")


def ivr_bridge(directory: Directory, t: Ticket, event: Event, at: datetime) -> None:
    """A three-party bridge's steps ([ivr-bridge]): the dial to the target is an attempt like
    any (DialBegin made it), marked three-party; its result says who is in the bridge."""
    number, stage = event.get("Number", ""), event.get("Stage", "")
    if stage == "dialing":
        t.note(iso(at), "three-party bridge", f"dialing {number} via {event.get('Trunk', '')}")
        return
    attempt = dial_attempt(t, event, at)
    attempt.three_party = True
    attempt.result = attempt.result or event.get("DialStatus", "")
    attempt.then = "three-party bridge" if attempt.result == "ANSWER" else "back to the agent"
    t.note(iso(at), "three-party bridge", f"{number}: {attempt.result} ({attempt.then})")


def dial_attempt(t: Ticket, event: Event, at: datetime) -> Transfer:
    """The open attempt to dial the event's ``Number`` (DialBegin opened it); a new one when the
    dial began before we were following the call, or never began (a sub-center closed now: after
    an agent's own transfer the agent's move, with the same number, is not that attempt)."""
    number = event.get("Number", "")
    attempt = next((x for x in reversed(t.transfers)
                    if x.number == number and not x.then and x.kind not in AGENT_MOVES), None)
    if attempt is None:
        attempt = Transfer(kind="emergency" if number in EMERGENCY_NUMBERS else "subcenter",
                           target=event.get("Trunk", ""), number=number, at=iso(at))
        t.transfers.append(attempt)
    return attempt

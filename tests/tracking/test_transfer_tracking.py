"""What the tracker makes of transfers of calls in progress: an agent's attended transfer, a
three-party bridge with 110, a call handed to us by another platform with its ticket number."""

from __future__ import annotations

from pathlib import Path

from ivr.config import load_config
from tickets.model import Ticket
from tracking.tracker import CallTracker, Directory

REPO = Path(__file__).resolve().parents[2]
CALL, AGENT = "t-100.0", "t-100.1"


def tracker() -> CallTracker:
    return CallTracker(Directory.from_settings(load_config(REPO / "config").settings), lambda _t: None)  # type: ignore[arg-type, return-value]


def ev(name: str, at: float, channel: str = "PJSIP/pstn-00000000", uniqueid: str = CALL, **fields: str) -> dict[str, str]:
    return {"Event": name, "Timestamp": str(at), "Channel": channel, "Uniqueid": uniqueid, "Linkedid": CALL, **fields}


def talking() -> list[dict[str, str]]:
    """A citizen's call to 12345 that agent1001 answers."""
    return [
        ev("Newchannel", 1, Context="from-pstn", Exten="12345", CallerIDNum="13900000001"),
        ev("QueueCallerJoin", 2, Queue="q-general", Position="1"),
        ev("Newchannel", 3, "PJSIP/agent1001-00000001", AGENT, Context="from-agents", Exten="s"),
        ev("AgentCalled", 3, Interface="PJSIP/agent1001"),
        ev("AgentConnect", 4, Interface="PJSIP/agent1001", HoldTime="2"),
    ]


def ended(at: float, *legs: tuple[str, str]) -> list[dict[str, str]]:
    return [ev("Hangup", at + i, channel, uid, Cause="16", **{"Cause-txt": "Normal Clearing"})
            for i, (channel, uid) in enumerate([*legs, ("PJSIP/pstn-00000000", CALL)])]


def run(events: list[dict[str, str]]) -> Ticket:
    t = tracker()
    changes = [c for e in events for c in t.handle(e)]
    changes += t.ivr_record({"unique_id": CALL, "dialed": "12345", "flow": "main", "route": {"type": "queue"}}, 99)
    return next(c.ticket for c in changes if c.phase == "closed")


def consulted(customs: str) -> list[dict[str, str]]:
    """The agent's consultation (atxfer) dials 12360 through its Local channel; customs answers."""
    return [ev("Newchannel", 5, customs, "t-100.2", Context="from-pstn", Exten=""),
            ev("DialBegin", 5, "Local/12360@ivr-transfers-00000000;2", "t-100.3", DestChannel=customs,
               DialString="12360@customs"),
            ev("DialEnd", 6, "Local/12360@ivr-transfers-00000000;2", "t-100.3", DestChannel=customs,
               DialStatus="ANSWER")]


def test_given_an_attended_transfer_whose_local_leg_went_away_then_the_number_is_the_one_dialed() -> None:
    customs = "PJSIP/customs-00000002"
    t = run([*talking(),
             *consulted(customs),
             {"Event": "AttendedTransfer", "Timestamp": "7", "Result": "Success", "OrigTransfererLinkedid": CALL,
              "SecondTransfererChannel": "PJSIP/agent1001-00000001", "SecondTransfererConnectedLineNum": "transfer",
              "TransferTargetChannel": customs, "TransferTargetExten": ""},
             *ended(20, ("PJSIP/agent1001-00000001", AGENT), (customs, "t-100.2"))])
    assert [(x.kind, x.number, x.result) for x in t.transfers] == [("subcenter", "12360", "ANSWER"), ("attended", "12360", "Success")]
    assert t.disposition == "transferred"


def test_given_a_three_party_bridge_with_110_then_the_link_is_marked_three_party_and_emergency_linked() -> None:
    police = "PJSIP/emergency-00000002"
    agent = "PJSIP/agent1001-00000001"
    t = run([*talking(),
             ev("UserEvent", 5, agent, AGENT, UserEvent="IvrBridge", Stage="dialing", Number="110", Trunk="emergency"),
             ev("Newchannel", 5, police, "t-100.2", Context="from-pstn", Exten=""),
             ev("DialBegin", 5, agent, AGENT, DestChannel=police, DialString="110@emergency"),
             ev("DialEnd", 6, agent, AGENT, DestChannel=police, DialStatus="ANSWER"),
             ev("UserEvent", 6, agent, AGENT, UserEvent="IvrBridge", Stage="result", Number="110", Trunk="emergency",
                DialStatus="ANSWER"),
             *ended(30, (agent, AGENT), (police, "t-100.2"))])
    [link] = t.transfers
    assert (link.kind, link.target, link.number, link.result, link.three_party) == ("emergency", "emergency", "110", "ANSWER", True)
    assert link.then == "three-party bridge" and t.disposition == "emergency_linked"


def test_given_110_does_not_answer_the_bridge_then_the_agent_is_back_and_the_ticket_says_so() -> None:
    agent = "PJSIP/agent1001-00000001"
    t = run([*talking(),
             ev("UserEvent", 6, agent, AGENT, UserEvent="IvrBridge", Stage="result", Number="110", Trunk="emergency",
                DialStatus="NOANSWER"),
             *ended(30, (agent, AGENT))])
    [link] = t.transfers
    assert (link.result, link.three_party, link.then) == ("NOANSWER", True, "back to the agent")
    assert t.disposition == "transfer_failed" and not t.emergency_linked


def test_given_a_call_from_the_provincial_platform_then_its_ticket_links_the_senders() -> None:
    leg = "PJSIP/province-00000003"
    t = run([ev("Newchannel", 1, leg, Context="from-platform", Exten="12345", CallerIDNum="13900000001"),
             ev("UserEvent", 1, leg, UserEvent="IvrPlatform", Platform="province", Ticket="20261202-12345-00001"),
             ev("Hangup", 9, leg, Cause="16")])
    assert (t.line, t.from_platform, t.from_ticket) == ("12345", "province", "20261202-12345-00001")


def test_given_a_transfer_to_a_platform_then_its_attempt_is_of_kind_platform() -> None:
    leg = "PJSIP/province-00000002"
    t = run([*talking(),
             ev("DialBegin", 5, "PJSIP/pstn-00000000", CALL, DestChannel=leg, DialString="12345@province"),
             ev("DialEnd", 6, "PJSIP/pstn-00000000", CALL, DestChannel=leg, DialStatus="ANSWER"),
             *ended(30, ("PJSIP/agent1001-00000001", AGENT), (leg, "t-100.2"))])
    assert [(x.kind, x.target, x.number, x.result) for x in t.transfers] == [("platform", "province", "12345", "ANSWER")]
    assert t.disposition == "transferred"


def test_ivr_tickets_show_says_three_party_and_the_linked_platform_ticket() -> None:
    from tickets.cli import _details
    from tickets.model import Transfer

    t = Ticket(linkedid=CALL, line="12345", caller="13900000001", received="2026-12-02T10:00:00.000+08:00",
               number="20261202-12345-00002", from_platform="province", from_ticket="20261202-12345-00001")
    t.transfers.append(Transfer("emergency", "emergency", "110", "2026-12-02T10:01:00.000+08:00", "ANSWER",
                                then="three-party bridge", three_party=True))
    text = _details(t)
    assert "from platform province, its ticket 20261202-12345-00001" in text
    assert "emergency 110 via emergency (three-party): ANSWER → three-party bridge" in text


def test_given_an_attended_transfer_whose_local_leg_moved_on_then_the_number_is_the_one_keyed() -> None:
    # the consultation's Local channel has left the extension keyed for [ivr-route] transfer, and the
    # agent's connected line shows the dialplan's "transfer": the channel's name still says 12360
    customs = "PJSIP/customs-00000002"
    local = "Local/12360@ivr-transfers-00000000;1"
    t = run([*talking(),
             ev("Newchannel", 5, customs, "t-100.2", Context="from-pstn", Exten=""),
             {"Event": "AttendedTransfer", "Timestamp": "7", "Result": "Success", "OrigTransfererLinkedid": CALL,
              "SecondTransfererChannel": "PJSIP/agent1001-00000001", "SecondTransfererConnectedLineNum": "transfer",
              "TransferTargetChannel": local, "TransferTargetExten": "transfer"},
             *ended(20, ("PJSIP/agent1001-00000001", AGENT), (customs, "t-100.2"))])
    assert [(x.kind, x.number, x.result) for x in t.transfers] == [("attended", "12360", "Success")]


def test_given_an_attended_transfer_seen_only_by_its_target_then_the_consultation_attempt_names_the_number() -> None:
    customs = "PJSIP/customs-00000002"
    t = run([*talking(),
             *consulted(customs),
             {"Event": "AttendedTransfer", "Timestamp": "7", "Result": "Success", "OrigTransfererLinkedid": CALL,
              "SecondTransfererChannel": "PJSIP/agent1001-00000001", "SecondTransfererConnectedLineNum": "transfer",
              "TransferTargetChannel": "PJSIP/agent1001-00000003", "TransferTargetExten": "transfer"},
             *ended(20, ("PJSIP/agent1001-00000001", AGENT), (customs, "t-100.2"))])
    assert [(x.kind, x.number) for x in t.transfers] == [("subcenter", "12360"), ("attended", "12360")]

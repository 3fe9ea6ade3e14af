"""Real SIP peers for the test bed, played by sipp (Debian package ``sip-tester``).

- :func:`citizen_call`: a citizen dials a number from the carrier trunk and presses keys
  (RFC 2833 events replayed from sipp's own captures, or SIP INFO), then hangs up after a
  while unless Asterisk hangs up first.
- :func:`sip_peer`: a seat's softphone or a sub-center gateway that answers, rejects with
  486 Busy, or rings without answering the call of the caller its test expects, then stops.

Scenarios are generated per call, so keys and timings are data, not a file per case.
"""

from __future__ import annotations

from testbed.sipp.dtmf import PCAP_DIR, PCAP_NAMES, Key, dtmf_pcaps, keys
from testbed.sipp.peers import STALE_MARK, PeerMode, agent_scenario, peer_scenario
from testbed.sipp.run import Sipp, agent_dial, agent_phone, citizen_call, citizen_calls, register, sip_peer
from testbed.sipp.scenarios import agent_dial_scenario, citizen_scenario, register_scenario

__all__ = [
    "PCAP_DIR", "PCAP_NAMES", "STALE_MARK", "Key", "PeerMode", "Sipp", "agent_dial", "agent_dial_scenario",
    "agent_phone", "agent_scenario", "citizen_call", "citizen_calls", "citizen_scenario", "dtmf_pcaps", "keys",
    "peer_scenario", "register", "register_scenario", "sip_peer",
]

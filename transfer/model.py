"""Calls that leave 12345: department hotlines that keep their own seats (设分中心, transferred
by phone with a fallback to a 12345 queue), and the emergency lines 12345 links to.
"""

from __future__ import annotations

from typing import Mapping

from pydantic import Field

from ivr.core.conftext import Host, Title
from ivr.core.hours import Hours
from ivr.core.qualify import Qualify
from ivr.core.route import GENERAL_QUEUE, TransferRoute
from ivr.core.strict import NUMBER, Strict

__all__ = ["EMERGENCY_NUMBERS", "EMERGENCY_TRUNK", "TICKET_HEADER", "EmergencyTrunk", "Platform", "Qualify", "SubCenter",
           "TransferRoute", "emergency_route", "qualified_trunks"]

EMERGENCY_NUMBERS = frozenset({"110", "119", "120", "122"})  # not merged: 12345 links to them


class SubCenter(Strict):
    """A department hotline that keeps its own seats; 12345 transfers calls to it."""

    title: Title
    number: str = Field(pattern=NUMBER)
    host: Host
    port: int = Field(5060, ge=1, le=65535)
    ring_timeout: int = Field(20, ge=1, le=120)
    fallback_queue: str = "general"
    hours: Hours | None = Field(None, description="when it takes calls (transfer/hours.py); none: 7×24")
    qualify: Qualify = Qualify()


class EmergencyTrunk(Strict):
    """The line to the emergency centres (应急联动: 110, 119, 120, 122), its own trunk: an
    emergency call must not wait behind the carrier's ordinary routing. Its endpoint is named
    ``emergency``."""

    title: Title = "应急联动线路"
    host: Host
    port: int = Field(5060, ge=1, le=65535)
    ring_timeout: int = Field(30, ge=1, le=120)
    fallback_queue: str = GENERAL_QUEUE
    qualify: Qualify = Qualify()


class Platform(Strict):
    """Another 12345 platform (the provincial one, or another city's): calls are handed to it
    over a SIP trunk carrying the ticket number (header ``X-12345-Ticket``), and its calls to us
    arrive on the same trunk, identified by address, with their ticket number to link."""

    title: Title
    number: str = Field("12345", pattern=NUMBER)
    host: Host
    port: int = Field(5060, ge=1, le=65535)
    ring_timeout: int = Field(30, ge=1, le=120)
    fallback_queue: str = GENERAL_QUEUE


TICKET_HEADER = "X-12345-Ticket"  # the sending platform's ticket number on a platform transfer
EMERGENCY_TRUNK = "emergency"  # the endpoint's name (no sub-center may take it)


def qualified_trunks(subcenters: Mapping[str, SubCenter], emergency: EmergencyTrunk | None) -> list[str]:
    """The trunks whose gateways Asterisk probes (endpoint names): sub-centers and the emergency trunk."""
    trunks = [name for name, sub in subcenters.items() if sub.qualify.every]
    if emergency is not None and emergency.qualify.every:
        trunks.append(EMERGENCY_TRUNK)
    return trunks


def emergency_route(number: str, trunk: EmergencyTrunk | None, pstn: str = "pstn") -> TransferRoute:
    """A transfer to an emergency number: over the emergency trunk when there is one."""
    if trunk is None:
        return TransferRoute(pstn, number)
    return TransferRoute(EMERGENCY_TRUNK, number, trunk.ring_timeout, trunk.fallback_queue)

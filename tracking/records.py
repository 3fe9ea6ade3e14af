"""IVR records waiting for their call, bound to the caller's channel.

An IVR record (what the caller heard and pressed) names its call by the caller channel's
uniqueid and the channel's name, both taken from the AGI environment, which whoever reaches the
FastAGI port can make up. So a record is applied to a call only when its channel is the one the
AMI follower saw for that call (a record of an older engine, without a channel, is taken as
before), and records of calls not yet seen — AMI may be late — are kept per channel: a made-up
record naming a live call's uniqueid can neither replace the real one nor be taken for it. They
are bounded: a flood of made-up records pushes out the oldest instead of growing memory.
"""

from __future__ import annotations

from typing import Any, Mapping

MAX_CALLS = 4096  # calls whose record came before their channel was seen
MAX_PER_CALL = 4  # channels claiming one call's uniqueid


def same_channel(call_channel: str, record: Mapping[str, Any]) -> bool:
    """Whether ``record`` may be applied to the call whose caller channel is ``call_channel``
    ('' when the follower never saw its name: a call picked up after a reconnect)."""
    named = str(record.get("channel") or "")
    return not call_channel or not named or named == call_channel


class PendingRecords:
    """IVR records of calls the tracker has not seen yet, by uniqueid and channel."""

    def __init__(self) -> None:
        self._by_call: dict[str, dict[str, dict[str, Any]]] = {}

    def keep(self, linkedid: str, record: Mapping[str, Any]) -> None:
        channels = self._by_call.get(linkedid)
        if channels is None:
            if len(self._by_call) >= MAX_CALLS:
                del self._by_call[next(iter(self._by_call))]  # the oldest
            channels = self._by_call[linkedid] = {}
        if len(channels) < MAX_PER_CALL:
            channels.setdefault(str(record.get("channel") or ""), dict(record))  # first per channel

    def take(self, linkedid: str, channel: str) -> dict[str, Any] | None:
        """The record of this call's channel (all others claiming its uniqueid are dropped)."""
        channels = self._by_call.pop(linkedid, None) or {}
        if not channel:
            return next(iter(channels.values()), None)
        return channels.get(channel) or channels.get("")

    def __len__(self) -> int:
        return len(self._by_call)

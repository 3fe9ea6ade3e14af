"""Who and when, for the call tracker: the dialplan contexts a citizen's call runs in, the
:class:`Directory` that says what a channel's endpoint is, and the event and ticket times."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Mapping

from ivr.core.callerid import CallerSettings
from ivr.core.channel import endpoint_of
from queues.callback import callback_queues

if TYPE_CHECKING:  # the tracker takes the settings it is given: no runtime import of the config layer
    from ivr.config import Settings

Event = Mapping[str, str]
# where citizens' calls enter (asterisk-conf/extensions.conf): from the carrier, or handed to us
# by another 12345 platform
CITIZEN_CONTEXTS = frozenset({"from-pstn", "from-platform"})
IVR_CONTEXTS = CITIZEN_CONTEXTS | {"ivr-answer"}  # the dialed number is still the extension: in the IVR
# contexts a citizen's own channel may be in later (a call adopted after a restart)
CALL_CONTEXTS = IVR_CONTEXTS | {"ivr-route", "ivr-queues", "ivr-survey", "ivr-queue-keys", "ivr-callback-request",
                                 "ivr-transfers", "ivr-bridge", "ivr-out-of-scope"}


@dataclass
class Directory:
    """Who is who on this platform, from the config: the role of a channel's endpoint, and
    what a dialed number is."""

    agents: frozenset[str]
    subcenters: Mapping[str, str]  # trunk endpoint → its number
    lines: Mapping[str, tuple[str, str]]  # dialed number → (mode, title)
    platforms: frozenset[str] = frozenset()  # trunks to other 12345 platforms
    matters: Mapping[str, str] = field(default_factory=dict)  # out-of-scope matter → its title
    callers: CallerSettings = CallerSettings()  # which numbers may be called back
    callback_queues: frozenset[str] = frozenset()  # queues that offer a callback

    @classmethod
    def from_settings(cls, s: Settings) -> "Directory":
        return cls(
            agents=frozenset(s.agents),
            subcenters={name: sc.number for name, sc in s.subcenters.items()},
            lines={number: (n.mode, n.title) for number, n in s.numbers.items()},
            platforms=frozenset(s.platforms),
            matters={name: m.title for name, m in s.out_of_scope.items()},
            callers=s.callers,
            callback_queues=callback_queues(s.queues),
        )

    def role(self, channel: str) -> str:
        endpoint = endpoint_of(channel)
        if endpoint in self.agents:
            return "agent"
        if endpoint in self.subcenters:
            return "subcenter"
        if endpoint == "pstn":
            return "caller"
        if endpoint in self.platforms:
            return "platform"
        return "other"


LOCAL = datetime.now().astimezone().tzinfo  # China keeps one offset all year: no DST to follow


def event_time(event: Event) -> datetime:
    """The event's own time (``timestampevents = yes``), as local time."""
    stamp = event.get("Timestamp")
    return datetime.fromtimestamp(float(stamp), LOCAL) if stamp else datetime.now(LOCAL)


def iso(at: datetime) -> str:
    """``at`` as the ticket writes times. A handler writes its event's time several times (the
    field, the timeline, the visit): the last one is kept (held, so its id cannot be reused)."""
    if at is _last_iso[0]:
        return _last_iso[1]
    text = at.isoformat(timespec="milliseconds")
    _last_iso[:] = (at, text)
    return text


_last_iso: list[Any] = [None, ""]


def local_exten(channel: str) -> str:
    """The number a Local channel was created for (``Local/12360@ivr-transfers-00000001;1`` →
    12360): its name keeps it while its dialplan has long moved on to ``[ivr-route] transfer``."""
    if not channel.startswith("Local/"):
        return ""
    exten = channel[len("Local/"):].partition("@")[0]
    return exten if exten.isdigit() else ""


def seconds_between(since_iso: str, until: datetime) -> float:
    return round((until - datetime.fromisoformat(since_iso)).total_seconds(), 3)


def duration(hms: str) -> float:
    """``00:01:05`` (CoreShowChannel's Duration) → 65.0."""
    try:
        h, m, s = (int(x) for x in hms.split(":"))
        return h * 3600 + m * 60 + s
    except ValueError:
        return 0.0

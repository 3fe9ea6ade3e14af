"""The seat wish: what an agent asked for (logged in, which queues, paused and why, wrap-up),
kept in Redis so every Asterisk node can apply it (docs/cluster.md, "Agents across nodes").

app_queue knows only its own node's members. A log-in, log-out or pause reaches one node (the
softphone's ``*7x``) or none (``ivr agents``, the console desk); the wish is what every node's
applier makes its app_queue match. These are its rules, without I/O:

- every accepted change raises the seat's ``seq`` by one (it only grows: appliers compare it);
- each aspect keeps the time of the fact that set it (``login_at``, ``pause_at``, ``wrap_at``):
  a change older than that is refused, so a late writer (a replayed event, a slow CLI) never
  undoes a newer wish;
- a log-in or log-out starts the seat unpaused and ends any wrap-up (app_queue does the same);
- a seat with no wish yet (never logged in or out through one) is its node's alone: its pauses
  write nothing, and appliers leave it as each node has it, but for the leader queue's hold;
- a leader seat outside its session is held paused in the leader queue, whatever the wish
  (``held``, queues/sessions.py); the agent's own pause is never undone by that;
- wrap-up (后处理) after a call on node A is a pause on every OTHER node until ``wrap_until``
  (A's own ``wrapuptime`` holds there); a pause the agent chose wins over it, and an unpause
  given after the call ends the wrap-up at once (the agent says they are ready).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, Mapping

Kind = Literal["login", "logout", "pause", "unpause", "wrapup"]
KINDS: tuple[Kind, ...] = ("login", "logout", "pause", "unpause", "wrapup")
WRAPUP_REASON = "后处理"  # the reason other nodes pause a seat in wrap-up with (pause_reasons' "4")


@dataclass(frozen=True)
class SeatWish:
    """One agent's wish; ``seq`` 0 means none was ever written."""

    agent: str
    seq: int = 0
    logged_in: bool = False
    queues: dict[str, int] = field(default_factory=dict)  # configured queue → penalty
    paused: bool = False
    reason: str = ""
    wrap_until: float = 0.0
    wrap_node: str = ""  # the node that had the call (its own wrapuptime holds there)
    login_at: float = 0.0
    pause_at: float = 0.0
    wrap_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "SeatWish":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        queues = {str(q): int(p) for q, p in dict(known.pop("queues", {}) or {}).items()}
        return cls(**known, queues=queues)


@dataclass(frozen=True)
class Change:
    """One fact about a seat: ``at`` is when it happened (an AMI event's timestamp, or now)."""

    kind: Kind
    at: float
    queues: Mapping[str, int] = field(default_factory=dict)  # login: the agent's queues and penalties
    reason: str = ""  # pause
    until: float = 0.0  # wrapup: when it ends
    node: str = ""  # wrapup: where the call was


class Refused(Exception):
    """A change that does not apply to the wish as it stands (said plainly, for the CLI)."""


def apply(wish: SeatWish, change: Change) -> SeatWish | None:
    """The wish after ``change``, its ``seq`` one higher; None when it is older than what it
    would overwrite (the newer wish stands) or changes nothing. Raises :class:`Refused` for a
    pause of a seat its wish has logged out."""
    new = _changed(wish, change)
    return None if new is None else replace(new, seq=wish.seq + 1)


def _changed(wish: SeatWish, change: Change) -> SeatWish | None:
    if change.kind in ("login", "logout"):
        if change.at < wish.login_at:
            return None
        if change.kind == "login":
            queues = dict(change.queues)
            if wish.logged_in and wish.queues == queues:
                return None  # logged in again: app_queue keeps the pause, so does the wish
            fresh = not wish.logged_in
            new = replace(wish, logged_in=True, queues=queues, login_at=change.at)
            return _cleared(new, change.at) if fresh else new
        if not wish.logged_in and wish.seq:
            return None
        return _cleared(replace(wish, logged_in=False, queues={}, login_at=change.at), change.at)
    if change.kind in ("pause", "unpause"):
        if change.at < wish.pause_at or not wish.seq:
            return None  # a seat never logged in through a wish is the node's alone
        if not wish.logged_in:
            raise Refused(f"{wish.agent} is not logged in")
        if change.kind == "pause":
            if wish.paused and wish.reason == change.reason:
                return None
            return replace(wish, paused=True, reason=change.reason, pause_at=change.at)
        new = replace(wish, paused=False, reason="", pause_at=change.at)
        if change.at >= wish.wrap_at:  # ready again after the call: the wrap-up ends here
            new = replace(new, wrap_until=0.0, wrap_node="")
        return None if new == wish else new
    if change.at < wish.wrap_at or not wish.logged_in or change.at < wish.login_at:
        return None
    return replace(wish, wrap_until=change.until, wrap_node=change.node, wrap_at=change.at)


def _cleared(wish: SeatWish, at: float) -> SeatWish:
    return replace(wish, paused=False, reason="", pause_at=max(wish.pause_at, at), wrap_until=0.0, wrap_node="")


@dataclass(frozen=True)
class Wanted:
    """What one node's app_queue should hold for a seat: its queues (penalty each) and pause;
    ``held``: queues it is paused in whatever it asked for (queue → reason: a leader seat outside
    its session, queues/sessions.py), unless its own pause already holds it."""

    queues: dict[str, int]
    paused: bool
    reason: str
    held: dict[str, str] = field(default_factory=dict)

    def pause_in(self, queue: str) -> tuple[bool, str]:
        """Paused in ``queue`` and why: the seat's own pause first (it is not undone, its reason shown)."""
        if self.paused:
            return True, self.reason
        if queue in self.held:
            return True, self.held[queue]
        return False, ""


def wanted(wish: SeatWish, node: str, now: float, held: Mapping[str, str] | None = None) -> tuple[Wanted, float]:
    """The seat on ``node`` at ``now``, and when that changes by itself (the end of a wrap-up
    pause there; 0: never). ``held``: queues the seat is held paused in (:class:`Wanted`)."""
    hold = dict(held or {})
    if not wish.logged_in:
        return Wanted({}, False, ""), 0.0
    if wish.paused:
        return Wanted(dict(wish.queues), True, wish.reason, hold), 0.0
    if wish.wrap_node != node and now < wish.wrap_until:
        return Wanted(dict(wish.queues), True, WRAPUP_REASON, hold), wish.wrap_until
    return Wanted(dict(wish.queues), False, "", hold), 0.0


@dataclass(frozen=True)
class Member:
    """A seat's membership of one queue as the node's ``QueueStatus`` reports it."""

    penalty: int
    paused: bool
    reason: str


@dataclass(frozen=True)
class Step:
    """One seat-control action: ``add`` (penalty), ``remove``, ``pause`` (reason) or ``unpause``."""

    action: Literal["add", "remove", "pause", "unpause"]
    queue: str
    penalty: int = 0
    reason: str = ""
    paused: bool = False  # add: join paused (no call may slip in before the pause that follows)


def plan(want: Wanted, members: Mapping[str, Member]) -> list[Step]:
    """The actions that make a node's memberships of one seat (configured queue → member) what
    ``want`` says: add the missing (then pause them), remove the extra, fix pauses and penalties
    (a wrong penalty: removed and added again)."""
    steps: list[Step] = []
    for queue in sorted(set(members) - set(want.queues)):
        steps.append(Step("remove", queue))
    for queue, penalty in sorted(want.queues.items()):
        paused, reason = want.pause_in(queue)
        have = members.get(queue)
        if have is not None and have.penalty != penalty:
            steps.append(Step("remove", queue))
            have = None
        if have is None:
            steps.append(Step("add", queue, penalty=penalty, paused=paused))
            have = Member(penalty, paused, "")
        if paused and (not have.paused or have.reason != reason):
            steps.append(Step("pause", queue, reason=reason))
        elif not paused and have.paused:
            steps.append(Step("unpause", queue))
    return steps


def hold(members: Mapping[str, Member], held: Mapping[str, str], reason: str) -> list[Step]:
    """For a seat with no wish (the node's alone, else untouched): pause it where it is held and
    not paused, and lift a hold (a pause for ``reason``) where it is no longer held. Its own
    pauses stand; it joins or leaves nothing."""
    steps: list[Step] = []
    for queue, have in sorted(members.items()):
        if queue in held and not have.paused:
            steps.append(Step("pause", queue, reason=held[queue]))
        elif queue not in held and have.paused and have.reason == reason:
            steps.append(Step("unpause", queue))
    return steps

"""Where a call resumes when its engine vanishes mid-IVR (docs/cluster.md).

On entering a menu the engine leaves a resume point on the channel (``IVR_RESUME``): the menu,
the nodes walked so far, the menu keys pressed and the word-valued variables. When the engine
dies, the dialplan hands the call and that point to the next engine, which starts at the menu
(not the greeting) and keeps the earlier path, so the call's record shows one IVR path whose
visits say which session walked them (0: the first engine, 1: the first stand-in, ...).

The point is text the dialplan passes back as an AGI argument, so it is made only of
``[A-Za-z0-9_./:=~*#-]``: no comma (an argument separator), no caller text. Collected digits
(ID numbers, phone numbers) never go into it: only single menu keys and variables whose value
is a word (``request_type=consult``), never digits. This module encodes and decodes; the
signature that proves an engine wrote it is :mod:`ivr.agi.call_guard`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

VERSION = "1"
VARIABLE = "IVR_RESUME"  # the channel variable the engine sets on entering a menu
MAX_LENGTH = 1024  # characters of a point; a longer one is not an engine's
MAX_PATH = 96  # visits carried (the record keeps 128)
_ID = r"[A-Za-z][A-Za-z0-9_-]{0,63}"
_ITEM = re.compile(rf"(?:({_ID})/)?({_ID})")
_KEYS = re.compile(r"[0-9*#]{0,64}")
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,31}|[A-Z_][A-Z0-9_]{0,31}")
_WORD = re.compile(r"[a-z][a-z0-9_]{0,31}")  # a value carried: a word, never a number keyed


@dataclass(frozen=True)
class Walked:
    flow: str
    node: str
    session: int


@dataclass(frozen=True)
class ResumePoint:
    """A menu to resume at and the path that led there."""

    flow: str
    node: str
    session: int  # the session that entered the menu (a stand-in runs session + 1)
    started: float  # unix seconds the call reached the first engine
    path: tuple[Walked, ...]  # visits before the menu, oldest first
    keys: str  # single menu keys pressed, in order
    variables: Mapping[str, str]  # lower case: call variables; upper case: channel variables


class BadResumePoint(ValueError):
    """The text is not a resume point an engine writes."""


def carried_keys(keys: Sequence[str]) -> str:
    """The menu keys worth carrying: single keys only (a collected number stays behind)."""
    return "".join(k for k in keys if len(k) == 1 and k in "0123456789*#")


def carried_variables(variables: Mapping[str, str], channel: Mapping[str, str]) -> dict[str, str]:
    """Word-valued variables (call and channel); anything else (a number keyed, the caller's
    number expanded by a ``set`` node) stays behind."""
    out = {k: v for k, v in variables.items() if _NAME.fullmatch(k) and k.islower() and _WORD.fullmatch(v)}
    out.update({k: v for k, v in channel.items() if _NAME.fullmatch(k) and k.isupper() and _WORD.fullmatch(v)})
    return out


def encode(point: ResumePoint) -> str:
    """The point as one AGI-argument-safe string (without its signature)."""
    segments: list[list[str]] = []
    flow = point.flow
    previous = ""
    for visit in point.path[-MAX_PATH:]:
        while len(segments) <= visit.session:
            segments.append([])
        segments[visit.session].append(visit.node if visit.flow == previous else f"{visit.flow}/{visit.node}")
        previous = visit.flow
    path = "~".join(".".join(s) for s in segments)
    variables = ".".join(f"{k}={v}" for k, v in point.variables.items())
    return ":".join((VERSION, str(point.session), f"{flow}/{point.node}", str(int(point.started)), path, point.keys,
                     variables))


def decode(text: str) -> ResumePoint:
    """The point ``text`` names; :class:`BadResumePoint` for anything an engine did not write."""
    if len(text) > MAX_LENGTH:
        raise BadResumePoint("too long")
    fields = text.split(":")
    if len(fields) != 7 or fields[0] != VERSION:
        raise BadResumePoint("not a resume point of this version")
    _version, session, where, started, path, keys, variables = fields
    if not session.isdigit() or not started.isdigit() or len(session) > 2 or len(started) > 12:
        raise BadResumePoint("bad session or start")
    menu = _ITEM.fullmatch(where)
    if menu is None or menu[1] is None or not _KEYS.fullmatch(keys):
        raise BadResumePoint("bad menu or keys")
    walked: list[Walked] = []
    flow = ""
    for number, segment in enumerate(path.split("~") if path else []):
        for item in segment.split(".") if segment else []:
            m = _ITEM.fullmatch(item)
            if m is None or (m[1] is None and not flow):
                raise BadResumePoint("bad path")
            flow = m[1] or flow
            walked.append(Walked(flow, m[2], number))
    carried: dict[str, str] = {}
    for pair in variables.split(".") if variables else []:
        name, _, value = pair.partition("=")
        if not _NAME.fullmatch(name) or not _WORD.fullmatch(value):
            raise BadResumePoint("bad variable")
        carried[name] = value
    if len(walked) > MAX_PATH or int(session) < max((w.session for w in walked), default=0):
        raise BadResumePoint("bad path")
    return ResumePoint(menu[1], menu[2], int(session), float(started), tuple(walked), keys, carried)


@dataclass
class Resume:
    """One session's part in resuming: where it starts (``point``, None for the call's first
    session) and how it signs the points it leaves (``sign``: body → what the channel carries)."""

    sign: Callable[[str], str]
    point: ResumePoint | None = None

    @property
    def session(self) -> int:
        return 0 if self.point is None else self.point.session + 1

    def here(self, flow: str, node: str, started: float, path: Sequence[Walked], keys: Sequence[str],
             variables: Mapping[str, str], channel: Mapping[str, str]) -> str:
        """The signed point of the menu ``flow/node`` this session is entering now."""
        point = ResumePoint(flow, node, self.session, started, tuple(path), carried_keys(keys),
                            carried_variables(variables, channel))
        return self.sign(encode(point))

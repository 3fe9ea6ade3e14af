"""What every area's patterns share: the quoted-value group, the suggestion, a problem as said."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable, Union

Fields = dict[str, str]
Text = Union[str, Callable[[Fields], str]]  # a Mandarin text with the reason's fields, or one worded from them
Kinds = dict[str, tuple[re.Pattern[str], Text]]  # error kind → (English reason, Mandarin text)
UNKNOWN = "暂无中文说明"  # the frame of a reason no pattern knows
DETAIL = "技术细节"
WHAT = {  # a thing a reason names by kind ("queue 'x' is not defined …", "not a purpose: …")
    "queue": "队列", "out-of-scope matter": "非受理范围事项", "sub-center": "分中心", "IP address or network": "IP 地址或网段",
    "purpose": "有效的用途", "ticket number": "工单号", "period": "统计周期", "disposition": "处理结果", "request type": "诉求类型",
}


def q(name: str) -> str:
    """A quoted value as repr() writes it, captured as ``name``."""
    return rf"(?P<{name}>'[^']*'|\"[^\"]*\")"


CLOSE = r"(?: \(did you mean (?P<close>'[^']*')\?\))?"  # ivr.flows.compiler.suggest
PID = r"(?:(?P<pid>[^:]+): )?"  # an optional "who: " before a reason, worded "who："


def gap(text: str) -> str:
    """``text`` after Han characters: a space before a Latin start (不是 IP 地址, 不允许 ';')."""
    return f" {text}" if text[:1].isascii() else text


def one_of(texts: Iterable[str]) -> str:
    """A regex alternation of ``texts`` as written, the longest first (so none stops at a shorter one)."""
    return "|".join(re.escape(t) for t in sorted(texts, key=len, reverse=True))


def kinds(*entries: tuple[str, str, Text]) -> Kinds:
    """(kind, English pattern, Mandarin text) → :data:`Kinds`, each pattern compiled (``(?s)`` in one
    that may span lines: a receiver's or a library's words)."""
    return {kind: (re.compile(pattern), text) for kind, pattern, text in entries}


@dataclass(frozen=True)
class Said:
    """A problem as the staff read it: ``text`` in Mandarin; ``detail``, the English as written
    when no pattern knows it ('' when translated), for the admin who has to act on it."""

    text: str
    detail: str = ""

    def plain(self) -> str:
        """One line of text (a ``<pre>``, a log excerpt): the detail in brackets after the frame."""
        return f"{self.text}（{DETAIL}：{self.detail}）" if self.detail else self.text

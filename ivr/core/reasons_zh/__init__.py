"""Config problems and refusals in Mandarin for the console, by kind of error.

``ivr check``, ``ivr reload`` and the logs word a refused file's problems in English
(``flows/main.yaml:3:5: unknown key 'colour'``); the console shows the staff the same problem
in Mandarin, the location unchanged. Each kind of error has one pattern and one Mandarin text
with the same fields, grouped by area (config, flows, prompts, references, desk, seats, generated files, fields). A reason no pattern
knows (a new check, a network error from a library) still reads as Mandarin: a frame,
暂无中文说明, with the English kept as a technical detail for the admin who has to act on it (the
console marks it ``lang="en"``). Engine warnings (a holiday calendar without next year's 调休)
are worded here too.
"""

from __future__ import annotations

import re

from ivr.core import flow_words
from ivr.core.reasons_zh import config, desk, fields, flows, generated, prompts, references, seats
from ivr.core.reasons_zh._shared import DETAIL, UNKNOWN, WHAT, Fields, Kinds, Said

__all__ = ["DETAIL", "KINDS", "UNKNOWN", "Said", "explain", "problem_zh", "reason_zh"]

KINDS: Kinds = {**generated.KINDS, **config.KINDS, **flows.KINDS, **prompts.KINDS, **references.KINDS, **desk.KINDS,
                **seats.KINDS,                 **fields.KINDS}  # the first that matches wins: the generic field last
_LOCATED = re.compile(r"(?P<at>[^\s:]+:\d+:\d+): (?P<reason>.*)", re.S)
_NOTICE = re.compile(r"^notice (\S+) ([\d.]+)s")
_SPAN = re.compile(r"(?:(?P<release>\S+) )?covers (?P<first>\d{4})–(?P<last>\d{4})")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_LETTER = re.compile(r"[A-Za-z]")


def explain(problem: str) -> Said:
    """``file:line:col: reason`` (or a bare reason) with the reason in Mandarin, the location kept."""
    m = _LOCATED.fullmatch(problem)
    if m is None:
        return _reason(problem)
    said = _reason(m["reason"])
    return Said(f"{m['at']}: {said.text}", said.detail)


def reason_zh(reason: str) -> str:
    """One reason in Mandarin (``unknown key 'colour'`` → ``未知的配置项 'colour'``)."""
    return _reason(reason).plain()


def problem_zh(problem: str) -> str:
    """:func:`explain` as one line of text."""
    return explain(problem).plain()


def _reason(reason: str) -> Said:
    for pattern, text in KINDS.values():
        m = pattern.fullmatch(reason)
        if m:
            found = {k: v or "" for k, v in m.groupdict().items()}
            detail = found.get("rest", "").strip()  # a receiver's or a library's words: a detail
            for name in ("inner", "msg"):  # a reason inside a reason: worded in turn
                if name in found:
                    said = _message(found[name]) if name == "msg" else _reason(found[name])
                    found[name], detail = said.text, said.detail
            words = _word(found)
            return Said(text(words) if callable(text) else text.format(**words), detail)
    return Said(reason) if _mandarin(reason) else Said(UNKNOWN, reason)


def _word(found: Fields) -> Fields:
    """The fields as the Mandarin texts take them, by the name each pattern gives a field."""
    f = dict(found)
    if f.get("pid"):
        f["pid"] += "："
    if f.get("exp"):
        f["exp"] = f"（应为 {f['exp']}）"
    if f.get("close"):
        f["close"] = f"（是否应为 {f['close']}？）"
    if "what" in f:
        f["what"] = WHAT.get(f["what"], f["what"])
    if "where" in f:
        f["where"] = "顶层" if f["where"] == "top level" else f"{f['where']} 中"
    if "span" in f:
        f["span"] = _span(f["span"])
    if "path" in f:  # a worst path as the lint writes it
        f["got"] = f"从接听到人工最长 {f['s']} 秒" if f["s"] else "没有到达人工的路径"
        f["path"] = flow_words.flow_path(_NOTICE.sub(r"过渡提示 \1 \2 秒", f["path"]))
        f["mode"] = flow_words.number_mode(f.get("mode", ""))
    if "edge" in f:  # a way out of a node
        f["edge"] = flow_words.edge(f["edge"])
    return f


def _mandarin(reason: str) -> bool:
    """Written for the staff already (the console's own checks): mostly Han, a command or a name
    in it aside (``更长的时段请用 ivr stats quality``); an English sentence quoting a Mandarin term is not."""
    han = len(_HAN.findall(reason))
    return han > 0 and 2 * han >= len(_LETTER.findall(reason))


def _span(text: str) -> str:
    """``1.11.0 covers 2004–2026`` → ``1.11.0 版含 2004–2026 年``."""
    m = _SPAN.fullmatch(text)
    if m is None:
        return "未含任何年份" if text == "it covers no year" else text
    return f"{m['release'] + ' 版' if m['release'] else ''}含 {m['first']}–{m['last']} 年"


def _message(msg: str) -> Said:
    for pattern, text in fields.MESSAGES:
        m = pattern.fullmatch(msg)
        if m:
            found = {k: re.sub(r", | or ", "、", v) if k == "choices" else v for k, v in m.groupdict().items()}
            if "text" in found:  # a validator's own reason, after pydantic's "Value error, "
                said = _reason(found["text"])
                return Said(text.format(text=said.text), said.detail)
            return Said(text.format(**found))
    return Said(UNKNOWN, msg)

"""A ticket's call as stages for people to read: 受理 → IVR → 排队 → 座席 → 转接 → 结束.

Built only from what the ticket holds: its timeline entries (written by the call tracker as
events arrived) with the IVR path (which has no times of its own) placed right after receipt.
The tracker writes English details (the CLI and webhooks keep them); :func:`detail_zh` reads
them back in Mandarin by pattern, so tickets stored before a translation existed read the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from ivr.core import labels
from tickets.model import DISPOSITION_LABELS, Ticket

STAGES = {  # the first word of a timeline event → its stage
    "received": "受理", "queue": "排队", "agent": "座席", "transfer": "转接", "BlindTransfer": "转接",
    "AttendedTransfer": "转接", "emergency": "应急联动", "callback": "回拨", "satisfaction": "满意度",
    "closed": "结束", "picked": "跟踪", "quality": "质检", "revisit": "回访", "dept": "部门办理",
    "recording": "录音", "desk": "座席", "three-party": "转接", "lost": "结束", "from": "受理",
}
EVENTS = {
    "received": "来电受理", "queue joined": "进入队列", "queue rejoined": "再次进入队列", "queue left": "离开队列",
    "queue abandoned": "排队中放弃", "queue overflow": "溢出到其他队列", "agent rung": "座席振铃",
    "agent did not answer": "座席未接",
    "agent taken": "座席占线（486，多节点时即抢占冲突）", "agent connected": "座席接通", "agent completed": "通话结束",
    "transfer dialed": "转接拨出", "transfer result": "转接结果", "BlindTransfer": "座席盲转",
    "AttendedTransfer": "座席咨询转接", "callback requested": "预约回拨", "satisfaction asked": "请求满意度评价",
    "satisfaction": "满意度评价", "closed": "工单结束", "picked up again": "重连后继续跟踪",
    "quality scored": "质检评分", "revisit done": "回访完成",
    "dept dispatched": "部门派单", "dept handling": "部门办理中", "dept closed": "部门办结", "dept returned": "部门退回",
    "dept extend": "部门申请延期", "callback dialing": "回拨拨出", "callback answered": "回拨接通",
    "callback result": "回拨结果", "callback refused": "不予回拨", "recording stored": "录音已保存",
    "recording failed": "录音失败", "recording deleted": "录音已删除", "lost with its node": "节点故障中断",
    "three-party bridge": "三方通话", "from platform": "外平台转入", "out of scope": "非受理范围",
    "desk updated": "座席工作台更新", "transfer": "转接",
}


Title = Callable[[str], str]  # a queue's name → its display name (the wallboard's)
_SECONDS = r"(?P<s>[0-9.]+) s"
DETAILS: dict[str, list[tuple[re.Pattern[str], str]]] = {  # event → (English detail, Mandarin format)
    "queue joined": [(re.compile(r"(?P<q>\S+) position (?P<n>\d*)"), "{q}，排第 {n} 位")],
    "queue rejoined": [(re.compile(r"(?P<q>\S+) position (?P<n>\d*)"), "{q}，排第 {n} 位")],
    "queue abandoned": [(re.compile(rf"(?P<q>\S*) after {_SECONDS}"), "{q}，等待 {s} 秒后放弃")],
    "queue left": [(re.compile(r"(?P<q>\S+)"), "{q}")],
    "agent connected": [(re.compile(rf"(?P<a>\S+) after {_SECONDS}"), "{a}，等待 {s} 秒后接通"),
                        (re.compile(r"(?P<a>\S+) \(seen after a reconnect.*\)"), "{a}（重连后发现，时间按通道时长推算）")],
    "agent completed": [(re.compile(rf"(?P<a>\S+) talk {_SECONDS} \((?P<by>\w*)\)"), "{a}，通话 {s} 秒（{by}）")],
    "received": [(re.compile(r"(?P<l>\S+) \(from the CDR\)"), "{l}（据话单补记）")],
    "picked up again": [(re.compile(r"after a reconnect"), "重连后")],
    "transfer dialed": [(re.compile(r"(?P<n>\S+) via (?P<e>\S*)"), "{n}，经 {e}")],
    "callback requested": [(re.compile(r"(?P<q>\S*) \(place kept\)"), "{q}（保留排队位置）")],
    "satisfaction": [(re.compile(r"no rating"), "未评价")],
    "recording stored": [(re.compile(rf"(?P<f>\S+) {_SECONDS}"), "{f}，{s} 秒")],
}
for _stage in ("dialing", "answered", "result"):
    DETAILS[f"callback {_stage}"] = [(re.compile(r"attempt (?P<n>\d+)(?P<a>.*)"), "第 {n} 次{a}")]


def detail_zh(event: str, detail: str, title: Title = str) -> str:
    """A timeline entry's English detail in Mandarin; a detail no pattern knows stays as written."""
    if event == "closed":
        return next((label for d, label in DISPOSITION_LABELS.items() if d.value == detail), detail)
    for pattern, text in DETAILS.get(event, ()):
        m = pattern.fullmatch(detail)
        if m:
            found = m.groupdict()
            if "q" in found:
                found["q"] = title(found["q"].removeprefix("q-"))
            if "by" in found:
                found["by"] = labels.hangup_by(found["by"])
            return text.format(**found)
    return detail


@dataclass(frozen=True)
class Step:
    at: str  # ISO time
    stage: str  # 受理, IVR, 排队, …
    event: str  # Mandarin label of the event
    detail: str


def call_steps(t: Ticket, title: Title = str) -> list[Step]:
    """The stages in Mandarin, queues by their display names (``title``)."""
    steps = [Step(e.at, STAGES.get(e.event.split()[0], "其他"), EVENTS.get(e.event, e.event),
                  detail_zh(e.event, e.detail, title)) for e in t.timeline]
    if t.ivr.flow or t.ivr.nodes or t.ivr.fallback:
        path = " → ".join(t.ivr.nodes) or "（无）"
        detail = f"流程 {t.ivr.flow}：{path}" + (f"；按键 {' '.join(t.ivr.keys)}" if t.ivr.keys else "") \
            + (f"；去向 {labels.route(t.ivr.route)}" if t.ivr.route else "") \
            + ("；引擎未接管，拨号计划直接转人工" if t.ivr.fallback else "") \
            + (f"；错误 {t.ivr.error}" if t.ivr.error else "")
        at = next((s.at for s in steps if s.stage == "受理"), t.received)
        place = next((i + 1 for i, s in enumerate(steps) if s.stage == "受理"), 0)
        steps.insert(place, Step(at, "IVR", "语音导航", detail))
    return steps

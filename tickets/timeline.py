"""A ticket's call as stages for people to read: 受理 → IVR → 排队 → 座席 → 转接 → 结束.

Built only from what the ticket holds: its timeline entries (written by the call tracker as
events arrived) with the IVR path (which has no times of its own) placed right after receipt.
"""

from __future__ import annotations

from dataclasses import dataclass

from tickets.model import Ticket

STAGES = {  # the first word of a timeline event → its stage
    "received": "受理", "queue": "排队", "agent": "座席", "transfer": "转接", "BlindTransfer": "转接",
    "AttendedTransfer": "转接", "emergency": "应急联动", "callback": "回拨", "satisfaction": "满意度",
    "closed": "结束", "picked": "跟踪", "quality": "质检", "revisit": "回访", "dept": "部门办理",
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
    "dept extend": "部门申请延期",
}


@dataclass(frozen=True)
class Step:
    at: str  # ISO time
    stage: str  # 受理, IVR, 排队, …
    event: str  # Mandarin label of the event
    detail: str


def call_steps(t: Ticket) -> list[Step]:
    steps = [Step(e.at, STAGES.get(e.event.split()[0], "其他"), EVENTS.get(e.event, e.event), e.detail)
             for e in t.timeline]
    if t.ivr.flow or t.ivr.nodes or t.ivr.fallback:
        path = " → ".join(t.ivr.nodes) or "（无）"
        detail = f"流程 {t.ivr.flow}：{path}" + (f"；按键 {' '.join(t.ivr.keys)}" if t.ivr.keys else "") \
            + (f"；去向 {t.ivr.route}" if t.ivr.route else "") + ("；引擎未接管，拨号计划直接转人工" if t.ivr.fallback else "") \
            + (f"；错误 {t.ivr.error}" if t.ivr.error else "")
        at = next((s.at for s in steps if s.stage == "受理"), t.received)
        place = next((i + 1 for i, s in enumerate(steps) if s.stage == "受理"), 0)
        steps.insert(place, Step(at, "IVR", "语音导航", detail))
    return steps

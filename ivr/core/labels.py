"""The console's Mandarin for the values the platform stores in English.

Tickets, webhooks, logs, the audit file and the CLI keep their English values (departments'
systems and scripts read them); the console speaks Mandarin to staff, so it translates them
where it shows them, from this one table. Templates reach it as ``zh`` (console/pages.py).
A value the table does not know is shown as stored rather than hidden.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from ivr.core.flow_words import EDGES, NUMBER_MODES, edge, flow_path, number_mode  # noqa: F401  (templates: zh.edge, …)
from ivr.core.reasons_zh import explain, problem_zh  # noqa: F401  (templates: zh.explain, config problems)

ROUTES = {"queue": "转人工排队", "transfer": "转分中心", "hangup": "挂机", "fallback": "拨号计划直接转人工"}
HANGUP_BY = {"caller": "市民挂机", "agent": "座席挂机", "transfer": "已转出", "": "挂机方不明"}
AUDIT_COMMANDS = {  # the audit file's command → what the staff read (console lines name the console)
    "console sign-in": "控制台登录", "console refused": "控制台拒绝访问",
    "console tickets show": "控制台查看完整号码（单张工单）", "console tickets export": "控制台导出完整号码",
    "console flow publish": "控制台发布流程", "console flow rollback": "控制台回滚流程",
    "console number-plan publish": "控制台发布号码计划", "console number-plan rollback": "控制台回滚号码计划",
    "console recording play": "控制台播放录音", "console recording download": "控制台下载录音",
    "tickets show": "命令行查看完整号码（单张工单）", "tickets list": "命令行查看完整号码（工单列表）",
    "tickets export": "命令行导出完整号码", "supervise": "监听/强插", "desk seat": "座席状态操作",
    "desk ticket update": "座席更新工单", "desk transfer": "座席转接", "quality score": "质检评分",
    "revisit done": "回访完成", "push dead replay": "重推死信", "push dead drop": "丢弃死信",
    "dept write-back": "部门回写", "dept write-back refused": "部门回写被拒绝",
}
AUDIT_KEYS = {
    "number": "工单号", "file": "文件", "outcome": "结果", "version": "版本", "problems": "问题数", "to": "回滚到",
    "since": "起", "until": "止", "line": "线路", "type": "诉求类型", "disposition": "结果", "seat": "座席",
    "recording": "录音", "path": "地址", "method": "请求", "address": "来源地址", "role": "角色", "agent": "座席",
    "action": "操作", "reason": "理由", "target": "转接目标", "error": "错误", "status": "状态",
    "endpoint": "推送地址", "id": "编号", "output": "输出",
}
AUDIT_VALUES = {"published": "已发布", "refused": "被拒绝", "ok": "成功", "failed": "失败", "locked": "已锁定",
                "GET": "查看", "POST": "提交", "admin": "管理员", "supervisor": "班长", "agent": "座席"}
REFUSED = "refused: "  # how a refusal's reason starts in the audit file
SIGN_IN_REFUSALS = {  # console/views/signin.py's reasons, as the audit file keeps them
    "wrong name or password": "用户名或密码错误", "busy": "登录请求过多", "too many failures": "失败次数过多",
    "too many failures from this address": "该地址失败次数过多", "too many failures for this user": "该用户失败次数过多",
    "too many failures in all": "全部登录失败次数过多",
}
LEASES = {  # an engine's duties (ivr/store/lease.py, ivr/duties.py)
    "follow": "跟踪通话", "nodes": "节点故障处理", "retention": "保留期清理", "hours": "分中心时段发布",
}
SESSION_STATES = {"on": "进行中", "next": "今日下一场"}  # the wallboard's leader session (queues/sessions.py)
_DAYS = {-1: "昨日", 0: "", 1: "次日"}
_RULE = re.compile(r"(\d+) working days?|(\d+) h \(crisis\)")


def route(value: str) -> str:
    return ROUTES.get(value, value)


def hangup_by(value: str) -> str:
    return HANGUP_BY.get(value, value)


def deadline_rule(rule: str) -> str:
    """``3 working days`` → ``3 个工作日``; ``24 h (crisis)`` → ``24 小时（应急）``."""
    m = _RULE.fullmatch(rule.strip())
    if m is None:
        return rule
    return f"{m[1]} 个工作日" if m[1] else f"{m[2]} 小时（应急）"


def lease(name: str) -> str:
    """``nodes`` → ``节点故障处理``."""
    return LEASES.get(name, name)


def leases(held: str) -> str:
    """An engine's leases as its status holds them, ``follow#12,nodes#3`` → ``跟踪通话#12、节点故障处理#3``."""
    parts = [part.partition("#") for part in held.split(",") if part]
    return "、".join(f"{lease(name)}{sep}{token}" for name, sep, token in parts) or held


def audit_command(command: str) -> str:
    """``console tickets show`` → ``控制台查看完整号码（单张工单）``."""
    return AUDIT_COMMANDS.get(command, command)


def audit_key(key: str) -> str:
    return AUDIT_KEYS.get(key, key)


def audit_reason(reason: str) -> str:
    """``refused: 座席只能查看…`` → ``已拒绝：座席只能查看…``."""
    if not reason.startswith(REFUSED):
        return reason
    why = reason.removeprefix(REFUSED)
    return f"已拒绝：{SIGN_IN_REFUSALS.get(why, why)}"


def audit_value(value: object) -> str:
    text = str(value)
    return AUDIT_VALUES.get(text, text)



def session_window(start: datetime, end: datetime, today: date) -> str:
    """A session's window on the wallboard, in local time: ``09:00–10:00``; a day other than
    ``today`` named (``23:30–次日00:30``, after midnight ``昨日23:30–00:30``), an end at midnight 24:00."""
    def clock(at: datetime) -> str:
        if at.hour == at.minute == 0 and at.date() == start.date() + timedelta(days=1) and start.date() == today:
            return "24:00"
        days = (at.date() - today).days
        return f"{_DAYS.get(days, f'{at:%m-%d} ')}{at:%H:%M}"
    return f"{clock(start)}–{clock(end)}"

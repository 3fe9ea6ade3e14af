"""A seat or a supervisor refused (queues/seat_control.py, supervision/), and a department's
event refused by the ticket workflow (tickets/workflow.py): what the desk, the audit page and a
department's reply say."""

from __future__ import annotations

from ivr.core.reasons_zh._shared import Kinds, kinds, one_of, q

_DUE = {  # a department's new deadline refused (extend)
    "is not a date": "不是日期", "is not a working day": "不是工作日", "must be an ISO date (YYYY-MM-DD)": "应为 ISO 日期（YYYY-MM-DD）",
    "must be an ISO time with its offset (crisis deadline)": "应为带时区偏移的 ISO 时间（紧急工单期限）",
    "must carry its UTC offset": "须带 UTC 偏移", "must be later than the current deadline": "应晚于当前期限",
}

KINDS: Kinds = kinds(
    ("seat_queue", r"(?s)(?P<v>\S+): cannot (?P<act>join|leave) (?P<queue>\S+): (?P<rest>.*)",
     lambda f: f"座席 {f['v']} 无法{'加入' if f['act'] == 'join' else '退出'}队列 {f['queue']}"),
    ("not_logged_in", r"(?s)(?P<v>\S+)(?:: not logged in \((?P<rest>.*)\)| is not logged in)", "座席 {v} 未签入"),
    ("seat_redis", r"(?s)(?P<v>\S+): the seat wish cannot be written to Redis \((?P<rest>.*)\); nothing changed",
     "座席 {v}：无法写入 Redis，未做任何更改"),
    ("unknown_agent", r"unknown agent " + q("v") + r" \(agents are defined in config/queues\.yaml\)",
     "未知的座席 {v}（座席在 config/queues.yaml 中定义）"),
    ("audit_down", r"(?s)not dialed: the audit log cannot be written \((?P<rest>.*)\)", "未拨出：无法写入审计日志"),
    ("no_such", r"no such (?P<what>agent|supervisor phone) (?P<v>.+)",
     lambda f: f"{'座席' if f['what'] == 'agent' else '督导电话'} {f['v']} 不存在"),
    ("no_mode", r"no such mode (?P<v>.+) \(listen, whisper or barge\)", "没有督导方式 {v}（可选 listen、whisper 或 barge）"),
    ("own_phone", r"supervisor phone (?P<v>.+) is another user's own phone \(only an admin may ring it\)",
     "督导电话 {v} 是其他用户的专用电话（仅管理员可呼叫）"),
    ("agent_call", r"(?s)cannot read agent (?P<v>\S+)'s call: (?P<rest>.*)", "无法读取座席 {v} 的通话"),
    ("not_after", r"(?P<event>\S+) not allowed after (?P<status>\S+)", "工单状态为 {status} 时不允许 {event}"),
    ("due", r"due (?P<rule>" + one_of(_DUE) + ")", lambda f: f"due {_DUE[f['rule']]}"),
    ("due_far", r"due more than (?P<n>\S+) (?P<working>working )?days past the current deadline",
     lambda f: f"due 超出当前期限 {f['n']} 个{'工作日' if f['working'] else '自然日'}以上"),
    ("returned", r"returned by this department: the hotline re-dispatches it", "本部门已退回该工单：由热线重新派单"),
    ("no_deadline", r"the ticket has no deadline to extend", "该工单没有可延期的办理期限"),
    ("not_assigned", r"ticket not assigned to this department", "该工单未派给本部门"),
)

"""The flow lint's words in Mandarin: a number's mode, the way out of a node, a worst path.

Shared by the console's label table (ivr/core/labels.py) and the config problems it words
(ivr/core/reasons_zh), which labels itself imports: kept here so neither imports the other.
"""

from __future__ import annotations

import re

NUMBER_MODES = {"main": "主号", "merged": "合并", "dual": "双号并行", "subcenter": "分中心"}
EDGES = {  # how the flow lint names the way out of a node (ivr/flows: Edge labels, node types)
    "next": "继续", "else": "其他情况", "goto": "跳转", "otherwise": "否则", "exhausted": "重试用尽",
    "found": "查到工单", "not found": "未查到", "lookup failed": "查询失败", "valid input": "输入有效",
    "queue": "转人工排队", "transfer": "转接", "hangup": "挂机", "self-service, 0 reaches a human": "自助服务，按 0 转人工",
}
_EDGE_FORMS = ((re.compile(r"key (\S+) \(back\)"), "按键 {}（返回）"), (re.compile(r"key (\S+)"), "按键 {}"),
               (re.compile(r"case (\d+)"), "条件 {}"), (re.compile(r"flow (\S+)"), "进入流程 {}"))
_STEP = re.compile(r"\[([^\]]*)\] ([0-9.]+)s")


def number_mode(mode: str) -> str:
    return NUMBER_MODES.get(mode, mode)


def edge(label: str) -> str:
    for pattern, text in _EDGE_FORMS:
        m = pattern.fullmatch(label)
        if m:
            return text.format(m[1])
    return EDGES.get(label, label)


def flow_path(path: str) -> str:
    """A worst path as the lint writes it, ``menu[key 1] 7.355s → …`` → ``menu[按键 1] 7.355 秒 → …``."""
    return _STEP.sub(lambda m: f"[{edge(m[1])}] {m[2]} 秒", path)

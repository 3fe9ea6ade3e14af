"""Config problems in Mandarin for the console, by kind of error.

``ivr check``, ``ivr reload`` and the logs word a refused file's problems in English
(``flows/main.yaml:3:5: unknown key 'colour'``); the console shows the staff the same problem
in Mandarin, the location unchanged. Each kind of error the loaders write has one pattern and
one Mandarin text with the same fields. A reason no pattern knows (a new check, a network
error from a library) still reads as Mandarin: a frame, 暂无中文说明, with the English kept as a
technical detail for the admin who has to act on it (the console marks it ``lang="en"``).
Engine warnings (a holiday calendar without next year's 调休) are worded here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_Q = r"(?P<{}>'[^']*'|\"[^\"]*\")"  # a quoted value as repr() writes it
_CLOSE = r"(?: \(did you mean (?P<close>'[^']*')\?\))?"  # ivr.flows.compiler.suggest
KINDS: dict[str, tuple[re.Pattern[str], str]] = {  # error kind → (English reason, Mandarin text)
    "unknown_key": (re.compile(r"(?:(?P<pid>[\w.-]+): )?unknown key " + _Q.format("key") + r"(?: \(expected (?P<exp>.+)\))?"),
                    "{pid}未知的配置项 {key}{exp}"),
    "missing_key": (re.compile(r"missing key " + _Q.format("key") + r" in (?P<where>.+)"), "{where}缺少配置项 {key}"),
    "anchor": (re.compile(r"(?:anchor|alias) (?P<name>[&*]\S+) is not allowed: .*"),
               "不允许使用 YAML 锚点或别名 {name}：请直接写出取值"),
    "line_break_value": (re.compile(r"(?P<name>[\w.\[\]-]+): (?:Value error, )?(?:\w+ )?(?P<value>'.*'…?|\".*\"…?): "
                                    r"control or line-break character (?P<code>U\+[0-9A-F]{4}) is not allowed.*"),
                         "{name}：取值 {value} 含有控制字符或换行符 {code}，不允许"),
    "line_break": (re.compile(r"(?P<name>.+?): control or line-break character (?P<code>U\+[0-9A-F]{4}) is not allowed.*"),
                   "{name}：不允许控制字符或换行符 {code}"),
    "no_plan": (re.compile(r"number plan " + _Q.format("plan") + r" not found in .*\(there: (?P<known>.*)\)"),
                "号码计划 {plan} 不存在（现有：{known}）"),
    "too_big": (re.compile(r"file is (?P<size>\d+) bytes, more than (?P<max>\d+): refused"),
                "文件 {size} 字节，超过上限 {max} 字节：已拒绝"),
    "too_many": (re.compile(r"more than (?P<max>\d+) values in one file: refused"), "单个文件超过 {max} 个取值：已拒绝"),
    "not_utf8": (re.compile(r"not UTF-8 text: .*"), "不是 UTF-8 文本"),
    "syntax": (re.compile(r"YAML(?: syntax)?: (?P<what>.*)"), "YAML 语法错误：{what}"),
    "key_text": (re.compile(r"a key must be text, not (?P<key>.*)"), "配置项名必须是文字，不能是 {key}"),
    "unset": (re.compile(r"(?P<var>IVR_[A-Z0-9_]+) is not set(?: \(.*\))?"), "环境变量 {var} 未设置"),
    "calendar": (re.compile(r"holiday calendar (?:for (?P<year>\d{4}) is provisional \(statutory days only, no 调休\)"
                            r"|has no data for (?P<none>\d{4}) \(weekends only\)): ticket deadlines that run into \d{4} "
                            r"are provisional and working-day branches may be off; upgrade chinesecalendar "
                            r"\((?P<span>.*)\) or update (?P<file>\S+)"),
                 "{what}：跨入该年的工单办理期限为暂定，按工作日分支的流程可能有误；请升级 chinesecalendar（{span}）或更新 {file}"),
    "elderly_flow": (re.compile(r"priority\.elderly\.flow " + _Q.format("flow") + r" is not in config/flows/"
                                r"(?: \(did you mean (?P<close>'[^']*')\?\))?: registered elderly callers go straight "
                                r"to the general queue, without a greeting"),
                     "priority.elderly.flow 指定的流程 {flow} 不在 config/flows/ 中{close}：已登记的老年人来电将直接进入普通队列，"
                     "不播放问候语"),
    # the flow checks (ivr/flows, ivr/hot_reload.py): what a supervisor meets checking a draft
    "budget": (re.compile(r"flow " + _Q.format("v") + r": (?:worst case (?P<s>[\d.]+)s|no path reaches a human) to a human "
                          r"exceeds budget (?P<b>[\d.]+)s: (?P<path>.*)"), "流程 {v}：{got}，超出预算 {b} 秒：{path}"),
    "compliance": (re.compile(r"number (?P<n>\S+) \((?P<mode>\w+), flow (?P<flow>[\w-]+)\): (?:worst case (?P<s>[\d.]+)s to a "
                              r"human|no path reaches a human) exceeds (?P<b>[\d.]+)s: (?P<path>.*); shorten it, or say why not "
                              r"in its entry: compliance: \{exempt: \"reason\"\}"),
                   "号码 {n}（{mode}，流程 {flow}）：{got}，超过 {b} 秒：{path}；请缩短，或在该号码条目中写明理由"
                   "（compliance: {{exempt: \"理由\"}}）"),
    "top_level": (re.compile(r"top level must be a mapping"), "顶层应为键值表"),
    "mapping": (re.compile(r"(?:(?P<pid>[^:]+): )?(?P<key>\w+) must be a mapping"), "{pid}{key} 应为键值表"),
    "date": (re.compile(r"(?P<v>'[^']*'|\S+) is not a valid date or value: (?P<rest>.*)"), "{v} 不是有效的日期或取值"),
    "notice": (re.compile(r"number (?P<n>\S+): no transitional notice: add \{old_number: \"[^\"]*\"\} to (?P<p>\S+)\.variants "
                          r"in prompts/catalog\.yaml"),
               "号码 {n}：缺少过渡提示：请在 prompts/catalog.yaml 的 {p}.variants 中为该号码加一条"),
    "duration": (re.compile(_Q.format("v") + r" is not a duration \(write e\.g\. 3s, 1\.5s or 800ms\)"),
                 "{v} 不是时长（应写作 3s、1.5s 或 800ms）"),
    "regex": (re.compile(r"(?:callable is )?not a valid regular expression: (?P<rest>.*)"), "不是有效的正则表达式"),
    "var": (re.compile(r"var needs equals or matches \(and they need var\)"), "var 须与 equals 或 matches 同时设置"),
    "test": (re.compile(r"a condition needs at least one test"), "条件至少需要一项判断"),
    "digits": (re.compile(r"min_digits must not exceed max_digits"), "min_digits 不能大于 max_digits"),
    "goto": (re.compile(r"max_times and otherwise go together"), "max_times 与 otherwise 须同时设置"),
    "one_of": (re.compile(r"give exactly one of subcenter or number"), "subcenter 与 number 须设置且只设置一项"),
    "percent": (re.compile(r"(?P<n>\S+) is not between 0 and 99"), "{n} 不在 0 到 99 之间"),
    "flow_file": (re.compile(r"a flow file must be a mapping with a 'nodes' key"), "流程文件应为含 'nodes' 的键值表"),
    "no_nodes": (re.compile(r"a flow needs a non-empty 'nodes' mapping \(node id → node\)"), "流程需要非空的 'nodes'（节点名 → 节点）"),
    "node_ref": (re.compile(r"(?:(?P<key>start|after_notice) )?" + _Q.format("v") + r" is not a node in this flow" + _CLOSE),
                 "{key}{v} 不是本流程的节点{close}"),
    "node_id": (re.compile(r"node id " + _Q.format("v") + r" must match (?P<pat>.+)"), "节点名 {v} 不符合格式 {pat}"),
    "node_map": (re.compile(r"node " + _Q.format("v") + r" must be a mapping with a 'type'"), "节点 {v} 应为含 'type' 的键值表"),
    "paths": (re.compile(r"too many paths to bound the time to a human; simplify the loops"),
              "路径过多，无法估算到达人工的时间；请简化循环"),
    "no_human": (re.compile(r"\w+ " + _Q.format("v") + r": key (?P<key>\S+) can end without a human "
                            r"\(a hangup is reachable from " + _Q.format("at") + r"\)"),
                 "节点 {v}：按键 {key} 可能到达不了人工（从 {at} 可到挂机）"),
    "human_key": (re.compile(r"menu " + _Q.format("v") + r": key (?P<key>\S+) must lead to a human \(human_key\); it is not mapped"),
                  "菜单 {v}：按键 {key} 必须转人工（human_key），但未设置"),
    "unreachable": (re.compile(r"node " + _Q.format("v") + r" is unreachable from the start " + _Q.format("start")),
                    "节点 {v} 从起始节点 {start} 无法到达"),
    "no_end": (re.compile(r"no path from node " + _Q.format("v") + r" ever ends \(add a queue, transfer or hangup\)"),
               "节点 {v} 之后没有能结束的路径（请加入排队、转接或挂机）"),
    "loop": (re.compile(r"unbounded loop (?P<v>.+): put a menu or a goto with max_times in it"),
             "无限循环 {v}：请在循环中加入菜单，或带 max_times 的跳转"),
    "prompt": (re.compile(r"(?:(?P<pid>[^:]+): )?prompt " + _Q.format("v") + r" is not in the prompt catalog" + _CLOSE),
               "{pid}语音 {v} 不在语音目录中{close}"),
    "undefined": (re.compile(r"(?P<what>queue|out-of-scope matter|sub-center) " + _Q.format("v")
                             + r" is not defined in config/(?P<file>[\w-]+)\.yaml" + _CLOSE),
                  "{what} {v} 未在 config/{file}.yaml 中定义{close}"),
    "one_key_start": (re.compile(r"one-key queue " + _Q.format("v") + r" is the flow's start: only a menu key may lead to it"),
                      "一键转人工队列 {v} 是流程的起始节点：只有菜单按键可以进入它"),
    "flow_name": (re.compile(r"flow name " + _Q.format("v") + r" \(the file name\) must match (?P<pat>.+)"),
                  "流程名 {v}（即文件名）不符合格式 {pat}"),
    "no_flow": (re.compile(r"(?:number (?P<n>\S+): )?flow " + _Q.format("v") + r" (?:does not exist|is not) in config/flows/"
                           + _CLOSE), "{n}流程 {v} 不在 config/flows/ 中{close}"),
    "subflow_loop": (re.compile(r"subflow " + _Q.format("v") + r" leads back to " + _Q.format("w")
                                + r": flows may not call each other in a loop"), "子流程 {v} 又回到 {w}：流程之间不能循环调用"),
    "duplicate": (re.compile(r"duplicate key " + _Q.format("v") + r" \(first defined at line (?P<line>\S+)\)"),
                  "重复的配置项 {v}（第 {line} 行已定义）"),
    "time_range": (re.compile(_Q.format("v") + r" is not a time range like 08:30-17:30"), "{v} 不是时间段（应写作 08:30-17:30）"),
    # a transfer refused (transfer/: what an agent reads on the desk)
    "three_party": (re.compile(r"a three-party call is for the emergency lines \((?P<lines>[\d/]+)\) only"),
                    "三方通话仅用于紧急线路（{lines}）"),
    "not_talking": (re.compile(r"agent (?P<v>\S+) is not talking to a caller"), "座席 {v} 当前没有与市民通话"),
    "hung_up": (re.compile(r"the caller of call (?P<v>\S+) has hung up"), "通话 {v} 的市民已挂机"),
    "no_call": (re.compile(r"no call (?P<v>\S+) is up"), "通话 {v} 不存在或已结束"),
    "target": (re.compile(r"unknown transfer target " + _Q.format("v") + r" \(known: (?P<known>.*)\)"),
               "未知的转接目标 {v}（可选：{known}）"),
    "closed": (re.compile(r"sub-center (?P<v>\S+) \((?P<ext>[^)]*)\) is closed now(?: \(hours: (?P<hours>[^)]*)\))?: "
                          r"not dialed; keep the caller or offer a callback"),
               "分中心 {v}（{ext}）现在不在服务时间{hours}：未拨出；请继续受理或提供回拨"),
    "unreachable_node": (re.compile(r"cannot reach Asterisk(?: of node (?P<node>\S+))?: (?P<rest>.*)"), "无法连接话务节点{node}"),
    "http": (re.compile(r"HTTP (?P<code>\d{3})(?: (?P<rest>.*))?", re.S), "接收方返回 HTTP {code}"),  # a webhook push
    "connect": (re.compile(r"\w+Error: Cannot connect to host (?P<host>\S+)(?P<rest>.*)", re.S), "无法连接 {host}"),
    "no_answer": (re.compile(r"no answer within (?P<s>[\d.]+) s"), "{s} 秒内无应答"),
    "field": (re.compile(r"(?P<name>[\w.\[\]-]+): (?P<msg>Field required|Input should be .*|Value error, .*)"),
              "{name}：{msg}"),
}
MESSAGES = (  # pydantic's messages for a field ("field" above)
    (re.compile(r"Field required"), "缺少此项"),
    (re.compile(r"Input should be a valid integer.*"), "应为整数"),
    (re.compile(r"Input should be a valid number.*"), "应为数字"),
    (re.compile(r"Input should be a valid string"), "应为文字"),
    (re.compile(r"Input should be a valid boolean.*"), "应为 true 或 false"),
    (re.compile(r"Input should be a valid (?:list|array)"), "应为列表"),
    (re.compile(r"Input should be a valid dictionary.*"), "应为键值表"),
    (re.compile(r"Input should be greater than or equal to (?P<n>\S+)"), "应不小于 {n}"),
    (re.compile(r"Input should be greater than (?P<n>\S+)"), "应大于 {n}"),
    (re.compile(r"Input should be less than or equal to (?P<n>\S+)"), "应不大于 {n}"),
    (re.compile(r"Input should be less than (?P<n>\S+)"), "应小于 {n}"),
    (re.compile(r"Input should be (?P<choices>'.*)"), "应为 {choices} 之一"),
    (re.compile(r"Value error, (?P<text>.*)"), "取值无效：{text}"),
)
_LOCATED = re.compile(r"(?P<at>[^\s:]+:\d+:\d+): (?P<reason>.*)", re.S)
_NOTICE = re.compile(r"^notice (\S+) ([\d.]+)s")
_SPAN = re.compile(r"(?:(?P<release>\S+) )?covers (?P<first>\d{4})–(?P<last>\d{4})")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_LETTER = re.compile(r"[A-Za-z]")
_WHAT = {"queue": "队列", "out-of-scope matter": "非受理范围事项", "sub-center": "分中心"}
UNKNOWN = "暂无中文说明"  # the frame of a reason no pattern knows
DETAIL = "技术细节"


@dataclass(frozen=True)
class Said:
    """A problem as the staff read it: ``text`` in Mandarin; ``detail``, the English as written
    when no pattern knows it ('' when translated), for the admin who has to act on it."""

    text: str
    detail: str = ""

    def plain(self) -> str:
        """One line of text (a ``<pre>``, a log excerpt): the detail in brackets after the frame."""
        return f"{self.text}（{DETAIL}：{self.detail}）" if self.detail else self.text


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
    for kind, (pattern, text) in KINDS.items():
        m = pattern.fullmatch(reason)
        if m:
            fields = {k: v or "" for k, v in m.groupdict().items()}
            if fields.get("pid"):
                fields["pid"] += "："
            if fields.get("exp"):
                fields["exp"] = f"（应为 {fields['exp']}）"
            if fields.get("close"):
                fields["close"] = f"（是否应为 {fields['close']}？）"
            if "key" in fields and "v" in fields and not text.startswith("节点"):
                fields["key"] += " 指定的 " if fields["key"] else ""
            if "path" in fields:  # a worst path as the lint writes it (ivr/core/labels.py words it)
                from ivr.core import labels  # (labels imports this module)

                fields["got"] = f"从接听到人工最长 {fields['s']} 秒" if fields["s"] else "没有到达人工的路径"
                fields["path"] = labels.flow_path(_NOTICE.sub(r"过渡提示 \1 \2 秒", fields["path"]))
                fields["mode"] = labels.number_mode(fields.get("mode", ""))
            if kind == "closed":
                fields["hours"] = f"（服务时间：{fields['hours']}）" if fields["hours"] else ""
            if kind == "unreachable_node":
                fields["node"] = f" {fields['node']}" if fields["node"] else ""
            if kind == "no_flow":
                fields["n"] = f"号码 {fields['n']}：" if fields["n"] else ""
            if "what" in fields and "file" in fields:
                fields["what"] = _WHAT.get(fields["what"], fields["what"])
            if "where" in fields:
                fields["where"] = "顶层" if fields["where"] == "top level" else f"{fields['where']} 中"
            if "span" in fields:
                fields["what"] = (f"{fields['year']} 年节假日日历为暂定（仅含法定假日，未含调休）" if fields["year"]
                                  else f"{fields['none']} 年节假日日历无数据（仅按周末计算）")
                fields["span"] = _span(fields["span"])
            if "msg" in fields:
                said = _message(fields["msg"])
                return Said(text.format(**{**fields, "msg": said.text}), said.detail)
            return Said(text.format(**fields), fields.get("rest", "").strip())  # a receiver's or a library's words: a detail
    return Said(reason) if _mandarin(reason) else Said(UNKNOWN, reason)


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
    for pattern, text in MESSAGES:
        m = pattern.fullmatch(msg)
        if m:
            fields = {k: re.sub(r", | or ", "、", v) if k == "choices" else v for k, v in m.groupdict().items()}
            if "text" in fields:  # a validator's own reason, after pydantic's "Value error, "
                said = _reason(fields["text"])
                return Said(text.format(text=said.text), said.detail)
            return Said(text.format(**fields))
    return Said(UNKNOWN, msg)

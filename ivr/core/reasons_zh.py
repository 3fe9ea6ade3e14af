"""Config problems in Mandarin for the console, by kind of error.

``ivr check``, ``ivr reload`` and the logs word a refused file's problems in English
(``flows/main.yaml:3:5: unknown key 'colour'``); the console shows the staff the same problem
in Mandarin, the location unchanged. Each kind of error the loaders write has one pattern and
one Mandarin text with the same fields; a reason no pattern knows is shown as written.
"""

from __future__ import annotations

import re

_Q = r"(?P<{}>'[^']*'|\"[^\"]*\")"  # a quoted value as repr() writes it
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


def reason_zh(reason: str) -> str:
    """One reason in Mandarin (``unknown key 'colour'`` → ``未知的配置项 'colour'``)."""
    for pattern, text in KINDS.values():
        m = pattern.fullmatch(reason)
        if m:
            fields = {k: v or "" for k, v in m.groupdict().items()}
            if fields.get("pid"):
                fields["pid"] += "："
            if fields.get("exp"):
                fields["exp"] = f"（应为 {fields['exp']}）"
            if "where" in fields:
                fields["where"] = "顶层" if fields["where"] == "top level" else f"{fields['where']} 中"
            if "msg" in fields:
                fields["msg"] = _message(fields["msg"])
            return text.format(**fields)
    return reason


def problem_zh(problem: str) -> str:
    """``file:line:col: reason`` with the reason in Mandarin (a problem without a location too)."""
    m = _LOCATED.fullmatch(problem)
    return f"{m['at']}: {reason_zh(m['reason'])}" if m else reason_zh(problem)


def _message(msg: str) -> str:
    for pattern, text in MESSAGES:
        m = pattern.fullmatch(msg)
        if m:
            return text.format(**{k: re.sub(r", | or ", "、", v) if k == "choices" else v for k, v in m.groupdict().items()})
    return msg

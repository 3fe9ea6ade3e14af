"""Values refused before they are written into a generated file (ivr/core/conftext.py, the
Kamailio and Asterisk renderers) and secrets too weak to write (ivr/core/secret_policy.py)."""

from __future__ import annotations

import re

from ivr.core.reasons_zh._shared import Fields, Kinds, gap, kinds, one_of, q

_V = r"(?P<v>'.*'…?|\".*\"…?|\S+)"  # a refused value, as repr() writes it (cut after 40 characters)
_FIELD = {"title": "标题", "value": "取值", "dialplan text": "拨号计划文本", "name": "名称", "path": "路径", "group": "组名",
          "entity id": "entityid"}
_SEMICOLON = " ';'（Asterisk 配置文件将其视为注释）"
_NOT = {  # "'x' is not <what>" → what the value should have been
    "a host name or IP address": "主机名或 IP 地址", "an IP address or network": "IP 地址或网段", "an IP address": "IP 地址",
    "host:port": "主机:端口", "a proxy of the cluster": "本集群的代理",
    "an absolute path of letters, digits and _ . / -": "仅含字母、数字和 _ . / - 的绝对路径",
    "a sip: URI this renderer writes (sip:[user@]host[:port], no ';' parameters)":
        "可写入的 sip: URI（sip:[用户@]主机[:端口]，不带 ';' 参数）",
}
_RULE = {  # "<field> 'x': <rule>" → the rule
    "only letters, digits and _ . * # + @ : / - may name something in Asterisk": "Asterisk 中的名称只能包含字母、数字和 _ . * # + @ : / -",
    "only a-z, 0-9, _ and - (starting with a letter) may name a proxy or node": "代理或节点名只能包含 a-z、0-9、_ 和 -（以字母开头）",
    "only a-z, 0-9, _ and - (starting with a letter or _), at most 32": "只能包含 a-z、0-9、_ 和 -（以字母或 _ 开头），最多 32 个字符",
    "an absolute path of letters, digits and _ . / - only": "应为仅含字母、数字和 _ . / - 的绝对路径",
    "must be 1-100 characters": "应为 1-100 个字符",
    "six hex bytes separated by ':' (as 02:00:5e:10:00:01)": "应为以 ':' 分隔的六个十六进制字节（如 02:00:5e:10:00:01）",
}
_ADVICE = r" \(e\.g\. (?P<cmd>`[^`]+`), or (?P<fresh>\S+)\)"  # how to make a strong secret


def _why(why: str) -> str:
    """What a refused value holds (conftext.breaking and its neighbours)."""
    if m := re.fullmatch(r"control or line-break character (U\+\w+)", why):
        return f"控制字符或换行符 {m[1]}"
    if m := re.fullmatch(r"(.*) \(a comment\)", why):
        return gap(f"{m[1]}（注释符）")
    return re.sub(r"^character (.*)", r"字符 \1", why)


def _advice(f: Fields) -> str:
    return f"（例如 {f['cmd']}，或 {f['fresh']}）"


def _weak(f: Fields) -> str:
    distinct = "不同" if f["only"] else ""
    return f"{f['label']} 强度不足：仅 {f['n']} 个{distinct}字符，至少需要 {f['min']} 个{_advice(f)}"


KINDS: Kinds = kinds(
    ("unsafe", r"(?P<what>title|value|dialplan text) " + _V + r": (?P<why>.+) is not allowed",
     lambda f: f"{_FIELD[f['what']]} {f['v']}：不允许{_why(f['why'])}"),
    ("unsafe_path", r"(?P<at>\S+): (?P<why>.+) is not allowed in a value written into Asterisk's configuration",
     lambda f: f"{f['at']}：写入 Asterisk 配置的取值中不允许{_why(f['why'])}"),
    ("is_not", _V + r" is not (?P<not>" + one_of(_NOT) + ")", lambda f: f"{f['v']} 不是{gap(_NOT[f['not']])}"),
    ("integer", _V + r" is not an integer from (?P<lo>\S+) to (?P<hi>\S+)", "{v} 不是 {lo} 到 {hi} 之间的整数"),
    ("rule", r"(?P<what>title|name|path|group|entity id) " + q("v") + r": (?P<rule>" + one_of(_RULE) + ")",
     lambda f: f"{_FIELD[f['what']]} {f['v']}：{_RULE[f['rule']]}"),
    ("after_sep", q("v") + r": after " + q("sep") + r" comes a (?P<tail>prefix length|port)",
     lambda f: f"{f['v']}：{f['sep']} 之后应为{'前缀长度' if f['tail'] == 'prefix length' else '端口号'}"),
    ("no_dns", q("v") + r": an IP address, not a host name \(no DNS on the call path\)",
     "{v}：应为 IP 地址，不能是主机名（通话路径上不做 DNS 解析）"),
    ("secret_chars", r"(?P<label>\S+): a secret may not contain (?:(?P<space>spaces, line breaks or control characters)"
                     r"|';' \(Asterisk's files read it as a comment\))" + _ADVICE,
     lambda f: f"{f['label']}：密码不能包含"
               f"{'空格、换行符或控制字符' if f['space'] else _SEMICOLON}{_advice(f)}"),
    ("secret_weak", r"(?P<label>\S+) is too weak: (?P<only>only )?(?P<n>\d+) (?:different )?characters, at least (?P<min>\d+) "
                    r"needed" + _ADVICE, _weak),
)

"""Desk and back-office reasons: a refused transfer, a ticket filter or event, a queue setting, the
webhook push, the engines' own protocols (what an agent or an admin reads on a page or in a reply)."""

from __future__ import annotations

from ivr.core.reasons_zh._shared import Fields, Kinds, gap, kinds, one_of, q

_ASTERISK_REFUSED = {"the transfer": "转接", "the call to the supervisor": "督导呼叫"}
_NAMES = {"event id": "事件编号"}
_NEEDS_AGENT = {"a three-party bridge": "三方通话", "an attended transfer": "咨询转接"}
_BAD = {  # what a filter value should have been (tickets/filters.py)
    "the dialed number, digits only (12345, 12366, 3022782)": "所拨号码，仅限数字（12345、12366、3022782）",
    "a whole number of tickets, 1 or more": "工单数，至少为 1",
    "a date (2026-12-01) or a time (2026-12-01T08:30, 2026-12-01T08:30+08:00)":
        "日期（2026-12-01）或时间（2026-12-01T08:30、2026-12-01T08:30+08:00）",
    "<linkedid>:<event>, e.g. 1764552600.17:closed": "<linkedid>:<event>，例如 1764552600.17:closed",
}


def _matches(f: Fields) -> str:
    if f["n"] == "no":
        return f"编号 {f['v']} 没有匹配的条目"
    return f"编号 {f['v']} 匹配 {f['n']} 个条目{'：请输入更完整的编号' if f['more'] else ''}"


def _closed(f: Fields) -> str:
    hours = f"（服务时间：{f['hours']}）" if f["hours"] else ""
    return f"分中心 {f['v']}（{f['ext']}）现在不在服务时间{hours}：未拨出；请继续受理或提供回拨"


KINDS: Kinds = kinds(
    ("three_party", r"a three-party call is for the emergency lines \((?P<lines>[\d/]+)\) only", "三方通话仅用于紧急线路（{lines}）"),
    ("no_agent", r"call (?P<v>\S+) is not talking to an agent: (?P<what>a three-party bridge|an attended transfer) "
                 r"needs one", lambda f: f"通话 {f['v']} 没有座席接听：{_NEEDS_AGENT[f['what']]}需要一名座席"),
    ("attended_three_party", r"a transfer is either attended or three-party, not both", "咨询转接与三方通话不能同时选择"),
    ("not_talking", r"agent (?P<v>\S+) is not talking to a caller", "座席 {v} 当前没有与市民通话"),
    ("hung_up", r"the caller of call (?P<v>\S+) has hung up", "通话 {v} 的市民已挂机"),
    ("no_call", r"no call (?P<v>\S+) is up", "通话 {v} 不存在或已结束"),
    ("no_ticket", r"no ticket (?P<v>\S+) \(give a ticket number, a linkedid or an agent\)",
     "工单 {v} 不存在（请输入工单号、linkedid 或座席工号）"),
    ("look_up", r"(?s)cannot look ticket (?P<v>\S+) up: (?P<rest>.*)", "无法查询工单 {v}"),
    ("seat_where", r"(?s)cannot read where seat (?P<v>\S+) talks: (?P<rest>.*)", "无法查询座席 {v} 所在的节点"),
    ("no_node", r"(?P<call>call )?(?P<v>\S+) is (?:on )?no node of this cluster",
     lambda f: f"{'通话 ' + f['v'] + ' 不在本集群的任何节点上' if f['call'] else f['v'] + ' 不是本集群的节点'}"),
    ("target", r"unknown transfer target " + q("v") + r" \(known: (?P<known>.*)\)", "未知的转接目标 {v}（可选：{known}）"),
    ("closed", r"sub-center (?P<v>\S+) \((?P<ext>[^)]*)\) is closed now(?: \(hours: (?P<hours>[^)]*)\))?: "
               r"not dialed; keep the caller or offer a callback", _closed),
    ("unreachable_node", r"(?s)cannot reach Asterisk(?: of node (?P<node>\S+))?: (?P<rest>.*)",
     lambda f: f"无法连接话务节点{' ' + f['node'] if f['node'] else ''}"),
    ("ami_refused", r"(?s)Asterisk refused (?P<act>the transfer|the call to the supervisor): (?P<rest>.*)",
     lambda f: f"Asterisk 拒绝了{_ASTERISK_REFUSED[f['act']]}"),
    ("ami_silent", r"Asterisk did not answer", "Asterisk 无应答"),
    ("http", r"(?s)HTTP (?P<code>\d{3})(?: (?P<rest>.*))?", "接收方返回 HTTP {code}"),  # a webhook push
    ("connect", r"(?s)\w+Error: Cannot connect to host (?P<host>\S+)(?P<rest>.*)", "无法连接 {host}"),
    ("no_answer", r"no answer within (?P<s>[\d.]+) s", "{s} 秒内无应答"),
    ("endpoint", r"no webhook endpoint " + q("v") + r" \(tickets\.webhooks: (?P<known>.*)\)",
     "没有推送接口 {v}（tickets.webhooks：{known}）"),
    ("push_redis", r"the push worker needs a Redis client with decode_responses=True",
     "推送进程需要 decode_responses=True 的 Redis 客户端"),
    ("caller_index", r"this ticket store has no caller_key: it cannot index or find tickets by caller",
     "工单存储未设置 caller_key：无法按来电号码索引或查找工单"),
    ("unmasked", r"an unmasked read needs a reason \(who is called back, which case\)", "查看完整号码须填写理由（回拨谁、哪个案件）"),
    ("unknown_of", r"unknown (?P<what>period|disposition|request type) " + q("v") + r" \(one of (?P<known>.*)\)",
     "未知的{what} {v}（可选：{known}）"),
    ("bad", r"bad (?P<name>.+?) " + q("v") + r": expected (?P<kind>" + one_of(_BAD) + ")",
     lambda f: f"{_NAMES.get(f['name'], f['name'])} {f['v']} 无效：应为{gap(_BAD[f['kind']])}"),
    ("until", r"(?P<opt>\S*?)until (?P<u>.+) is not after (?P<opt2>\S*?)since (?P<s>.+)", "{opt}until {u} 不晚于 {opt2}since {s}"),
    ("needs", r"(?P<event>\w+) needs (?P<names>[\w, ]+)", "{event} 需要 {names}"),
    ("takes_no", r"(?P<event>\w+) takes no (?P<names>[\w, ]+)", "{event} 不接受 {names}"),
    ("matches", r"id " + q("v") + r" matches (?P<n>\S+) entries(?P<more>: give more of it)?", _matches),
    ("phone", q("v") + r" is not a phone number \((?P<lo>[^-\s]+)-(?P<hi>\S+) digits, optionally \+86\)",
     "{v} 不是电话号码（应为 {lo}-{hi} 位数字，可带 +86）"),
    ("penalty", r"skill (?P<s>\S+): penalty (?P<p>\S+) must be 0-100", "技能 {s}：penalty {p} 应在 0-100 之间"),
    ("own_priority", r"(?P<v>.+) has no configured priority: it is the route's own", "{v} 没有单独配置的优先级：即该路由自身的优先级"),
    ("empty_window", q("v") + r" is an empty window", "{v} 是空时段"),
    ("line_digits", r"line " + q("v") + r" must be 3-16 digits", "线路 {v} 应为 3-16 位数字"),
    ("row", r"row of another shape", "统计行的格式不符"),
    ("agi_route", r"FastAGI route " + q("v") + r" is already taken", "FastAGI 路由 {v} 已被占用"),
    ("binrpc_int", r"BINRPC int (?P<v>\S+) does not fit 32 bits", "BINRPC 整数 {v} 超出 32 位"),
    ("binrpc_nul", r"a BINRPC string cannot hold NUL", "BINRPC 字符串不能包含 NUL 字符"),
    ("publish", r"refused: device " + q("d") + r", state " + q("s") + r", eid " + q("e") + r", resource " + q("r"),
     "已拒绝：设备 {d}，状态 {s}，eid {e}，资源 {r}"),
)

"""Names that point nowhere and settings that contradict each other (``Settings.reference_problems``
and each feature's own), and what ``ivr check`` reports besides: webhook and department keys, the
log rotation. What an admin meets publishing config/."""

from __future__ import annotations

from ivr.core.reasons_zh._shared import Fields, Kinds, gap, kinds, one_of, q

_NAMED = {"name": "名称", "item name": "评分项名", "session id": "场次编号", "node id": "节点名"}
_TAKEN = {"a proxy": "代理", "a trunk or an agent": "中继或座席", "an agent or a trunk": "座席或中继"}
_NOT_DEFINED = {"a defined queue": "已定义的队列", "a defined sub-center": "已定义的分中心", "a number of the plan": "号码计划中的号码",
                "a queue in queues.yaml": "queues.yaml 中的队列"}
_SINGLE = ("one proxy would be a single point of failure in front of every node: name two or more (the carrier's primary and "
           "secondary destinations), or none (the carrier reaches the nodes directly)")
FIXED = {  # a reason with no value in it → its Mandarin
    "a cluster needs at least one Asterisk node": "集群至少需要一个 Asterisk 节点",
    _SINGLE: "只有一个代理会成为所有节点前的单点故障：请配置两个或以上（运营商的主、备目的地址），或不配置（运营商直接连接各节点）",
    "calls out go through the proxies: without proxies each node dials sip.pstn_contact itself (remove cluster.carrier)":
        "外呼经由代理：没有代理时各节点自行拨打 sip.pstn_contact（请删除 cluster.carrier）",
    "a callback needs sip.pstn_contact (how calls to citizens go out) or, behind proxies, cluster.carrier":
        "回拨需要 sip.pstn_contact（呼叫市民的出局方式），有代理时需要 cluster.carrier",
    "a queue named 'general' is required: the 7×24 queue every failure falls back to":
        "必须有名为 'general' 的队列：各种故障时兜底的 7×24 队列",
    "a sub-center number needs subcenter: (its gateway in subcenters.yaml)": "分中心号码须设置 subcenter:（其在 subcenters.yaml 中的网关）",
    "expert seats need a skill: (the expert queue) or a flow": "专家座席须设置 skill:（专家队列）或 flow",
    "only a merged number has a transitional notice": "只有合并号码才有过渡提示",
    "sip.rtp_start must be below sip.rtp_end": "sip.rtp_start 应小于 sip.rtp_end",
    "the general queue is 7×24: it has no hours": "general 队列为 7×24：不设服务时间",
    "an empty rule: give mode or notice": "空规则：请设置 mode 或 notice",
}


def _sessions(f: Fields) -> str:
    return f"场次 {f['v']} 与场次 {f['w']}（{f['span']}）时间重叠：一个领导队列同一时间只服务一场"


KINDS: Kinds = kinds(
    ("fixed", "(?P<text>" + one_of(FIXED) + ")", lambda f: FIXED[f["text"]]),
    ("must_match", r"(?P<named>" + one_of(_NAMED) + r") " + q("v") + r" must match (?P<pat>.+)",
     lambda f: f"{_NAMED[f['named']]} {f['v']} 不符合格式 {f['pat']}"),
    ("taken", q("v") + r" already names (?P<taken>" + one_of(_TAKEN) + ")", lambda f: f"{f['v']} 已是{_TAKEN[f['taken']]}的名称"),
    ("not_defined", r"(?:(?P<ref>overflow|skill) )?" + q("v") + r" is not (?P<kind>" + one_of(_NOT_DEFINED) + ")",
     lambda f: f"{f['ref'] + ' ' if f['ref'] else ''}{f['v']} 不是{gap(_NOT_DEFINED[f['kind']])}"),
    ("served", r"skill " + q("v") + r" is served by no queue", "技能 {v} 没有队列提供服务"),
    ("no_callback", q("v") + r" is not a queue with a callback: \(the calls back of a lost node wait there for a seat\)",
     "{v} 不是设有 callback: 的队列（故障节点的回拨在该队列等待座席）"),
    ("emergency", q("v") + r" is the emergency trunk's name, not a sub-center's", "{v} 是紧急中继的名称，不能用作分中心名"),
    ("agent_key", r"agent_key (?P<v>\S+) is taken by matter " + q("m"), "agent_key {v} 已被事项 {m} 使用"),
    ("number_digits", r"number " + q("v") + r" must be 3-16 digits", "号码 {v} 应为 3-16 位数字"),
    ("overflow_cycle", r"queue overflows form a cycle: (?P<v>.+)", "队列溢出形成循环：{v}"),
    ("carrier_dns", q("v") + r": the proxies check the carrier by address: an IP address or network here, not a host name "
                    r"\(no DNS on the call path\)",
     "{v}：代理按地址核对运营商：此处应为 IP 地址或网段，不能是主机名（通话路径上不做 DNS 解析）"),
    ("twice", q("v") + r" is named twice", "{v} 重复出现"),
    ("pstn_match", q("v") + r" is not in sip\.pstn_match: the proxies would refuse its requests inside a call out \(its BYE\)",
     "{v} 不在 sip.pstn_match 中：代理会拒绝它在外呼中的请求（如 BYE）"),
    ("wildcard", q("v") + r": name the gateway's address, not a wildcard", "{v}：请写网关的地址，不能用通配符"),
    ("rubric_total", q("v") + r" is above the rubric's total \((?P<total>[^)]*)\): no call could pass",
     "{v} 高于评分表总分（{total}）：没有通话能及格"),
    ("leader_queue", r"leader sessions need a queue named " + q("v") + r" \(config/queues\.yaml\)",
     "领导接听场次需要名为 {v} 的队列（config/queues.yaml）"),
    ("leader_seat", r"seat " + q("v") + r" is not a leader seat \(an agent with the " + q("skill") + r" skill in config/queues\.yaml\)",
     "座席 {v} 不是领导座席（config/queues.yaml 中具有 {skill} 技能的座席）"),
    ("overlap", r"session " + q("v") + r" overlaps session " + q("w") + r" \((?P<span>[^)]*)\): one leader queue serves one at a time",
     _sessions),
    ("request_type", q("v") + r" is not a request type \((?P<known>.*)\)", "{v} 不是诉求类型（可选：{known}）"),
    ("retention", r"longer than tickets\.retention_days \((?P<n>[^)]*)\): a recording must go before \(or with\) the ticket "
                  r"that says it existed", "超过 tickets.retention_days（{n}）：录音须早于（或同时于）记录它的工单删除"),
    ("dash", r"agents " + q("v") + r" and " + q("w") + r" differ only by '-', which Asterisk ignores in extensions: their "
             r"supervision extensions would be one", "座席 {v} 与 {w} 仅相差 '-'，而 Asterisk 分机号忽略 '-'：两者的督导分机将相同"),
    ("own_phone_twice", r"console user " + q("v") + r" already has phone " + q("w") + r": one own phone per user",
     "控制台用户 {v} 已有专用电话 {w}：每个用户只能有一部"),
    ("webhook_key", r"webhook " + q("v") + r" has no signing key: set (?P<var>\S+)", "推送接口 {v} 未设置签名密钥：请设置 {var}"),
    ("webhook_events", r"webhook " + q("v") + r": unknown event\(s\) (?P<bad>.+) \(ticket events: (?P<known>.*)\)",
     "推送接口 {v}：未知的事件 {bad}（工单事件：{known}）"),
    ("webhook_timeout", r"webhook " + q("v") + r": timeout (?P<t>\S+) s must be below the claim idle time (?P<idle>\S+) s",
     "推送接口 {v}：timeout {t} 秒应小于认领空闲时间 {idle} 秒"),
    ("webhook", r"webhook " + q("v") + r": (?P<inner>.+)", "推送接口 {v}：{inner}"),
    ("department_key", r"department " + q("v") + r" \((?P<title>[^)]*)\) cannot sign write-backs: (?P<inner>.+)",
     "部门 {v}（{title}）无法签名回写：{inner}"),
    ("in_config", r"(?s)config: (?P<inner>.+)", "config：{inner}"),  # a problem whose file is not known
    ("os_error", r"(?s)(?P<file>/\S+): (?P<rest>\[Errno \d+\] .*)", "{file}：文件操作失败"),  # the system's words a detail
    ("key_unread", r"(?s)cannot read (?P<file>\S+): (?P<rest>.*)", "无法读取 {file}"),
    ("held_open", r"(?P<file>\S+) is held open by Asterisk: rotating it needs the reopen hook \(AMI LoggerRotate\)",
     "{file} 被 Asterisk 占用：轮转它需要重新打开的钩子（AMI LoggerRotate）"),
    ("not_reopened", r"Asterisk did not reopen (?P<file>\S+): its lines keep landing in the rotated file \(AMI LoggerRotate, "
                     r"logger\.conf rotatestrategy = none\)",
     "Asterisk 未重新打开 {file}：日志仍写入已轮转的文件（AMI LoggerRotate，logger.conf 中 rotatestrategy = none）"),
    ("lax_mode", r"(?P<file>\S+) has mode (?P<mode>\d+), laxer than its rotated files \((?P<old>\d+)\): Asterisk created it with "
                 r"its umask \(set UMask=0027 for asterisk\)",
     "{file} 的权限为 {mode}，比已轮转的文件（{old}）宽松：Asterisk 按其 umask 创建了它（请为 asterisk 设置 UMask=0027）"),
)

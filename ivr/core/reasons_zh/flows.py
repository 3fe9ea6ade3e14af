"""The flow checks (ivr/flows, ivr/hot_reload.py): what a supervisor meets checking a draft."""

from __future__ import annotations

from ivr.core.reasons_zh._shared import CLOSE, PID, Fields, Kinds, kinds, q

_GOT = r"(?:worst case (?P<s>[\d.]+)s(?: to a human)?|no path reaches a human)"  # the lint's worst case (ivr/flows/lint.py)


def _elderly(f: Fields) -> str:
    return f"老年人流程（{f['flow']}）不能包含 {f['v']} 节点：已登记的老年人来电跳过所有菜单（允许：{f['allowed']}）"


KINDS: Kinds = kinds(
    ("elderly_flow", r"priority\.elderly\.flow " + q("flow") + r" is not in config/flows/" + CLOSE
                     + r": registered elderly callers go straight to the general queue, without a greeting",
     "priority.elderly.flow 指定的流程 {flow} 不在 config/flows/ 中{close}：已登记的老年人来电将直接进入普通队列，不播放问候语"),
    ("elderly_node", r"the elderly flow \((?P<flow>[^)]+)\) may not hold a " + q("v") + r" node: registered elderly "
                     r"callers skip every menu \(allowed: (?P<allowed>.*)\)", _elderly),
    ("budget", r"flow " + q("v") + r": " + _GOT + r" to a human exceeds budget (?P<b>[\d.]+)s: (?P<path>.*)",
     "流程 {v}：{got}，超出预算 {b} 秒：{path}"),
    ("compliance", r"number (?P<n>\S+) \((?P<mode>\w+), flow (?P<flow>[\w-]+)\): " + _GOT + r" exceeds (?P<b>[\d.]+)s: "
                   r"(?P<path>.*); shorten it, or say why not in its entry: compliance: \{exempt: \"reason\"\}",
     "号码 {n}（{mode}，流程 {flow}）：{got}，超过 {b} 秒：{path}；请缩短，或在该号码条目中写明理由"
     "（compliance: {{exempt: \"理由\"}}）"),
    ("notice", r"number (?P<n>\S+): no transitional notice: add \{old_number: \"[^\"]*\"\} to (?P<p>\S+)\.variants "
               r"in prompts/catalog\.yaml", "号码 {n}：缺少过渡提示：请在 prompts/catalog.yaml 的 {p}.variants 中为该号码加一条"),
    ("var", r"var needs equals or matches \(and they need var\)", "var 须与 equals 或 matches 同时设置"),
    ("test", r"a condition needs at least one test", "条件至少需要一项判断"),
    ("digits", r"min_digits must not exceed max_digits", "min_digits 不能大于 max_digits"),
    ("goto", r"max_times and otherwise go together", "max_times 与 otherwise 须同时设置"),
    ("one_of", r"give exactly one of subcenter or number", "subcenter 与 number 须设置且只设置一项"),
    ("flow_file", r"a flow file must be a mapping with a 'nodes' key", "流程文件应为含 'nodes' 的键值表"),
    ("no_nodes", r"a flow needs a non-empty 'nodes' mapping \(node id → node\)", "流程需要非空的 'nodes'（节点名 → 节点）"),
    ("node_ref", r"(?:(?P<ref>start|after_notice) )?" + q("v") + r" is not a node in this flow" + CLOSE,
     lambda f: f"{f['ref'] + ' 指定的 ' if f['ref'] else ''}{f['v']} 不是本流程的节点{f['close']}"),
    ("node_id", r"node id " + q("v") + r" must match (?P<pat>.+)", "节点名 {v} 不符合格式 {pat}"),
    ("node_map", r"node " + q("v") + r" must be a mapping with a 'type'", "节点 {v} 应为含 'type' 的键值表"),
    ("paths", r"too many paths to bound the time to a human; simplify the loops", "路径过多，无法估算到达人工的时间；请简化循环"),
    ("no_human", r"\w+ " + q("v") + r": key (?P<key>\S+) can end without a human \(a hangup is reachable from " + q("at") + r"\)",
     "节点 {v}：按键 {key} 可能到达不了人工（从 {at} 可到挂机）"),
    ("human_key", r"menu " + q("v") + r": key (?P<key>\S+) must lead to a human \(human_key\); it is not mapped",
     "菜单 {v}：按键 {key} 必须转人工（human_key），但未设置"),
    ("unreachable", r"node " + q("v") + r" is unreachable from the start " + q("start"), "节点 {v} 从起始节点 {start} 无法到达"),
    ("no_end", r"no path from node " + q("v") + r" ever ends \(add a queue, transfer or hangup\)",
     "节点 {v} 之后没有能结束的路径（请加入排队、转接或挂机）"),
    ("loop", r"unbounded loop (?P<v>.+): put a menu or a goto with max_times in it",
     "无限循环 {v}：请在循环中加入菜单，或带 max_times 的跳转"),
    ("prompt", PID + r"prompt " + q("v") + r" is not in the prompt catalog" + CLOSE, "{pid}语音 {v} 不在语音目录中{close}"),
    ("undefined", r"(?P<what>queue|out-of-scope matter|sub-center) " + q("v") + r" is not defined in config/(?P<file>[\w-]+)\.yaml"
                  + CLOSE, "{what} {v} 未在 config/{file}.yaml 中定义{close}"),
    ("one_key_start", r"one-key queue " + q("v") + r" is the flow's start: only a menu key may lead to it",
     "一键转人工队列 {v} 是流程的起始节点：只有菜单按键可以进入它"),
    ("one_key_edge", r"(?P<edge>.+) leads to one-key queue " + q("v") + r": only a menu key may \(a caller who pressed nothing "
                     r"did not choose 一键转人工\)",
     "{edge} 通向一键转人工队列 {v}：只有菜单按键可以进入（未按键的市民并未选择一键转人工）"),
    ("flow_name", r"flow name " + q("v") + r" \(the file name\) must match (?P<pat>.+)", "流程名 {v}（即文件名）不符合格式 {pat}"),
    ("no_flow", r"(?:number (?P<n>\S+): )?flow " + q("v") + r" (?:does not exist|is not) in config/flows/" + CLOSE,
     lambda f: f"{'号码 ' + f['n'] + '：' if f['n'] else ''}流程 {f['v']} 不在 config/flows/ 中{f['close']}"),
    ("subflow_loop", r"subflow " + q("v") + r" leads back to " + q("w") + r": flows may not call each other in a loop",
     "子流程 {v} 又回到 {w}：流程之间不能循环调用"),
)

"""The console's Mandarin for what the platform stores in English: a ticket's timeline as the
tracker wrote it (also before the translation existed), deadline rules, audit commands, the
simulator's two vocabularies and the check report without server paths."""

from __future__ import annotations

import re
from pathlib import Path
from string import Formatter

from ivr.check_report import CheckReport, FlowTiming
from ivr.core import labels
from ivr.core.reasons_zh import problem_zh
from ivr.flows.sim_words import EN, ZH
from tickets.model import Ticket
from tickets.timeline import call_steps

TITLES = {"general": "7×24综合座席"}


def stored_call() -> Ticket:
    """A call's timeline exactly as tracking/visits.py and tracking/tracker.py write it."""
    t = Ticket(linkedid="x.1", line="12345", caller="13900000001", received="2026-12-01T10:00:00+08:00")
    t.ivr.flow, t.ivr.nodes, t.ivr.route = "main", ["greeting", "menu"], "queue"
    for event, detail in (("received", "12345"), ("queue joined", "general position 1"), ("agent rung", "agent1003"),
                          ("agent connected", "agent1003 after 0.2 s"), ("agent completed", "agent1003 talk 2 s (caller)"),
                          ("satisfaction", "no rating"), ("closed", "answered"), ("callback answered", "attempt 2 agent1001")):
        t.note("2026-12-01T10:00:01+08:00", event, detail)
    return t


def test_a_stored_timeline_reads_in_mandarin_with_the_wallboards_queue_names() -> None:
    steps = call_steps(stored_call(), lambda name: TITLES.get(name, name))
    details = [s.detail for s in steps]
    assert details[1] == "流程 main：greeting → menu；去向 转人工排队"
    assert details[2:] == ["7×24综合座席，排第 1 位", "agent1003", "agent1003，等待 0.2 秒后接通",
                           "agent1003，通话 2 秒（市民挂机）", "未评价", "已接听", "第 2 次 agent1001"]
    assert [s.event for s in steps][-1] == "回拨接通"


def test_a_detail_no_pattern_knows_is_shown_as_written() -> None:
    t = Ticket(linkedid="x.2", line="12345", caller="139", received="2026-12-01T10:00:00+08:00")
    t.note("2026-12-01T10:00:01+08:00", "queue joined", "something new")
    assert call_steps(t)[0].detail == "something new"


def test_deadline_rules_audit_commands_and_number_modes() -> None:
    assert labels.deadline_rule("3 working days") == "3 个工作日"
    assert labels.deadline_rule("24 h (crisis)") == "24 小时（应急）"
    assert labels.audit_command("console tickets show") == "控制台查看完整号码（单张工单）"
    assert labels.audit_command("something else") == "something else"
    assert labels.audit_reason("refused: 座席只能查看自己接听的工单。") == "已拒绝：座席只能查看自己接听的工单。"
    assert labels.audit_reason("refused: wrong name or password") == "已拒绝：用户名或密码错误"
    assert [labels.number_mode(m) for m in ("merged", "dual", "subcenter")] == ["合并", "双号并行", "分中心"]
    assert labels.flow_path("menu[key * (back)] 7.355s → q[queue] 0s") == "menu[按键 *（返回）] 7.355 秒 → q[转人工排队] 0 秒"


def test_the_simulators_two_vocabularies_say_the_same_things() -> None:
    def fields(text: str) -> set[str]:
        return {f for _, f, _, _ in Formatter().parse(text) if f}

    assert EN.keys() == ZH.keys()
    differ = {k for k in EN if fields(EN[k]) != fields(ZH[k]) and k != "play"}  # ZH names a prompt by its words
    assert not differ
    assert all(not re.search(r"[A-Za-z]{2,}", re.sub(r"\{[^}]*\}", "", text)) for text in ZH.values())


def test_the_check_report_in_mandarin_names_files_under_config_only() -> None:
    root = Path("/srv/ivr/config")
    report = CheckReport(problems=[f"{root}/flows/main.yaml:3:5: unknown key 'colour'"],
                         timings=[FlowTiming("main", f"{root}/flows/main.yaml", 12.5, 15.0, "menu[key 1] 12.5s")])
    zh = report.lines_zh(root)
    assert zh == ["flows/main.yaml：流程 main 从接听到人工最长 12.5 秒（预算 15 秒）", "    menu[按键 1] 12.5 秒",
                  "flows/main.yaml:3:5: 未知的配置项 'colour'", "共 1 个问题，配置被拒绝"]
    assert report.lines()[-1] == "1 problem; config refused" and str(root) in report.lines()[0]


def test_config_problems_read_in_mandarin_by_kind_with_their_location() -> None:
    assert problem_zh("flows/main.yaml:3:5: unknown key 'colour'") == "flows/main.yaml:3:5: 未知的配置项 'colour'"
    assert problem_zh("flows/main.yaml:1:1: missing key 'nodes' in top level") == "flows/main.yaml:1:1: 顶层缺少配置项 'nodes'"
    assert problem_zh("flows/main.yaml:9:3: nodes.menu.timeout: Input should be greater than or equal to 1") \
        == "flows/main.yaml:9:3: nodes.menu.timeout：应不小于 1"
    assert problem_zh("a.yaml:2:5: anchor &l0 is not allowed: write the value out (aliases and anchors are refused)") \
        == "a.yaml:2:5: 不允许使用 YAML 锚点或别名 &l0：请直接写出取值"
    assert problem_zh("a.yaml:2:5: nodes.x.type: Input should be 'menu', 'play' or 'queue'") \
        == "a.yaml:2:5: nodes.x.type：应为 'menu'、'play'、'queue' 之一"
    assert problem_zh("IVR_AMI_STATUS_SECRET is not set") == "环境变量 IVR_AMI_STATUS_SECRET 未设置"  # engine texts too
    assert problem_zh("a.yaml:2:5: something new") == "a.yaml:2:5: 暂无中文说明（技术细节：something new）"  # a frame

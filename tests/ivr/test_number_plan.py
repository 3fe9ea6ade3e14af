"""Number plans as data: the two shipped profiles load, one setting switches them, and a broken
plan is refused with the file, line and reason."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from ivr.asterisk_conf import RenderOptions, render
from ivr.config import ConfigError, load_config
from ivr.core.secret_policy import fresh_secret

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "config", tmp_path / "config")
    return tmp_path / "config"


def modes(plan: str) -> Counter[str]:
    settings = load_config(REPO / "config", environ={"IVR_PLAN": plan}).settings
    return Counter(n.mode for n in settings.numbers.values())


def test_the_anhui_plan_has_all_32_numbers_of_its_annex_and_is_the_default() -> None:
    settings = load_config(REPO / "config", environ={}).settings
    assert settings.plan == "anhui-2021"
    assert modes("anhui-2021") == {"main": 2, "merged": 13, "dual": 14, "subcenter": 5}  # + 12345 and the 8000 demo
    experts = {n: e.skill for n, e in settings.numbers.items() if e.expert}
    assert experts == {"12348": "expert-legal", "12333": "expert-hrss", "12329": "expert-fund",
                       "12316": "expert-agri", "12320": "expert-health"}
    assert settings.numbers["12366"].subcenter == "tax" and settings.numbers["12365"].department == "省市场监管局"


def test_one_setting_switches_to_the_xuancheng_profile() -> None:
    xuancheng = load_config(REPO / "config", environ={"IVR_PLAN": "xuancheng-2016"}).settings
    assert xuancheng.plan == "xuancheng-2016"
    assert xuancheng.numbers["3022782"].mode == "merged" and "3022782" not in load_config(REPO / "config", environ={}).settings.numbers
    assert sum(1 for n in xuancheng.numbers if re.fullmatch(r"\d{7}", n)) == 31


def test_the_dialplan_answers_exactly_the_numbers_of_the_plan() -> None:
    settings = load_config(REPO / "config", environ={}).settings
    secrets = {name: fresh_secret() for name in settings.agents}
    numbers = render(settings, RenderOptions(ami_secret=fresh_secret(), agent_secrets=secrets))["extensions_numbers.conf"]
    answered = re.findall(r"^exten => (\d+),1,Goto\(ivr-answer,\$\{EXTEN\},1\)", numbers, re.M)
    assert sorted(answered) == sorted(settings.numbers) and len(answered) == 34


def test_an_unknown_plan_is_refused_where_numbers_yaml_names_it(cfg: Path) -> None:
    (cfg / "numbers.yaml").write_text((cfg / "numbers.yaml").read_text().replace("plan: anhui-2021", "plan: anhui-2012"))
    with pytest.raises(ConfigError, match=r"numbers.yaml:\d+:7: number plan 'anhui-2012' not found .*anhui-2021, xuancheng-2016"):
        load_config(cfg, environ={})


@pytest.mark.parametrize("old, new, reason", [
    ('"12396": {mode: merged,', '"12396": {mode: mergd,', r"mode: Input should be 'main', 'merged', 'dual' or 'subcenter'"),
    ("subcenter: tax}", "subcenter: taxes}", r"'taxes' is not a defined sub-center"),
    ("skill: expert-legal}", "skill: expert-law}", r"skill 'expert-law' is not a queue in queues.yaml"),
    ("announce_until: 2027-06-30}", "announce_until: 2027-06-31}", r"'2027-06-31' is not a valid date or value: day is out of range"),
    ("announce_until: 2027-06-30}", "announce_until: next year}", r"announce_until: Input should be a valid date"),
])
def test_a_broken_plan_entry_is_refused_with_the_plan_files_line(cfg: Path, old: str, new: str, reason: str) -> None:
    plan = cfg / "plans" / "anhui-2021.yaml"
    text = plan.read_text(encoding="utf-8")
    line = text[: text.index(old)].count("\n") + 1
    plan.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"plans/anhui-2021.yaml:{line}:\d+: .*{reason}"):
        load_config(cfg, environ={})


def test_a_transitional_notice_on_a_number_that_is_not_merged_is_refused(cfg: Path) -> None:
    plan = cfg / "plans" / "anhui-2021.yaml"
    text = plan.read_text(encoding="utf-8")
    old = 'department: 省生态环境厅'
    line = text[: text.index(old)].count("\n") + 1
    plan.write_text(text.replace(old, old + ", announce_until: 2027-01-01", 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"plans/anhui-2021.yaml:{line}:\d+: only a merged number has a transitional notice"):
        load_config(cfg, environ={})

"""The rubric (config/quality.yaml) and the scoring rules: a broken rubric is refused with its file,
line and reason (at start and on reload, where the running rubric stays live); a form is taken only
whole, each item a whole number within its points, nothing the rubric does not have."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.config import ConfigError, load_config
from ivr.hot_reload import LiveFlows, catalog_loader, default_prompts_dir
from quality.model import COMMENT_MAX, QualityError, QualityItem, QualitySettings, check_scores, rubric_version
from testbed.console import private_config

REPO = Path(__file__).resolve().parents[2]
RUBRIC = QualitySettings(items={"greeting": QualityItem(label="开场问候", points=10),
                                "accuracy": QualityItem(label="答复准确", points=40)}, pass_mark=40)


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return private_config(REPO / "config", tmp_path)


def test_the_shipped_rubric_is_the_issue_s_five_items_totalling_100() -> None:
    rubric = load_config(REPO / "config", environ={}).settings.quality
    assert [(i.label, i.points) for i in rubric.items.values()] == [
        ("开场问候", 10), ("倾听与安抚", 20), ("答复准确", 40), ("服务态度", 20), ("工单类型正确", 10)]
    assert rubric.total == 100 and rubric.pass_mark == 80 and rubric.sample_per_agent_per_day == 2


@pytest.mark.parametrize("text, where, reason", [
    ("quality:\n  items:\n    greeting: {label: 开场问候, points: 200}\n", "quality.yaml:3:37",
     "quality.items.greeting.points: Input should be less than or equal to 100"),
    ("quality:\n  items:\n    greeting: {label: 开场问候, points: 10, extra: 1}\n", "quality.yaml:3:41", "unknown key 'extra'"),
    ("quality:\n  items:\n    Greeting!: {label: 开场问候, points: 10}\n", "quality.yaml:3:16", "item name 'Greeting!' must match"),
    ("quality:\n  items:\n    greeting: {label: 开场问候, points: 10}\n  pass_mark: 11\n", "quality.yaml:4:14",
     "11 is above the rubric's total (10): no call could pass"),
    ("quality:\n  items:\n    greeting: {label: \"开场\\n问候\", points: 10}\n", "quality.yaml:3:23",
     "line-break character U+000A is not allowed"),
    ("quality:\n  sample_per_agent_per_day: -1\n", "quality.yaml:2:29", "greater than or equal to 0"),
])
def test_a_broken_rubric_is_refused_with_file_line_and_reason(cfg: Path, text: str, where: str, reason: str) -> None:
    (cfg / "quality.yaml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(cfg, environ={})
    assert f"{cfg / where}" in str(err.value) and reason in str(err.value), str(err.value)


def test_a_broken_rubric_on_reload_leaves_the_running_one_live(cfg: Path) -> None:
    live = LiveFlows.from_config(cfg, catalog_loader(default_prompts_dir(cfg)), environ={})
    before = live.current
    (cfg / "quality.yaml").write_text("quality:\n  items:\n    greeting: {label: 开场问候, points: 0}\n")
    result = live.reload()
    assert not result.ok and live.current is before
    assert any(f"{cfg / 'quality.yaml'}:3:37" in e and "greater than or equal to 1" in e for e in result.errors), result.errors
    assert live.current.settings.quality.total == 100


def test_a_whole_form_is_scored_in_the_rubric_s_order() -> None:
    scored = check_scores(RUBRIC, {"accuracy": "35", "greeting": " 8 "}, "  语气平和，答复准确。 ")
    assert scored.scores == {"greeting": 8, "accuracy": 35} and list(scored.scores) == ["greeting", "accuracy"]
    assert scored.total == 43 and scored.comment == "语气平和，答复准确。"
    assert check_scores(RUBRIC, {"greeting": "0", "accuracy": "40"}, "").total == 40


@pytest.mark.parametrize("form, comment, message", [
    ({"greeting": "11", "accuracy": "40"}, "", "开场问候：11 分超过满分 10"),
    ({"greeting": "-1", "accuracy": "40"}, "", "开场问候：分数须为 0 到 10 的整数"),
    ({"greeting": "7.5", "accuracy": "40"}, "", "开场问候：分数须为 0 到 10 的整数"),
    ({"greeting": "1e1", "accuracy": "40"}, "", "开场问候：分数须为 0 到 10 的整数"),
    ({"greeting": "١", "accuracy": "40"}, "", "开场问候：分数须为 0 到 10 的整数"),  # a digit, but not 0-9
    ({"greeting": "10"}, "", "缺少评分项：答复准确"),
    ({"greeting": "10", "accuracy": ""}, "", "缺少评分项：答复准确"),
    ({"greeting": "10", "accuracy": "40", "bonus": "5"}, "", "评分表中没有此项：'bonus'"),
    ({"greeting": "10", "accuracy": "40"}, "字" * (COMMENT_MAX + 1), "评语过长"),
])
def test_a_form_that_is_not_whole_and_in_range_is_refused(form: dict[str, str], comment: str, message: str) -> None:
    with pytest.raises(QualityError, match=message):
        check_scores(RUBRIC, form, comment)


def test_without_a_rubric_nothing_can_be_scored() -> None:
    with pytest.raises(QualityError, match="未配置质检评分表"):
        check_scores(QualitySettings(), {}, "")


def test_the_rubric_version_changes_with_what_a_score_means() -> None:
    same = QualitySettings(items=dict(RUBRIC.items), pass_mark=40, sample_per_agent_per_day=5)
    assert rubric_version(same) == rubric_version(RUBRIC)
    assert rubric_version(RUBRIC.model_copy(update={"pass_mark": 30})) != rubric_version(RUBRIC)
    relabelled = {**RUBRIC.items, "greeting": QualityItem(label="问候", points=10)}
    assert rubric_version(RUBRIC.model_copy(update={"items": relabelled})) != rubric_version(RUBRIC)

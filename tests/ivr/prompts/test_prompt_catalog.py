from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from pydub.generators import Sine

from ivr.prompts.catalog import Prompt, PromptCatalog, load_catalog, tts_hash, variant_id
from ivr.prompts.tts import normalize
from ivr.core.yamlsource import SourceError, SourceErrors


def test_given_a_template_then_each_variant_is_a_prompt_with_the_value_rendered(prompts_dir: Path) -> None:
    catalog = load_catalog(prompts_dir)

    assert not catalog.has("merged_notice") and catalog.is_template("merged_notice")
    assert catalog.templates["merged_notice"].variants == ("merged_notice__12396", "merged_notice__96119")
    pid = catalog.variant("merged_notice", old_number=12396)
    assert pid == "merged_notice__12396" == variant_id("merged_notice", {"old_number": "12396"})
    prompt = catalog.prompts[pid]
    assert prompt.text_zh == "您拨打的12396热线已并入12345政务服务便民热线。"
    assert prompt.text_en == "The 12396 hotline has merged into 12345."
    assert (prompt.template, prompt.params) == ("merged_notice", (("old_number", "12396"),))
    assert catalog.sound(pid) == "ivr12345/merged_notice__12396"
    assert prompt.hash != catalog.prompts["merged_notice__96119"].hash


def test_given_a_value_nobody_listed_then_variant_is_refused_with_the_fix(prompts_dir: Path) -> None:
    catalog = load_catalog(prompts_dir)
    with pytest.raises(KeyError, match="merged_notice.variants"):
        catalog.variant("merged_notice", old_number="12300")
    with pytest.raises(KeyError, match="takes old_number"):
        catalog.variant("merged_notice", number="12396")


def test_given_long_numbers_then_they_are_read_digit_by_digit_and_short_ones_as_numbers() -> None:
    assert normalize("您好，这里是12345热线，请拨打110。") == "您好，这里是幺二三四五热线，请拨打幺幺零。"
    assert normalize("请按1，3个工作日，24小时") == "请按1，3个工作日，24小时"


def test_given_no_manifest_then_every_prompt_is_stale_with_no_duration(prompts_dir: Path) -> None:
    catalog = load_catalog(prompts_dir)
    assert catalog.stale == frozenset(catalog.prompts)
    assert catalog.duration("goodbye") is None


def test_given_a_manifest_entry_for_other_text_then_that_prompt_is_stale(prompts_dir: Path) -> None:
    catalog = load_catalog(prompts_dir)
    table = {pid: {"duration": 1.0, "source": "tts", "hash": p.hash} for pid, p in catalog.prompts.items()}
    table["goodbye"]["hash"] = tts_hash("别的文字", catalog.voice)
    (prompts_dir / "manifest.json").write_text(json.dumps({"version": 1, "prompts": table}), encoding="utf-8")

    catalog = load_catalog(prompts_dir)

    assert catalog.stale == {"goodbye"}
    assert catalog.duration("welcome_12345") == 1.0 and catalog.duration("goodbye") is None


def test_given_a_recording_without_text_then_it_is_a_prompt_too(prompts_dir: Path) -> None:
    Sine(440).to_audio_segment(duration=300).export(prompts_dir / "recorded" / "holiday_notice.wav", format="wav")
    prompt = load_catalog(prompts_dir).prompts["holiday_notice"]
    assert (prompt.source, prompt.text_zh) == ("recorded", "")


def test_the_original_dataclass_api_still_works() -> None:
    catalog = PromptCatalog({"goodbye": Prompt("goodbye", "再见。", duration=1.2)})
    assert catalog.has("goodbye") and catalog.duration("goodbye") == 1.2
    assert catalog.sound("goodbye") == "ivr12345/goodbye"


@pytest.mark.parametrize(
    ("body", "where", "reason"),
    [
        ("prompts:\n  goodbye: {zh: 再见, colour: red}\n", ":2:", "unknown key 'colour'"),
        ("prompts:\n  goodbye: {en: bye}\n", ":2:", "no zh text and no recording"),
        ("prompts:\n  Good-Bye: {zh: 再见}\n", ":2:", "not a valid prompt id"),
        ("prompts:\n  a__b: {zh: 再见}\n", ":2:", "not a valid prompt id"),
        ("prompts:\n  n:\n    zh: 拨打{old_number}\n    en: dial {number}\n", ":4:", "placeholders differ"),
        ("prompts:\n  n:\n    zh: 拨打{x}\n    variants:\n      - {x: 12396}\n", ":5:", 'in quotes, like "12396"'),
        ("prompts:\n  n:\n    zh: 拨打{x}\n    variants:\n      - {y: \"1\"}\n", ":5:", "expected exactly {x}"),
        ("prompts:\n  n:\n    zh: 拨打\n    variants: []\n", ":4:", "zh has no {placeholder}"),
        ("voice: {speed: fast}\nprompts: {}\n", ":1:", "voice.speed: expected int"),
        ("prompts:\n  goodbye: {zh: 再见}\n  goodbye: {zh: 再见}\n", ":3:", "duplicate key 'goodbye'"),
        ("prompts:\n  goodbye: {zh: 再见\n", ":", "YAML syntax"),
    ],
)
def test_given_a_mistake_in_catalog_yaml_then_the_error_names_file_line_and_reason(
    tmp_path: Path, write_catalog: Callable[[Path, str], Path], body: str, where: str, reason: str
) -> None:
    folder = write_catalog(tmp_path / "p", body)
    with pytest.raises((SourceError, SourceErrors)) as exc:
        load_catalog(folder)
    message = str(exc.value)
    assert f"catalog.yaml{where}" in message and reason in message


def test_given_a_recording_named_after_a_template_then_it_is_refused(prompts_dir: Path) -> None:
    (prompts_dir / "recorded" / "merged_notice.wav").write_bytes(b"RIFF")
    with pytest.raises(SourceErrors, match="merged_notice is a template"):
        load_catalog(prompts_dir)


def test_given_no_catalog_then_one_line_says_so(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no prompt catalog here"):
        load_catalog(tmp_path)

from __future__ import annotations

import argparse
import json
import os
import wave
from pathlib import Path

import pytest
from pydub.generators import Sine

from ivr.cli import UsageError
from ivr.commands import prompts as prompts_command
from ivr.prompts.build import BuildReport, PromptBuildError, build_prompts, install_sounds
from ivr.prompts.catalog import load_catalog
from ivr.prompts.tts import EspeakNG

ALL_IDS = {"welcome_12345", "goodbye", "digit_1", "merged_notice__12396", "merged_notice__96119"}


def wav_facts(path: Path) -> tuple[int, int, int, float]:
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes() / w.getframerate()


def manifest(prompts_dir: Path) -> dict:
    return json.loads((prompts_dir / "manifest.json").read_text(encoding="utf-8"))["prompts"]


def test_given_a_catalog_when_built_then_every_prompt_is_8khz_mono_16bit_and_its_duration_is_in_the_manifest(
    prompts_dir: Path, out_dir: Path
) -> None:
    report = build_prompts(prompts_dir, out_dir)

    assert isinstance(report, BuildReport)
    assert set(report.built) == ALL_IDS and report.unchanged == ()
    entries = manifest(prompts_dir)
    assert set(entries) == ALL_IDS
    for pid in ALL_IDS:
        rate, channels, width, seconds = wav_facts(out_dir / f"{pid}.wav")
        assert (rate, channels, width) == (8000, 1, 2)
        assert seconds == pytest.approx(entries[pid]["duration"], abs=0.001)
        assert entries[pid]["source"] == "tts"
        assert seconds > 0.3  # speech, not an empty file
        # raw mu-law: one byte per sample, same length as the WAV
        assert (out_dir / f"{pid}.ulaw").stat().st_size == round(seconds * 8000)
    assert report.durations == {pid: e["duration"] for pid, e in entries.items()}
    # the catalog now reads durations from the manifest it wrote
    catalog = load_catalog(prompts_dir)
    assert catalog.stale == frozenset()
    assert catalog.duration("welcome_12345") == entries["welcome_12345"]["duration"]


def test_given_a_recording_when_built_then_it_replaces_the_synthetic_voice(prompts_dir: Path, out_dir: Path) -> None:
    build_prompts(prompts_dir, out_dir)
    tone = Sine(440).to_audio_segment(duration=1500).set_frame_rate(44100).set_channels(2)
    tone.export(prompts_dir / "recorded" / "goodbye.wav", format="wav")

    report = build_prompts(prompts_dir, out_dir)

    assert report.built == ("goodbye",)
    entry = manifest(prompts_dir)["goodbye"]
    assert entry["source"] == "recorded"
    assert entry["duration"] == pytest.approx(1.5, abs=0.01)
    rate, channels, width, seconds = wav_facts(out_dir / "goodbye.wav")
    assert (rate, channels, width, round(seconds, 2)) == (8000, 1, 2, 1.5)
    assert load_catalog(prompts_dir).prompts["goodbye"].source == "recorded"


def test_given_a_recording_for_one_variant_then_only_that_variant_is_recorded(
    prompts_dir: Path, out_dir: Path
) -> None:
    Sine(300).to_audio_segment(duration=700).export(prompts_dir / "recorded" / "merged_notice__96119.wav", format="wav")

    build_prompts(prompts_dir, out_dir)

    entries = manifest(prompts_dir)
    assert entries["merged_notice__96119"]["source"] == "recorded"
    assert entries["merged_notice__12396"]["source"] == "tts"


def test_given_a_built_catalog_when_one_text_changes_then_only_that_prompt_is_rebuilt(
    prompts_dir: Path, out_dir: Path
) -> None:
    build_prompts(prompts_dir, out_dir)
    before = {p.name: p.stat().st_mtime_ns for p in out_dir.glob("*.wav")}
    catalog = prompts_dir / "catalog.yaml"
    catalog.write_text(catalog.read_text(encoding="utf-8").replace("感谢您的来电，再见。", "再见。"), encoding="utf-8")

    report = build_prompts(prompts_dir, out_dir)

    assert report.built == ("goodbye",)
    assert set(report.unchanged) == ALL_IDS - {"goodbye"}
    after = {p.name: p.stat().st_mtime_ns for p in out_dir.glob("*.wav")}
    assert {name for name in before if before[name] != after[name]} == {"goodbye.wav"}
    assert manifest(prompts_dir)["goodbye"]["duration"] < 2.0


def test_given_nothing_changed_then_nothing_is_rebuilt_and_espeak_is_not_needed(
    prompts_dir: Path, out_dir: Path
) -> None:
    build_prompts(prompts_dir, out_dir)
    report = build_prompts(prompts_dir, out_dir, tts=EspeakNG(binary="no-such-espeak-ng"))
    assert report.built == () and set(report.unchanged) == ALL_IDS


def test_given_force_then_every_prompt_is_rebuilt(prompts_dir: Path, out_dir: Path) -> None:
    build_prompts(prompts_dir, out_dir)
    assert set(build_prompts(prompts_dir, out_dir, force=True).built) == ALL_IDS


def test_given_a_deleted_build_file_then_that_prompt_is_rebuilt(prompts_dir: Path, out_dir: Path) -> None:
    build_prompts(prompts_dir, out_dir)
    (out_dir / "digit_1.ulaw").unlink()
    assert build_prompts(prompts_dir, out_dir).built == ("digit_1",)


def test_given_a_prompt_removed_from_the_catalog_then_its_files_and_manifest_entry_go(
    prompts_dir: Path, out_dir: Path
) -> None:
    build_prompts(prompts_dir, out_dir)
    catalog = prompts_dir / "catalog.yaml"
    catalog.write_text(catalog.read_text(encoding="utf-8").replace('      - {old_number: "96119"}\n', ""), encoding="utf-8")

    report = build_prompts(prompts_dir, out_dir)

    assert report.removed == ("merged_notice__96119",)
    assert not list(out_dir.glob("merged_notice__96119.*"))
    assert "merged_notice__96119" not in manifest(prompts_dir)


def test_given_progress_callback_then_it_sees_every_built_prompt(prompts_dir: Path, out_dir: Path) -> None:
    seen: list[tuple[int, int, str]] = []
    build_prompts(prompts_dir, out_dir, progress=lambda done, total, pid: seen.append((done, total, pid)))
    assert [s[0] for s in seen] == list(range(1, len(ALL_IDS) + 1))
    assert {s[2] for s in seen} == ALL_IDS and {s[1] for s in seen} == {len(ALL_IDS)}


def test_given_espeak_missing_when_building_then_one_line_says_how_to_install_it(
    prompts_dir: Path, out_dir: Path
) -> None:
    with pytest.raises(PromptBuildError) as exc:
        build_prompts(prompts_dir, out_dir, tts=EspeakNG(binary="no-such-espeak-ng"))
    message = str(exc.value)
    assert "\n" not in message and "apt-get install espeak-ng" in message


def test_given_espeak_missing_when_the_command_runs_then_it_is_an_operator_error(
    prompts_dir: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(out_dir))  # nothing on PATH: espeak-ng cannot be found
    args = _parse("build", "--prompts", str(prompts_dir), "--out", str(out_dir))
    with pytest.raises(UsageError, match=r"^espeak-ng is not installed; install it with: apt-get install espeak-ng$"):
        prompts_command.run(args)


def test_given_an_unreadable_recording_then_the_build_names_the_file(prompts_dir: Path, out_dir: Path) -> None:
    (prompts_dir / "recorded" / "goodbye.wav").write_bytes(b"not audio at all")
    with pytest.raises(PromptBuildError, match=r"^goodbye: .*goodbye\.wav: cannot read audio: "):
        build_prompts(prompts_dir, out_dir)


def test_given_a_build_when_installed_then_asterisk_finds_zh_ivr12345_id(
    prompts_dir: Path, out_dir: Path, tmp_path: Path
) -> None:
    build_prompts(prompts_dir, out_dir)
    sounds = tmp_path / "sounds"
    stale = sounds / "zh" / "ivr12345" / "old_prompt.wav"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")

    files = install_sounds(out_dir, sounds)

    zh = sounds / "zh"
    assert zh / "ivr12345" / "welcome_12345.wav" in files
    assert (zh / "ivr12345" / "welcome_12345.ulaw").read_bytes() == (out_dir / "welcome_12345.ulaw").read_bytes()
    assert (zh / "digits" / "1.wav").is_file()  # SayDigits on a zh channel
    assert (zh / "ivr12345" / "merged_notice__12396.wav").is_file()
    assert not stale.exists()
    assert load_catalog(prompts_dir).sound("welcome_12345") == "ivr12345/welcome_12345"
    # unchanged files are not rewritten
    mtime = (zh / "ivr12345" / "goodbye.wav").stat().st_mtime_ns
    os.utime(out_dir / "goodbye.wav")
    install_sounds(out_dir, sounds)
    assert (zh / "ivr12345" / "goodbye.wav").stat().st_mtime_ns == mtime


def test_given_the_command_then_build_list_and_check_work(
    prompts_dir: Path, out_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert prompts_command.run(_parse("check", "--prompts", str(prompts_dir))) == 1
    assert prompts_command.run(_parse("build", "--prompts", str(prompts_dir), "--out", str(out_dir))) == 0
    assert "built 5, unchanged 0" in capsys.readouterr().out
    assert prompts_command.run(_parse("check", "--prompts", str(prompts_dir))) == 0
    assert prompts_command.run(_parse("list", "--prompts", str(prompts_dir))) == 0
    listing = capsys.readouterr().out
    assert "merged_notice__12396" in listing and "template" in listing and "stale" not in listing


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    prompts_command.register(parser)
    return parser.parse_args(argv)


def test_given_a_prompt_of_its_own_pace_then_it_is_read_faster_and_only_it_changes(
    prompts_dir: Path, out_dir: Path, write_catalog
) -> None:
    """``speed:`` on one prompt (the front prompts every caller hears before a seat): its own
    hash and a shorter recording; the rest keep the catalog's voice."""
    build_prompts(prompts_dir, out_dir)
    before = manifest(prompts_dir)
    text = (prompts_dir / "catalog.yaml").read_text(encoding="utf-8")
    (prompts_dir / "catalog.yaml").write_text(text.replace(
        "    en: Hello, this is the 12345 government service hotline.\n",
        "    en: Hello, this is the 12345 government service hotline.\n    speed: 260\n"), encoding="utf-8")
    report = build_prompts(prompts_dir, out_dir)
    after = manifest(prompts_dir)
    assert report.built == ("welcome_12345",)
    assert after["welcome_12345"]["duration"] < 0.8 * before["welcome_12345"]["duration"]
    assert after["goodbye"] == before["goodbye"]
    assert load_catalog(prompts_dir).prompts["welcome_12345"].voice.speed == 260  # type: ignore[union-attr]


def test_given_a_pace_out_of_range_then_the_catalog_is_refused_at_its_line(prompts_dir: Path) -> None:
    from ivr.core.yamlsource import SourceErrors

    text = (prompts_dir / "catalog.yaml").read_text(encoding="utf-8")
    (prompts_dir / "catalog.yaml").write_text(text.replace("    zh: 感谢您的来电，再见。\n",
                                                           "    zh: 感谢您的来电，再见。\n    speed: 20\n"), encoding="utf-8")
    with pytest.raises(SourceErrors, match=r"catalog.yaml:8:\d+: goodbye.speed: expected words per minute"):
        load_catalog(prompts_dir)

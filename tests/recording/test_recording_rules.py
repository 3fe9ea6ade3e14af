"""The recording policy as data: which mode a call gets, who hears the notice, where a file is
kept, when it expires; the config's checks with file and line; the dialplan it renders."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ivr.asterisk_conf.recording import queue_step, recording_dialplan, recording_globals
from ivr.config import ConfigError, load_config
from ivr.core.conftext import UnsafeValue
from recording.rules import (RecordingSettings, call_id_ok, call_mode, disk_alarm, expired, notice_for, notice_possible,
                             numbered, stored_path)

REPO = Path(__file__).resolve().parents[2]


def rules(**kw: object) -> RecordingSettings:
    return RecordingSettings.model_validate(kw)


def test_the_line_then_the_queue_then_the_default_give_the_mode_and_never_anywhere_wins() -> None:
    s = rules(default="answer", lines={"12345": "start", "12369": "never"}, queues={"expert-legal": "never"},
              matters={"report": "never"})
    assert call_mode(s, "12345", "general") == "start"
    assert call_mode(s, "12333", "general") == "answer"
    assert call_mode(s, "12369", "general") == "never"
    assert call_mode(s, "12345", "expert-legal") == "never"  # the queue's never beats the line's start
    assert call_mode(s, "12345", "general", "report") == "never"
    assert call_mode(rules(default="never"), "12345", "general") == "never"


def test_the_notice_follows_the_line_then_the_queue_then_the_default() -> None:
    s = rules(notice=True, lines={"12348": {"notice": False}}, queues={"general": {"notice": False}, "expert-fund": "answer"})
    assert notice_for(s, "12345", "expert-fund") is True
    assert notice_for(s, "12345", "general") is False
    assert notice_for(s, "12348", "expert-fund") is False


def test_a_kept_file_is_named_by_its_ticket_number_under_the_day_received_and_a_second_one_is_numbered() -> None:
    path = stored_path("20261206-12345-00017", "2026-12-06T09:30:00.123+08:00")
    assert str(path) == "2026/12/06/20261206-12345-00017.opus"
    assert str(numbered(path, 1)) == str(path)
    assert str(numbered(path, 2)) == "2026/12/06/20261206-12345-00017-2.opus"
    with pytest.raises(ValueError):
        stored_path("../../etc/passwd", "2026-12-06T09:30:00+08:00")


@pytest.mark.parametrize("call_id", ["../x", "a/b", "", "x y", "a;rm", ".hidden"])
def test_only_a_plain_linkedid_names_a_file(call_id: str) -> None:
    assert not call_id_ok(call_id)
    assert call_id_ok("pytest-1234-1733529600.12")


def test_a_recording_expires_retention_days_after_its_call() -> None:
    received = datetime(2026, 6, 1, 9, 0).astimezone()
    assert not expired(received.isoformat(), received + timedelta(days=179), 180)
    assert expired(received.isoformat(), received + timedelta(days=180), 180)


def test_the_disk_alarm_rises_above_the_percent_or_below_the_free_space() -> None:
    s = rules(disk_alarm_percent=80, disk_min_free_mb=100)
    gb = 1 << 30
    assert not disk_alarm(s, 10 * gb, 5 * gb)
    assert disk_alarm(s, 10 * gb, int(1.9 * gb))
    assert disk_alarm(s, 1000 * gb, 50 << 20)


def _config(tmp_path: Path, recording: str) -> Path:
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    (config / "recording.yaml").write_text("recording:\n" + recording, encoding="utf-8")
    return config


def test_given_the_shipped_config_then_calls_are_recorded_from_answer_without_the_notice() -> None:
    s = load_config(REPO / "config").settings.recording
    assert (s.default, s.notice) == ("answer", False)  # the main flow has no 3 s left for it (recording.yaml)


def test_given_no_recording_section_then_nothing_is_recorded_and_no_notice_is_possible(tmp_path: Path) -> None:
    config = _config(tmp_path, "")
    (config / "recording.yaml").unlink()  # a deployment's config/ from before recordings existed
    s = load_config(config).settings.recording
    assert call_mode(s, "12345", "general") == "never" and not notice_possible(s, "12345")


@pytest.mark.parametrize("recording, where, why", [
    ('  lines: {"99999": never}\n', "recording.yaml:2:", "'99999' is not a number of the plan"),
    ("  queues: {nowhere: never}\n", "recording.yaml:2:", "'nowhere' is not a defined queue"),
    ("  queues: {general: start}\n", "recording.yaml:2:", "recording.queues.general.mode: Input should be 'answer' or 'never'"),
    ("  matters: {gossip: never}\n", "recording.yaml:2:", "'gossip' is not a request type"),
    ("  retention_days: 400\n", "recording.yaml:2:", "longer than tickets.retention_days"),
    ("  dir: relative/path\n", "recording.yaml:2:", "dir"),
])
def test_a_bad_policy_is_refused_with_its_file_and_line(tmp_path: Path, recording: str, where: str, why: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_config(tmp_path, recording))
    assert where in str(err.value) and why in str(err.value), str(err.value)


def test_the_dialplan_carries_each_lines_rule_and_each_queues_own() -> None:
    settings = load_config(REPO / "config").settings
    s = settings.model_copy(update={"recording": rules(lines={"12369": "never", "12345": {"mode": "start", "notice": False}},
                                                       queues={"expert-legal": {"mode": "never"}},
                                                       matters={"report": "never"})})
    text = recording_dialplan(s)
    assert "exten => 12369,1,Set(IVR_REC_LINE=never)" in text
    assert "exten => 12345,1,Set(IVR_REC_LINE=start)\n same => n,Set(IVR_REC_LINE_NOTICE=0)" in text
    # our recorder by default (asterisk-conf/modules/app_ivr_record.c): it renames the file itself, no command;
    # MixMonitor only where the module is not loaded (an Asterisk installed without it), never a call cut short
    begin = text.split("exten => begin,1,")[1]
    assert " same => n,GotoIf($[${IFMODULE(app_ivr_record.so)}]?ivr)\n" in begin
    assert " same => n(ivr),IvrRecord(${file}.raw,${IF($[\"${ARG1}\" = \"answer\"]?b:)}i(IVR_REC_ID),${file}.done)\n" in begin
    assert begin.index("GotoIf(") < begin.index("MixMonitor(") < begin.index("(ivr),IvrRecord(")
    assert queue_step(s, "expert-legal").endswith("Gosub(ivr-recording,queue,1(never,))")
    assert queue_step(s, "general").endswith("Gosub(ivr-recording,queue,1(,))")
    assert "IVR_REC_MATTER_report=never" in recording_globals(s)
    # a callback's stand-in takes the first-dialed line's rule (no MixMonitor begins there) and the matter
    callback = text.split("exten => callback,1,")[1].split("Return()")[0]
    assert "Gosub(ivr-recording-lines,${ARG1},1)" in callback and "MixMonitor" not in callback
    stand_in = (REPO / "asterisk-conf" / "extensions.conf").read_text(encoding="utf-8").split("[ivr-callback-queue]")[1]
    stand_in = stand_in.split("Goto(ivr-queues,")[0]
    assert "Set(REQUEST_TYPE=${FILTER(a-z,${IVR_CALLBACK_MATTER})})" in stand_in
    assert "Gosub(ivr-recording,callback,1(${FILTER(0123456789,${IVR_CALLBACK_LINE})}))" in stand_in


def test_a_directory_that_could_break_the_mixmonitor_command_is_refused() -> None:
    settings = load_config(REPO / "config").settings
    bad = settings.model_copy(update={"recording": RecordingSettings.model_construct(
        **{**settings.recording.model_dump(), "dir": "/var/rec;rm -rf /"})})
    with pytest.raises(UnsafeValue):
        recording_globals(bad)


def test_given_the_notice_on_then_ivr_check_counts_its_seconds_in_each_numbers_time_to_a_human(tmp_path: Path) -> None:
    from ivr.core.yamlsource import SourceErrors
    from ivr.hot_reload import catalog_loader, compile_config

    config = _config(tmp_path, "  default: answer\n  notice: true\n")
    (tmp_path / "prompts").symlink_to(REPO / "prompts")
    catalog = catalog_loader(REPO / "prompts")()
    with pytest.raises(SourceErrors) as err:
        compile_config(config, catalog, strict_lint=True)
    assert "number 12345 (main, flow main): worst case" in str(err.value)
    assert "→ recording_notice " in str(err.value)
    (config / "recording.yaml").write_text('recording:\n  default: answer\n  notice: true\n'
                                           '  lines: {"12345": {notice: false}}\n', encoding="utf-8")
    with pytest.raises(SourceErrors) as err:
        compile_config(config, catalog, strict_lint=True)
    assert "number 12345 " not in str(err.value)  # its own rule: no notice there


def test_recorder_mixmonitor_renders_asterisks_own_application_and_its_stop() -> None:
    settings = load_config(REPO / "config").settings
    s = settings.model_copy(update={"recording": settings.recording.model_copy(update={"recorder": "mixmonitor"})})
    text = recording_dialplan(s)
    assert (" same => n,MixMonitor(${file}.raw,${IF($[\"${ARG1}\" = \"answer\"]?b:)}Di(IVR_REC_ID),"
            "mv ${file}.raw ${file}.done)\n") in text
    assert text.count(" same => n,StopMixMonitor(${IVR_REC_ID})\n") == 2 and "IvrRecord" not in text and "IFMODULE" not in text


def test_an_unknown_recorder_is_refused_with_its_place(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_config(tmp_path, "  default: answer\n  recorder: sox\n"))
    assert "recorder" in str(err.value) and "'ivr' or 'mixmonitor'" in str(err.value), str(err.value)


def test_a_recording_begun_at_the_start_is_stopped_and_marked_discarded_when_the_call_turns_out_never() -> None:
    text = recording_dialplan(load_config(REPO / "config").settings)
    never = text[text.index(" same => n(never),"):text.index("exten => begin,")]
    assert "ExecIf($[${IFMODULE(app_ivr_record.so)}]?IvrRecordStop(${IVR_REC_ID}):StopMixMonitor(${IVR_REC_ID}))" in never
    assert "Set(FILE(${IVR_REC_DIR}/${IVR_RECORDING}.discard)=never)" in never

"""Caller IDs from outside: normalized to digits and one leading +, and only numbers of the
configured pattern may be called back (issue 17, finding 1)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ivr.agi.protocol import call_info
from ivr.core.callerid import CallerSettings, is_callable, normalize
from ivr.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]
DEFAULT = CallerSettings()


@pytest.mark.parametrize(("raw", "normalized"), [
    ("13900000777", "13900000777"),
    ("13900000777&Local/110@ivr-transfers/n", "13900000777110"),
    ("00900123,Queue: vip", "00900123"),
    (",Linkedid: 1796000000.17", "179600000017"),
    ("+8613900000001", "+8613900000001"),
    ("++86 139", "+86139"),
    ("139+0000", "1390000"),  # a + only counts in front
    ("1\r\nAction: Originate", "1"),
    ("anonymous", ""),
    ("+", ""),
    ("", ""),
    ("1" * 40, "1" * 20),
])
def test_a_caller_id_keeps_only_its_digits_and_one_leading_plus(raw: str, normalized: str) -> None:
    assert normalize(raw) == normalized


@pytest.mark.parametrize("number", ["13900000777", "19912345678", "01088886666", "05513334444", "0551333444"])
def test_national_mobiles_and_fixed_lines_are_callable_by_default(number: str) -> None:
    assert is_callable(DEFAULT, number)


@pytest.mark.parametrize("number", [
    "00441234567890",  # abroad through the carrier
    "00900123",
    "110", "12345", "119", "95119",  # short codes: emergency, the hotline itself, services
    "+8613900000001",  # no + unless the pattern says so
    "13900000777110",  # a mobile with something stuck to it
    "1390000077",
    "12900000777",
    "",
    "13900000777&Local/110@ivr-transfers/n",  # never normalized silently here: refused
])
def test_international_short_and_odd_numbers_are_not_callable_by_default(number: str) -> None:
    assert not is_callable(DEFAULT, number)


def test_a_pattern_that_allows_plus_numbers_calls_them_but_still_only_normalized_ones() -> None:
    plus = CallerSettings(callable=r"\+861[3-9][0-9]{9}|1[3-9][0-9]{9}")
    assert is_callable(plus, "+8613900000001") and is_callable(plus, "13900000001")
    assert not is_callable(plus, "+86 13900000001") and not is_callable(plus, "+8613900000001&x")


def test_a_callable_pattern_that_is_no_regular_expression_is_refused_at_load(tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    shutil.copytree(REPO / "config", cfg)
    text = (cfg / "engine.yaml").read_text(encoding="utf-8")
    old = 'callable: "1[3-9][0-9]{9}|0[1-9][0-9]{8,10}"'
    assert old in text
    (cfg / "engine.yaml").write_text(text.replace(old, 'callable: "(1[3-9][0-9]{9}"'), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"engine.yaml:\d+:\d+: callers.callable: .*not a valid regular expression"):
        load_config(cfg, environ={})


def test_the_shipped_config_calls_back_national_numbers_only() -> None:
    callers = load_config(REPO / "config", environ={}).settings.callers
    assert is_callable(callers, "13900000001") and not is_callable(callers, "00441234567890")


def test_the_engine_reads_a_normalized_caller_from_any_agi_environment() -> None:
    """Defence in depth: the dialplan normalizes first, but whoever sent this is outside."""
    env = {"agi_channel": "PJSIP/pstn-1", "agi_callerid": "13900000777&Local/110@ivr-transfers/n"}
    assert call_info(env).caller == "13900000777110"
    assert call_info({**env, "agi_callerid": "unknown"}).caller == ""

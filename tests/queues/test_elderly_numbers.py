"""How the elderly list writes numbers: the one an admin types and the one the carrier presents
give the same entry; an import file is refused line by line."""

from __future__ import annotations

import pytest

from queues.elderly import caller_number, normalize_number, parse_numbers
from ivr.core.yamlsource import SourceErrors


@pytest.mark.parametrize("text", ["13900000001", "139-0000-0001", " 139 0000 0001 ", "+8613900000001",
                                  "008613900000001", "8613900000001", "+86 (139) 0000 0001"])
def test_given_a_mobile_number_in_any_common_writing_then_it_is_one_number(text: str) -> None:
    assert normalize_number(text) == "13900000001"


def test_given_a_landline_then_its_area_code_is_kept() -> None:
    assert normalize_number("025-8888 6666") == "02588886666"


@pytest.mark.parametrize("text", ["", "anonymous", "12", "1390000000a", "1" * 16])
def test_given_something_else_then_it_is_refused_with_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="is not a phone number"):
        normalize_number(text)


def test_given_a_withheld_caller_id_then_there_is_no_number_to_look_up() -> None:
    assert caller_number("anonymous") is None and caller_number("") is None
    assert caller_number("+8613900000001") == "13900000001"


def test_given_an_import_file_then_comments_blanks_and_repeats_are_dropped() -> None:
    text = "# 2026年第一批\n13900000001\n\n139 0000 0002  # 张\n13900000001\n"
    assert parse_numbers(text, "list.txt") == ["13900000001", "13900000002"]


def test_given_bad_lines_then_each_is_named_by_file_line_and_column() -> None:
    with pytest.raises(SourceErrors) as caught:
        parse_numbers("13900000001\n  abc\n12 # too short\n", "list.txt")
    assert [str(e) for e in caught.value.errors] == [
        "list.txt:2:3: 'abc' is not a phone number (5-15 digits, optionally +86)",
        "list.txt:3:1: '12' is not a phone number (5-15 digits, optionally +86)",
    ]

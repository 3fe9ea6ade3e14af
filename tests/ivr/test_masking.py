import pytest

from ivr.core.masking import mask_number


@pytest.mark.parametrize(
    "number, masked",
    [("13800138000", "138****8000"), ("055163581234", "055*****1234"), ("62345678", "62****78"),
     ("12345", "12*45"), ("110", "***"), ("", "")],
)
def test_caller_numbers_are_masked(number: str, masked: str) -> None:
    assert mask_number(number) == masked
    runs = [r for r in mask_number(number).split("*") if r]
    assert all(len(r) <= 4 for r in runs)
    assert number == "" or "*" in mask_number(number)

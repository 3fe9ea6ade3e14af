import pytest

from ivr.masking import mask_number


@pytest.mark.parametrize(
    "number, masked",
    [("13800138000", "138****8000"), ("055163581234", "055*****1234"), ("12345", "1**45"), ("110", "***"), ("", "")],
)
def test_caller_numbers_are_masked(number: str, masked: str) -> None:
    assert mask_number(number) == masked
    if len(number) > 4:
        assert number not in mask_number(number)

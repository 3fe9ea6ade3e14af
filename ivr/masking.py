"""Masking of personal data (数据脱敏): caller numbers never reach logs in clear."""

from __future__ import annotations


def mask_number(number: str) -> str:
    """Keep the first 3 and last 4 digits of long numbers: 13800138000 → 138****8000."""
    if not number:
        return ""
    if len(number) <= 4:
        return "*" * len(number)
    if len(number) <= 7:
        return number[:1] + "*" * (len(number) - 3) + number[-2:]
    return number[:3] + "*" * (len(number) - 7) + number[-4:]

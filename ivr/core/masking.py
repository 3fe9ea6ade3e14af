"""Masking of personal data (数据脱敏): caller numbers never reach logs in clear."""

from __future__ import annotations


def mask_number(number: str) -> str:
    """The customary 3-4-4 mask for mobiles (13800138000 → 138****8000); shorter numbers keep
    two digits at each end (62345678 → 62****78); never more than 4 digits in a row."""
    n = len(number)
    if n <= 4:
        return "*" * n
    if n < 11:
        return number[:2] + "*" * (n - 4) + number[-2:]
    return number[:3] + "*" * (n - 7) + number[-4:]

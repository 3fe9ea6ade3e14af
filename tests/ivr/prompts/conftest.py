from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

SMALL_CATALOG = """\
    voice: {engine: espeak-ng, voice: cmn-latn-pinyin, speed: 175, pitch: 50}
    prompts:
      welcome_12345:
        zh: 您好，这里是12345政务服务便民热线。
        en: Hello, this is the 12345 government service hotline.
      goodbye:
        zh: 感谢您的来电，再见。
        en: Thank you for calling. Goodbye.
      digit_1: {zh: 幺, en: one, sound: digits/1}
      merged_notice:
        zh: 您拨打的{old_number}热线已并入12345政务服务便民热线。
        en: The {old_number} hotline has merged into 12345.
        variants:
          - {old_number: "12396"}
          - {old_number: "96119"}
"""


def _write_catalog(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "catalog.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


@pytest.fixture
def write_catalog() -> Callable[[Path, str], Path]:
    """``write_catalog(folder, yaml_text)`` → folder holding that catalog.yaml."""
    return _write_catalog


@pytest.fixture
def prompts_dir(tmp_path: Path) -> Path:
    """A small catalog folder of its own: catalog.yaml, recorded/, no manifest yet."""
    folder = _write_catalog(tmp_path / "prompts", SMALL_CATALOG)
    (folder / "recorded").mkdir()
    return folder


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "build"

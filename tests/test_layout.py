"""The test tree's own rule: pytest imports test modules by their basename (rootdir-relative
``prepend`` mode), so two ``test_x.py`` in different folders break collection of the whole run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path


def test_every_test_module_has_a_basename_of_its_own() -> None:
    names = Counter(p.name for p in Path(__file__).parent.rglob("test_*.py"))
    assert [name for name, n in names.items() if n > 1] == []

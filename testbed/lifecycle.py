"""Up for a block, stopped after: shared by the single bed and the cluster bed."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator, Protocol, TypeVar

from testbed.runners import Progress


class Bed(Protocol):
    def start(self, progress: Progress = ...) -> Any: ...
    def start_engines(self) -> None: ...
    def stop(self, keep_logs: Path | None = None) -> None: ...


B = TypeVar("B", bound=Bed)


@contextlib.contextmanager
def running(bed: B, keep_logs: Path | None, progress: Progress) -> Iterator[B]:
    """``bed`` and its engines, up for the block; stopped after (logs copied to ``keep_logs``),
    also when starting failed half-way."""
    bed.start(progress)
    try:
        bed.start_engines()
        yield bed
    finally:
        bed.stop(keep_logs=keep_logs)

"""Fixtures every tier shares: a real redis-server per test, on a port below the ephemeral range
(a client retrying a dead port must not self-connect to it)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from ivr.testbed.ports import PortAllocator
from ivr.testbed.processes import start_redis


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    port = PortAllocator().one()
    proc = start_redis(port, tmp_path)
    yield f"redis://127.0.0.1:{port}/0"
    proc.kill()
    proc.wait()

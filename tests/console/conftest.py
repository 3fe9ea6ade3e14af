"""Console tests without calls: the console of its own (testbed/console.py) on a real Redis
and a private copy of config/; browser tests use the shared ``browser`` fixture (tests/conftest.py).
Pages that need calls are tested in tests/integration/ against the bed engine's console."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from testbed.console import ConsoleSite, StandaloneConsole, private_config
from testbed.ports import PortAllocator
from testbed.processes import start_redis

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def console_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of config/ the tests may publish into; prompts/ is shared."""
    return private_config(REPO / "config", tmp_path_factory.mktemp("console-deployment"))


@pytest.fixture(scope="session")
def console_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = PortAllocator().one()
    proc = start_redis(port, tmp_path_factory.mktemp("console-redis"))
    yield f"redis://127.0.0.1:{port}/0"
    proc.kill()
    proc.wait()


@pytest.fixture(scope="session")
def console(console_config: Path, console_redis: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleSite]:
    server = StandaloneConsole(console_config, console_redis, tmp_path_factory.mktemp("console"))
    site = server.start()
    yield site
    server.stop()

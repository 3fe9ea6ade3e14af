"""Fixtures every tier shares: a real redis-server per test, on a port below the ephemeral range
(a client retrying a dead port must not self-connect to it); the headless Chromium of browser
tests (testbed/browser.py), pointed at the ``console`` fixture of the test's directory."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from testbed.browser import Browser, start_chromium
from testbed.console import ConsoleSite
from testbed.ports import PortAllocator
from testbed.processes import start_redis


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    port = PortAllocator().one()
    proc = start_redis(port, tmp_path)
    yield f"redis://127.0.0.1:{port}/0"
    proc.kill()
    proc.wait()


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """One headless Chromium for the session; fails (never skips) when it is not installed."""
    browser = Browser(start_chromium(tmp_path_factory.mktemp("chromium-profile")))
    yield browser
    browser.quit()


@pytest.fixture
def browser(chromium: Browser, console: ConsoleSite) -> Browser:
    """The browser, cookies cleared, on this directory's ``console`` (its conftest says which:
    tests/console/ a console of its own, tests/integration/ the bed engine's)."""
    return chromium.at(console.url)

"""Fixtures of the tests on a cluster bed (imported by each module, which defines its own
module-scoped ``cluster``): the tickets of every node, the carrier, an AMI session per node."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import AsyncIterator

import pytest

from ivr.ami.client import AmiClient
from testbed.cluster import ClusterBed
from testbed.cluster_calls import Carrier, cluster_tickets, node_amis
from tickets.store import TicketStore


def with_wrapup(config_dir: Path, root: Path, seconds: int) -> Path:
    """A copy of ``config_dir`` under ``root`` (prompts/ beside it) whose general queue's wrap-up is
    ``seconds`` (5 in config/): a module whose seats take many calls in turn takes less time."""
    shutil.copytree(config_dir, root / "config")
    (root / "prompts").symlink_to((config_dir.parent / "prompts").resolve())
    queues = root / "config" / "queues.yaml"
    text = queues.read_text(encoding="utf-8")
    assert "    wrapup: 5\n" in text
    queues.write_text(text.replace("    wrapup: 5\n", f"    wrapup: {seconds}\n"), encoding="utf-8")
    return root / "config"


@pytest.fixture
async def tickets(cluster: ClusterBed, tmp_path: Path) -> AsyncIterator[TicketStore]:
    store = cluster_tickets(cluster, tmp_path)
    yield store
    await store.close()


@pytest.fixture
async def carrier(cluster: ClusterBed, tmp_path: Path) -> AsyncIterator[Carrier]:
    c = Carrier(cluster, tmp_path)
    yield c
    await c.close()


@pytest.fixture
async def amis(cluster: ClusterBed) -> AsyncIterator[list[AmiClient]]:
    """A read-all AMI session on each node; calls a test left up are hung up after it."""
    async with node_amis(cluster) as clients:
        yield clients

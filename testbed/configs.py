"""Editing a test's own copy of config/: one entry changed, and the line it is on (for the
file:line an error must name)."""

from __future__ import annotations

from pathlib import Path


def edit_entry(path: Path, key: str, old: str, new: str) -> int:
    """In the line of ``path`` that starts with ``key:``, replace ``old`` by ``new``; returns
    that line's number. Raises when there is no such line, or ``old`` is not on it."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    number = next(i for i, ln in enumerate(lines, 1) if ln.lstrip().startswith(f"{key}:"))
    if old not in lines[number - 1]:
        raise ValueError(f"{path}:{number}: no {old!r} in {lines[number - 1].strip()!r}")
    lines[number - 1] = lines[number - 1].replace(old, new)
    path.write_text("".join(lines), encoding="utf-8")
    return number


# Two nodes behind two proxies on loopback: the least cluster section a reading command or page
# needs to count across nodes (nothing is started from it).
TWO_NODES = """\
cluster:
  proxies:
    edge-a: {sip: "127.0.0.1:5070"}
    edge-b: {sip: "127.0.0.2:5070"}
  nodes:
    ast-a: {sip: "127.0.0.1:5080", ami: "127.0.0.1:5038", rtp_start: 10000, rtp_end: 10999}
    ast-b: {sip: "127.0.0.1:5081", ami: "127.0.0.1:5039", rtp_start: 11000, rtp_end: 11999}
"""


def with_two_nodes(config_dir: Path) -> Path:
    """``config_dir`` (a test's own copy of config/) with :data:`TWO_NODES` as its cluster.yaml."""
    (config_dir / "cluster.yaml").write_text(TWO_NODES, encoding="utf-8")
    return config_dir

"""The wallboard's 录音磁盘 tile (issue 21 item 2): the recordings disk's use and free space as the
recording worker last wrote them into Redis (``ivr:recording:disk``), red once the alarm is on,
live (the board's next snapshot, no reload). Debian's Chromium on the console of its own; the
real disk filling up on the bed is tests/integration/test_recording_disk.py."""

from __future__ import annotations

import time
from typing import Iterator

import pytest
import redis

from ivr.store import keyspace
from testbed.browser import Browser
from testbed.console import ConsoleSite

TILE = "#recording-disk"
MB = 1 << 20


@pytest.fixture
def disk_key(console: ConsoleSite) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(console.redis_url, decode_responses=True) as r:
        r.delete(keyspace.RECORDING_DISK)
        yield r
        r.delete(keyspace.RECORDING_DISK)


def measured(r: redis.Redis, total: int, free: int, alarm: bool, problem: str = "") -> None:
    """What recording/worker.py publish_disk writes after a sweep whose measurement changed the
    alarm (each one here does): the numbers, and a notice that makes the board recompute at once."""
    r.hset(keyspace.RECORDING_DISK, mapping={"total": total, "free": free, "alarm": int(alarm), "problem": problem,
                                             "at": f"{time.time():.0f}"})
    r.publish(keyspace.LIVE_CHANGED, "recording-disk")


def background(b: Browser, css: str) -> str:
    return str(b.driver.execute_script("return getComputedStyle(document.querySelector(arguments[0])).backgroundColor", css))


def test_the_recordings_disk_tile_shows_use_and_free_space_and_turns_red_on_the_alarm(
    console: ConsoleSite, chromium: Browser, disk_key: redis.Redis,
) -> None:
    b = chromium.at(console.url).sign_in(console.account("supervisor"))
    b.open("/wallboard")
    b.wait_text("#live-status", "实时")
    assert b.text(f"{TILE} span") == "录音磁盘"
    assert b.text(f'{TILE} [data-field="recording-disk"]') == "—", "no engine has measured the disk yet"
    calm = background(b, TILE)

    measured(disk_key, 1000 * MB, 400 * MB, alarm=False)  # 60 % used: below the 80 % line
    b.wait_text(f'{TILE} [data-field="recording-disk"]', "已用 60.0%", timeout=20)  # the next snapshot
    assert b.text(f'{TILE} [data-field="recording-disk-free"]') == "剩余 400.0 MB"
    assert b.find(TILE).get_attribute("data-alarm") == "0" and background(b, TILE) == calm

    measured(disk_key, 1000 * MB, 150 * MB, alarm=True)  # 85 %: the worker raised the alarm
    b.wait_text(f'{TILE} [data-field="recording-disk"]', "已用 85.0% 告警", timeout=20)
    assert b.text(f'{TILE} [data-field="recording-disk-free"]') == "剩余 150.0 MB"
    assert b.find(TILE).get_attribute("data-alarm") == "1"
    assert background(b, TILE) == "rgb(253, 231, 230)" != calm, "red: the alarm's colour"
    assert b.find(TILE).value_of_css_property("color") == "rgba(179, 38, 30, 1)"

    measured(disk_key, 1000 * MB, 500 * MB, alarm=False)  # purged: the alarm ends on its own
    b.wait_text(f'{TILE} [data-field="recording-disk"]', "已用 50.0%", timeout=20)
    assert b.find(TILE).get_attribute("data-alarm") == "0" and background(b, TILE) == calm

    measured(disk_key, 1000 * MB, 500 * MB, alarm=True, problem="no-inodes")  # space, but no file can be created
    b.wait_text(f'{TILE} [data-field="recording-disk"]', "已用 50.0% 告警：inode 已用尽，无法录音", timeout=20)
    assert b.find(TILE).get_attribute("data-alarm") == "1" and b.find(TILE).get_attribute("data-problem") == "no-inodes"
    measured(disk_key, 1000 * MB, 500 * MB, alarm=True, problem="not-writable")
    b.wait_text(f'{TILE} [data-field="recording-disk"]', "已用 50.0% 告警：目录不可写，无法录音", timeout=20)

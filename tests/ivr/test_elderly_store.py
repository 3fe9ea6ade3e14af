"""The elderly list in a real redis-server: only keyed digests are stored, so what Redis holds
(and a dump of it) names no number, and it is useless without the caller key."""

from __future__ import annotations

import hashlib
from typing import AsyncIterator

import pytest

from ivr.store import keyspace
from ivr.store import ElderlyList

KEY = b"elderly-test-key-0123456789"
NUMBERS = ["13900000001", "13900000002", "02588886666"]


@pytest.fixture
async def elderly(redis_url: str) -> AsyncIterator[ElderlyList]:
    store = ElderlyList(redis_url, KEY, timeout=1.0)
    yield store
    await store.close()


async def test_given_numbers_added_then_they_are_found_and_others_are_not(elderly: ElderlyList) -> None:
    assert await elderly.add(NUMBERS, added="2026-12-01T09:00:00+00:00", by="admin", reason="登记表1") == 3
    assert all([await elderly.contains(n) for n in NUMBERS])
    assert not await elderly.contains("13900000009")
    assert await elderly.count() == 3


async def test_given_a_number_added_twice_then_it_keeps_its_first_entry(elderly: ElderlyList) -> None:
    await elderly.add(["13900000001"], added="2026-12-01T09:00:00+00:00", by="a", reason="first")
    assert await elderly.add(["13900000001"], added="2026-12-02T09:00:00+00:00", by="b", reason="again") == 0
    entry = await elderly.entry("13900000001")
    assert entry is not None and (entry.by, entry.reason) == ("a", "first")


async def test_given_the_list_then_redis_holds_no_digit_run_of_any_number(elderly: ElderlyList) -> None:
    await elderly.add(NUMBERS, added="2026-12-01T09:00:00+00:00", by="admin", reason="登记表1")
    keys = [k async for k in elderly.redis.scan_iter("*")]
    assert keys == [keyspace.ELDERLY]
    stored = await elderly.redis.hgetall(keyspace.ELDERLY)
    dump = " ".join([*stored, *stored.values()])
    for number in NUMBERS:
        assert number[-8:] not in dump
        # not the unkeyed hash an attacker would try first, whole or cut
        assert hashlib.sha256(f"ivr12345-caller:{number}".encode()).hexdigest()[:32] not in dump


async def test_given_another_key_then_the_same_redis_recognises_nobody(elderly: ElderlyList, redis_url: str) -> None:
    await elderly.add(NUMBERS, added="2026-12-01T09:00:00+00:00", by="admin", reason="r")
    stranger = ElderlyList(redis_url, b"another-key-of-16-chars-or-more")
    try:
        assert not any([await stranger.contains(n) for n in NUMBERS])
    finally:
        await stranger.close()


async def test_given_entries_then_the_listing_shows_ids_and_no_numbers(elderly: ElderlyList) -> None:
    await elderly.add(["13900000002"], added="2026-12-02T09:00:00+00:00", by="b", reason="second")
    await elderly.add(["13900000001"], added="2026-12-01T09:00:00+00:00", by="a", reason="first")
    entries = await elderly.entries()
    assert [e.reason for e in entries] == ["first", "second"]  # oldest first
    assert entries[0].id == keyspace.caller_digest("13900000001", KEY)[:12]
    assert not any("1390000000" in repr(e) for e in entries)


async def test_given_removals_by_number_and_by_id_then_those_entries_are_gone(elderly: ElderlyList) -> None:
    await elderly.add(NUMBERS, added="2026-12-01T09:00:00+00:00", by="admin", reason="r")
    assert await elderly.remove(["13900000001", "13900000009"]) == 1
    landline = (await elderly.entry("02588886666"))
    assert landline is not None
    assert len(await elderly.remove_ids([landline.id])) == 1
    assert [await elderly.contains(n) for n in NUMBERS] == [False, True, False]


async def test_given_an_id_that_matches_nothing_then_nothing_is_removed(elderly: ElderlyList) -> None:
    await elderly.add(NUMBERS, added="2026-12-01T09:00:00+00:00", by="admin", reason="r")
    kept = (await elderly.entries())[0].id
    with pytest.raises(ValueError, match="matches no entries"):
        await elderly.remove_ids([kept, "zzzz"])
    assert await elderly.count() == 3

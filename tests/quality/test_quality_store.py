"""An inspection onto its ticket on a real redis-server: appended (the latest last), noted on the
timeline, written as a later ticket change (its rev after the stored one, a ``quality:…`` event on
the ticket stream); supervisors scoring at once all keep their score, a console whose engine stands
by scores too; a ticket another console keeps is reported, never taken for saved; a ticket that
is gone is said so."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import AsyncIterator

import pytest

import tickets.lock
from ivr.store import keyspace
from quality.model import QualityItem, QualitySettings, check_scores, rubric_version
from quality.store import NotStored, TicketGone, add_inspection
from tickets.model import Recording, Ticket
from tickets.store import TicketStore

RUBRIC = QualitySettings(items={"greeting": QualityItem(label="开场问候", points=10)}, pass_mark=5)


@pytest.fixture
async def store(redis_url: str, tmp_path: Path) -> AsyncIterator[TicketStore]:
    s = TicketStore(redis_url, tmp_path / "spool", "quality-store", retention_days=30, caller_key=b"quality-store-key")
    await s.write(Ticket(linkedid="qs.1", line="12345", caller="13900000000", received=datetime.now().astimezone().isoformat(),
                         agent="agent1001", disposition="answered", recordings=[Recording(file="x.opus")]), "closed")
    await s.drain()
    yield s
    await s.close()


async def test_inspections_append_as_later_ticket_writes(store: TicketStore) -> None:
    rev = await store.revision("qs.1")
    first = await add_inspection(store, "qs.1", check_scores(RUBRIC, {"greeting": "4"}, "一般"), RUBRIC, "zhao@console")
    await add_inspection(store, "qs.1", check_scores(RUBRIC, {"greeting": "9"}, ""), RUBRIC, "li@console")
    ticket = await store.get("qs.1")
    assert ticket is not None and ticket.number
    assert [(q.by, q.total, q.scores, q.comment) for q in ticket.quality] == [
        ("zhao@console", 4, {"greeting": 4}, "一般"), ("li@console", 9, {"greeting": 9}, "")]
    assert first.rubric_version == rubric_version(RUBRIC)
    assert await store.revision("qs.1") == rev + 2
    assert [e.detail for e in ticket.timeline if e.event == "quality scored"] == ["zhao@console: 4/10", "li@console: 9/10"]
    events = await store.redis.xrange(keyspace.TICKET_EVENTS)
    assert [e[1]["event"].split(":")[0] for e in events][-2:] == ["quality", "quality"]


async def test_a_console_whose_engine_stands_by_scores_too(store: TicketStore) -> None:
    """The score is a person's change of a closed ticket, made under the ticket's lock: it carries
    no follow-lease token, so Redis takes it from a console whose engine holds no lease."""
    await store.redis.set("test:follow-token", 7)  # another engine holds the lease: this one's token is 0
    store.fenced_by("test:follow-token", lambda: 0)
    await add_inspection(store, "qs.1", check_scores(RUBRIC, {"greeting": "4"}, ""), RUBRIC, "zhao@console")
    ticket = await store.get("qs.1")
    assert ticket is not None and [q.by for q in ticket.quality] == ["zhao@console"]


async def test_supervisors_scoring_the_same_ticket_at_once_all_keep_their_score(store: TicketStore) -> None:
    rev = await store.revision("qs.1")
    who = [f"zhijian{n:02}@console" for n in range(6)]
    await asyncio.gather(*(add_inspection(store, "qs.1", check_scores(RUBRIC, {"greeting": str(n)}, ""), RUBRIC, by)
                           for n, by in enumerate(who)))
    ticket = await store.get("qs.1")
    assert ticket is not None
    assert sorted((q.by, q.total) for q in ticket.quality) == [(by, n) for n, by in enumerate(who)]
    assert await store.revision("qs.1") == rev + len(who)
    assert not await store.redis.exists(keyspace.ticket_lock("qs.1"))  # each writer let go


async def test_a_ticket_another_console_keeps_is_not_taken_for_saved(store: TicketStore,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tickets.lock, "LOCK_WAIT", 0.3)
    await store.redis.set(keyspace.ticket_lock("qs.1"), "another-console", px=5000)
    with pytest.raises(NotStored):
        await add_inspection(store, "qs.1", check_scores(RUBRIC, {"greeting": "4"}, ""), RUBRIC, "zhao@console")
    ticket = await store.get("qs.1")
    assert ticket is not None and ticket.quality == []
    assert await store.redis.get(keyspace.ticket_lock("qs.1")) == "another-console"  # not freed by a stranger


async def test_a_ticket_that_is_gone_is_said_so(store: TicketStore) -> None:
    with pytest.raises(TicketGone):
        await add_inspection(store, "qs.nope", check_scores(RUBRIC, {"greeting": "4"}, ""), RUBRIC, "zhao@console")

"""The follow lease gates the followers (ivr/duties.py), with a real Redis lease: before the engine
holds it no AMI event or IVR record reaches them; at the gain they reconcile with Asterisk; at a
loss the call follower forgets its calls and the events stop again. Ticket writes are fenced."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Callable

import pytest

from ivr.duties import Duties
from ivr.store import keyspace, redis_client
from testbed.calls import until

ASTERISK = "127.0.0.1:5038"


class Recorder:
    """Stands in for a follower: records what reaches it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.tickets = self  # the call follower's ticket store (fenced_by)
        self.fence: tuple[str, Callable[[], int]] | None = None

    def fenced_by(self, key: str, token: Callable[[], int]) -> None:
        self.fence = (key, token)

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args: self.calls.append((name, args[0] if args else None))


class Ami:
    """The handlers an AMI client would call (the real one needs an Asterisk)."""

    connected = True

    def __init__(self, log: list[tuple[str, Any]] | None = None) -> None:
        self.handlers: list[tuple[str, Callable[[Any], None]]] = []
        self.logins: list[Callable[[Any], None]] = []
        self.log = log if log is not None else []  # actions sent, in order with what the followers got

    async def action(self, action: dict[str, str]) -> dict[str, str]:
        self.log.append(("action", f"{action['Action']} {action.get('EventMask', '')}".strip()))
        return {"Response": "Success"}

    def on(self, pattern: str, handler: Callable[[Any], None]) -> None:
        self.handlers.append((pattern, handler))

    def on_login(self, handler: Callable[[Any], None]) -> None:
        self.logins.append(handler)

    def on_disconnect(self, handler: Callable[[], None]) -> None:
        pass

    def event(self, event: dict[str, str]) -> None:
        for pattern, handler in self.handlers:
            if pattern == "*" or event["Event"].startswith(pattern.rstrip("*")):
                handler(event)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Any]:
    client = redis_client(redis_url, timeout=1.0)
    yield client
    await client.aclose()


async def test_followers_hear_asterisk_only_while_this_engine_holds_the_follow_lease(redis: Any) -> None:
    follower, live, seats, callbacks = Recorder(), Recorder(), Recorder(), Recorder()
    ami = Ami(follower.calls)
    duties = Duties(redis, ASTERISK, "host:4573:1", follower, live, seats, callbacks,  # type: ignore[arg-type]
                    lambda: ami, ttl=1.0, renew_every=0.25)  # type: ignore[arg-type,return-value]
    duties.attach(ami)  # type: ignore[arg-type]
    assert follower.fence is not None and follower.fence[0] == keyspace.lease_token("follow", ASTERISK)
    ami.event({"Event": "Newchannel"})
    duties.on_ivr_record({"unique_id": "1.1"})
    assert follower.calls == live.calls == seats.calls == []  # not held yet: nothing followed
    for login in ami.logins:  # logged in while another engine follows: no events wanted
        login(ami)
    await until(lambda: follower.calls == [("action", "Events off")])
    follower.calls.clear()
    await redis.set(keyspace.lease("follow", ASTERISK), "7 other:4574:2", px=300)  # another engine holds it

    keeper = asyncio.create_task(duties.run())
    try:
        await until(lambda: ("on_login", ami) in follower.calls)
        assert duties.follow.held and ("on_login", ami) in seats.calls  # reconcile at once
        # Asterisk sends events to the holder only, switched on before the reconcile's snapshot
        assert follower.calls[:2] == [("action", "Events call,agent,user,system"), ("on_login", ami)]
        del follower.calls[0]
        ami.event({"Event": "QueueMemberStatus"})
        ami.event({"Event": "UserEvent", "UserEvent": "IvrCallback"})
        duties.on_ivr_record({"unique_id": "1.2"})
        assert [n for n, _ in follower.calls] == ["on_login", "on_event", "on_event", "on_ivr_record"]
        assert [n for n, _ in seats.calls] == ["on_login", "on_event"]
        assert [n for n, _ in callbacks.calls] == ["on_event"]
        assert follower.fence[1]() == duties.follow.token > 0  # its ticket writes carry the token

        await redis.set(keyspace.lease("follow", ASTERISK), "99 other:4574:2", px=60_000)  # taken from it
        await until(lambda: follower.calls[-1] == ("action", "Events off"))  # a stand-by parses no events
        assert follower.calls[-2][0] == "forget"
        assert not duties.follow.held and follower.fence[1]() == 0
        before = len(follower.calls)
        ami.event({"Event": "Hangup"})
        assert len(follower.calls) == before  # stopped at once
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)

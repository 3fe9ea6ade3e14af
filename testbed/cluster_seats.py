"""The seats of a cluster bed (issue 20, docs/cluster.md "Agents across nodes"): each seat is one
sipp phone that registers with digest at proxy 1 (proxy 2 when proxy 1 does not answer) and answers
whatever the proxy relays; it registers again before the proxies' 60 s expiry, as phones do. Seats
log in once, through the wish (``ivr agents login``): every node's applier adds them.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, Callable

from ivr.ami.client import AmiClient
from testbed.calls import run_ivr
from testbed.cluster import ClusterBed
from testbed.ports import PortAllocator
from testbed.sipp import Sipp
from testbed.sipp.run import register
from testbed.sipp.seat import most_at_once, offers, seat_phone

REFRESH_S = 20.0  # registrations are refreshed this often (the proxies cap expiry at 60 s)
EXPIRES = 60

_ports = PortAllocator()


class SeatPhone:
    """One seat's phone: its sipp (answering), and the registration it keeps at the proxies."""

    def __init__(self, cluster: ClusterBed, workdir: Path, seat: str, phone: Sipp, port: int):
        self.cluster, self.workdir, self.seat, self.phone, self.port = cluster, workdir, seat, phone, port
        self.registered_at: int | None = None  # the proxy's index
        self._refresh: asyncio.Task[None] | None = None

    @property
    def secret(self) -> str:
        st = self.cluster.nodes[0].state
        assert st
        return st.agent_secrets[self.seat]

    async def register(self, expires: int = EXPIRES) -> int:
        """Register at proxy 1, else at proxy 2 (the phone's backup registrar); returns the proxy's
        index. Raises when neither accepts the phone's password."""
        assert self.cluster.state
        failures = []
        for index, proxy_port in enumerate(self.cluster.state.proxy_ports):
            reg = await register(self.workdir, sip_port=proxy_port, local_port=_ports.one(), agent=self.seat,
                                 secret=self.secret, contact_port=self.port, expires=expires)
            code = await reg.wait(40)
            if code == 0:
                self.registered_at = index
                return index
            failures.append(reg.output())
        raise AssertionError(f"{self.seat} could not register at any proxy:\n" + "\n".join(failures))

    def keep_registered(self) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(REFRESH_S)  # the registration's refresh period, not a wait for a state
                await self.register()
        self._refresh = asyncio.create_task(loop())

    def offers(self) -> list[tuple[str, int, int | None]]:
        return offers(self.phone)

    def most_at_once(self) -> int:
        return most_at_once(self.offers())

    async def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh
        with contextlib.suppress(Exception):
            await self.register(expires=0)
        await self.phone.stop()


async def seat_phones(cluster: ClusterBed, workdir: Path, seats: list[str],
                      talk_ms: int | None = None) -> dict[str, SeatPhone]:
    """A registered phone for each of ``seats`` (answering at once; ``talk_ms``: hangs up after it).
    Each listens on the port the first node's bed reserved for that seat."""
    st = cluster.nodes[0].state
    assert st
    phones: dict[str, SeatPhone] = {}
    try:
        for seat in seats:
            port = st.agent_ports[seat]
            sipp = await seat_phone(workdir, port=port, media_port=_ports.block(4), name=f"seat-{seat}-{port}",
                                    talk_ms=talk_ms)
            phones[seat] = SeatPhone(cluster, workdir, seat, sipp, port)
            await phones[seat].register()
            phones[seat].keep_registered()
    except BaseException:
        for p in phones.values():
            await p.close()
        raise
    return phones


async def ivr(cluster: ClusterBed, *args: str, node: int = 0) -> None:
    """``ivr ARGS`` as an operator runs it on node ``node``'s host (a live one: the seat commands
    talk to that node's Asterisk and write the wish every node applies)."""
    state = cluster.nodes[node].state
    assert state
    code, out = await run_ivr(state, *args)
    assert code == 0, out


def seat_event(seat: str, **fields: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e.get("Interface") == f"PJSIP/{seat}" and all(e.get(k) == v for k, v in fields.items())


async def log_in(cluster: ClusterBed, amis: list[AmiClient], seats: list[str], node: int = 0) -> None:
    """Each seat logged in once, through the wish (run on node ``node``); returns once every node
    of ``amis`` has added it to the general queue."""
    added = [ami.wait_for("QueueMemberAdded", seat_event(s, Queue="q-general")) for s in seats for ami in amis]
    for seat in seats:
        await ivr(cluster, "agents", "login", seat, node=node)
    await asyncio.wait_for(asyncio.gather(*added), 30)


async def members(ami: AmiClient) -> dict[str, dict[str, dict[str, str]]]:
    """The node's ``QueueStatus``: seat → queue → its member row."""
    listing = await ami.action({"Action": "QueueStatus"}, as_list=True)
    out: dict[str, dict[str, dict[str, str]]] = {}
    for e in listing:
        if e.get("Event") == "QueueMember":
            out.setdefault(e["Location"].removeprefix("PJSIP/"), {})[e["Queue"].removeprefix("q-")] = dict(e)
    return out

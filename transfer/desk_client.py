"""Transfers from the agent desk: the engine's transfer API (:mod:`transfer.ami`) over one
transfer AMI client per node kept by the console process (opened at the first transfer of a
call on that node, opened again when Asterisk dropped it), so a click costs no AMI login. The
call's node is found first (:func:`transfer.ami.call_node`): a console served by any engine of
the cluster transfers a call that another node holds."""

from __future__ import annotations

import asyncio
from typing import Callable

from ivr.ami.client import AmiClient, AmiError
from ivr.config import Settings
from ivr.core.calendar import HolidayCalendar
from tickets.store import TicketStore
from transfer.ami import TransferError, TransferResult, call_node, transfer_call, transfer_client

# 应急联动 lines as the desk names them (transfer.control's targets call them all 应急联动)
EMERGENCY_LABELS = {"110": "110 公安报警", "119": "119 消防火警", "120": "120 医疗急救", "122": "122 交通事故"}


class DeskTransfers:
    def __init__(self, settings: Callable[[], Settings], tickets: TicketStore,
                 calendar: Callable[[], HolidayCalendar]) -> None:
        self._settings, self._tickets, self._calendar = settings, tickets, calendar
        self._clients: dict[str, AmiClient] = {}  # node ("" without a cluster) → its transfer client
        self._lock = asyncio.Lock()

    async def transfer(self, agent: str, target: str, *, three_party: bool = False,
                       attended: bool = False) -> TransferResult:
        """Hand the call ``agent`` is talking on to ``target``; TransferError says why not."""
        settings = self._settings()
        node = await call_node(agent, settings, self._tickets)
        return await transfer_call(agent, target, settings=settings, ami=await self._connected(settings, node),
                                   tickets=self._tickets, three_party=three_party, attended=attended,
                                   calendar=self._calendar())

    async def _connected(self, settings: Settings, node: str) -> AmiClient:
        async with self._lock:  # two clicks at once share one login
            client = self._clients.get(node)
            if client is not None and not client.connected:
                client.close()  # dropped (Asterisk restarted): a fresh login rather than waiting for its retry
                client = None
            if client is None:
                client = transfer_client(settings, node)
                try:
                    await client.connect()
                except AmiError as exc:
                    client.close()
                    self._clients.pop(node, None)
                    raise TransferError(f"cannot reach Asterisk{f' of node {node}' if node else ''}: {exc}") from None
                self._clients[node] = client
            return client

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

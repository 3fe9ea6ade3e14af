"""Transfers from the agent desk: the engine's transfer API (:mod:`transfer.ami`) over one
transfer AMI client kept by the console process (opened at the first transfer, opened again
when Asterisk dropped it), so a click costs no AMI login."""

from __future__ import annotations

import asyncio
from typing import Callable

from ivr.ami.client import AmiClient, AmiError
from ivr.config import Settings
from ivr.core.calendar import HolidayCalendar
from tickets.store import TicketStore
from transfer.ami import TransferError, TransferResult, transfer_call, transfer_client

# 应急联动 lines as the desk names them (transfer.control's targets call them all 应急联动)
EMERGENCY_LABELS = {"110": "110 公安报警", "119": "119 消防火警", "120": "120 医疗急救", "122": "122 交通事故"}


class DeskTransfers:
    def __init__(self, settings: Callable[[], Settings], tickets: TicketStore,
                 calendar: Callable[[], HolidayCalendar]) -> None:
        self._settings, self._tickets, self._calendar = settings, tickets, calendar
        self._client: AmiClient | None = None
        self._lock = asyncio.Lock()

    async def transfer(self, agent: str, target: str, *, three_party: bool = False) -> TransferResult:
        """Hand the call ``agent`` is talking on to ``target``; TransferError says why not."""
        settings = self._settings()
        return await transfer_call(agent, target, settings=settings, ami=await self._connected(settings),
                                   tickets=self._tickets, three_party=three_party, calendar=self._calendar())

    async def _connected(self, settings: Settings) -> AmiClient:
        async with self._lock:  # two clicks at once share one login
            if self._client is not None and not self._client.connected:
                self.close()  # dropped (Asterisk restarted): a fresh login rather than waiting for its retry
            if self._client is None:
                client = transfer_client(settings)
                try:
                    await client.connect()
                except AmiError as exc:
                    client.close()
                    raise TransferError(f"cannot reach Asterisk: {exc}") from None
                self._client = client
            return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

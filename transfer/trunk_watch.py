"""Whether each sub-center's and the emergency trunk's gateway answers, per Asterisk node (issue 22).

The trunks are qualified (``qualify:`` in config/subcenters.yaml): Asterisk probes each gateway
with OPTIONS and says so in ``ContactStatus`` events (Reachable / Unreachable). The holder of a
node's follow lease writes what its node sees into Redis (``ivr:trunks``, one field per node and
trunk, a notice on ``ivr:live:changed``), for the wallboard and ``/metrics``. After every AMI
login it reads the trunks' device states (``DeviceStateList``, class reporting: UNAVAILABLE once
the contact is unreachable), so a change missed while no engine listened is right again."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Callable, Iterable, Mapping

from redis.exceptions import RedisError

from ivr.ami.client import AmiClient, AmiError
from ivr.store import RedisTarget, keyspace, redis_client

log = logging.getLogger("ivr.trunks")

TRUNK_EVENTS = frozenset({"ContactStatus"})  # what it needs through the engine's AMI event filter
STATUS_UP = {"Reachable": True, "Unreachable": False}  # ContactStatus values that say something
DEVICE_DOWN = "UNAVAILABLE"
DEVICE_UNKNOWN = ("UNKNOWN", "INVALID")  # not probed yet, or no such endpoint: nothing to say
RETRY = 1.0


def field(asterisk: str, trunk: str) -> str:
    return f"{asterisk}|{trunk}"


def trunk_rows(raw: Mapping[str, str]) -> list[dict[str, Any]]:
    """The stored states as rows (``trunk``, ``asterisk``, ``up``, ``at``), sorted; bad ones skipped."""
    rows = []
    for value in raw.values():
        try:
            row = json.loads(value)
            rows.append({"trunk": str(row["trunk"]), "asterisk": str(row["asterisk"]), "up": bool(row["up"]),
                         "at": float(row["at"])})
        except (ValueError, KeyError, TypeError):
            continue
    return sorted(rows, key=lambda r: (r["trunk"], r["asterisk"]))


class TrunkWatch:
    """One node's trunks, followed by the holder of that node's follow lease."""

    def __init__(self, redis: RedisTarget, asterisk: str, trunks: Callable[[], Iterable[str]], timeout: float = 2.0):
        """``trunks``: the qualified trunks' endpoint names now (sub-centers and ``emergency``)."""
        self.redis = redis_client(redis, timeout=timeout)
        self.asterisk, self.trunks = asterisk, trunks
        self._pending: dict[str, bool] = {}
        self._logins: list[AmiClient] = []
        self._wake = asyncio.Event()

    def on_event(self, event: Mapping[str, str]) -> None:
        """``ContactStatus`` of a trunk's contact (never blocks, never raises)."""
        up = STATUS_UP.get(event.get("ContactStatus", ""))
        trunk = event.get("AOR", "")
        if up is not None and trunk in set(self.trunks()):
            self._pending[trunk] = up
            self._wake.set()

    def on_login(self, ami: AmiClient) -> None:
        self._logins.append(ami)
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._logins:
                await self._reconcile(self._logins.pop())
            if not await self._flush():
                await asyncio.sleep(RETRY)
                self._wake.set()

    async def _reconcile(self, ami: AmiClient) -> None:
        try:
            listing = await ami.action({"Action": "DeviceStateList"}, as_list=True)
        except (AmiError, TimeoutError) as exc:
            log.warning("trunks: DeviceStateList failed (%s); read again at the next login", exc)
            return
        states = {e.get("Device", ""): e.get("State", "") for e in listing if e.get("Event") == "DeviceStateChange"}
        for trunk in self.trunks():
            state = states.get(f"PJSIP/{trunk}", "UNKNOWN")
            if state not in DEVICE_UNKNOWN:
                self._pending.setdefault(trunk, state != DEVICE_DOWN)  # an event since is newer

    async def _flush(self) -> bool:
        pending, self._pending = self._pending, {}
        if not pending:
            return True
        now = time.time()
        rows = {field(self.asterisk, t): json.dumps({"trunk": t, "asterisk": self.asterisk, "up": up, "at": now})
                for t, up in pending.items()}
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(keyspace.TRUNKS, mapping=rows)  # type: ignore[arg-type]
                pipe.publish(keyspace.LIVE_CHANGED, "trunks")
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("trunks: Redis unavailable (%s); retrying", exc)
            self._pending = {**pending, **self._pending}
            return False
        for trunk, up in pending.items():
            log.info("trunk %s on %s: %s", trunk, self.asterisk, "reachable" if up else "UNREACHABLE")
        return True

    async def close(self) -> None:
        await self.redis.aclose()

"""``ivr reload --asterisk`` and the seats' keys at the proxies (issue 20): a changed, new or removed
agent password reaches the running proxies without a restart, so no phone loses its registration.

Each proxy loads the seats' HA1 from ``kamailio-seats-ha1.cfg`` into the ``htable`` ``seat_ha1``
once, at start (ivr/asterisk_conf/kamailio_seats.py). ``htable.reload`` only reloads tables kept in
a database, so the reload brings each running table level over the proxy's control socket instead:
``htable.dump`` (what it holds), ``htable.sets`` for each seat whose key is new or differs,
``htable.delete`` for each seat that is no longer an agent, and a second dump to confirm. The file
is rewritten first (0600, the proxies' user), so a proxy that starts later reads the same keys.
Registrations live in ``usrloc``, which this does not touch: another seat's phone stays registered,
and the changed seat's phone keeps its contact until it registers again (then with its new password).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ivr.asterisk_conf.files import write_files
from ivr.asterisk_conf.kamailio_seats import SEAT_TABLE, SECRETS_FILE, seat_keys, seats_secrets_cfg
from ivr.asterisk_conf.kamctl import ctl_socket
from ivr.asterisk_conf.pjsip import registrar_phones
from ivr.config import Settings
from ivr.kamrpc import KamRpcError, call


@dataclass
class KeysResult:
    proxy: str
    set: int = 0  # seats whose key was new or changed
    removed: int = 0  # seats no longer agents
    why: str = ""


def running_keys(reply: list[Any]) -> dict[str, str]:
    """seat → key from ``htable.dump``'s reply: a struct per hash slot, its items under ``slot``."""
    keys = {}
    for slot in reply:
        items = slot.get("slot", []) if isinstance(slot, dict) else []
        for item in items if isinstance(items, list) else [items]:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                keys[item["name"]] = str(item.get("value", ""))
    return keys


async def level(socket: str, wanted: Mapping[str, str]) -> tuple[int, int]:
    """Make the proxy's table hold exactly ``wanted``; (keys set, keys removed)."""
    running = running_keys(await call(socket, "htable.dump", SEAT_TABLE))
    changed = [seat for seat, key in wanted.items() if running.get(seat) != key]
    gone = [seat for seat in running if seat not in wanted]
    for seat in changed:
        await call(socket, "htable.sets", SEAT_TABLE, seat, wanted[seat])
    for seat in gone:
        await call(socket, "htable.delete", SEAT_TABLE, seat)
    if running_keys(await call(socket, "htable.dump", SEAT_TABLE)) != dict(wanted):
        raise KamRpcError("its seats' keys still differ after the update")
    return len(changed), len(gone)


async def apply_seat_keys(s: Settings, kamailio_dir: Path, run_dir: str,
                          agent_secrets: Mapping[str, str] | None = None) -> list[KeysResult]:
    """The seats' keys file rewritten in ``kamailio_dir`` when it differs, then every proxy's running
    table levelled (passwords: ``agent_secrets``, else ``IVR_AGENT_SECRET_<NAME>``, as the render)."""
    if s.cluster is None or not s.cluster.proxies or not s.agents:
        return []  # no proxies, or proxies without the seats' registrar: no table to keep
    passwords = registrar_phones(s, agent_secrets or {})  # the supervisors' softphones register there too
    supervisors = s.supervision.supervisors
    text, wanted = seats_secrets_cfg(passwords, supervisors), seat_keys(passwords, supervisors)
    path = kamailio_dir / SECRETS_FILE
    try:
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            await asyncio.to_thread(write_files, {SECRETS_FILE: text}, kamailio_dir)
    except OSError as exc:
        return [KeysResult(name, why=f"{path} not written: {exc}") for name in s.cluster.proxies]

    async def one(name: str) -> KeysResult:
        try:
            changed, gone = await level(ctl_socket(run_dir, name), wanted)
        except KamRpcError as exc:
            return KeysResult(name, why=f"seats' keys not updated: {exc}")
        return KeysResult(name, changed, gone)

    return list(await asyncio.gather(*(one(name) for name in s.cluster.proxies)))


def keys_report(results: list[KeysResult]) -> tuple[list[str], bool]:
    """One line per proxy, and whether every proxy runs the keys."""
    lines = []
    for r in results:
        if r.why:
            lines.append(f"proxy {r.proxy}: FAILED: {r.why}")
        elif r.set or r.removed:
            lines.append(f"proxy {r.proxy}: seats' keys updated ({r.set} set, {r.removed} removed; registrations kept)")
        else:
            lines.append(f"proxy {r.proxy}: seats' keys unchanged")
    return lines, not any(r.why for r in results)

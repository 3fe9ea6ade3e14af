"""``ivr agents``: who is logged in, paused, talking or in wrap-up; log agents in and out, pause.

``ivr agents`` (or ``list``) reads the seats the engine publishes in Redis (rebuilt from
Asterisk after every reconnect); ``--live`` asks Asterisk itself (``QueueStatus``), for when no
engine runs. The actions speak through the seat-control AMI user (``IVR_AMI_SEATS_SECRET``),
as the softphone's feature codes do in the dialplan.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from ivr.cli import UsageError, config_dir
from ivr.config import Settings, load_config
from queues.agents import STATE_LABELS, Seat
from queues.model import memberships

HELP = "seats: list agents and their state; login, logout, pause, unpause"

def register(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser("list", help="every configured agent and its state (the default)")
    for p in (parser, listing):
        p.add_argument("--live", action="store_true", help="ask Asterisk (QueueStatus) instead of the engine's Redis")
        p.add_argument("--json", action="store_true", help="machine-readable")
    for name, text in (("login", "join every queue of the agent's skills"), ("logout", "leave every queue"),
                       ("pause", "stop ringing the agent (calls in progress go on)"), ("unpause", "ring the agent again")):
        p = actions.add_parser(name, help=text)
        p.add_argument("agent")
        if name == "pause":
            p.add_argument("--reason", default="1", help="a pause reason: its digit or its name (pause_reasons)")


def run(args: argparse.Namespace) -> int:
    settings = load_config(config_dir(args)).settings
    return asyncio.run(_run(args, settings))


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    action = args.action or "list"
    if action == "list" and not args.live:
        seats = await _published(settings)
    else:
        seats, message = await _with_control(settings, action, args)
        if message:
            print(message)
            return 0
    now = time.time()
    rows = [seats.get(agent) or Seat(agent) for agent in settings.agents]
    if args.json:
        print(json.dumps([dict(s.to_json(now), name=settings.agents[s.agent].name) for s in rows], ensure_ascii=False, indent=2))
    else:
        print(_table(rows, settings, now))
    return 0


async def _published(settings: Settings) -> dict[str, Seat]:
    from redis.exceptions import RedisError

    from ivr.store import where
    from queues.store import SeatStore

    store = SeatStore(settings.redis)
    try:
        return {agent: Seat.from_json(data) for agent, data in (await store.all()).items()}
    except (RedisError, OSError) as exc:
        raise UsageError(f"cannot read seats from Redis at {where(settings.redis)}: {exc} (try --live)") from None
    finally:
        await store.close()


async def _with_control(settings: Settings, action: str, args: argparse.Namespace) -> tuple[dict[str, Seat], str]:
    from ivr.ami.client import AmiError
    from ivr.ami.users import manager_client
    from queues.seat_control import SeatControl, SeatError
    from queues.wish_store import SeatWishes

    client = manager_client(settings, settings.ami.seats_username, settings.ami.seats_secret, "IVR_AMI_SEATS_SECRET",
                            error=UsageError)
    wishes = None if action == "list" else SeatWishes(settings.redis)  # every node's (queues/seat_applier.py)
    try:
        await client.connect()
        control = SeatControl(client, settings, wishes)
        if action == "list":
            return await control.status(), ""
        if action == "login":
            return {}, f"{args.agent} logged in to: {', '.join(await control.login(args.agent))}"
        if action == "logout":
            await control.logout(args.agent)
            return {}, f"{args.agent} logged out"
        if action == "pause":
            reason = settings.pause_reasons.get(args.reason, args.reason)
            if reason not in settings.pause_reasons.values():
                known = ", ".join(f"{d} {r}" for d, r in settings.pause_reasons.items())
                raise UsageError(f"unknown pause reason {args.reason!r} (known: {known})")
            await control.pause(args.agent, reason)
            return {}, f"{args.agent} paused ({reason})"
        await control.unpause(args.agent)
        return {}, f"{args.agent} unpaused"
    except (AmiError, SeatError, TimeoutError) as exc:
        raise UsageError(str(exc) or "Asterisk did not answer") from None
    finally:
        client.close()
        if wishes is not None:
            await wishes.close()


def _table(rows: list[Seat], settings: Settings, now: float) -> str:
    lines = [f"{'agent':<12} {'state':<14} {'reason':<8} {'calls':>5}  queues (penalty)"]
    for seat in rows:
        state = seat.state(now)
        data: dict[str, Any] = seat.to_json(now)
        configured = memberships(settings.agents[seat.agent], settings.queues)
        queues = " ".join(f"{q}({m['penalty']})" for q, m in data["queues"].items()) or \
            "-  (serves " + " ".join(f"{q}({p})" for q, p in configured.items()) + ")"
        calls = sum(m["calls"] for m in data["queues"].values())
        lines.append(f"{seat.agent:<12} {state + ' ' + STATE_LABELS[state]:<14} {data['reason'] or '-':<8} {calls:>5}  {queues}")
    return "\n".join(lines)

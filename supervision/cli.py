"""``ivr supervise AGENT --mode listen|whisper|barge --phone SUPERVISOR``: ring a supervisor's
phone into an agent's live call (supervision/ami.py), as the supervise AMI user
(``IVR_AMI_SUPERVISE_SECRET``). The audit log gets the line (who, which seat and call, mode,
phone, when) before anything is dialed: if it cannot be written, nothing is. On a cluster the node
holding the call rings the phone, whichever host runs the command. The operator who runs it holds
the deployment's secrets, so, like an admin, may ring any configured phone (a console supervisor
only their own or a shared one: supervision.model.check_phone_owner)."""

from __future__ import annotations

import argparse
import asyncio
import json

from ivr.cli import UsageError, config_dir
from ivr.config import audit_log_path, load_config
from supervision.model import MODES

HELP = "listen to, whisper to or barge into an agent's live call from a supervisor's phone (监听/耳语/强插)"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("agent", help="the agent whose call to join (a configured seat)")
    p.add_argument("--mode", required=True, choices=list(MODES), help="listen: hear both; whisper: the agent hears you, "
                   "the caller does not; barge: all three talk")
    p.add_argument("--phone", required=True, metavar="SUPERVISOR", help="the supervisor phone to ring (supervision.supervisors)")
    p.add_argument("--json", action="store_true", help="machine-readable")


def run(args: argparse.Namespace) -> int:
    from ivr.commands.common import os_reader
    from ivr.store import redis_client
    from supervision.ami import SupervisionError, request_of, supervise
    from tickets.audit import AuditError, action, write_audit

    settings = load_config(config_dir(args)).settings
    try:
        request = request_of(settings, args.agent, args.mode, args.phone)
    except SupervisionError as exc:
        raise UsageError(str(exc)) from None

    async def audit(line: dict[str, str]) -> None:
        try:
            write_audit(audit_log_path(), action(os_reader(), "supervise", line))
        except AuditError as exc:
            raise SupervisionError(f"not dialed: the audit log cannot be written ({exc})") from None

    async def go() -> dict[str, str]:
        redis = redis_client(settings.redis, timeout=5.0, name="ivr-supervise")
        try:
            return (await supervise(request, settings, redis, audit)).to_json()
        finally:
            await redis.aclose()

    try:
        result = asyncio.run(go())
    except SupervisionError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        where = f" on node {result['node']}" if result["node"] else ""
        print(f"{request.supervisor}'s phone rings: answered, it joins {request.agent}'s call {result['linkedid']}{where} "
              f"({request.mode}, {request.label})")
    return 0

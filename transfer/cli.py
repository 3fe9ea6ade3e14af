"""``ivr transfer CALL TARGET``: hand a call in progress to a sub-center, an emergency line or
another platform, through the engine (transfer/ami.py), as the transfer AMI user
(``IVR_AMI_TRANSFER_SECRET``). The result lands on the ticket like every transfer."""

from __future__ import annotations

import argparse
import asyncio
import json

from ivr.cli import UsageError, config_dir
from ivr.config import load_config

HELP = "transfer a call in progress (ticket number, linkedid or agent) to a sub-center, 110/119/120/122 or a platform"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("call", metavar="TICKET_OR_LINKEDID", help="the call: its ticket number, its linkedid, or the agent talking on it")
    p.add_argument("target", help="a sub-center number or name (12360, customs), an emergency number (110), a platform (province)")
    p.add_argument("--three-party", action="store_true",
                   help="keep caller and agent on the line: the target joins them (三方通话, a ConfBridge)")
    p.add_argument("--json", action="store_true", help="machine-readable")


def run(args: argparse.Namespace) -> int:
    from transfer.ami import TransferError, transfer_call

    settings = load_config(config_dir(args)).settings
    try:
        result = asyncio.run(transfer_call(args.call, args.target, settings=settings, three_party=args.three_party))
    except TransferError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        how = {"blind": f"blind transfer from {result.agent}", "redirect": "the caller redirected",
               "bridge": f"three-party bridge with {result.agent}"}[result.method]
        print(f"call {result.linkedid} (ticket {result.ticket or '-'}) → {result.target}: {result.number} via {result.trunk} "
              f"({how}); the result lands on the ticket")
    return 0

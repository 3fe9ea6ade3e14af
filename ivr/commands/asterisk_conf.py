"""`ivr asterisk-conf render`: write the complete Asterisk configuration for a deployment."""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path

from ivr.asterisk_conf import RenderOptions, write
from ivr.cli import UsageError, config_dir
from ivr.config import load_config

HELP = "render Asterisk's configuration (pjsip, queues, manager, dialplan) from config/"


def register(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    r = sub.add_parser("render", help="write all .conf files into a directory")
    r.add_argument("--out", required=True, type=Path, help="target directory, e.g. /etc/asterisk")
    r.add_argument("--engine-timeout", type=int, default=None,
                   help="seconds before the dialplan takes a call back (default: agi.call_timeout + 30)")


def run(args: argparse.Namespace) -> int:
    loaded = load_config(config_dir(args))
    secret = loaded.settings.ami.secret
    if secret is None:
        raise UsageError("missing AMI secret: set IVR_AMI_SECRET (the engine must use the same one); "
                         f"for a fresh one: {secrets.token_urlsafe(18)}")
    seats = loaded.settings.ami.seats_secret
    if seats is None:
        print("note: no IVR_AMI_SEATS_SECRET: no seat-control AMI user (`ivr agents login` needs one); "
              "agents log in from their softphones")
    files = write(loaded.settings, RenderOptions(ami_secret=secret.get_secret_value(),
                                                 seats_ami_secret=seats.get_secret_value() if seats else None,
                                                 engine_timeout=args.engine_timeout), args.out)
    print(f"wrote {len(files)} files to {args.out}")
    return 0

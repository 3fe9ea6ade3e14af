"""`ivr asterisk-conf render|apply`: write the complete Asterisk configuration for a deployment;
``apply`` also makes the running Asterisk read it (calls stay up)."""

from __future__ import annotations

import argparse
import asyncio
import secrets
from pathlib import Path

from ivr.asterisk_conf import RenderOptions, reload_modules, write
from ivr.asterisk_conf.kamctl import RUN_DIR
from ivr.cli import UsageError, config_dir
from ivr.config import Settings, load_config

HELP = "render Asterisk's configuration (pjsip, queues, manager, dialplan) from config/; apply it"


def register(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    r = sub.add_parser("render", help="write all .conf files into a directory")
    a = sub.add_parser("apply", help="render into Asterisk's directory, then reload its endpoints, queues "
                                     "and dialplan (needs IVR_AMI_ADMIN_SECRET)")
    for q in (r, a):
        q.add_argument("--out", required=True, type=Path, help="target directory, e.g. /etc/asterisk")
        q.add_argument("--engine-timeout", type=int, default=None,
                       help="seconds before the dialplan takes a call back (default: agi.call_timeout + 30)")
        q.add_argument("--node", default=None,
                       help="with a cluster section: the node whose Asterisk files to write (docs/cluster.md)")
        q.add_argument("--kamailio-dir", default="/etc/kamailio",
                       help="where the proxies read dispatcher.list (default: /etc/kamailio)")
        q.add_argument("--kamailio-run", default=RUN_DIR, metavar="DIR",
                       help=f"where the proxies open their control sockets (default: {RUN_DIR})")


def run(args: argparse.Namespace) -> int:
    settings = load_config(config_dir(args)).settings
    files = render_to(settings, args.out, args.engine_timeout, node=args.node, kamailio_dir=args.kamailio_dir,
                      kamailio_run_dir=args.kamailio_run)
    print(f"wrote {len(files)} files to {args.out}")
    if args.action == "apply":
        asyncio.run(apply(settings))
        print("Asterisk reloaded: " + ", ".join(("endpoints", "queues", "dialplan")))
    return 0


def render_to(settings: Settings, out: Path, engine_timeout: int | None = None, *, node: str | None = None,
              kamailio_dir: str = "/etc/kamailio", kamailio_run_dir: str = RUN_DIR) -> list[Path]:
    return write(settings, render_options(settings, engine_timeout, node=node, kamailio_dir=kamailio_dir,
                          kamailio_run_dir=kamailio_run_dir), out)


def render_options(settings: Settings, engine_timeout: int | None = None, *, node: str | None = None,
                   kamailio_dir: str = "/etc/kamailio", kamailio_run_dir: str = RUN_DIR) -> RenderOptions:
    """What a deployment renders with: the AMI users whose secrets the environment holds."""
    secret = settings.ami.secret
    if secret is None:
        raise UsageError("missing AMI secret: set IVR_AMI_SECRET (the engine must use the same one); "
                         f"for a fresh one: {secrets.token_urlsafe(18)}")
    seats, admin, transfer = settings.ami.seats_secret, settings.ami.admin_secret, settings.ami.transfer_secret
    status = settings.ami.status_secret
    if seats is None:
        print("note: no IVR_AMI_SEATS_SECRET: no seat-control AMI user (`ivr agents login` needs one); "
              "agents log in from their softphones")
    return RenderOptions(ami_secret=secret.get_secret_value(),
                         seats_ami_secret=seats.get_secret_value() if seats else None,
                         admin_ami_secret=admin.get_secret_value() if admin else None,
                         transfer_ami_secret=transfer.get_secret_value() if transfer else None,
                         status_ami_secret=status.get_secret_value() if status else None,
                         engine_timeout=engine_timeout, node=node, kamailio_dir=kamailio_dir,
                         kamailio_run_dir=kamailio_run_dir)


async def apply(settings: Settings) -> None:
    """Reload the running Asterisk's endpoints, queues and dialplan through the reload user."""
    from ivr.ami.client import AmiError
    from ivr.ami.users import manager_client

    client = manager_client(settings, settings.ami.admin_username, settings.ami.admin_secret, "IVR_AMI_ADMIN_SECRET",
                            error=UsageError)
    try:
        await client.connect()
        await reload_modules(client)
    except (AmiError, TimeoutError) as exc:
        raise UsageError(f"Asterisk was not reloaded: {exc}") from None
    finally:
        client.close()

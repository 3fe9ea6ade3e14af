"""`ivr testbed build|up|down|status`: a real, isolated Asterisk + Redis on loopback."""

from __future__ import annotations

import argparse
import sys

from ivr.cli import UsageError, config_dir
from testbed.bed import TestBed, running_beds
from testbed.processes import pid_alive
from testbed.runners import TestbedError, select_runner

HELP = "start/stop an isolated Asterisk + Redis test bed (rootfs or Docker runner)"


def register(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("build", help="build the Asterisk rootfs/image if missing (cached)")
    up = sub.add_parser("up", help="start a test bed and print how to reach it")
    up.add_argument("--name", help="bed name (default: generated)")
    up.add_argument("--engine", action="store_true", help="also start `ivr serve` against it")
    down = sub.add_parser("down", help="stop a test bed and remove its files")
    down.add_argument("name", nargs="?", help="bed name (default: all beds)")
    sub.add_parser("status", help="list running test beds")
    for sp in sub.choices.values():
        sp.add_argument("--runner", choices=["rootfs", "docker"], help="default: docker if available, else rootfs")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except TestbedError as exc:
        raise UsageError(str(exc)) from None


def _run(args: argparse.Namespace) -> int:
    if args.action == "build":
        select_runner(args.runner).ensure(progress)
        return 0
    if args.action == "up":
        bed = TestBed(config_dir(args), name=args.name, runner=args.runner)
        st = bed.start(progress)
        if args.engine:
            bed.start_engine()
        print(f"test bed {st.name} is up ({st.runner} runner)")
        print(f"  SIP      udp 127.0.0.1:{st.sip_port}   (citizen calls from 127.0.0.1:{st.pstn_port})")
        print(f"  AMI      tcp 127.0.0.1:{st.ami_port}   (users: ivr, testbed; secrets in the bed's state file)")
        print(f"  FastAGI  tcp 127.0.0.1:{st.agi_port}" + ("   (engine running)" if args.engine else ""))
        print(f"  Redis    {st.redis_url}")
        print(f"  files    {st.dir}")
        print(f"stop it with: ivr testbed down {st.name}")
        return 0
    if args.action == "down":
        names = [args.name] if args.name else [b.name for b in running_beds()]
        for name in names:
            TestBed.attach(name).stop()
            print(f"test bed {name} stopped")
        return 0
    beds = running_beds()
    if not beds:
        print("no test beds running")
    for b in beds:
        alive = "running" if pid_alive(b.asterisk_pid) else "DEAD"
        print(f"{b.name}  {alive}  sip:{b.sip_port} ami:{b.ami_port} agi:{b.agi_port} redis:{b.redis_port}  {b.dir}")
    return 0

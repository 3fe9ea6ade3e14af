"""`ivr demo`: the whole system on loopback, one real call, the result printed.

Starts a test bed (Asterisk + Redis) and the engine, brings three general seats online as
SIP softphones (sipp), and places a citizen's SIP call to 12345 that presses 1 during the
greeting. Prints what the caller heard, the keys the engine read, the route, the seat that
answered and the call record Redis holds; then tears everything down.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from ivr.store import keyspace, redis_client
from ivr.cli import UsageError, config_dir
from ivr.core.masking import mask_number
from testbed.runners import TestbedError

HELP = "run Asterisk + Redis + engine on loopback and place one demo call (sipp)"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dial", default="12345", help="number the citizen dials")
    p.add_argument("--keys", default="1", help="keys pressed during the greeting")
    p.add_argument("--runner", choices=["rootfs", "docker"])
    p.add_argument("--bed", metavar="NAME", help="call into a bed started by `ivr testbed up` (left running)")
    p.add_argument("--stay", action=argparse.BooleanOptionalAction, default=None,
                   help="keep everything up after the call, for the web console, until Enter or Ctrl-C "
                        "(default: when run on a terminal)")


def say(message: str) -> None:
    print(message, flush=True)


def run(args: argparse.Namespace) -> int:
    from testbed.bed import TestBed
    from testbed.console import private_config
    from testbed.processes import pid_alive

    try:
        if args.bed:
            bed = TestBed.attach(args.bed)
            assert bed.state is not None
            if not (bed.state.engine_pid and pid_alive(bed.state.engine_pid)):
                bed.start_engine()
            console_sign_in(bed)
            return asyncio.run(_call(bed, args.dial, args.keys))
        # a copy of config/: what is published from the demo's console stays in the demo
        deployment = tempfile.TemporaryDirectory(prefix="ivr-demo-config-")
        bed = TestBed(private_config(Path(config_dir(args)), Path(deployment.name)), runner=args.runner)
        say("starting Asterisk + Redis on loopback ...")
        try:
            bed.start(lambda m: print(m, file=sys.stderr, flush=True))
            bed.start_engine()
            st = bed.state
            assert st is not None
            say(f"engine up: FastAGI 127.0.0.1:{st.agi_port}, SIP 127.0.0.1:{st.sip_port}")
            console_sign_in(bed)
            rc = asyncio.run(_call(bed, args.dial, args.keys))
            if args.stay if args.stay is not None else sys.stdin.isatty():
                _stay(bed)
            return rc
        finally:
            bed.stop()
            deployment.cleanup()
            say("test bed stopped; nothing left running")
    except TestbedError as exc:
        raise UsageError(str(exc)) from None


def console_sign_in(bed) -> None:
    """A demo admin with a password made now, printed once (it lives in the bed's Redis only)."""
    import secrets

    from testbed.console import add_user

    st = bed.state
    password = secrets.token_urlsafe(12)
    add_user(st.redis_url, "demo-admin", "admin", password=password)
    say(f"web console: http://127.0.0.1:{st.web_port}/   sign in as demo-admin, password {password}")


def _stay(bed) -> None:
    say("")
    say(f"the console stays up at http://127.0.0.1:{bed.state.web_port}/ — press Enter (or Ctrl-C) to stop")
    try:
        sys.stdin.readline()
    except KeyboardInterrupt:
        pass


async def _call(bed, dialed: str, presses: str) -> int:
    from ivr.ami.client import AmiClient
    from testbed.calls import Phones, call_record
    from testbed.sipp import keys

    st = bed.state
    ami = AmiClient("127.0.0.1", st.ami_port, "testbed", st.testbed_ami_secret)
    await ami.connect()
    store = redis_client(st.redis_url)
    with tempfile.TemporaryDirectory(prefix="ivr-demo-") as work:
        phones = Phones(bed, Path(work))
        try:
            caller = phones.next_caller()
            await phones.seats("general", caller)
            connected = ami.wait_for("AgentConnect", lambda e: e.get("CallerIDNum") == caller)
            hung_up = ami.wait_for("Hangup", lambda e: e.get("CallerIDNum") == caller)
            say(f"citizen {mask_number(caller)} dials {dialed} and presses {presses or 'nothing'} ...")
            sipp, _ = await phones.call(dialed, keys(presses), hold_ms=3000, caller=caller)
            agent = await asyncio.wait_for(connected, 60)
            await asyncio.wait_for(hung_up, 30)
            rc = await sipp.wait(30)
            record = await call_record(store, caller)
        finally:
            await phones.close()
            await store.aclose()
            ami.close()
    say("")
    say("what the engine did:")
    for visit in record["visits"]:
        say(f"  {visit['at']:6.1f}s  {visit['flow']}/{visit['node']:<10} {visit['type']:<6} → {visit['outcome']}")
    say(f"  keys read: {' '.join(record['keys']) or '-'}   variables: {record['variables']}")
    say(f"  route: {record['route']}")
    say(f"seat {agent['Interface']} answered from queue {agent['Queue']} after {agent['HoldTime']} s in queue")
    say(f"call record in Redis: {keyspace.call(record['unique_id'])} (flow version {record['flow_version']})")
    ok = rc == 0 and not record["hung_up"]
    say("demo call OK" if ok else f"demo call FAILED (sipp exit {rc})\n{sipp.output()}")
    return 0 if ok else 1

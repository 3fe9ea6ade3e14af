"""`ivr testbed build|up|down|status`: a real, isolated Asterisk + Redis on loopback."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from ivr.cli import UsageError, config_dir
from ivr.config import load_config, state_dir
from testbed.bed import TestBed, running_beds
from testbed.cluster import ClusterBed, running_clusters
from testbed.console import private_config
from testbed.processes import pid_alive
from testbed.runners import TestbedError, select_runner

HELP = "start/stop an isolated Asterisk + Redis test bed (rootfs or Docker runner)"


def register(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("build", help="build the Asterisk rootfs/image if missing (cached)")
    up = sub.add_parser("up", help="start a test bed and print how to reach it")
    up.add_argument("--name", help="bed name (default: generated)")
    up.add_argument("--engine", action="store_true", help="also start `ivr serve` against it")
    up.add_argument("--engines", type=int, default=0, metavar="N",
                    help="start N engines serving the node (docs/cluster.md); implies --engine")
    up.add_argument("--sentinel", action="store_true",
                    help="Redis as a master, two replicas and three Sentinels (short down-after, for tests)")
    up.add_argument("--nodes", type=int, default=0, metavar="N",
                    help="a cluster: N Asterisk nodes (each with its engines) behind two Kamailio proxies, "
                         "one Redis for all (docs/cluster.md, the SIP edge); implies --engine")
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
        if args.engines < 0:
            raise UsageError("--engines: a number of engines, at least 1")
        engines = max(args.engines, 1)
        if args.nodes:
            return cluster_up(config_dir(args), args.nodes, engines, args.sentinel, args.name, args.runner)
        bed = TestBed(config_dir(args), name=args.name, runner=args.runner, engines=engines, sentinel=args.sentinel)
        if args.engine or args.engines:  # its console publishes: into a copy, never the checkout's files
            bed.loaded = load_config(deployment(bed.loaded.config_dir, bed.name))
        try:
            st = bed.start(progress)
        except BaseException:
            shutil.rmtree(deployments() / bed.name, ignore_errors=True)
            raise
        if args.engine or args.engines:
            bed.start_engines()
        print(f"test bed {st.name} is up ({st.runner} runner)")
        print(f"  SIP      udp 127.0.0.1:{st.sip_port}   (citizen calls from 127.0.0.1:{st.pstn_port})")
        print(f"  AMI      tcp 127.0.0.1:{st.ami_port}   (users: ivr, testbed; secrets in the bed's state file)")
        running = "   (engine running)" if args.engine or args.engines else ""
        for index, port in enumerate(st.engine_ports or [st.agi_port]):
            print(f"  FastAGI  tcp 127.0.0.1:{port}{running}" + (f"   console http://127.0.0.1:{st.web_ports[index]}/"
                                                                  if st.web_ports else ""))
        if st.sentinel_ports:
            print(f"  Redis    master 127.0.0.1:{st.redis_ports[0]}, replicas "
                  + ", ".join(f"127.0.0.1:{p}" for p in st.redis_ports[1:]))
            print("  Sentinel service ivr at " + ", ".join(f"127.0.0.1:{p}" for p in st.sentinel_ports))
        else:
            print(f"  Redis    {st.redis_url}")
        print(f"  files    {st.dir}")
        if args.engine or args.engines:
            print(f"  config   {st.config_dir}   (the bed's copy: its console publishes there)")
        print(f"stop it with: ivr testbed down {st.name}")
        return 0
    if args.action == "down":
        cluster_names = {c.name for c in running_clusters()}
        if args.name in cluster_names or not args.name:
            for name in [args.name] if args.name else sorted(cluster_names):
                ClusterBed.attach(name).stop()  # its nodes' beds with it
                print(f"cluster bed {name} stopped")
            if args.name:
                return 0
        names = [args.name] if args.name else [b.name for b in running_beds()]
        for name in names:
            TestBed.attach(name).stop()
            shutil.rmtree(deployments() / name, ignore_errors=True)
            print(f"test bed {name} stopped")
        return 0
    beds, clusters = running_beds(), running_clusters()
    if not beds and not clusters:
        print("no test beds running")
    for c in clusters:
        proxies = " ".join(f"{n}:{port}({'up' if pid and pid_alive(pid) else 'DOWN'})"
                           for n, port, pid in zip(c.proxy_names, c.proxy_ports, c.proxy_pids or [0] * len(c.proxy_names)))
        print(f"{c.name}  cluster of {len(c.beds)} node(s): {' '.join(c.node_names)}  proxies {proxies}  "
              f"carrier from 127.0.0.1:{c.carrier_port}  {c.dir}")
    for b in beds:
        alive = "running" if pid_alive(b.asterisk_pid) else "DEAD"
        node = f"  (node of {b.cluster})" if b.cluster else ""
        print(f"{b.name}  {alive}  sip:{b.sip_port} ami:{b.ami_port} agi:{b.agi_port} redis:{b.redis_port}  {b.dir}{node}")
    return 0


def deployments() -> Path:
    return state_dir() / "deployments"


def deployment(config: Path, name: str) -> Path:
    """Bed ``name``'s own copy of ``config`` (prompts/ beside it, shared as in ``ivr demo``); its
    ``config/``. ``down`` removes it."""
    root = deployments() / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    return private_config(config, root)


def cluster_up(config: str, nodes: int, engines: int, sentinel: bool, name: str | None, runner: str | None) -> int:
    """``up --nodes N``: the cluster bed with every engine running; prints how to reach it."""
    cluster = ClusterBed(config, nodes=nodes, engines=engines, sentinel=sentinel, name=name, runner=runner)
    st = cluster.start(progress)
    try:
        cluster.start_engines()
    except BaseException:
        cluster.stop()
        raise
    print(f"cluster bed {st.name} is up ({st.runner} runner): {nodes} node(s), {engines} engine(s) each")
    for proxy, port in zip(st.proxy_names, st.proxy_ports):
        print(f"  proxy    {proxy}  udp 127.0.0.1:{port}   (the carrier's calls from 127.0.0.1:{st.carrier_port})")
    for node, bed in zip(st.node_names, cluster.nodes):
        b = bed.state
        assert b
        print(f"  node     {node}  SIP 127.0.0.1:{b.sip_port}  AMI 127.0.0.1:{b.ami_port}  FastAGI "
              + ", ".join(str(p) for p in b.engine_ports or [b.agi_port]) + f"  files {b.dir}")
    redis = cluster.nodes[0].state
    assert redis
    print("  Redis    " + (f"Sentinel service ivr at {', '.join(f'127.0.0.1:{p}' for p in redis.sentinel_ports)}"
                           if redis.sentinel_ports else redis.redis_url) + " (every engine)")
    print(f"  topology {st.dir}/cluster.yaml")
    print(f"stop it with: ivr testbed down {st.name}")
    return 0

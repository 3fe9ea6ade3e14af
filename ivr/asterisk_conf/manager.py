"""manager.conf: the AMI users (engine, seats, reload, transfer, test bed) and what each may read
and do."""

from __future__ import annotations

import ipaddress
from typing import Iterable

from ivr.config import Settings
from ivr.asterisk_conf.options import RenderOptions
from ivr.core.conftext import secret, value, word
from queues.callback import ACTION_PREFIX as CALLBACK_ACTION_PREFIX

LOOPBACK = ("127.0.0.1/255.255.255.255", "::1/128")


def engine_permits(s: Settings) -> tuple[str, ...]:
    """Where the engines' AMI users may log in from: loopback (the CLI on the node, engines on
    its host), and the hosts of this node's engines (``agi.engines``; a cluster node's own list,
    ivr/asterisk_conf/node.py), so no other node's engine reaches this node's AMI. Each address
    rebuilt by ``ipaddress``: nothing but an address gets into the file (an engine named by host
    name, possible on a single node, adds nothing: an ACL takes addresses)."""
    return _permits(s.agi.engines)


def cluster_permits(s: Settings) -> tuple[str, ...]:
    """Where the users that act on any node may log in from: every engine host of the cluster
    (this node's alone without one). The transfer user, since a desk served by any engine
    transfers a call whichever node holds it (transfer/where.py); the reload and status users,
    since ``ivr reload --asterisk`` and ``ivr cluster status`` (and the console's 集群 page) on
    one engine host reload and ask every node over its own AMI. None of them reads events or can
    place a call; the engine and seat users, which follow and change this node's calls and seats,
    stay with this node's engines (:func:`engine_permits`)."""
    if s.cluster is None:
        return engine_permits(s)
    return _permits([*s.agi.engines, *(e for node in s.cluster.nodes.values() for e in node.engines)])


def _permits(engines: Iterable[str]) -> tuple[str, ...]:
    permits = list(LOOPBACK)
    for engine in engines:
        try:
            address = ipaddress.ip_address(engine.rpartition(":")[0].strip("[]"))
        except ValueError:
            continue
        mask = "255.255.255.255" if address.version == 4 else "128"
        permit = f"{address.compressed}/{mask}"
        if not address.is_loopback and permit not in permits:
            permits.append(permit)
    return tuple(permits)

# Manager classes the engine reads: call progress (call), queue and agent events (agent), the
# dialplan's UserEvents (user: transfer results, ratings), FullyBooted (system). Deliberately not
# `agi` or `dialplan`: every AGI command would emit two events; nor `cdr`: calls the engine missed
# are finished from the CDR file.
ENGINE_READ = "call,agent,system,user"
# Write classes are what an AMI user may *do*. `reporting` is the query actions the call tracker
# reconciles with (CoreShowChannels, CoreStatus, QueueStatus) and nothing that changes a call;
# `originate` places queued callbacks (ivr/callback.py). Never `system`: Asterisk lets an
# Originate run System() or other shell-reaching applications only for a user who also has it.
ENGINE_WRITE = "reporting,originate"
# The events the call tracker handles (tracking.tracker.HANDLED_EVENTS), as a whitelist filter on
# the engine's AMI session: Asterisk drops the rest before they are sent (and parsed).
ENGINE_EVENTS = (
    "FullyBooted", "Newchannel", "Newstate", "Hangup", "HangupRequest", "SoftHangupRequest", "DialBegin", "DialEnd",
    "QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "AgentCalled", "AgentRingNoAnswer",
    "AgentConnect", "AgentComplete", "BlindTransfer", "AttendedTransfer", "UserEvent",
    # seats (queues.agents.AgentBoard): log-in, log-out, pause, device state of each member
    "QueueMemberAdded", "QueueMemberRemoved", "QueueMemberPause", "QueueMemberStatus",
    # the trunks' OPTIONS probes: a gateway reachable or not (transfer/trunk_watch.py)
    "ContactStatus",
)
# ... and the answer to the callback worker's own Originates (ivr/callback.py): a stand-in Asterisk
# refused (its maxcalls) is heard at once. Only those: the ActionID the worker set, not every
# OriginateResponse of the node. A second filter line: Asterisk passes an event matching any.
ORIGINATE_FILTER = f"Event: OriginateResponse.*ActionID: {CALLBACK_ACTION_PREFIX}"
# The seat-control user (`ivr agents`, later the console): adds, removes and pauses queue
# members (write `agent`: QueueAdd, QueueRemove, QueuePause) and nothing else; it reads no
# events (QueueStatus answers its own action).
SEATS_WRITE = "agent"
# The reload user (`ivr reload --asterisk`, `ivr asterisk-conf apply`): the Reload action only
# needs `system` (or `config`, which could rewrite the dialplan through UpdateConfig: never);
# without `originate` it cannot place a call, so not a System() either. It reads no events.
ADMIN_WRITE = "system"
# The transfer user (`ivr transfer`, the console's transfer button: transfer/ami.py): Status to
# find the call's channels, Setvar, BlindTransfer, Atxfer and Redirect (into the generated
# transfer contexts), all of class `call`; no `originate` (a three-party bridge dials its emergency leg
# from the dialplan), no `system`, and it reads no events.
TRANSFER_WRITE = "call"
# The status user (`ivr cluster status`): CoreStatus and CoreShowChannels, both of class `reporting`,
# which holds only actions that read (no Originate, Reload, Setvar, Command); it reads no events.
STATUS_WRITE = "reporting"
# The supervise user (`ivr supervise`, the console's 监听/耳语/强插: supervision/ami.py): Originate
# only (class `originate`), which Asterisk grants nothing else with: no Redirect, Hangup, Setvar,
# Status (class `call`), no System()/Exec()/AGI() as the originated application (those need
# `system` too, manager.c is_originate_app_permitted), and it reads no events. What it sends is
# built from configured names only (supervision/model.py); Asterisk itself cannot narrow an
# Originate's destination per user (docs/supervision.md, "What the AMI user can do").
SUPERVISE_WRITE = "originate"


def manager_conf(s: Settings, o: RenderOptions) -> str:
    engines, everywhere = engine_permits(s), cluster_permits(s)

    def user(name: str, password: tuple[str, str], read: str, write: str, events: tuple[str, ...] = (),
             permits: tuple[str, ...] = engines, filters: tuple[str, ...] = ()) -> str:
        # both address families: an IPv4-only deny leaves every IPv6 client permitted; denies first:
        # Asterisk applies every rule in order and the last one that matches decides (ast_apply_ha)
        allowed = "".join(f"permit = {p}\n" for p in permits)
        text = f"""
[{word(name)}]
secret = {secret(*password)}
deny = 0.0.0.0/0.0.0.0
deny = ::/0
{allowed}read = {read}
write = {write}
writetimeout = 1000
"""
        if events:
            # a regular expression on the whole event (legacy filter syntax, which 22 still reads)
            text += f"eventfilter = Event: ({'|'.join(events)})\n"
        text += "".join(f"eventfilter = {f}\n" for f in filters)
        return text

    text = f"""[general]
enabled = yes
bindaddr = {value(s.ami.host)}
port = {s.ami.port}
displayconnects = no
timestampevents = yes
"""
    if o.disabled_events:
        text += f"disabledevents = {','.join(o.disabled_events)}\n"
    text += user(s.ami.username, (o.ami_secret, "IVR_AMI_SECRET"), ENGINE_READ, ENGINE_WRITE, ENGINE_EVENTS,
                 filters=(ORIGINATE_FILTER,))
    if o.seats_ami_secret:
        text += user(s.ami.seats_username, (o.seats_ami_secret, "IVR_AMI_SEATS_SECRET"), "", SEATS_WRITE)
    if o.admin_ami_secret:
        text += user(s.ami.admin_username, (o.admin_ami_secret, "IVR_AMI_ADMIN_SECRET"), "", ADMIN_WRITE,
                     permits=everywhere)
    if o.transfer_ami_secret:
        text += user(s.ami.transfer_username, (o.transfer_ami_secret, "IVR_AMI_TRANSFER_SECRET"), "", TRANSFER_WRITE,
                     permits=everywhere)
    if o.supervise_ami_secret:
        text += user(s.ami.supervise_username, (o.supervise_ami_secret, "IVR_AMI_SUPERVISE_SECRET"), "", SUPERVISE_WRITE,
                     permits=everywhere)
    if o.status_ami_secret:
        text += user(s.ami.status_username, (o.status_ami_secret, "IVR_AMI_STATUS_SECRET"), "", STATUS_WRITE,
                     permits=everywhere)
    if o.testbed_ami_secret:
        text += user("testbed", (o.testbed_ami_secret, "the test bed's AMI secret"), "all", "all", permits=LOOPBACK)
    return text

"""manager.conf: the AMI users (engine, seats, reload, transfer, test bed) and what each may read
and do."""

from __future__ import annotations

from ivr.config import Settings
from ivr.asterisk_conf.options import RenderOptions
from ivr.core.conftext import secret, value, word

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
    "FullyBooted", "Newchannel", "Hangup", "HangupRequest", "SoftHangupRequest", "DialBegin", "DialEnd",
    "QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "AgentCalled", "AgentRingNoAnswer",
    "AgentConnect", "AgentComplete", "BlindTransfer", "AttendedTransfer", "UserEvent",
    # seats (queues.agents.AgentBoard): log-in, log-out, pause, device state of each member
    "QueueMemberAdded", "QueueMemberRemoved", "QueueMemberPause", "QueueMemberStatus",
)
# The seat-control user (`ivr agents`, later the console): adds, removes and pauses queue
# members (write `agent`: QueueAdd, QueueRemove, QueuePause) and nothing else; it reads no
# events (QueueStatus answers its own action).
SEATS_WRITE = "agent"
# The reload user (`ivr reload --asterisk`, `ivr asterisk-conf apply`): the Reload action only
# needs `system` (or `config`, which could rewrite the dialplan through UpdateConfig: never);
# without `originate` it cannot place a call, so not a System() either. It reads no events.
ADMIN_WRITE = "system"
# The transfer user (`ivr transfer`, the console's transfer button: transfer/ami.py): Status to
# find the call's channels, Setvar, BlindTransfer and Redirect (into the generated transfer
# contexts), all of class `call`; no `originate` (a three-party bridge dials its emergency leg
# from the dialplan), no `system`, and it reads no events.
TRANSFER_WRITE = "call"
def manager_conf(s: Settings, o: RenderOptions) -> str:
    def user(name: str, password: tuple[str, str], read: str, write: str, events: tuple[str, ...] = ()) -> str:
        # both address families: an IPv4-only deny leaves every IPv6 client permitted
        text = f"""
[{word(name)}]
secret = {secret(*password)}
deny = 0.0.0.0/0.0.0.0
deny = ::/0
permit = 127.0.0.1/255.255.255.255
permit = ::1/128
read = {read}
write = {write}
writetimeout = 1000
"""
        if events:
            # a regular expression on the whole event (legacy filter syntax, which 22 still reads)
            text += f"eventfilter = Event: ({'|'.join(events)})\n"
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
    text += user(s.ami.username, (o.ami_secret, "IVR_AMI_SECRET"), ENGINE_READ, ENGINE_WRITE, ENGINE_EVENTS)
    if o.seats_ami_secret:
        text += user(s.ami.seats_username, (o.seats_ami_secret, "IVR_AMI_SEATS_SECRET"), "", SEATS_WRITE)
    if o.admin_ami_secret:
        text += user(s.ami.admin_username, (o.admin_ami_secret, "IVR_AMI_ADMIN_SECRET"), "", ADMIN_WRITE)
    if o.transfer_ami_secret:
        text += user(s.ami.transfer_username, (o.transfer_ami_secret, "IVR_AMI_TRANSFER_SECRET"), "", TRANSFER_WRITE)
    if o.testbed_ami_secret:
        text += user("testbed", (o.testbed_ami_secret, "the test bed's AMI secret"), "all", "all")
    return text

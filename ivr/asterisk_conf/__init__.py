"""Render the Asterisk configuration: static files from ``asterisk-conf/`` plus the files that
depend on ``config/`` (agents, queues, trunks, ports, secrets), generated here so there is one
source of truth. Used by ``ivr asterisk-conf render`` and by the test bed.

Protocol code: it knows Asterisk's file formats, not hotline rules.
"""

from __future__ import annotations

import grp
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ivr.config import ConfigError, Settings, agent_secret
from ivr.conftext import UnsafeValue, arg, comment, guard, secret, value, word
from ivr.secret_policy import agent_secret_variable
from queues.model import memberships
from ivr.transfers import closed_variable
from transfer.control import TRANSFERS_CONTEXT, targets
from transfer.model import EMERGENCY_TRUNK, EmergencyTrunk, Platform, SubCenter

if TYPE_CHECKING:
    from ivr.ami.client import AmiClient

STATIC_DIR = Path(__file__).resolve().parents[2] / "asterisk-conf"
STATIC_FILES = (
    "modules.conf",
    "extensions.conf",
    "pjsip.conf",
    "cdr.conf",
    "cdr_custom.conf",
    "cdr_manager.conf",
    "logger.conf",
    "musiconhold.conf",
    "queuerules.conf",
    "features.conf",
    "indications.conf",
    "stasis.conf",
    "cel.conf",
    "acl.conf",
    "udptl.conf",
    "pjproject.conf",
    "ccss.conf",
    "confbridge.conf",
)
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
# The transfer user (`ivr transfer`, the console's transfer button: ivr/transfers.py): Status to
# find the call's channels, Setvar, BlindTransfer and Redirect (into the generated transfer
# contexts), all of class `call`; no `originate` (a three-party bridge dials its emergency leg
# from the dialplan), no `system`, and it reads no events.
TRANSFER_WRITE = "call"
# What a change in config/ touches: endpoints (agents, trunks), queues, the dialplan. Reloading
# them keeps calls up and logged-in agents logged in (dynamic members).
RELOAD_MODULES = ("res_pjsip.so", "app_queue.so", "pbx_config.so")
# Events nobody in production reads, yet Asterisk builds them for every AGI command and
# dialplan step: about half of its CPU per AGI command (benchmarks/README.md).
QUIET_EVENTS = ("AGIExecStart", "AGIExecEnd", "Newexten", "VarSet")


def asterisk_queue(name: str) -> str:
    """Asterisk's name for a configured queue (``[general]`` is reserved in queues.conf)."""
    return f"q-{name}"


def config_queue(asterisk_name: str) -> str:
    """Inverse of :func:`asterisk_queue`."""
    return asterisk_name.removeprefix("q-")


@dataclass(frozen=True)
class Directories:
    """Where this Asterisk keeps its files, as seen by the Asterisk process."""

    etc: str = "/etc/asterisk"
    varlib: str = "/var/lib/asterisk"
    data: str = "/usr/share/asterisk"
    db: str = "/var/lib/asterisk"
    run: str = "/var/run/asterisk"
    spool: str = "/var/spool/asterisk"
    log: str = "/var/log/asterisk"
    keys: str = "/usr/share/asterisk/keys"
    modules: str = "/usr/lib/x86_64-linux-gnu/asterisk/modules"


@dataclass(frozen=True)
class RenderOptions:
    ami_secret: str
    directories: Directories = Directories()
    agi_url: str = ""  # default: agi://<agi.host>:<agi.port>/ivr
    engine_timeout: int | None = None  # dialplan's limit; default: agi.call_timeout + 30 s
    agent_secrets: dict[str, str] = field(default_factory=dict)  # overrides the environment
    seats_ami_secret: str | None = None  # adds the seat-control user (ami.seats_username)
    admin_ami_secret: str | None = None  # adds the reload user (ami.admin_username)
    transfer_ami_secret: str | None = None  # adds the transfer user (ami.transfer_username)
    testbed_ami_secret: str | None = None  # adds a read-all AMI user for tests only
    disabled_events: tuple[str, ...] = QUIET_EVENTS  # a test bed that traces AGI passes ()
    system_name: str = "ivr12345"


def render(settings: Settings, options: RenderOptions) -> dict[str, str]:
    """All configuration files, by file name. Every value from outside goes through the checked
    writer (:mod:`ivr.conftext`); a value that would break a file's syntax is a ConfigError."""
    try:
        guard(settings, options)
        return _render(settings, options)
    except UnsafeValue as exc:
        raise ConfigError(f"refused to render Asterisk's configuration: {exc}") from None


def _testbed_dialplan() -> str:
    # Only a test bed sets testbed_ami_secret, and it runs from a source checkout: the test bed
    # package is not installed with the engine, so it is imported here, not at module level
    # (WP4 replaces this with RenderOptions.extra_files passed in by the test bed).
    from testbed.dialplan import testbed_dialplan

    return testbed_dialplan()


def _render(settings: Settings, options: RenderOptions) -> dict[str, str]:
    files = {name: (STATIC_DIR / name).read_text(encoding="utf-8") for name in STATIC_FILES}
    files.update(
        {
            "asterisk.conf": _asterisk_conf(options),
            "manager.conf": _manager_conf(settings, options),
            "pjsip_generated.conf": _pjsip(settings, options),
            "rtp.conf": f"[general]\nrtpstart={settings.sip.rtp_start}\nrtpend={settings.sip.rtp_end}\n",
            "queues.conf": _queues_conf(settings),
            "extensions_globals.conf": _globals(settings, options),
            "extensions_queues.conf": _queue_dialplan(settings),
            "extensions_agents.conf": _agents_dialplan(settings),
            "extensions_callback.conf": _callback_keys(settings),
            "extensions_numbers.conf": _numbers_dialplan(settings),
            "extensions_agent_transfers.conf": _transfer_targets(settings),
            "extensions_transfers.conf": _transfer_targets(settings),  # the same in [ivr-transfers]
            "extensions_bridge.conf": _transfer_targets(settings, goto="dial,1"),
            "extensions_testbed.conf": _testbed_dialplan() if options.testbed_ami_secret else "",
            "extensions_out_of_scope.conf": _out_of_scope_dialplan(settings),
            "features_out_of_scope.conf": _out_of_scope_features(settings),
        }
    )
    return files


SECRET_FILES = ("manager.conf", "pjsip_generated.conf")


def write(settings: Settings, options: RenderOptions, out_dir: Path) -> list[Path]:
    """Write every file atomically. Files holding secrets are 0640 and, when an ``asterisk``
    group exists (Debian's Asterisk runs as that user), owned by that group."""
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        group = grp.getgrnam("asterisk").gr_gid if os.geteuid() == 0 else -1
    except KeyError:
        group = -1
    written = []
    for name, text in render(settings, options).items():
        path = out_dir / name
        tmp = path.with_name(f".{name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640 if name in SECRET_FILES else 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        if name in SECRET_FILES and group >= 0:
            os.chown(tmp, -1, group)
        os.replace(tmp, path)
        written.append(path)
    return written


def _asterisk_conf(o: RenderOptions) -> str:
    d = o.directories
    # Not `[directories](!)`: the stock template marker makes Asterisk ignore these paths.
    return f"""[directories]
astetcdir => {d.etc}
astmoddir => {d.modules}
astvarlibdir => {d.varlib}
astdbdir => {d.db}
astkeydir => {d.keys}
astdatadir => {d.data}
astagidir => {d.data}/agi-bin
astspooldir => {d.spool}
astrundir => {d.run}
astlogdir => {d.log}
astsbindir => /usr/sbin

[options]
systemname = {o.system_name}
defaultlanguage = zh
transmit_silence = yes
hideconnect = yes
"""


def _manager_conf(s: Settings, o: RenderOptions) -> str:
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


MEDIA = "disallow=all\nallow=ulaw,alaw\nrtp_symmetric=yes\ndirect_media=no\nlanguage=zh\n"
WILDCARDS = ("0.0.0.0", "::", "[::]", "")


def media(s: Settings) -> str:
    """MEDIA with the address RTP binds to and puts in SDP. Without one, Asterisk binds RTP to
    0.0.0.0 and, setting up every call leg's RTCP, looks up the host's own name and then
    A.ROOT-SERVERS.NET (acl.c ``ast_find_ourip``): on a network without DNS each lookup
    stalls the call for seconds, and under load calls are lost."""
    address = s.sip.media_address or s.sip.bind
    if address in WILDCARDS:
        raise ConfigError(
            f"sip.bind is {s.sip.bind or 'empty'}: set sip.media_address to this server's address for RTP "
            "(otherwise Asterisk looks up its own host name and A.ROOT-SERVERS.NET on every call)"
        )
    return MEDIA + f"media_address={address}\nbind_rtp_to_media_address=yes\n"


def endpoint(name: str, context: str, identify_by: str, media: str = MEDIA) -> str:
    """A PJSIP endpoint with its AOR of the same name: an agent's phone or a trunk."""
    return f"""[{word(name)}]
type=endpoint
context={word(context)}
identify_by={identify_by}
dtmf_mode=rfc4733
aors={name}
{media}"""


def _pjsip(s: Settings, o: RenderOptions) -> str:
    rtp = media(s)
    parts = [
        f"""[transport-udp]
type=transport
protocol=udp
bind={value(s.sip.bind)}:{s.sip.port}
""",
        f"""; Citizens' calls arrive from the carrier gateway, identified by address.
[pstn]
type=endpoint
context=from-pstn
identify_by=ip
dtmf_mode=rfc4733
{rtp}
[pstn]
type=identify
endpoint=pstn
"""
        + "".join(f"match={value(m)}\n" for m in s.sip.pstn_match),
    ]
    if s.sip.pstn_contact:  # calls out to citizens (callbacks) go to the carrier gateway
        parts[1] = parts[1].replace("identify_by=ip\n", "identify_by=ip\naors=pstn\n", 1)
        parts.append(f"[pstn]\ntype=aor\ncontact={value(s.sip.pstn_contact)}\nqualify_frequency=0\n")
    for name, agent in s.agents.items():
        password = o.agent_secrets.get(name) or agent_secret(name)
        if not password:
            # also for a desk phone with a fixed contact: its calls (feature codes, transfers)
            # are identified by user name, which only the password makes true
            raise ConfigError(f"agent {name}: no SIP password (set {agent_secret_variable(name)})")
        block = f"; seat: {comment(agent.name)}\n" + endpoint(name, "from-agents", "username", rtp)
        # transfers (REFER, and atxfer's number) land among the transfer targets only: no feature
        # code, and no catch-all that would keep an attended transfer waiting for more digits
        block += f"""set_var=TRANSFER_CONTEXT={TRANSFERS_CONTEXT}
auth={name}-auth

[{name}-auth]
type=auth
auth_type=userpass
username={name}
password={secret(password, agent_secret_variable(name))}
"""
        block += f"""
[{name}]
type=aor
max_contacts=1
remove_existing=yes
qualify_frequency=0
"""
        if agent.contact:
            block += f"contact={value(agent.contact)}\n"
        parts.append(block)
    trunks: list[tuple[str, SubCenter | EmergencyTrunk | Platform]] = list(s.subcenters.items())
    if s.emergency is not None:
        trunks.append((EMERGENCY_TRUNK, s.emergency))
    contexts = {name: "from-pstn" for name, _ in trunks}
    trunks += list(s.platforms.items())  # their calls to us arrive in [from-platform] (ticket header)
    for name, sub in trunks:
        parts.append(
            f"; trunk: {comment(sub.title)}\n"
            + endpoint(name, contexts.get(name, "from-platform"), "ip", rtp)
            + f"""
[{name}]
type=aor
contact=sip:{value(sub.host)}:{sub.port}

[{name}]
type=identify
endpoint={name}
match={value(sub.host)}:{sub.port}
"""
        )
    return "\n".join(parts)


# Mandarin sounds of the position and estimated-wait announcements (prompts/catalog.yaml).
QUEUE_SOUNDS = {
    "queue-thereare": "ivr12345/queue_position_before",
    "queue-callswaiting": "ivr12345/queue_position_after",
    "queue-holdtime": "ivr12345/queue_wait_before",
    "queue-minutes": "ivr12345/queue_wait_minutes",
    "queue-minute": "ivr12345/queue_wait_minutes",
    "queue-seconds": "ivr12345/queue_wait_seconds",
    "queue-thankyou": "ivr12345/queue_thanks",
}


def _queues_conf(s: Settings) -> str:
    # Members are dynamic (agents log in); persistentmembers keeps them across an Asterisk restart.
    # autofill: every waiting caller rings a free seat at once; without it (app_queue's default)
    # only the head of the queue rings, one call connected at a time (benchmarks/README.md, load)
    text = "[general]\npersistentmembers = yes\nshared_lastcall = yes\nlog_membername_as_agent = yes\nautofill = yes\n"
    for name, q in s.queues.items():
        overflow = q.overflow_queue(name)
        a = q.announce
        text += f"""
; {comment(q.title)}
[{word(asterisk_queue(name))}]
strategy = {q.strategy}
timeout = {q.ring_timeout}
retry = 1
wrapuptime = {q.wrapup}
ringinuse = no
autofill = yes
musicclass = {word(q.music)}
"""
        # A queue with somewhere to overflow to is "empty" without a reachable seat logged in:
        # callers do not join it, and leave it when the last seat goes. The general queue is
        # 7×24: callers always join and stay.
        empty = "unavailable,invalid" if overflow else "no"
        text += f"joinempty = {'yes' if not overflow else empty}\nleavewhenempty = {empty}\n"
        text += f"announce-frequency = {a.every}\nmin-announce-frequency = {min(a.every, 15)}\n"
        # Asterisk's zh SayNumber reads 1 as the 幺 of digit strings (11 → 十幺): positions are
        # said up to 9 (第二位 … 第九位); further back, only the estimated wait
        text += f"announce-position = {'limit' if a.position else 'no'}\nannounce-position-limit = 9\n"
        text += f"announce-holdtime = {'yes' if a.wait else 'no'}\nannounce-round-seconds = 0\n"
        text += "announce-to-first-user = no\n"
        if q.callback:  # the offer, then every `after` s; its key leaves the queue for [ivr-queue-keys]
            text += (f"context = ivr-queue-keys\nperiodic-announce = ivr12345/callback_offer\n"
                     f"periodic-announce-startdelay = {max(q.callback.after, 1)}\n"
                     f"periodic-announce-frequency = {max(q.callback.after, 15)}\n")
        else:
            text += "periodic-announce-frequency = 0\n"
        text += "".join(f"{key} = {sound}\n" for key, sound in QUEUE_SOUNDS.items())
    return text


def _queue_dialplan(s: Settings) -> str:
    """One extension per configured queue: its wait limit, then its overflow queue, which the
    call joins keeping its place in time order (``ivr-queue-place``)."""
    out = []
    for name, q in s.queues.items():
        wait = str(q.max_wait) if q.max_wait else ""
        overflow = q.overflow_queue(name)
        # option c: when the agent hangs up, the caller stays (QUEUESTATUS=CONTINUE) for the
        # satisfaction survey
        key, after = (q.callback.key, str(q.callback.after)) if q.callback else ("", "")
        lines = [f"exten => {word(name)},1,Set(CDR(ivr_queue)={name})",
                 f" same => n,Set(IVR_IN_QUEUE={name})",
                 f" same => n,Set(IVR_CALLBACK_KEY={key})",  # see [ivr-callback-request]
                 f" same => n,Set(IVR_CALLBACK_AFTER={after})",
                 " same => n,Gosub(ivr-queue-place,s,1(" + asterisk_queue(name) + "))",
                 f" same => n,Queue({asterisk_queue(name)},tc,,,{wait},,{AGENT_CONNECTED},,${{GOSUB_RETVAL}})",
                 ' same => n,GotoIf($["${QUEUESTATUS}" = "CONTINUE"]?ivr-survey,s,1)']
        # Queue() returns when max_wait ran out, no seat was logged in, or the caller left:
        # never end a call there.
        if overflow:
            lines.append(f" same => n,UserEvent(IvrOverflow,Queue: {name},Overflow: {overflow},Reason: ${{QUEUESTATUS}})")
            lines.append(f" same => n,Goto({overflow},1)")
        else:
            lines.append(" same => n,Hangup()")
        out.append("\n".join(lines))
    return "\n".join(out) + "\n"


def _numbers_dialplan(s: Settings) -> str:
    """The dialed numbers this platform answers: exactly those of the number plan."""
    return "".join(f"exten => {word(number)},1,Goto(ivr-answer,${{EXTEN}},1) ; {entry.mode}: {comment(entry.title)}\n"
                   for number, entry in sorted(s.numbers.items()))


def _transfer_targets(s: Settings, *, goto: str = "ivr-route,transfer,1") -> str:
    """The transfer targets (:func:`transfer.control.targets`), one extension each, through the
    same route as the IVR's transfers (result and fallback on the ticket). Included in
    ``[from-agents]`` (an agent dials, blind-transfers by REFER or consults for an attended
    transfer) and ``[ivr-transfers]`` (the engine); with ``goto="dial,1"``, in ``[ivr-bridge]``
    (three-party bridges)."""
    out = []
    for key, target in sorted(targets(s).items()):
        lines = [f"exten => {word(key)},1,NoOp(transfer to {arg(target.title)})"]
        variables = {k: v for k, v in target.route.variables().items() if k != "IVR_ROUTE"}
        sc = s.subcenters.get(target.route.trunk)
        if sc is not None and sc.hours is not None:
            # published by the engine (ivr/transfers.py HoursPublisher); empty without it: dialed
            variables["IVR_TRANSFER_CLOSED"] = f"${{{closed_variable(target.route.trunk)}}}"
        lines += [f" same => n,Set({k}={arg(v) if k != 'IVR_TRANSFER_CLOSED' else v})" for k, v in variables.items()]
        out.append("\n".join([*lines, f" same => n,Goto({goto})"]) + "\n")
    return "".join(out)


def _callback_keys(s: Settings) -> str:
    """The keys that leave a queue for a callback (queues.conf ``context``): only those, so any
    other key leaves nobody's place."""
    keys = sorted({q.callback.key for q in s.queues.values() if q.callback})
    return "".join(f"exten => {key},1,Goto(ivr-callback-request,{key},1)\n" for key in keys)


def _agents_dialplan(s: Settings) -> str:
    """Per agent, the queues they join at log-in (with their penalties) and leave at log-out;
    the softphone's feature codes in ``[from-agents]`` call these with the caller's own
    authenticated endpoint, so nobody logs another seat in."""
    login, logout = ["[ivr-agent-login]"], ["[ivr-agent-logout]"]
    for agent_name, agent in s.agents.items():
        joins = memberships(agent, s.queues)
        login.append(f"exten => {word(agent_name)},1,NoOp({arg(agent.name)})")
        logout.append(f"exten => {agent_name},1,NoOp({arg(agent.name)})")
        for qname, penalty in joins.items():
            login.append(f" same => n,AddQueueMember({asterisk_queue(qname)},PJSIP/{agent_name},{penalty},,{agent_name})")
            logout.append(f" same => n,RemoveQueueMember({asterisk_queue(qname)},PJSIP/{agent_name})")
        login.append(" same => n,Return()")
        logout.append(" same => n,Return()")
    login.append("exten => i,1,Return()")
    logout.append("exten => i,1,Return()")
    return "\n".join(login) + "\n\n" + "\n".join(logout) + "\n"


def fastagi_url(s: Settings) -> str:
    return f"agi://{s.agi.host}:{s.agi.port}/ivr"


def process_agi_script() -> str:
    """The ``ivr-agi`` console script of this installation."""
    return os.path.join(sys.prefix, "bin", "ivr-agi")


def _globals(s: Settings, o: RenderOptions) -> str:
    url = o.agi_url or (fastagi_url(s) if s.agi.entry == "fastagi" else process_agi_script())
    timeout = o.engine_timeout or int(s.agi.call_timeout) + 30
    return (
        f"IVR_AGI_URL={value(url)}\nIVR_ENV_FILE={arg(s.agi.env_file)}\nIVR_ENGINE_TIMEOUT={timeout}\n"
        f"IVR_SURVEY={int(s.tickets.satisfaction)}\nIVR_SURVEY_TIMEOUT={s.tickets.satisfaction_timeout}\n"
        + "".join(f"IVR_PAUSE_REASON_{word(digit)}={arg(reason)}\n" for digit, reason in s.pause_reasons.items())
    )


AGENT_CONNECTED = "ivr-agent-connected"  # Queue()'s gosub on the agent's channel as it is connected


def _out_of_scope_features(s: Settings) -> str:
    """The agent's feature keys for out-of-scope matters (features.conf [applicationmap]): keyed
    on the softphone during a call, they run the explanation on the caller's channel (peer)."""
    return "".join(f"oos_{word(name)} => {word(m.agent_key)},peer,Gosub(ivr-out-of-scope,{name},1)\n"
                   for name, m in s.out_of_scope.items() if m.agent_key)


def _out_of_scope_dialplan(s: Settings) -> str:
    """Only agents' channels get the feature keys (DYNAMIC_FEATURES, set as the queue connects
    them): a caller keying the same digits does nothing. On the caller's channel, the engine
    hears which matter (UserEvent: the ticket), then the caller hears the explanation."""
    from ivr.prompts.catalog import SOUND_PREFIX

    features = "#".join(f"oos_{name}" for name, m in s.out_of_scope.items() if m.agent_key)
    lines = [f"[{AGENT_CONNECTED}]", f"exten => s,1,Set(DYNAMIC_FEATURES={features})", " same => n,Return()", "",
             "[ivr-out-of-scope]"]
    for name, m in s.out_of_scope.items():
        lines += [f"exten => {word(name)},1,UserEvent(IvrOutOfScope,Matter: {name},Agent: ${{BRIDGEPEER}})",
                  f" same => n,Playback({SOUND_PREFIX}/{word(m.prompt)})",
                  " same => n,Return()"]
    return "\n".join(lines) + "\n"


async def reload_modules(ami: "AmiClient") -> None:
    """Make a running Asterisk read the files :func:`write` rendered (calls stay up)."""
    for module in RELOAD_MODULES:
        await ami.action({"Action": "Reload", "Module": module})


def copy_static(out_dir: Path) -> None:
    """Copy only the static files (used when building the Docker image)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in STATIC_FILES:
        shutil.copy2(STATIC_DIR / name, out_dir / name)

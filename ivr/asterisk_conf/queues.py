"""queues.conf and the queues' dialplan: one Asterisk queue per configured queue, its wait limit
and overflow, the agents' log-in/log-out memberships and the callback keys."""

from __future__ import annotations

from ivr.asterisk_conf.out_of_scope import AGENT_CONNECTED
from ivr.asterisk_conf.recording import queue_step
from ivr.config import Settings
from ivr.core.conftext import arg, comment, word
from queues.model import memberships
from queues.sessions import LEADER_QUEUE


def asterisk_queue(name: str) -> str:
    """Asterisk's name for a configured queue (``[general]`` is reserved in queues.conf)."""
    return f"q-{name}"


def config_queue(asterisk_name: str) -> str:
    """Inverse of :func:`asterisk_queue`."""
    return asterisk_name.removeprefix("q-")


# Mandarin sounds of the position and estimated-wait announcements (prompts/catalog.yaml).
QUEUE_SOUNDS = {
    "queue-thereare": "ivr12345/queue_position_before",
    "queue-callswaiting": "ivr12345/queue_position_after",
    "queue-holdtime": "ivr12345/queue_wait_before",
    "queue-minutes": "ivr12345/queue_wait_minutes",
    "queue-minute": "ivr12345/queue_wait_minutes",
    "queue-seconds": "ivr12345/queue_wait_seconds",
    "queue-thankyou": "ivr12345/queue_thanks",
    # the head of the queue hears it every announce.every s while no seat is free (announce-to-first-user
    # covers only a ringing seat); app_queue's own is English
    "queue-youarenext": "ivr12345/queue_you_are_next",
}


def queues_conf(s: Settings) -> str:
    # Members are dynamic (agents log in); persistentmembers keeps them across an Asterisk restart.
    # autofill: every waiting caller rings a free seat at once; without it (app_queue's default)
    # only the head of the queue rings, one call connected at a time (benchmarks/README.md, load)
    text = "[general]\npersistentmembers = yes\nshared_lastcall = yes\nlog_membername_as_agent = yes\nautofill = yes\n"
    if s.cluster is not None:  # across this node's queues, the caller who waited longest first
        text += "force_longest_waiting_caller = yes\n"
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
        if name == LEADER_QUEUE and overflow:
            # a leader seat is paused on a break or held for another session (非本场次): callers go on
            # to the overflow queue at once instead of waiting max_wait for nobody
            empty = "paused," + empty
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


def queue_dialplan(s: Settings) -> str:
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
                 queue_step(s, name),  # recorded or not, and the notice (extensions_recording.conf)
                 " same => n,Gosub(ivr-queue-place,s,1(" + asterisk_queue(name) + "))",
                 f" same => n,Queue({asterisk_queue(name)},tc,,,{wait},,{AGENT_CONNECTED},,${{GOSUB_RETVAL}})",
                 ' same => n,ExecIf($["${QUEUESTATUS}" = "CONTINUE"]?Gosub(ivr-recording,seat-gone,1))',
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


def callback_keys(s: Settings) -> str:
    """The keys that leave a queue for a callback (queues.conf ``context``): only those, so any
    other key leaves nobody's place."""
    keys = sorted({q.callback.key for q in s.queues.values() if q.callback})
    return "".join(f"exten => {key},1,Goto(ivr-callback-request,{key},1)\n" for key in keys)


def agents_dialplan(s: Settings) -> str:
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

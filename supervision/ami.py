"""Live supervision through the engine: ``ivr supervise`` and the console's 监听 / 耳语 / 强插
buttons call :func:`supervise`.

It checks the request against the configuration (supervision.model), finds the agent's call
(supervision.store: nothing to spy on is refused here, before any AMI action), has the caller
write the audit line, and, as the supervise AMI user (write class ``originate`` only, no
events), originates a call to the supervisor's phone into ``[ivr-supervise]`` at
``<mode>-<agent>``; when the supervisor answers, that extension's ChanSpy joins the agent's call.
On a cluster the Originate goes to the AMI of the node that holds the call (its linkedid names
it), whichever engine asks; that node rings the supervisor's phone through the proxies, where it
registers like a seat's (docs/cluster.md "Supervision across nodes").
"""

from __future__ import annotations

import itertools
import logging
import os
from dataclasses import asdict, dataclass
from typing import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ivr.ami.client import AmiClient
from ivr.ami.users import manager_client, narrow_session
from ivr.config import Settings
from supervision.model import CONTEXT, SupervisionError, SupervisionRequest, check_request
from supervision.store import talking_call, tell_agent
from transfer.control import TransferError
from transfer.where import node_amis, node_of_linkedid

__all__ = ["SupervisionError", "SupervisionResult", "call_node", "request_of", "supervise", "supervise_client"]

log = logging.getLogger("ivr.supervision")
ACTION_PREFIX = "ivr-supervise-"
_actions = itertools.count(1)


@dataclass(frozen=True)
class SupervisionResult:
    agent: str
    mode: str
    supervisor: str
    linkedid: str
    action_id: str
    node: str = ""  # the cluster node whose Asterisk rang the phone ("" without a cluster)

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def request_of(settings: Settings, agent: str, mode: str, supervisor: str) -> SupervisionRequest:
    """:func:`supervision.model.check_request` against this configuration."""
    return check_request(agent, mode, supervisor, settings.agents, settings.supervision.supervisors)


def supervise_client(settings: Settings, node: str = "") -> AmiClient:
    """An AMI client (not connected) as the supervise user, to ``node`` (a configured node's name;
    "": this engine's own Asterisk); SupervisionError without its secret."""
    at = node_amis(settings)[node] if node else None
    return manager_client(settings, settings.ami.supervise_username, settings.ami.supervise_secret,
                          "IVR_AMI_SUPERVISE_SECRET", error=SupervisionError, at=at)


def call_node(settings: Settings, linkedid: str) -> str:
    """The node whose Asterisk holds the call ``linkedid`` ("" without a cluster): its linkedid
    starts with the node's ``systemname`` (transfer.where). The linkedid is the follower's, read
    from Redis: it only selects one of the configured nodes, never supplies an address."""
    if not node_amis(settings):
        return ""
    try:
        return node_of_linkedid(settings, linkedid)
    except TransferError as exc:
        raise SupervisionError(str(exc)) from None


Audit = Callable[[dict[str, str]], Awaitable[None]]


async def supervise(request: SupervisionRequest, settings: Settings, redis: aioredis.Redis, audit: Audit, *,
                    ami: AmiClient | None = None) -> SupervisionResult:
    """Ring ``request.supervisor``'s phone; answered, it joins ``request.agent``'s call in
    ``request.mode``. Returns once Asterisk queued the call (the phone rings); SupervisionError
    says why nothing was sent, or that Asterisk refused it. ``audit`` writes the line (agent,
    mode, supervisor, the call's linkedid) once the call is found and before anything is sent:
    if it raises, nothing is dialed. ``ami``: a connected supervise client (one is opened and
    closed here when None)."""
    linkedid = await talking_call(redis, request.agent)
    node = call_node(settings, linkedid)  # on a cluster: the node that holds the call spies on it
    await audit({"agent": request.agent, "mode": request.mode, "supervisor": request.supervisor, "linkedid": linkedid,
                 **({"node": node} if node else {})})
    action_id = f"{ACTION_PREFIX}{os.getpid()}-{next(_actions)}"
    supervisor = settings.supervision.supervisors[request.supervisor]
    async with narrow_session(ami, lambda: supervise_client(settings, node), SupervisionError,
                              "Asterisk refused the call to the supervisor") as client:
        await client.action({
            "Action": "Originate", "ActionID": action_id, "Channel": f"PJSIP/{request.supervisor}",
            "Context": CONTEXT, "Exten": request.extension, "Priority": "1", "Async": "true",
            "Timeout": str(settings.supervision.ring_timeout * 1000),
            # what the supervisor's phone shows: the mode and the seat, both from the configuration
            "CallerID": f"{request.label} <{request.agent}>",
        }, as_list=False)  # one response: this user reads no events, so no OriginateResponse follows
    if settings.supervision.notify_agent:
        try:
            await tell_agent(redis, request, linkedid, supervisor.name)
        except (RedisError, OSError) as exc:  # the supervisor is on the way in: no reason to undo that
            log.warning("agent %s is not told of the supervisor on its call (%s): %s", request.agent, request.mode, exc)
    return SupervisionResult(request.agent, request.mode, request.supervisor, linkedid, action_id, node)

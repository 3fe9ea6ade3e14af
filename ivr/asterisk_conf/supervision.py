"""Live supervision in Asterisk's files: the ``[ivr-supervise]``
extensions the supervise AMI user's Originate lands in, one per agent and mode, each running ChanSpy
on that agent's call only.

Which channel is the agent's: every PJSIP channel of an agent's endpoint carries
``SPYGROUP=<agent>`` (``set_var`` in pjsip.py, outgoing calls included), and ChanSpy's ``g()``
compares groups exactly. A channel-name prefix would not do: ``PJSIP/a-b`` is a prefix of
``PJSIP/a-b-c-00000001``, and enforced mode (``e()``) cuts names at the first ``-``. The other
options: ``b`` only a channel in a call, ``E`` the supervisor is hung up when the agent's leg ends,
``S`` nobody to spy on (the agent is not talking) ends it at once rather than waiting. Each
extension first checks that the channel running it is a supervisor phone's (``CHANNEL(endpoint)``).
"""

from __future__ import annotations

import os
from typing import Mapping

from ivr.config import ConfigError, Settings
from ivr.core.conftext import arg, word
from ivr.core.secret_policy import supervisor_secret_variable
from supervision.model import MODES, extension

SUPERVISOR_CONTEXT = "from-supervisors"  # the phones' own calls: nothing but a hang-up (extensions.conf)


def supervise_dialplan(s: Settings) -> str:
    """``[ivr-supervise]``'s extensions (none without a supervisor: nothing can be spied on)."""
    if not s.supervision.supervisors:
        return ""
    # only a supervisor's phone spies: any other channel sent here (a mistake of the engine's) is
    # hung up before ChanSpy. Written out per extension, not a global: a global can be changed
    # at run time by any AMI user with Setvar
    phones = "".join(f' same => n,GotoIf($["${{CHANNEL(endpoint)}}" = "{word(name)}"]?spy)\n'
                     for name in s.supervision.supervisors)
    out = []
    for agent_name, agent in s.agents.items():
        for mode, (options, label) in MODES.items():
            out.append(f"exten => {word(extension(mode, agent_name))},1,NoOp({label} {arg(agent.name)})\n"
                       f"{phones} same => n,Hangup(21)\n"
                       f" same => n(spy),ChanSpy(PJSIP/,{options}bESg({word(agent_name)}))\n"
                       " same => n,Hangup()\n")
    return "".join(out)


def supervisor_password(name: str, secrets: Mapping[str, str], environ: Mapping[str, str] | None = None) -> str:
    """A supervisor phone's SIP password: the render's own, else ``IVR_SUPERVISOR_SECRET_<NAME>``."""
    environ = os.environ if environ is None else environ
    password = secrets.get(name) or environ.get(supervisor_secret_variable(name))
    if not password:
        raise ConfigError(f"supervisor {name}: no SIP password (set {supervisor_secret_variable(name)})")
    return password

"""The agents' feature keys for out-of-scope matters and the explanation they play to the caller."""

from __future__ import annotations

from ivr.config import Settings
from ivr.core.conftext import word

AGENT_CONNECTED = "ivr-agent-connected"  # Queue()'s gosub on the agent's channel as it is connected


def out_of_scope_features(s: Settings) -> str:
    """The agent's feature keys for out-of-scope matters (features.conf [applicationmap]): keyed
    on the softphone during a call, they run the explanation on the caller's channel (peer)."""
    return "".join(f"oos_{word(name)} => {word(m.agent_key)},peer,Gosub(ivr-out-of-scope,{name},1)\n"
                   for name, m in s.out_of_scope.items() if m.agent_key)


def out_of_scope_dialplan(s: Settings) -> str:
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

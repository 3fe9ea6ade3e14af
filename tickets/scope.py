"""Matters 12345 does not accept (001 §8: 不予受理): litigation, arbitration, matters already in
the petition channel, administrative reconsideration, … Each is configured with what the
caller is told (``config/outofscope.yaml``); a flow node (``out_of_scope``) or the agent's
feature key during the call plays it, and the ticket says which matter, by whom, when.
"""

from __future__ import annotations

from pydantic import Field

from ivr.core.strict import Strict

OUT_OF_SCOPE_VAR = "out_of_scope"  # the call variable (in the engine's call record) naming the matter
AGENT_KEY = r"^\*[0-9]{2,3}$"  # a DTMF feature code the agent keys during the call (*8x)


class OutOfScopeMatter(Strict):
    """One kind of matter the hotline does not accept, and how the caller is told."""

    title: str = Field(description="the matter in Mandarin (诉讼, 仲裁, 信访, …)")
    prompt: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="the explanation, a prompt id in prompts/catalog.yaml")
    agent_key: str | None = Field(None, pattern=AGENT_KEY, description="the agent's feature code during a call (e.g. *81)")

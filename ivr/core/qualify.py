"""The SIP OPTIONS probe of a peer (a trunk's gateway, an agent's phone), shared by the features
that configure one: Asterisk asks the peer whether it is there, so a peer that stopped answering
is known down before it is dialed, not after a ring timeout."""

from __future__ import annotations

from pydantic import Field, model_validator

from ivr.core.strict import Strict

__all__ = ["Qualify"]


class Qualify(Strict):
    """How often Asterisk asks a peer whether it is there (SIP OPTIONS): a peer that stops
    answering is known down within ``every`` + ``timeout`` seconds, so a call for it fails at
    once (CHANUNAVAIL) instead of ringing out its ring timeout. ``every: 0`` turns the probe off
    (the peer is then dialed blind)."""

    every: int = Field(10, ge=0, le=300, description="seconds between probes (Asterisk's qualify_frequency)")
    timeout: float = Field(2.0, ge=0.2, le=10.0, description="seconds a probe waits for its answer")

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> "Qualify":
        if self.every and self.timeout >= self.every:
            raise ValueError(f"qualify timeout {self.timeout} s must be shorter than its interval ({self.every} s)")
        return self

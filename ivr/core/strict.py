"""The base of every configuration model, and the name rules they share (one place for both,
so config sections kept in their feature packages — queues/, transfer/ — read like the rest)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

NAME = r"^[a-z][a-z0-9_-]{0,39}$"
NUMBER = r"^[0-9]{3,16}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

"""An AMI stand-in for the callback worker's tests: accepts every action and records it."""

from __future__ import annotations

from typing import Any


class RecordingAmi:
    """Accepts every action and remembers it (what Asterisk would have been asked to do)."""

    connected = booted = True

    def __init__(self) -> None:
        self.actions: list[dict[str, str]] = []

    async def action(self, action: dict[str, str], **_: Any) -> dict[str, str]:
        self.actions.append(action)
        return {"Response": "Success"}

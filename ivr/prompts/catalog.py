"""Prompt ids → text and audio facts. Flows refer to prompts by id only."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Prompt:
    id: str
    text_zh: str
    text_en: str = ""
    duration: float | None = None  # seconds, from the build manifest; None until built
    sound: str = ""  # the name Asterisk plays (relative to sounds/<lang>/, no extension)


@dataclass(frozen=True)
class PromptCatalog:
    prompts: dict[str, Prompt] = field(default_factory=dict)

    def has(self, prompt_id: str) -> bool:
        return prompt_id in self.prompts

    def duration(self, prompt_id: str) -> float | None:
        return self.prompts[prompt_id].duration

    def sound(self, prompt_id: str) -> str:
        p = self.prompts[prompt_id]
        return p.sound or f"ivr12345/{p.id}"

"""What the fake provider bills: a fixed usage per (API, model), the same for every library,
so two libraries' runs of the same scripted call report the same tokens (the mixing tests
rely on it) and a capture can be compared with the ledger token for token.

The figures reproduce the provider usage of the eight captures recorded before this
harness existed (``shared/conventions/captures``): same API, model, stream flag and retry
count give the same usage, so new captures mix with those too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Billed:
    """One answered call's usage, provider-neutral: ``uncached`` input tokens (neither read
    from nor written to the cache), cache reads, cache writes, output tokens (reasoning
    included) and the reasoning part of them."""

    uncached: int
    cache_read: int = 0
    cache_write: int = 0
    output: int = 0
    reasoning: int = 0

    @property
    def prompt(self) -> int:
        """All input tokens (the OpenAI / Gemini ``prompt_tokens`` meaning)."""
        return self.uncached + self.cache_read + self.cache_write


RESPONSE_MODELS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "o4-mini": "o4-mini-2025-04-16",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
}
"""Request alias -> the dated snapshot the provider answers with (Bedrock and Gemini answer
with the model asked for)."""

_BASE: dict[tuple[str, str], Billed] = {
    ("openai.chat", "gpt-4o-mini"): Billed(196, cache_read=1024, output=42),
    ("openai.chat", "gpt-4o"): Billed(70, cache_read=2048, output=77),
    ("openai.chat", "o4-mini"): Billed(617, output=300, reasoning=256),
    ("openai.responses", "gpt-4o-mini"): Billed(191, cache_read=1024, output=42),
    ("openai.responses", "o4-mini"): Billed(617, output=300, reasoning=256),
    ("openai.embeddings", "text-embedding-3-small"): Billed(38),
    ("anthropic.messages", "claude-sonnet-4-5"): Billed(70, cache_read=3000, cache_write=500, output=120),
    ("anthropic.messages", "claude-haiku-4-5"): Billed(48, cache_write=1200, output=60),
    ("aws.converse", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"): Billed(
        82, cache_read=2000, cache_write=400, output=110
    ),
    ("aws.converse", "amazon.nova-lite-v1:0"): Billed(310, output=55),
    ("aws.invoke", "anthropic.claude-3-5-haiku-20241022-v1:0"): Billed(64, cache_write=900, output=70),
    ("google.generate_content", "gemini-2.5-flash"): Billed(240, cache_read=2048, output=180, reasoning=128),
    ("google.generate_content", "gemini-2.0-flash"): Billed(410, output=66),
}

_VARIANTS: dict[tuple[str, str, bool, int], Billed] = {
    # (api, model, stream, retry_count): the earlier captures' prompts differed slightly.
    ("openai.chat", "gpt-4o-mini", True, 0): Billed(195, cache_read=1024, output=42),
    ("anthropic.messages", "claude-sonnet-4-5", True, 0): Billed(69, cache_read=3000, cache_write=500, output=120),
    ("anthropic.messages", "claude-sonnet-4-5", False, 1): Billed(66, cache_read=3000, cache_write=500, output=120),
}

DEFAULT = Billed(100, output=20)
"""Any other model: billed, but with no cache and no reasoning."""


def billed(api: str, model: str, stream: bool, retry_count: int) -> Billed:
    """The usage the fake provider answers (and bills) for one successful call."""
    found = _VARIANTS.get((api, model, stream, min(retry_count, 1)))
    return found or _BASE.get((api, model), DEFAULT)


def response_model(model: str) -> str:
    return RESPONSE_MODELS.get(model, model)

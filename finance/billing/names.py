"""Names on a bill against names in the ledger: providers and models.

Bills and spans name the same model differently: ``gpt-4o-2024-08-06`` (OpenAI usage),
``claude-sonnet-4-5-20250929`` (Anthropic), ``us.anthropic.claude-3-7-sonnet-20250219-v1:0``
(a Bedrock model id on a span), ``USE1-Claude4.6Sonnet-input-tokens`` (a CUR usage type).
``model_key`` reduces each to the same key: vendor and region prefixes, version and date
suffixes dropped, camel case split, then the words and numbers sorted, so
``Claude4.6Sonnet`` and ``claude-sonnet-4-6`` both become ``4-6-claude-sonnet``. Both sides
of a reconciliation use this one function.
"""

from __future__ import annotations

import functools
import re

from otelspend.finance.billing.lines import UsageKind

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_BEDROCK_PREFIX = re.compile(
    r"^(?:(?:us|eu|apac|global|us-gov|ca|jp|au)\.)?(?:anthropic|amazon|meta|mistral|cohere|ai21|deepseek|openai|qwen|writer)\."
)
_SUFFIXES = (
    re.compile(r"-v\d+(?::\d+)?$"),  # Bedrock model versions: -v1:0, -v2
    re.compile(r"@\d{8}$"),  # Vertex snapshots: @20241022
    re.compile(r"-\d{4}-\d{2}-\d{2}$"),  # OpenAI snapshots: -2024-08-06
    re.compile(r"-\d{8}$"),  # Anthropic snapshots: -20250929
    re.compile(r"-\d{3}$"),  # Vertex versions: -001
    re.compile(r"-\d{4}$"),  # MMDD snapshots: gpt-4-0613, Azure meters' gpt-4o-0806
)
_TOKENS = re.compile(r"[a-z]+|\d+")


@functools.lru_cache(maxsize=65_536)
def model_key(name: str) -> str:
    """The key two model names must share to be the same model for reconciliation ('' for none)."""
    text = name.strip()
    if not text:
        return ""
    text = text.rsplit("/", 1)[-1]  # openai/gpt-4o, publishers/google/models/gemini-2.5-pro
    text = _CAMEL.sub("-", text).lower()
    text = _BEDROCK_PREFIX.sub("", text)
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            stripped = suffix.sub("", text)
            if stripped != text and stripped:
                text, changed = stripped, True
    return "-".join(sorted(_TOKENS.findall(text)))


_FOCUS_SERVICES: tuple[tuple[str, str], ...] = (
    ("bedrock", "aws.bedrock"),
    ("azure openai", "azure.ai.openai"),
    ("azure ai", "azure.ai.openai"),
    ("cognitive services", "azure.ai.openai"),
    ("foundry", "azure.ai.openai"),
    ("vertex", "gcp.vertex_ai"),
    ("gemini", "gcp.gemini"),
    ("generative language", "gcp.gemini"),
)
_FOCUS_PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "amazon web services": "aws.bedrock",
    "aws": "aws.bedrock",
    "microsoft": "azure.ai.openai",
    "google cloud": "gcp.vertex_ai",
    "google": "gcp.vertex_ai",
    "mistral ai": "mistral_ai",
    "cohere": "cohere",
}


def focus_provider(provider: str, service: str) -> str:
    """The ledger's provider name for a FOCUS row (ServiceProviderName / ProviderName, ServiceName).

    The service decides first (an Azure bill resells OpenAI models as ``azure.ai.openai``, the
    name Azure's instrumentations put on spans); then the provider; else the provider name
    lower-cased with spaces as underscores.
    """
    service_text = service.strip().lower()
    for needle, name in _FOCUS_SERVICES:
        if needle in service_text:
            return name
    provider_text = provider.strip().lower()
    return _FOCUS_PROVIDERS.get(provider_text, "_".join(provider_text.split()))


_TOKEN_SUFFIXES: tuple[tuple[re.Pattern[str], UsageKind], ...] = (
    (re.compile(r"-cache-read-input-token-count$", re.I), UsageKind.CACHED_INPUT),
    (re.compile(r"-cache-write-input-token-count$", re.I), UsageKind.CACHE_WRITE_5M),
    (re.compile(r"-(?:mantle-)?input-tokens?(?:-.*)?$", re.I), UsageKind.UNCACHED_INPUT),
    (re.compile(r"-(?:mantle-)?output-tokens?(?:-.*)?$", re.I), UsageKind.OUTPUT),
)
_REGION = re.compile(r"^[A-Z]{2,4}\d?-")
_TIER_WORDS = {"batch": "batch", "flex": "flex", "priority": "priority", "provisioned": "provisioned"}
_MARKERS = {"cross", "region", "global", "geo", "latency", "optimized", "standard", "inference", "on", "demand"}


@functools.lru_cache(maxsize=65_536)
def parse_usage_type(usage_type: str) -> tuple[str, UsageKind, str] | None:
    """``USE1-Claude4.6Sonnet-input-tokens`` -> (``Claude4.6Sonnet``, uncached_input, tier); None
    when it is not a Bedrock token usage type."""
    for pattern, kind in _TOKEN_SUFFIXES:
        match = pattern.search(usage_type)
        if match is None:
            continue
        middle = _REGION.sub("", usage_type[: match.start()])
        words = middle.split("-")
        tier = next((_TIER_WORDS[w.lower()] for w in words if w.lower() in _TIER_WORDS), "")
        model = "-".join(w for w in words if w and w.lower() not in _MARKERS and w.lower() not in _TIER_WORDS)
        return model, kind, tier
    return None

"""Charge kinds: what part of a call (or a share of a pool) an export row charges for."""

from __future__ import annotations

from dataclasses import dataclass

from otelspend.finance.export.units import GPU_MICROSECONDS, REQUESTS, SHARES, TOKENS, BaseUnit


@dataclass(frozen=True)
class ChargeKind:
    """A charge kind: its FOCUS SkuMeter, consumed unit and the ledger component it reads."""

    key: str
    meter: str
    """SkuMeter: the functionality being metered."""
    describes: str
    """ChargeDescription text after the model name."""
    unit: BaseUnit


KINDS: tuple[ChargeKind, ...] = (
    ChargeKind("uncached_input", "Input Tokens", "input tokens at the input rate", TOKENS),
    ChargeKind("cached_input", "Cached Input Tokens", "input tokens read from the prompt cache", TOKENS),
    ChargeKind("cache_write", "Cache Write Tokens", "input tokens written to the prompt cache", TOKENS),
    ChargeKind("output", "Output Tokens", "output tokens", TOKENS),
    ChargeKind("reasoning", "Reasoning Tokens", "reasoning tokens priced apart from output", TOKENS),
    ChargeKind("request_fee", "Requests", "per-request fees", REQUESTS),
    ChargeKind("compute", "GPU Time", "GPU time of a self-hosted model", GPU_MICROSECONDS),
    ChargeKind("tool", "Tool Calls", "tool call fees", REQUESTS),
    ChargeKind("retrieval", "Retrieval Queries", "retrieval query fees", REQUESTS),
    ChargeKind("allocated_share", "Allocated Share", "share of a shared-cost pool", SHARES),
    ChargeKind("unallocated_share", "Unallocated Share", "part of a shared-cost pool no consumer took", SHARES),
    ChargeKind("unitemized", "Unitemized Cost", "cost stored without a breakdown by component", REQUESTS),
)
BY_KEY: dict[str, ChargeKind] = {kind.key: kind for kind in KINDS}

LEDGER_KINDS: tuple[str, ...] = (
    "uncached_input", "cached_input", "cache_write", "output", "reasoning", "request_fee", "compute", "unitemized",
    "tool", "retrieval",
)  # fmt: skip
"""The kinds the ledger query returns, by its kind index (1..10).

Model calls give the first eight. Charges (spans a rate-card entry priced on attributes, issue
14's ``call_role = 'charge'``) give ``tool`` or ``retrieval`` for their fee when their
``cost_kind`` says so, ``request_fee`` for any other kind's fee, and ``compute`` for GPU or CPU
time. ``allocated_share`` and ``unallocated_share`` rows come from an ``AllocationSource`` (see
``allocated.py``). ``unitemized``: the part of a call's cost its components do not account for,
quantity one call; otelspend's pricer always itemizes, so only spans written some other way (an
imported or synthetic ledger) have it."""

"""Pricing views: the calls the ledger could not price, and the rate cards in force."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import genai_prices

from otelspend.api.query import usd
from otelspend.api.window import Window, rfc3339
from otelspend.clickhouse.queries import spans as span_queries
from otelspend.enrich.genai_prices_card import SOURCE
from otelspend.enrich.pricing import PriceBook, Unpriced
from otelspend.enrich.ratecard import CardEntry
from otelspend.record import FEMTO_PER_USD

_TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")


def unpriced(store: Any, window: Window, limit: int = 100) -> dict[str, Any]:
    """Unpriced calls by (provider, model, reason) with their token volume.

    Calls are counted by their own start time in ``[from, to)`` (not their run's). ``unpriced``
    holds the ``limit`` groups with most calls; ``totals`` adds up every group's calls, runs
    and tokens (first and last seen over all of them), ``total_groups`` counts the groups and
    ``truncated`` says whether some are not listed.
    """
    rows = []
    table: tuple[Any, ...] = (0, 0, 0, 0, 0, 0, 0, 0, None, None)
    for row in store.rows(*span_queries.unpriced(store.database, window.start_ns, window.end_ns, limit)):
        provider, model, reason, calls, *tokens, first, last, runs, sample = row[: -len(span_queries.UNPRICED_TOTALS)]
        table = row[-len(span_queries.UNPRICED_TOTALS) :]
        rows.append(
            {
                "provider": provider,
                "model": model,
                "reason": reason,
                "calls": calls,
                "runs": runs,
                **dict(zip(_TOKENS, tokens, strict=True)),
                "first_seen": rfc3339(int(first)),
                "last_seen": rfc3339(int(last)),
                "sample_run_id": sample,
            }
        )
    groups, calls, runs, *tokens, first, last = table
    totals = {
        "calls": int(calls),
        "runs": int(runs),
        **{name: int(value) for name, value in zip(_TOKENS, tokens, strict=True)},
        "first_seen": rfc3339(int(first)) if first is not None else None,
        "last_seen": rfc3339(int(last)) if last is not None else None,
    }
    return {
        **window.describe(),
        "unpriced": rows,
        "totals": totals,
        "total_groups": int(groups),
        "truncated": int(groups) > len(rows),
    }


def rate_cards(book: PriceBook, quote: tuple[str, str, int] | None = None) -> dict[str, Any]:
    """The rate cards in force: genai-prices (the default) and the user card entries, in
    match order; with ``quote = (provider, model, at_ns)``, the price that would apply."""
    card = book.card
    answer: dict[str, Any] = {
        "default": {"source": SOURCE, "package": "genai-prices", "version": genai_prices.__version__},
        "user_card": None,
    }
    if card is not None:
        answer["user_card"] = {
            "path": str(card.path) if card.path else None,
            "entries": [_entry(e) for e in card.entries],
        }
    if quote is not None:
        answer["quote"] = _quote(book, *quote)
    return answer


def _entry(card_entry: CardEntry) -> dict[str, Any]:
    entry = card_entry.entry
    prices = entry.prices.model_dump(mode="json", exclude_none=True) if entry.prices is not None else None
    if entry.model is None:
        kind = "charge"  # a span other than a model call, matched on attributes (issue 14)
    else:
        kind = "compute" if entry.gpu_second is not None else "tokens" if prices is not None else "adjustment"
    return {
        "id": entry.id,
        "kind": kind,
        "source": card_entry.source,
        "provider": entry.provider,
        "model": entry.model,
        "effective_from": _when(entry.effective_from),
        "effective_to": _when(entry.effective_to),
        "prices_usd_per_mtok": prices,
        "request_fee_usd": str(entry.request_fee) if entry.request_fee is not None else None,
        "discount_pct": str(entry.discount_pct),
        "tier": entry.tier.model_dump(mode="json") if entry.tier is not None else None,
        "gpu_second_usd": str(entry.gpu_second) if entry.gpu_second is not None else None,
        "gpus": entry.gpus,
        "match": dict(entry.match) if entry.match else None,
        "cost_kind": entry.cost_kind,
        "per_1k_calls_usd": str(entry.per_1k_calls) if entry.per_1k_calls is not None else None,
        "cpu_second_usd": str(entry.cpu_second) if entry.cpu_second is not None else None,
        "cpus": entry.cpus,
    }


def _when(value: dt.datetime | dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _quote(book: PriceBook, provider: str, model: str, at_ns: int) -> dict[str, Any]:
    base = {"provider": provider, "model": model, "at": rfc3339(at_ns)}
    try:
        found = book.quote(provider, model, model, at_ns)
    except Unpriced as exc:
        return {**base, "priced": False, "unpriced_reason": exc.reason, "detail": str(exc)}
    compiled = found.compiled
    multiplier = compiled.multiplier
    return {
        **base,
        "priced": True,
        "matched_model": found.model,
        "source": compiled.source,
        "entry": compiled.entry,
        "effective_from": compiled.effective_from or None,
        "rates_usd_per_mtok": dict(compiled.rates_usd_per_mtok),
        "multiplier": str(multiplier.numerator) if multiplier.denominator == 1 else str(float(multiplier)),
        "note": found.note or None,
        "example_cost_usd": {
            "1k_input_1k_output": usd(Decimal(sum(compiled.cost((1000, 0, 0, 0, 1000, 0)))) / FEMTO_PER_USD)
        },
    }

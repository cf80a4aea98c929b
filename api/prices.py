"""Pricing views: the calls the ledger could not price, and the rate cards in force."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import genai_prices

from otelspend.api.query import usd
from otelspend.api.sql import Params
from otelspend.api.window import Window, rfc3339
from otelspend.enrich.genai_prices_card import SOURCE
from otelspend.enrich.pricing import PriceBook, Unpriced
from otelspend.enrich.ratecard import CardEntry
from otelspend.record import FEMTO_PER_USD

# A counted call is unpriced when its cost is NULL, except a failed call that reported no
# usage: it was not billed, nothing is missing (same rule as the run computation).
UNPRICED_CALL = (
    "call_role = 'call' AND cost_usd IS NULL AND NOT (unpriced_reason IN ('no_usage', '') AND status_code = 'ERROR')"
)


def unpriced(store: Any, window: Window, limit: int = 100) -> dict[str, Any]:
    """Unpriced calls by (provider, model, reason) with their token volume.

    Calls are counted by their own start time in ``[from, to)`` (not their run's).
    """
    db = store.database
    params = Params()
    sql = f"""
        SELECT provider, model, unpriced_reason, count() AS calls,
               sum(ifNull(input_tokens, 0)), sum(ifNull(output_tokens, 0)), sum(ifNull(cache_read_tokens, 0)),
               sum(ifNull(cache_write_tokens, 0)), sum(ifNull(reasoning_tokens, 0)),
               toUnixTimestamp64Nano(min(start_time)), toUnixTimestamp64Nano(max(start_time)),
               uniqExact(trace_id), any(trace_id)
        FROM {db}.spans FINAL
        WHERE start_time >= fromUnixTimestamp64Nano({params.bind("t", window.start_ns, "Int64")})
          AND start_time < fromUnixTimestamp64Nano({params.bind("t", window.end_ns, "Int64")})
          AND {UNPRICED_CALL}
        GROUP BY provider, model, unpriced_reason
        ORDER BY calls DESC, provider, model, unpriced_reason
        LIMIT {params.bind("n", limit, "UInt32")}
    """
    rows = []
    for provider, model, reason, calls, inp, out, cread, cwrite, reasoning, first, last, runs, sample in store.rows(
        sql, params.values
    ):
        rows.append(
            {
                "provider": provider,
                "model": model,
                "reason": reason,
                "calls": calls,
                "runs": runs,
                "input_tokens": inp,
                "output_tokens": out,
                "cache_read_tokens": cread,
                "cache_write_tokens": cwrite,
                "reasoning_tokens": reasoning,
                "first_seen": rfc3339(int(first)),
                "last_seen": rfc3339(int(last)),
                "sample_run_id": sample,
            }
        )
    return {**window.describe(), "unpriced": rows}


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

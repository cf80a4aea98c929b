"""Price span rows: user rate card first, then genai-prices; unpriced is NULL plus a reason.

``PriceBook`` is immutable once built; reloading a rate card builds a new book and swaps
the reference, so a batch is priced entirely by one card version.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from otelspend.enrich.compiled import (
    C_CACHE_READ,
    C_CACHE_WRITE,
    C_COMPUTE,
    C_INPUT,
    C_OUTPUT,
    C_REASONING,
    C_REQUEST,
    COMPONENTS,
    CompiledPrice,
    UsageInconsistent,
)
from otelspend.enrich.genai_prices_card import GenaiPricesCard, UnknownPrice
from otelspend.enrich.ratecard import CardEntry, RateCard, load_rate_card
from otelspend.record import F

# Unpriced reasons (stored in spans.unpriced_reason; listed by GET /v1/unpriced).
NO_USAGE = "no_usage"
NO_MODEL = "no_model"
UNKNOWN_MODEL = "unknown_model"
UNKNOWN_PROVIDER = "unknown_provider"
INCONSISTENT_USAGE = "inconsistent_usage"

_COST_SLOTS = {
    C_INPUT: F.cost_input_usd,
    C_OUTPUT: F.cost_output_usd,
    C_CACHE_READ: F.cost_cache_read_usd,
    C_CACHE_WRITE: F.cost_cache_write_usd,
    C_REASONING: F.cost_reasoning_usd,
    C_REQUEST: F.cost_request_usd,
    C_COMPUTE: F.cost_compute_usd,
}
_COMPONENT_SLOTS = tuple(_COST_SLOTS[index] for index in range(len(COMPONENTS)))


@dataclass(frozen=True)
class Quote:
    """The price in force for one (provider, model, time, context), for CLI and API."""

    compiled: CompiledPrice
    model: str
    note: str = ""


class Unpriced(LookupError):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


class PriceBook:
    def __init__(self, card: RateCard | None = None, genai: GenaiPricesCard | None = None) -> None:
        self.card = card
        self.genai = genai or GenaiPricesCard()
        self._candidates: dict[tuple[str, str, str], tuple[tuple[CardEntry, str], ...]] = {}

    @classmethod
    def from_file(cls, path: str | Path | None, genai: GenaiPricesCard | None = None) -> PriceBook:
        return cls(load_rate_card(path) if path else None, genai)

    # -- lookup -----------------------------------------------------------------------------

    def quote(
        self,
        provider: str,
        response_model: str,
        request_model: str,
        start_ns: int,
        context: tuple[tuple[str, str], ...] = (),
        attributes: Any = None,
    ) -> Quote:
        """The compiled price for a call, or raise Unpriced."""
        if not (response_model or request_model):
            raise Unpriced(NO_MODEL, "the span names no model")
        adjust: CardEntry | None = None
        if self.card is not None:
            key = (provider, response_model, request_model)
            candidates = self._candidates.get(key)
            if candidates is None:
                candidates = self.card.candidates(provider, (response_model, request_model))
                self._candidates[key] = candidates
            for card_entry, model in candidates:
                if not card_entry.active(start_ns):
                    continue
                tier_value = _tier_value(card_entry, context, attributes)
                if card_entry.compiled is not None:
                    compiled = card_entry.compiled
                    factor = card_entry.multiplier(tier_value)
                    if factor != 1:
                        compiled = replace(compiled, multiplier=factor)
                    return Quote(compiled, model)
                if adjust is None:
                    adjust = card_entry
        quote = self._default(provider, response_model, request_model, start_ns, context)
        if adjust is not None:
            factor = adjust.multiplier(_tier_value(adjust, context, attributes))
            compiled = replace(
                quote.compiled,
                multiplier=quote.compiled.multiplier * factor,
                source=f"{quote.compiled.source} + {adjust.source}#{adjust.entry.id}",
            )
            return Quote(compiled, quote.model, f"adjusted by {adjust.entry.id}")
        return quote

    def _default(
        self,
        provider: str,
        response_model: str,
        request_model: str,
        start_ns: int,
        context: tuple[tuple[str, str], ...],
    ) -> Quote:
        first_error: UnknownPrice | None = None
        for model in (response_model, request_model):
            if not model:
                continue
            try:
                resolved = self.genai.resolve(provider, model)
            except UnknownPrice as exc:
                first_error = first_error or exc
                if exc.reason == UNKNOWN_PROVIDER:
                    break
                continue
            return Quote(self.genai.compiled(resolved, start_ns, context), model)
        assert first_error is not None
        raise Unpriced(first_error.reason, str(first_error))

    # -- pricing rows -------------------------------------------------------------------------

    def price_rows(self, rows: list[list[Any]]) -> None:
        for row in rows:
            self.price_row(row)

    def price_row(self, row: list[Any]) -> None:
        inp = row[F.input_tokens]
        out = row[F.output_tokens]
        has_usage = inp is not None or out is not None
        if not has_usage and row[F.span_class] != "llm" and row[F.compute_seconds] is None:
            return  # not a model call: nothing to price, nothing missing
        context = _context(row)
        try:
            quote = self.quote(
                row[F.provider], row[F.response_model], row[F.request_model], row[F.start_time], context, row
            )
            compiled = quote.compiled
            compute = _compute_seconds(row, compiled)
            if not has_usage and not compute:
                raise Unpriced(NO_USAGE, "no token counts reported")
            usage = (
                inp or 0,
                row[F.cache_read_tokens] or 0,
                row[F.cache_write_tokens] or 0,
                row[F.cache_write_1h_tokens] or 0,
                out or 0,
                row[F.reasoning_tokens] or 0,
            )
            components = compiled.cost(usage, compute_seconds=compute)
        except Unpriced as exc:
            row[F.unpriced_reason] = exc.reason
            return
        except UsageInconsistent:
            row[F.unpriced_reason] = INCONSISTENT_USAGE
            return
        total = 0
        for slot, value in zip(_COMPONENT_SLOTS, components, strict=True):
            row[slot] = value
            total += value
        row[F.cost_usd] = total
        row[F.price_source] = compiled.source
        row[F.price_entry] = compiled.entry
        row[F.price_effective_from] = compiled.effective_from
        row[F.unpriced_reason] = ""


def clear_cost(row: list[Any]) -> None:
    """Reset every pricing slot (before re-pricing a stored row)."""
    for slot in (*_COMPONENT_SLOTS, F.cost_usd):
        row[slot] = None
    row[F.price_source] = row[F.price_entry] = row[F.price_effective_from] = row[F.unpriced_reason] = ""


def _context(row: list[Any]) -> tuple[tuple[str, str], ...]:
    tier = row[F.service_tier]
    processing = row[F.processing]
    if not tier and not processing:
        return ()
    items = []
    if processing:
        items.append(("processing", processing))
    if tier:
        items.append(("service_tier", tier))
    return tuple(items)


def _tier_value(card_entry: CardEntry, context: tuple[tuple[str, str], ...], row: Any) -> str | None:
    tier = card_entry.entry.tier
    if tier is None:
        return None
    for key, value in context:
        if key == tier.attribute:
            return value
    if isinstance(row, list):
        keys, values = row[F.attributes] or ((), ())
        if tier.attribute in keys:
            return values[keys.index(tier.attribute)]
    return None


def _compute_seconds(row: list[Any], compiled: CompiledPrice) -> float | None:
    if compiled.gpu_second_femto is None:
        return None
    explicit = row[F.compute_seconds]
    if explicit is not None:
        return explicit
    gpus = row[F.gpu_count] or compiled.default_gpus
    return row[F.duration_ns] / 1e9 * gpus


def at_ns(when: dt.datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp()) * 10**9 + when.microsecond * 1000

"""Price span rows: user rate card first, then genai-prices; unpriced is NULL plus a reason.

``PriceBook`` is immutable once built; reloading a rate card builds a new book and swaps
the reference, so a batch is priced entirely by one card version.

Lookup order for a call (provider, response model, request model, start time):

1. the user card's entries matching provider and either model, in file order, active at
   the start time: the first one with prices of its own (tokens or GPU-seconds) wins,
   with its discount and tier multiplier applied;
2. otherwise genai-prices (response model first, then request model), adjusted by the
   first matching adjustment-only entry (discount / tier without prices), if any;
3. otherwise the call is unpriced: cost NULL and ``unpriced_reason`` says why.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from otelspend.enrich.charges import ResourceLookup, SpanView, gpu_seconds
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
from otelspend.enrich.genai_prices_card import MAX_CACHED, GenaiPricesCard, Unknown
from otelspend.enrich.ratecard import CardEntry, RateCard, load_rate_card
from otelspend.record import COLUMN_INDEX, F

# Unpriced reasons (stored in spans.unpriced_reason; listed by GET /v1/unpriced).
NO_USAGE = "no_usage"
NO_MODEL = "no_model"
UNKNOWN_MODEL = "unknown_model"
UNKNOWN_PROVIDER = "unknown_provider"
INCONSISTENT_USAGE = "inconsistent_usage"
UNPRICED_REASONS: dict[str, str] = {
    NO_USAGE: "the span names a model but reports no token counts (and no GPU time to price)",
    NO_MODEL: "a model call (or usage) without a model name",
    UNKNOWN_MODEL: "neither the rate card nor genai-prices knows the model",
    UNKNOWN_PROVIDER: "genai-prices does not know the provider, and no rate-card entry matched",
    INCONSISTENT_USAGE: "usage that cannot be decomposed (e.g. more cached tokens than input tokens)",
}

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
PRICING_SLOTS: tuple[int, ...] = (
    *_COMPONENT_SLOTS,
    F.cost_usd,
    F.price_source,
    F.price_entry,
    F.price_effective_from,
    F.unpriced_reason,
    F.cost_kind,
)
"""Every slot price_row writes (what a reprice compares)."""


@dataclass(frozen=True)
class Quote:
    """The price in force for one (provider, model, time, context), for CLI and API."""

    compiled: CompiledPrice
    model: str
    """The model name that matched (response or request model)."""
    note: str = ""


class Unpriced(LookupError):
    """No price for a call; ``reason`` is one of UNPRICED_REASONS."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


class PriceBook:
    """A user rate card (optional) over the genai-prices default; prices rows in place."""

    def __init__(self, card: RateCard | None = None, genai: GenaiPricesCard | None = None) -> None:
        self.card = card
        self.genai = genai or GenaiPricesCard()
        self._candidates: dict[tuple[str, str, str], tuple[tuple[CardEntry, str], ...]] = {}
        self._adjusted: dict[tuple[int, int, Fraction], tuple[CompiledPrice, CompiledPrice]] = {}

    @classmethod
    def from_file(cls, path: str | Path | None, genai: GenaiPricesCard | None = None) -> PriceBook:
        """Load (and validate) the user card at ``path``; None means genai-prices only."""
        return cls(load_rate_card(path) if path else None, genai)

    # -- lookup -----------------------------------------------------------------------------

    def quote(
        self,
        provider: str,
        response_model: str,
        request_model: str,
        start_ns: int,
        context: tuple[tuple[str, str], ...] = (),
        row: list[Any] | None = None,
    ) -> Quote:
        """The compiled price for a call, or raise Unpriced.

        ``context`` holds the genai-prices request context (``processing``, ``service_tier``);
        ``row`` (a span row) is where tier attributes are read from, when given.
        """
        compiled, model, note = self._find(provider, response_model, request_model, start_ns, context, row)
        return Quote(compiled, model, note)

    def _find(
        self,
        provider: str,
        response_model: str,
        request_model: str,
        start_ns: int,
        context: tuple[tuple[str, str], ...],
        row: list[Any] | None,
        view: SpanView | None = None,
    ) -> tuple[CompiledPrice, str, str]:
        """(compiled price, model name that matched, note); raises Unpriced."""
        if not (response_model or request_model):
            raise Unpriced(NO_MODEL, "the span names no model")
        adjust: CardEntry | None = None
        if self.card is not None:
            for card_entry, model in self._card_candidates(provider, response_model, request_model):
                if not card_entry.active(start_ns):
                    continue
                if card_entry.match_rules and (view is None or not view.matches(card_entry.match_rules)):
                    continue  # restricted to spans with these attributes (e.g. a namespace)
                if card_entry.compiled is not None:
                    factor = card_entry.multiplier(_tier_value(card_entry, context, row))
                    return self._with_factor(card_entry.compiled, factor), model, ""
                if adjust is None:
                    adjust = card_entry
        compiled, model = self._default(provider, response_model, request_model, start_ns, context)
        if adjust is not None:
            factor = adjust.multiplier(_tier_value(adjust, context, row))
            return self._with_factor(compiled, factor, adjust), model, f"adjusted by {adjust.entry.id}"
        return compiled, model, ""

    def _card_candidates(
        self, provider: str, response_model: str, request_model: str
    ) -> tuple[tuple[CardEntry, str], ...]:
        assert self.card is not None
        key = (provider, response_model, request_model)
        candidates = self._candidates.get(key)
        if candidates is None:
            candidates = self.card.candidates(provider, (response_model, request_model))
            if len(self._candidates) >= MAX_CACHED:
                self._candidates.clear()
            self._candidates[key] = candidates
        return candidates

    def _with_factor(self, compiled: CompiledPrice, factor: Fraction, adjust: CardEntry | None = None) -> CompiledPrice:
        """``compiled`` with a discount / tier multiplier (and, for an adjustment of the default,
        both sources named), built once per combination."""
        if factor == 1 and adjust is None:
            return compiled
        key = (id(compiled), id(adjust), factor)
        found = self._adjusted.get(key)
        # The base object is kept in the value and compared, so a recycled id never matches.
        if found is None or found[0] is not compiled:
            source = f"{compiled.source} + {adjust.source}#{adjust.entry.id}" if adjust else compiled.source
            adjusted = replace(compiled, multiplier=compiled.multiplier * factor, source=source)
            if len(self._adjusted) >= MAX_CACHED:
                self._adjusted.clear()
            found = self._adjusted[key] = (compiled, adjusted)
        return found[1]

    def _default(
        self,
        provider: str,
        response_model: str,
        request_model: str,
        start_ns: int,
        context: tuple[tuple[str, str], ...],
    ) -> tuple[CompiledPrice, str]:
        first_unknown: Unknown | None = None
        for model in (response_model, request_model):
            if not model:
                continue
            found = self.genai.lookup(provider, model)
            if isinstance(found, Unknown):
                first_unknown = first_unknown or found
                if found.reason == UNKNOWN_PROVIDER:
                    break
                continue
            return self.genai.compiled(found, start_ns, context), model
        assert first_unknown is not None
        raise Unpriced(first_unknown.reason, first_unknown.detail)

    # -- pricing rows -------------------------------------------------------------------------

    def price_rows(self, rows: list[list[Any]], resources: ResourceLookup | None = None) -> None:
        """Price every row in place (see ``price_row``); ``resources`` gives resource attributes
        to entries that match on them."""
        for row in rows:
            self.price_row(row, resources)

    def price_row(self, row: list[Any], resources: ResourceLookup | None = None) -> None:
        """Fill the cost and provenance slots of one span row, or its unpriced reason.

        A model call (usage, an LLM span, or GPU time with a model name) is priced as one, its
        ``cost_kind`` ``model`` (or its entry's ``kind``) even when unpriced. Any other span is a
        charge when a match-only card entry matches it (``enrich.charges``), else left alone:
        nothing to price and nothing missing.
        """
        inp = row[F.input_tokens]
        out = row[F.output_tokens]
        has_usage = inp is not None or out is not None
        if not has_usage and row[F.span_class] != "llm" and (row[F.compute_seconds] is None or not row[F.model]):
            if self.card is not None and self.card.charges:
                self._price_charge(row, SpanView(row, resources))
            return
        view = SpanView(row, resources) if self.card is not None else None
        context = request_context(row)
        row[F.cost_kind] = "model"
        try:
            compiled = self._find(
                row[F.provider], row[F.response_model], row[F.request_model], row[F.start_time], context, row, view
            )[0]
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
        row[F.cost_kind] = compiled.kind

    def _price_charge(self, row: list[Any], view: SpanView) -> None:
        """Price a span that is not a model call by the first active match-only entry it matches."""
        assert self.card is not None
        start = row[F.start_time]
        for card_entry in self.card.charges:
            charge = card_entry.charge
            if charge is None or not card_entry.active(start) or not view.matches(card_entry.match_rules):
                continue
            factor = card_entry.multiplier(_tier_value(card_entry, (), row))
            request, compute = charge.cost(view, factor)
            for slot in _COMPONENT_SLOTS:
                row[slot] = 0
            row[F.cost_request_usd] = request
            row[F.cost_compute_usd] = compute
            row[F.cost_usd] = request + compute
            row[F.price_source] = charge.source
            row[F.price_entry] = charge.entry
            row[F.price_effective_from] = charge.effective_from
            row[F.unpriced_reason] = ""
            row[F.cost_kind] = charge.kind
            return


def clear_cost(row: list[Any]) -> None:
    """Reset every pricing slot (before re-pricing a stored row)."""
    for slot in (*_COMPONENT_SLOTS, F.cost_usd):
        row[slot] = None
    row[F.price_source] = row[F.price_entry] = row[F.price_effective_from] = row[F.unpriced_reason] = ""
    row[F.cost_kind] = ""


def request_context(row: list[Any]) -> tuple[tuple[str, str], ...]:
    """The genai-prices request context of a span (batch processing, service tier)."""
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


def _tier_value(card_entry: CardEntry, context: tuple[tuple[str, str], ...], row: list[Any] | None) -> str | None:
    tier = card_entry.entry.tier
    if tier is None:
        return None
    column = card_entry.tier_column
    if row is not None:
        if column is not None:
            selector: str = row[column]
            return selector or None
        keys, values = row[F.attributes] or ((), ())
        if tier.attribute in keys:
            attribute: str = values[keys.index(tier.attribute)]
            return attribute
        return None
    # No span row (CLI, API): the context names canonical fields.
    for key, value in context:
        if key == tier.attribute or (column is not None and COLUMN_INDEX.get(key) == column):
            return value
    return None


def _compute_seconds(row: list[Any], compiled: CompiledPrice) -> Fraction | None:
    """GPU-seconds of a self-hosted call: the explicit attribute, else duration x GPUs."""
    if compiled.gpu_second_femto is None:
        return None
    return gpu_seconds(row, compiled.default_gpus)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def at_ns(when: dt.datetime | dt.date) -> int:
    """A datetime (naive = UTC) or a date (UTC midnight) -> ns since the epoch, exactly."""
    if not isinstance(when, dt.datetime):
        when = dt.datetime(when.year, when.month, when.day, tzinfo=dt.UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return (when - _EPOCH) // dt.timedelta(microseconds=1) * 1000

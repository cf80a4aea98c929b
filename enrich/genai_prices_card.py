"""The default rate card: the ``genai-prices`` package, compiled for the hot path.

Resolution mirrors ``genai_prices.calc_price``: provider (semconv names mapped to
genai-prices ids), model matching (dated snapshots included), the conditional price in
force at the call's start (date or time-of-day constraints), request-context variants
(service tier, batch processing) and the unit decomposition. The compiled result is
cached per (model, price period, context), so a span costs two dict lookups and a few
integer multiplications; a property test holds it equal to ``calc_price``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import genai_prices
from genai_prices import data_snapshot
from genai_prices.data_units import unit_data
from genai_prices.types import ModelInfo, ModelPrice, Provider, StartDateConstraint, TieredPrices

from otelspend.enrich.compiled import (
    C_CACHE_READ,
    C_CACHE_WRITE,
    C_INPUT,
    C_OUTPUT,
    C_REASONING,
    C_REQUEST,
    USAGE_KEYS,
    CompiledPrice,
    UnitPrice,
    femto_per_unit,
)

SOURCE = f"genai-prices {genai_prices.__version__}"
DAY_NS = 86_400 * 10**9

# OTel semconv provider names (gen_ai.provider.name) -> genai-prices provider ids.
PROVIDER_IDS: Mapping[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "aws.bedrock": "aws",
    "gcp.vertex_ai": "google",
    "gcp.gemini": "google",
    "gcp.gen_ai": "google",
    "x_ai": "x-ai",
    "mistral_ai": "mistral",
    "moonshot_ai": "moonshotai",
    "together_ai": "together",
    "deepseek": "deepseek",
    "groq": "groq",
    "cohere": "cohere",
    "perplexity": "perplexity",
    "fireworks": "fireworks",
    "openrouter": "openrouter",
}

_UNITS_BY_PRICE_KEY = {spec["price_key"]: (key, spec) for key, spec in unit_data.items()}


@dataclass(frozen=True)
class Resolved:
    provider: Provider
    model: ModelInfo
    date_only: bool
    """True when every price and variant constraint is a start date (prices change at UTC midnight)."""


class UnknownPrice(LookupError):
    """No genai-prices entry; ``reason`` is unknown_provider or unknown_model."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class GenaiPricesCard:
    def __init__(self) -> None:
        self._snapshot = data_snapshot.get_snapshot()
        self._resolved: dict[tuple[str, str], Resolved | UnknownPrice] = {}
        self._compiled: dict[tuple[Any, ...], CompiledPrice] = {}

    def resolve(self, provider: str, model: str) -> Resolved:
        key = (provider, model)
        found = self._resolved.get(key)
        if found is None:
            found = self._resolve(provider, model)
            self._resolved[key] = found
        if isinstance(found, UnknownPrice):
            raise found
        return found

    def _resolve(self, provider: str, model: str) -> Resolved | UnknownPrice:
        provider_id = PROVIDER_IDS.get(provider, provider) or None
        try:
            found_provider, found_model = self._snapshot.find_provider_model(model, None, provider_id, None)
        except LookupError as exc:
            reason = "unknown_provider" if "find provider" in str(exc) else "unknown_model"
            return UnknownPrice(reason, str(exc))
        constraints = []
        if not isinstance(found_model.prices, ModelPrice):
            constraints.extend(price.constraint for price in found_model.prices)
        constraints.extend(variant.constraint for variant in found_model.price_variants or ())
        date_only = all(c is None or isinstance(c, StartDateConstraint) for c in constraints)
        return Resolved(found_provider, found_model, date_only)

    def compiled(self, resolved: Resolved, start_ns: int, context: tuple[tuple[str, str], ...]) -> CompiledPrice:
        bucket = start_ns // DAY_NS if resolved.date_only else start_ns // 10**9
        key = (id(resolved.model), resolved.provider.id, bucket, context)
        found = self._compiled.get(key)
        if found is None:
            if len(self._compiled) > 200_000:
                self._compiled.clear()
            found = self._compile(resolved, start_ns, context)
            self._compiled[key] = found
        return found

    def _compile(self, resolved: Resolved, start_ns: int, context: tuple[tuple[str, str], ...]) -> CompiledPrice:
        when = dt.datetime.fromtimestamp(start_ns / 1e9, tz=dt.UTC)
        model, provider = resolved.model, resolved.provider
        ctx = dict(context) or None
        # calc_price ignores the request context for a model found through a fallback provider.
        if ctx and not any(model is m for m in provider.models):
            ctx = None
        model_price = model.get_prices(when, ctx)
        return compile_model_price(
            model_price,
            source=SOURCE,
            entry=f"{provider.id}/{model.id}",
            effective_from=_effective_from(model, when),
        )


def _effective_from(model: ModelInfo, when: dt.datetime) -> str:
    if isinstance(model.prices, ModelPrice):
        return ""
    for price in reversed(model.prices):
        constraint = price.constraint
        if constraint is None:
            return ""
        if constraint.active(when):
            if isinstance(constraint, StartDateConstraint):
                return constraint.start_date.isoformat()
            return f"daily {constraint.start_time.isoformat()}-{constraint.end_time.isoformat()}"
    return ""


def compile_model_price(model_price: ModelPrice, *, source: str, entry: str, effective_from: str) -> CompiledPrice:
    """genai-prices' unit decomposition over our usage vector, as integer coefficients."""
    priced = []
    for price_key, value in model_price.__dict__.items():
        if price_key.startswith("_") or value is None or price_key not in _UNITS_BY_PRICE_KEY:
            continue
        usage_key, spec = _UNITS_BY_PRICE_KEY[price_key]
        priced.append((usage_key, spec, value))
    requests = [p for p in priced if p[0] == "requests"]
    tokens = sorted((p for p in priced if p[0] != "requests"), key=lambda p: (-len(p[1]["dimensions"]), p[0]))
    # leaf(u) = usage(u) - sum of leaves of u's priced descendants, most specific first;
    # usage we do not carry counts as zero (as genai-prices infers it).
    leaves: dict[str, dict[int, int]] = {}
    for usage_key, spec, _ in tokens:
        form: dict[int, int] = {USAGE_KEYS.index(usage_key): 1} if usage_key in USAGE_KEYS else {}
        dims = spec["dimensions"].items()
        for other_key, other_spec, _ in tokens:
            if other_key != usage_key and dims <= other_spec["dimensions"].items():
                for slot, coefficient in leaves[other_key].items():
                    form[slot] = form.get(slot, 0) - coefficient
        leaves[usage_key] = {slot: c for slot, c in form.items() if c}

    units = []
    rates: dict[str, str] = {}
    for usage_key, spec, value in tokens:
        coefficients = tuple(sorted(leaves[usage_key].items()))
        rates[spec["price_key"]] = _describe(value)
        if not coefficients:
            continue
        base, tiers = _femto(value, spec["per"])
        units.append(UnitPrice(_component(spec["dimensions"]), coefficients, base, tiers))
    for _, spec, value in requests:
        rates[spec["price_key"]] = _describe(value)
        base, tiers = _femto(value, spec["per"])
        units.append(UnitPrice(C_REQUEST, (), base, tiers, per_request=True))
    return CompiledPrice(
        source=source, entry=entry, effective_from=effective_from, units=tuple(units), rates_usd_per_mtok=rates
    )


def _femto(value: Any, per: int) -> tuple[int | Fraction, tuple[tuple[int, int | Fraction], ...]]:
    if isinstance(value, TieredPrices):
        base = femto_per_unit(Fraction(value.base), per)
        tiers = tuple((tier.start, femto_per_unit(Fraction(tier.price), per)) for tier in value.tiers)
        return base, tiers
    return femto_per_unit(Fraction(value), per), ()


def _component(dimensions: Mapping[str, str]) -> int:
    token_type = dimensions.get("token_type")
    if token_type == "cache_read":
        return C_CACHE_READ
    if token_type == "cache_write":
        return C_CACHE_WRITE
    if token_type == "reasoning":
        return C_REASONING
    return C_OUTPUT if dimensions.get("direction") == "output" else C_INPUT


def _describe(value: Any) -> str:
    if isinstance(value, TieredPrices):
        tiers = ", ".join(f">{tier.start}: {tier.price}" for tier in value.tiers)
        return f"{value.base} ({tiers})"
    return str(value)

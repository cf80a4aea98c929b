"""The default rate card: the ``genai-prices`` package, compiled for the hot path.

Resolution mirrors ``genai_prices.calc_price``: provider (semconv names mapped to
genai-prices ids), model matching (dated snapshots included), the conditional price in
force at the call's start (date or time-of-day constraints), request-context variants
(service tier, batch processing) and the unit decomposition. The compiled result is
cached per (model, price period, context), where a price period is a UTC day, split at
the model's time-of-day boundaries when it has any (off-peak prices). A span therefore
costs two dict lookups and a few integer multiplications; tests/pricing holds it equal
to ``calc_price`` for every model genai-prices knows.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import genai_prices
from genai_prices import data_snapshot
from genai_prices.data_units import unit_data
from genai_prices.types import (
    ModelInfo,
    ModelPrice,
    Provider,
    StartDateConstraint,
    TieredPrices,
    TimeOfDateConstraint,
)

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
MAX_CACHED = 100_000
"""Cache bound: model names come from spans, so distinct ones are attacker-controlled."""

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
    """A (provider, model) found in genai-prices, with where its prices may change within a day."""

    provider: Provider
    model: ModelInfo
    boundaries_us: tuple[int, ...] = ()
    """UTC microseconds of the day where a time-of-day price starts or ends (empty: prices
    change only at UTC midnight, by start date)."""

    def period(self, start_ns: int) -> tuple[int, int]:
        """(UTC day, slice of the day): the same period always has the same prices."""
        day, in_day = divmod(start_ns, DAY_NS)
        if not self.boundaries_us:
            return day, 0
        return day, bisect.bisect_right(self.boundaries_us, in_day // 1000)


class UnknownPrice(LookupError):
    """No genai-prices entry; ``reason`` is unknown_provider or unknown_model."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Unknown:
    """A cached negative lookup. Cached as a value, not as an exception: re-raising one
    exception object grows its traceback (and keeps every frame on it alive) per raise."""

    reason: str
    detail: str


class GenaiPricesCard:
    """genai-prices resolved and compiled, cached per (provider, model) and price period.

    Shared by every PriceBook of a process (a rate-card reload keeps the compiled prices).
    """

    def __init__(self) -> None:
        self._snapshot = data_snapshot.get_snapshot()
        self._resolved: dict[tuple[str, str], Resolved | Unknown] = {}
        self._compiled: dict[tuple[Any, ...], CompiledPrice] = {}

    def resolve(self, provider: str, model: str) -> Resolved:
        """The genai-prices model for a semconv provider name and a model name; raises UnknownPrice."""
        found = self.lookup(provider, model)
        if isinstance(found, Unknown):
            raise UnknownPrice(found.reason, found.detail)
        return found

    def lookup(self, provider: str, model: str) -> Resolved | Unknown:
        """Like ``resolve``, without raising (the hot path)."""
        key = (provider, model)
        found = self._resolved.get(key)
        if found is None:
            found = self._resolve(provider, model)
            if len(self._resolved) >= MAX_CACHED:
                self._resolved.clear()
            self._resolved[key] = found
        return found

    def _resolve(self, provider: str, model: str) -> Resolved | Unknown:
        provider_id = PROVIDER_IDS.get(provider, provider) or None
        try:
            found_provider, found_model = self._snapshot.find_provider_model(model, None, provider_id, None)
        except LookupError as exc:
            # A named provider genai-prices does not know is unknown_provider; with no provider
            # named, genai-prices looks the provider up by model name, so the model is unknown.
            reason = "unknown_provider" if provider_id and "find provider" in str(exc) else "unknown_model"
            return Unknown(reason, str(exc))
        constraints: list[StartDateConstraint | TimeOfDateConstraint | None] = []
        if not isinstance(found_model.prices, ModelPrice):
            constraints.extend(price.constraint for price in found_model.prices)
        constraints.extend(variant.constraint for variant in found_model.price_variants or ())
        boundaries = set()
        for constraint in constraints:
            if isinstance(constraint, TimeOfDateConstraint):
                boundaries.add(_utc_microsecond_of_day(constraint.start_time))
                boundaries.add(_utc_microsecond_of_day(constraint.end_time))
        return Resolved(found_provider, found_model, tuple(sorted(boundaries)))

    def compiled(self, resolved: Resolved, start_ns: int, context: tuple[tuple[str, str], ...]) -> CompiledPrice:
        """The compiled price in force at ``start_ns`` for a request context (cached per period)."""
        key = (id(resolved.model), resolved.provider.id, resolved.period(start_ns), context)
        found = self._compiled.get(key)
        if found is None:
            if len(self._compiled) >= MAX_CACHED:
                self._compiled.clear()
            found = self._compile(resolved, start_ns, context)
            self._compiled[key] = found
        return found

    def _compile(self, resolved: Resolved, start_ns: int, context: tuple[tuple[str, str], ...]) -> CompiledPrice:
        when = utc_datetime(start_ns)
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


def utc_datetime(ns: int) -> dt.datetime:
    """ns since the epoch -> aware UTC datetime, exact to the microsecond (no float rounding)."""
    seconds, rest = divmod(ns, 10**9)
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).replace(microsecond=rest // 1000)


def _utc_microsecond_of_day(value: dt.time) -> int:
    """A constraint's time of day in UTC (naive times are UTC, as genai-prices reads them)."""
    if value.tzinfo is not None:
        value = dt.datetime.combine(dt.date(1970, 1, 2), value).astimezone(dt.UTC).time()
    return ((value.hour * 60 + value.minute) * 60 + value.second) * 10**6 + value.microsecond


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

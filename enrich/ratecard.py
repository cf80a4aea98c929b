"""User rate cards: YAML that overrides or extends the genai-prices default.

An entry matches a provider and model (glob by default, ``re:`` for a regular expression,
no wildcard = exact; case-insensitive) during ``[effective_from, effective_to)``. Entries
are tried in file order, so put specific entries first. Kinds:

* token prices (USD per million tokens per kind, optional per-request fee),
* self-hosted compute (USD per GPU-second, GPUs from the span or the entry),
* adjustments only (``discount_pct`` and/or ``tier`` multipliers, no prices): applied to
  the genai-prices price of whatever the entry matches.

The first matching entry with prices of its own (tokens or GPU-seconds) prices the call;
if none matches, genai-prices does, adjusted by the first matching adjustment-only entry.

A ``tier`` multiplies the price by a factor chosen by a span attribute's value (batch,
flex, priority ...): a canonical column (``processing``, ``service_tier``, ``tenant`` ...),
any attribute key the convention table reads into one (``otelspend.pricing.tier`` ->
``processing``), or another span attribute. The whole file is validated at load; errors
name file, entry and field. The source recorded on priced spans is ``user:<file>@<hash>``
(first 8 hex digits of the file's SHA-256), so every edit of the card is traceable.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml
from genai_prices.types import ModelPrice
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from otelspend.conventions import ConventionTable
from otelspend.enrich.charges import ChargePrice, MatchRule
from otelspend.enrich.compiled import CompiledPrice, femto_per_unit
from otelspend.enrich.genai_prices_card import compile_model_price
from otelspend.record import SPAN_COLUMNS

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class RateCardError(ValueError):
    """The rate card is invalid; the message names file, entry and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenPrices(_Strict):
    """USD per million tokens."""

    input: Decimal = Field(ge=0)
    output: Decimal = Field(ge=0)
    cache_read: Decimal | None = Field(None, ge=0)
    """Omit only if cache reads really bill at the input rate."""
    cache_write: Decimal | None = Field(None, ge=0)
    cache_write_1h: Decimal | None = Field(None, ge=0)
    reasoning: Decimal | None = Field(None, ge=0)
    """Omit when reasoning tokens bill as output tokens (the usual case)."""

    @model_validator(mode="after")
    def _write_1h_needs_write(self) -> TokenPrices:
        if self.cache_write_1h is not None and self.cache_write is None:
            raise ValueError("cache_write_1h needs cache_write (1h writes are a subset of cache writes)")
        return self


class Tier(_Strict):
    """A price multiplier chosen by a span attribute's value (batch, flex, priority, ...)."""

    attribute: str = Field(min_length=1)
    """Span attribute (or canonical column such as service_tier, processing) selecting the factor."""
    multipliers: dict[str, Decimal]

    @field_validator("multipliers")
    @classmethod
    def _positive(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        if not value:
            raise ValueError("give at least one value: multiplier pair")
        for key, factor in value.items():
            if factor < 0:
                raise ValueError(f"multiplier for {key!r} must be >= 0")
        return value


class Entry(_Strict):
    """One rate-card entry as written: which provider / model it prices (glob or ``re:``), when,
    and at what prices, fees, discount, tier or GPU-second rate.
    """

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:/\-]+$")
    provider: str = "*"
    model: str | None = Field(None, min_length=1)
    """Model pattern: a model-call entry. Without it, ``match`` prices other spans (a charge)."""
    match: dict[str, str] | None = None
    """Span, canonical or resource attributes that must all match (patterns, like model):
    ``db.system.name: pinecone``, ``gen_ai.tool.name: web_search``, ``namespace: inference``."""
    kind: str | None = Field(None, min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.:\-]+$")
    """The ``cost_kind`` of what the entry prices: model (default for model entries), retrieval,
    tool, compute, request (charges default to compute with a per-second price, else request)."""
    per_1k_calls: Decimal | None = Field(None, ge=0)
    """USD per 1,000 matched spans (a charge's fee, e.g. web search)."""
    cpu_second: Decimal | None = Field(None, ge=0)
    """USD per CPU-second (a charge: the span's otelspend.cpu.seconds, else duration x cpus)."""
    cpus: float = Field(1.0, gt=0)
    """CPUs a matched span uses when it does not say."""
    effective_from: dt.datetime | dt.date | None = None
    effective_to: dt.datetime | dt.date | None = None
    prices: TokenPrices | None = None
    request_fee: Decimal | None = Field(None, ge=0)
    """USD per call."""
    discount_pct: Decimal = Field(Decimal(0), ge=0, le=100)
    tier: Tier | None = None
    gpu_second: Decimal | None = Field(None, ge=0)
    """USD per GPU-second of a self-hosted model."""
    gpus: float = Field(1.0, gt=0)
    """GPUs serving one call when the span does not say (otelspend.gpu.count)."""

    @field_validator("provider", "model")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None and value.startswith("re:"):
            try:
                re.compile(value[3:])
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value

    @field_validator("match", mode="before")
    @classmethod
    def _match_patterns(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, dict) or not value:
            raise ValueError("expected a non-empty mapping of attribute: pattern")
        out = {}
        for key, pattern in value.items():
            if isinstance(pattern, bool) or not isinstance(pattern, str | int | float):
                raise ValueError(f"{key}: expected a text pattern")
            text = str(pattern)
            if text.startswith("re:"):
                try:
                    re.compile(text[3:])
                except re.error as exc:
                    raise ValueError(f"{key}: invalid regular expression: {exc}") from None
            out[str(key)] = text
        return out

    @model_validator(mode="after")
    def _consistent(self) -> Entry:
        start, end = _as_ns(self.effective_from), _as_ns(self.effective_to)
        if start is not None and end is not None and end <= start:
            raise ValueError("effective_to must be after effective_from")
        if self.model is None:
            return self._charge_consistent()
        if self.cpu_second is not None:
            raise ValueError("cpu_second prices spans matched by attributes only (give match, no model)")
        if self.request_fee is not None and self.per_1k_calls is not None:
            raise ValueError("give request_fee or per_1k_calls, not both")
        fee = self.request_fee is not None or self.per_1k_calls is not None
        if self.prices is None and self.gpu_second is None and fee:
            raise ValueError("request_fee needs prices (token prices of the same entry)")
        if self.prices is None and self.gpu_second is None and not self.discount_pct and self.tier is None:
            raise ValueError("give prices, gpu_second, discount_pct or tier")
        return self

    def _charge_consistent(self) -> Entry:
        if self.match is None:
            raise ValueError(
                "model: Field required (a model-call entry; or give match: the attributes of the other spans it prices)"
            )
        if self.prices is not None:
            raise ValueError("prices: token prices need a model; a match-only entry prices per call or per second")
        if self.request_fee is not None and self.per_1k_calls is not None:
            raise ValueError("give request_fee or per_1k_calls, not both")
        if self.kind == "model":
            raise ValueError("kind: 'model' is for model-call entries; name what this prices (retrieval, tool, ...)")
        if all(v is None for v in (self.request_fee, self.per_1k_calls, self.gpu_second, self.cpu_second)):
            raise ValueError("a match-only entry needs request_fee, per_1k_calls, gpu_second or cpu_second")
        return self

    @property
    def cost_kind(self) -> str:
        """What the entry's cost is reported as (the ``cost_kind`` dimension)."""
        if self.kind is not None:
            return self.kind
        if self.model is not None:
            return "model"
        return "compute" if self.gpu_second is not None or self.cpu_second is not None else "request"

    @property
    def adjusts_default(self) -> bool:
        """No prices of its own: it discounts / tiers the genai-prices price."""
        return self.prices is None and self.gpu_second is None and self.model is not None


class RateCardFile(_Strict):
    """A rate-card file as written: a version, its currency (USD) and entries (ids unique)."""

    version: int = 1
    currency: str = "USD"
    """Only USD: genai-prices is in USD and mixing currencies in one ledger is a bug."""
    entries: list[Entry]

    @field_validator("currency")
    @classmethod
    def _usd_only(cls, value: str) -> str:
        if value != "USD":
            raise ValueError("only USD is supported (genai-prices is in USD; one ledger, one currency)")
        return value

    @field_validator("entries")
    @classmethod
    def _unique_ids(cls, value: list[Entry]) -> list[Entry]:
        seen: dict[str, int] = {}
        for index, entry in enumerate(value, start=1):
            if entry.id in seen:
                raise ValueError(f"duplicate entry id {entry.id!r} (entries {seen[entry.id]} and {index})")
            seen[entry.id] = index
        return value


@dataclass(frozen=True)
class CardEntry:
    """An entry compiled for matching and pricing."""

    entry: Entry
    source: str
    provider_match: re.Pattern[str]
    model_match: re.Pattern[str] | None
    start_ns: int | None
    end_ns: int | None
    compiled: CompiledPrice | None
    tier_column: int | None = None
    """Span row column holding the tier value, when the tier attribute is (read into) one."""
    base_factor: Fraction = Fraction(1)
    """1 - discount, exact."""
    tier_factors: Mapping[str, Fraction] = field(default_factory=dict)
    """Tier value -> base_factor x the tier's multiplier, exact."""
    match_rules: tuple[MatchRule, ...] = ()
    """The entry's ``match:`` (attributes the span must carry), compiled."""
    charge: ChargePrice | None = None
    """A match-only entry: what one matched span costs."""

    def matches(self, provider: str, model: str) -> bool:
        """Whether the entry's provider and model patterns match this call (never for a charge)."""
        if self.model_match is None:
            return False
        return bool(self.provider_match.fullmatch(provider or "")) and bool(self.model_match.fullmatch(model))

    def active(self, start_ns: int) -> bool:
        """Whether the entry is in force for a call that started at ``start_ns``."""
        return (self.start_ns is None or start_ns >= self.start_ns) and (self.end_ns is None or start_ns < self.end_ns)

    def multiplier(self, tier_value: str | None) -> Fraction:
        """Discount x the tier multiplier of ``tier_value`` (1 for a value the tier does not list)."""
        if tier_value is None:
            return self.base_factor
        return self.tier_factors.get(tier_value, self.base_factor)

    @property
    def effective_from(self) -> str:
        """The entry's effective-from date as written (ISO), "" when it has none."""
        value = self.entry.effective_from
        return value.isoformat() if value is not None else ""


@dataclass(frozen=True)
class RateCard:
    """A validated user rate card: entries in file order."""

    path: Path | None
    entries: tuple[CardEntry, ...]
    source: str = "user:inline"

    @functools.cached_property
    def charges(self) -> tuple[CardEntry, ...]:
        """The match-only entries (pricing spans other than model calls), in file order."""
        return tuple(e for e in self.entries if e.charge is not None)

    def candidates(self, provider: str, models: tuple[str, ...]) -> tuple[tuple[CardEntry, str], ...]:
        """Entries matching (provider, any of models), in file order, with the model matched."""
        found = []
        for card_entry in self.entries:
            for model in models:
                if model and card_entry.matches(provider, model):
                    found.append((card_entry, model))
                    break
        return tuple(found)


def load_rate_card(path: str | Path) -> RateCard:
    """Read and validate a YAML rate card; raises RateCardError naming file, entry and field."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise RateCardError(f"rate card {path}: cannot read ({exc.strerror})") from None
    return parse_rate_card(text, source=path)


def parse_rate_card(text: str, source: Path | None = None) -> RateCard:
    """Validate rate-card YAML text (``source`` names the file in errors and provenance)."""
    label = str(source) if source else "<rate card>"
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RateCardError(f"rate card {label}: not valid YAML{where}: {problem}") from None
    if not isinstance(doc, dict):
        raise RateCardError(f"rate card {label}: expected a mapping with an 'entries' list")
    try:
        card = RateCardFile.model_validate(doc)
    except ValidationError as exc:
        raise RateCardError(_describe(label, doc, exc)) from None
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    source_name = f"user:{source.name if source else 'inline'}@{digest}"
    return RateCard(source, tuple(_compile_entry(entry, source_name) for entry in card.entries), source_name)


def card_warnings(card: RateCard) -> list[str]:
    """Valid but probably unintended: shown by ``otelspend rates check``."""
    warnings = []
    for card_entry in card.entries:
        entry = card_entry.entry
        if entry.prices is not None and entry.prices.cache_read is None:
            warnings.append(f"entry {entry.id!r}: no cache_read price, so cache hits are priced at the full input rate")
        if entry.tier is not None and card_entry.tier_column is None:
            warnings.append(
                f"entry {entry.id!r}: tier attribute {entry.tier.attribute!r} is not a canonical field; "
                "it must arrive as a span attribute"
            )
    return warnings


def _compile_entry(entry: Entry, source: str) -> CardEntry:
    compiled = None
    charge = None
    if entry.model is None:
        charge = _compile_charge(entry, source)
    elif entry.prices is not None or entry.gpu_second is not None:
        prices: dict[str, Decimal] = {}
        if entry.prices is not None:
            p = entry.prices
            prices = {"input_mtok": p.input, "output_mtok": p.output}
            for key, value in (
                ("cache_read_mtok", p.cache_read),
                ("cache_write_mtok", p.cache_write),
                ("cache_write_1h_mtok", p.cache_write_1h),
                ("output_reasoning_mtok", p.reasoning),
            ):
                if value is not None:
                    prices[key] = value
            if entry.request_fee:
                prices["requests_kcount"] = entry.request_fee * 1000
            elif entry.per_1k_calls:
                prices["requests_kcount"] = entry.per_1k_calls
        compiled = compile_model_price(
            ModelPrice(**prices),
            source=source,
            entry=entry.id,
            effective_from=entry.effective_from.isoformat() if entry.effective_from else "",
        )
        if entry.gpu_second is not None:
            compiled = replace(
                compiled,
                gpu_second_femto=femto_per_unit(Fraction(entry.gpu_second), 1),
                default_gpus=entry.gpus,
                rates_usd_per_mtok={**compiled.rates_usd_per_mtok, "gpu_second": str(entry.gpu_second)},
            )
        if entry.kind is not None:
            compiled = replace(compiled, kind=entry.kind)
    base = Fraction(100 - entry.discount_pct) / 100
    return CardEntry(
        entry=entry,
        source=source,
        provider_match=_pattern(entry.provider),
        model_match=_pattern(entry.model) if entry.model is not None else None,
        match_rules=_match_rules(entry.match or {}),
        charge=charge,
        start_ns=_as_ns(entry.effective_from),
        end_ns=_as_ns(entry.effective_to),
        compiled=compiled,
        tier_column=_tier_column(entry.tier.attribute) if entry.tier is not None else None,
        base_factor=base,
        tier_factors={value: base * Fraction(f) for value, f in (entry.tier.multipliers if entry.tier else {}).items()},
    )


def _compile_charge(entry: Entry, source: str) -> ChargePrice:
    """A match-only entry's USD prices as femto-USD per unit."""
    fee = None
    if entry.request_fee is not None:
        fee = femto_per_unit(Fraction(entry.request_fee), 1)
    elif entry.per_1k_calls is not None:
        fee = femto_per_unit(Fraction(entry.per_1k_calls), 1000)
    return ChargePrice(
        source=source,
        entry=entry.id,
        effective_from=entry.effective_from.isoformat() if entry.effective_from else "",
        kind=entry.cost_kind,
        fee_femto=fee,
        gpu_second_femto=femto_per_unit(Fraction(entry.gpu_second), 1) if entry.gpu_second is not None else None,
        cpu_second_femto=femto_per_unit(Fraction(entry.cpu_second), 1) if entry.cpu_second is not None else None,
        default_gpus=entry.gpus,
        default_cpus=entry.cpus,
        cpu_seconds_keys=_conventions().cpu_seconds_keys,
    )


def _tier_column(attribute: str) -> int | None:
    return _canonical_columns().get(attribute)


def _match_rules(match: Mapping[str, str]) -> tuple[MatchRule, ...]:
    """Compile ``match:``: each key read from a canonical column when it is (read into) one, else
    from span then resource attributes (a short alias of the convention table names its keys)."""
    aliases = _conventions().match_aliases
    return tuple(
        MatchRule(key, _canonical_columns().get(key), aliases.get(key, (key,)), _pattern(pattern))
        for key, pattern in match.items()
    )


@functools.cache
def _conventions() -> ConventionTable:
    from otelspend.conventions import load_conventions

    return load_conventions()


@functools.cache
def _canonical_columns() -> dict[str, int]:
    """Text column names, and the attribute keys the convention table reads into them (those
    keys are not kept in the span's attribute map), -> column index."""
    from otelspend.conventions import load_conventions

    text_columns = {column.name: index for index, column in enumerate(SPAN_COLUMNS) if column.kind == "str"}
    found: dict[str, int] = {"service.name": text_columns["service_name"]}
    for name, keys in load_conventions().field_keys.items():
        if name in text_columns:
            for key in keys:
                found.setdefault(key, text_columns[name])
    found.update(text_columns)
    return found


def _pattern(text: str) -> re.Pattern[str]:
    if text.startswith("re:"):
        return re.compile(text[3:], re.IGNORECASE)
    return re.compile(fnmatch.translate(text), re.IGNORECASE)


def _as_ns(value: dt.datetime | dt.date | None) -> int | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return (value - _EPOCH) // dt.timedelta(microseconds=1) * 1000


def _describe(label: str, doc: Mapping[str, Any], exc: ValidationError) -> str:
    lines = []
    raw_entries = doc.get("entries")
    entries: list[Any] = raw_entries if isinstance(raw_entries, list) else []
    for error in exc.errors():
        loc = list(error["loc"])
        where = ""
        if len(loc) >= 2 and loc[0] == "entries" and isinstance(loc[1], int):
            index = loc[1]
            raw = entries[index] if index < len(entries) else None
            entry_id = raw.get("id") if isinstance(raw, dict) else None
            where = f"entry {index + 1}" + (f" (id {entry_id!r})" if entry_id else "")
            loc = loc[2:]
        field = ".".join(str(part) for part in loc if not str(part).startswith(("function-", "union[")))
        message = str(error["msg"]).removeprefix("Value error, ")
        head, _, rest = message.partition(": ")
        if rest and head in Entry.model_fields and field == "":
            field, message = head, rest  # a check across fields names the one at fault
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        value = (
            f" = {error['input']!r}"
            if error["type"] != "missing" and not isinstance(error["input"], dict | list)
            else ""
        )
        parts = [part for part in (where, field) if part]
        lines.append(f"{', '.join(parts) or 'top level'}{value}: {message}")
    return f"rate card {label}: " + "; ".join(lines)

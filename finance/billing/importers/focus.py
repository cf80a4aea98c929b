"""FOCUS 1.2 / 1.3 cost and usage files (CSV, gzip CSV or Parquet): how AWS, Azure and Google
Cloud hand their bills over.

Read per row: ``BilledCost`` (the invoice basis) in ``BillingCurrency``, ``ListCost``,
``ChargePeriodStart/End``, ``ChargeCategory`` (Usage, Purchase, Tax, Credit, Adjustment)
and ``ChargeClass``, the quantity as ``ConsumedQuantity`` / ``ConsumedUnit`` (else
``PricingQuantity`` / ``PricingUnit``), ``BillingAccountId``, ``SubAccountId``, the provider
from ``ServiceProviderName`` (1.3; ``ProviderName`` in 1.2, deprecated in 1.3) and
``ServiceName``. Only AI rows are imported (``ServiceCategory`` "AI and Machine Learning",
or ``ServiceSubcategory`` "Generative AI"); the others are counted as skipped.

FOCUS has no model or token-type column yet (LLM tokens have no ratified guidance): the
model comes from a custom ``x_Model`` column when there is one, else from ``SkuMeter`` /
``ChargeDescription``; the usage kind from ``x_UsageKind`` / ``x_TokenType``, else from the
words of the meter and description (cached / cache read, cache write, input, output, web
search) and request units.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Iterator
from typing import Any

from otelspend.finance.billing.importers.base import Counters, Head, Source, Table, check_period, located, parse_time
from otelspend.finance.billing.lines import (
    BillingImportError,
    BillingLine,
    Charge,
    Identities,
    RecordError,
    UsageKind,
    currency,
    money,
    quantity,
    unit,
)
from otelspend.finance.billing.names import focus_provider, model_key, parse_usage_type

REQUIRED = ("BilledCost", "BillingCurrency", "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory")
COLUMNS = (
    *REQUIRED,
    "ChargeClass",
    "ChargeDescription",
    "ConsumedQuantity",
    "ConsumedUnit",
    "PricingQuantity",
    "PricingUnit",
    "ListCost",
    "BillingAccountId",
    "SubAccountId",
    "ServiceName",
    "ServiceCategory",
    "ServiceSubcategory",
    "ServiceProviderName",
    "ProviderName",
    "SkuId",
    "SkuPriceId",
    "SkuMeter",
    "ResourceId",
    "RegionId",
    "Tags",
    "x_Model",
    "x_ModelName",
    "x_UsageKind",
    "x_TokenType",
    "x_ServiceTier",
)
AI_CATEGORY = "ai and machine learning"
CHARGES: dict[str, Charge] = {c.value: c for c in Charge}

_WORDS: tuple[tuple[re.Pattern[str], UsageKind], ...] = (
    (re.compile(r"cache[ds]?[ -]?(read|hit)|cached|cache input"), UsageKind.CACHED_INPUT),
    (re.compile(r"cache[ -]?(write|creation|storage)"), UsageKind.CACHE_WRITE_5M),
    (re.compile(r"web[ -]?search"), UsageKind.WEB_SEARCH),
    (re.compile(r"\b(input|prompt|inp)\b"), UsageKind.UNCACHED_INPUT),
    (re.compile(r"\b(output|completion|outp|out)\b"), UsageKind.OUTPUT),
)
_KIND_NAMES: dict[str, UsageKind] = {k.value: k for k in UsageKind} | {
    "input": UsageKind.UNCACHED_INPUT,
    "cache_read": UsageKind.CACHED_INPUT,
    "cache_write": UsageKind.CACHE_WRITE_5M,
}
_NOISE = re.compile(
    r"\b(1m|1k|1000|million|thousand|tokens?|input|output|inp|outp|prompt|completion|cached|cache|read|write|"
    r"creation|hit|batch|priority|flex|standard|glbl|global|regnl|regional|data ?zone|dzone|usage|text|"
    r"1h|5m|web|search|requests?)\b"
)
_TIERS = ("batch", "priority", "flex", "provisioned")


class Focus:
    """FinOps FOCUS 1.x cost and usage data (CSV or Parquet): the AI usage rows of any provider."""

    format = "focus"
    description = "FOCUS 1.2 / 1.3 cost and usage file (CSV, gzip CSV or Parquet)"

    def identify(self, head: Head) -> bool:
        """A header with FOCUS's ``BilledCost``, ``ChargePeriodStart`` and ``ProviderName`` columns."""
        return head.kind in ("csv", "parquet") and all(column in head.columns for column in REQUIRED)

    def extract(self, source: Source, counters: Counters) -> Iterator[BillingLine]:
        """Billing lines of the usage rows of AI services (model and token kind from ``x_`` columns or the SKU
        meter)."""
        table = Table(source, COLUMNS)
        missing = [c for c in REQUIRED if c not in table.index]
        if missing:
            raise BillingImportError(
                source.name, "header", "columns", missing, "the mandatory FOCUS columns " + ", ".join(REQUIRED)
            )
        column = _Columns(table.index)
        identities = Identities()
        for number, raw in table.rows():
            record = f"row {number}"
            row = column.clean(raw)
            try:
                line = column.line(source, row, record, counters)
            except RecordError as error:
                raise located(source, record, error) from None
            if line is not None:
                yield identities.assign(line, column.identity_extra(row))


class _Columns:
    """Column positions resolved once; rows read by position (a missing optional column points
    at the '' ``clean`` appends). The hot path of a million-line file: ~15 us a row."""

    def __init__(self, index: dict[str, int]) -> None:
        at = {name: index.get(name, -1) for name in COLUMNS}
        self.at = at
        self.extra = operator.itemgetter(
            *(at[n] for n in ("ChargeClass", "ResourceId", "SkuId", "SkuPriceId", "RegionId", "Tags"))
        )
        self.text_at = operator.itemgetter(
            at["ServiceCategory"], at["ServiceSubcategory"], at["ChargeCategory"], at["BillingCurrency"],
            at["SkuMeter"], at["ChargeDescription"], at["x_Model"], at["x_ModelName"], at["x_UsageKind"],
            at["x_TokenType"], at["ServiceProviderName"], at["ProviderName"], at["ServiceName"],
            at["BillingAccountId"], at["SubAccountId"], at["x_ServiceTier"],
        )  # fmt: skip
        self.value_at = operator.itemgetter(
            at["ChargePeriodStart"], at["ChargePeriodEnd"], at["BilledCost"], at["ListCost"]
        )

    @staticmethod
    def clean(row: list[Any]) -> list[Any]:
        """Nulls as '' (the table trimmed strings already), then the '' every missing column reads."""
        if None in row:
            row = ["" if c is None else c for c in row]
        row.append("")
        return row

    def identity_extra(self, row: list[Any]) -> tuple[str, ...]:
        """Identity beyond the natural key: what tells two rows of one SKU and hour apart."""
        return tuple(map(str, self.extra(row)))

    def line(self, source: Source, row: list[Any], record: str, counters: Counters) -> BillingLine | None:
        (category, subcategory, charge_name, currency_name, meter, description, x_model, x_model_name, x_kind,
         x_token_type, service_provider, provider_name, service, account, sub_account, x_tier) = map(
            str, self.text_at(row))  # fmt: skip
        if not _is_ai(category, subcategory):
            counters.skip("not an AI service (ServiceCategory)")
            return None
        charge = _charge(charge_name)
        period_start, period_end, billed, listed = self.value_at(row)
        start = parse_time("ChargePeriodStart", period_start or None)
        end = parse_time("ChargePeriodEnd", period_end or None)
        check_period(start, end, "ChargePeriodEnd")
        count, base = self._quantity(row)
        model_billed, kind, tier = _meaning(meter, description, x_model or x_model_name, x_kind or x_token_type)
        if kind is UsageKind.OTHER and base == "requests":
            kind = UsageKind.REQUEST
        if charge is not Charge.USAGE:
            model_billed, kind = "", UsageKind.OTHER
        return BillingLine(
            Focus.format,
            _provider(service_provider or provider_name, service),
            account or source.account,
            sub_account,
            "",
            "",
            model_billed,
            model_key(model_billed),
            kind,
            charge,
            start,
            end,
            count,
            base,
            money("BilledCost", billed),
            _currency(currency_name),
            money("ListCost", listed, allow_none=True),
            x_tier or tier,
            meter or description,
            record,
        )

    def _quantity(self, row: list[Any]) -> tuple[Any, str]:
        for q_name, u_name in (("ConsumedQuantity", "ConsumedUnit"), ("PricingQuantity", "PricingUnit")):
            raw = row[self.at[q_name]]
            if raw == "":
                continue
            base, factor = _unit(u_name, str(row[self.at[u_name]]))
            number = quantity(q_name, raw)
            assert number is not None
            return (number * factor if factor != 1 else number), base
        return None, ""


@functools.lru_cache(maxsize=256)
def _is_ai(category: str, subcategory: str) -> bool:
    return category.lower() == AI_CATEGORY or "generative ai" in subcategory.lower()


@functools.lru_cache(maxsize=64)
def _charge(value: str) -> Charge:
    found = CHARGES.get(value.lower())
    if found is None:
        raise RecordError("ChargeCategory", value, "Usage, Purchase, Tax, Credit or Adjustment")
    return found


@functools.lru_cache(maxsize=64)
def _currency(value: str) -> str:
    return currency("BillingCurrency", value)


@functools.lru_cache(maxsize=256)
def _unit(field: str, value: str) -> tuple[str, int]:
    return unit(field, value)


@functools.lru_cache(maxsize=256)
def _provider(provider: str, service: str) -> str:
    return focus_provider(provider, service)


@functools.lru_cache(maxsize=65_536)
def _meaning(meter: str, description: str, model: str, kind_name: str) -> tuple[str, UsageKind, str]:
    """(model as billed, usage kind, service tier) from the custom columns or the meter's words."""
    words = f"{meter} {description}".lower()
    bedrock = parse_usage_type(meter)
    if bedrock is not None and not kind_name:
        return model or bedrock[0], bedrock[1], bedrock[2]
    if kind_name:
        kind = _KIND_NAMES.get(kind_name.strip().lower())
        if kind is None:
            raise RecordError("x_UsageKind", kind_name, "one of " + ", ".join(k.value for k in UsageKind))
    else:
        kind = next((k for pattern, k in _WORDS if pattern.search(words)), UsageKind.OTHER)
        if kind is UsageKind.CACHE_WRITE_5M and re.search(r"\b1 ?h(our)?\b", words):
            kind = UsageKind.CACHE_WRITE_1H
    tier = next((t for t in _TIERS if t in words.split()), "")
    if not model:
        source_text = (meter or description).lower()
        model = " ".join(_NOISE.sub(" ", source_text).replace("-", " - ").split()).strip(" -").replace(" - ", "-")
    return model, kind, tier

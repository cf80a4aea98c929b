"""FOCUS rows from the ledger's charges, billed cells and allocated shares. Pure.

Column choices (FOCUS 1.2 rules, by id, from the FinOps Foundation's rule model):

* ChargeCategory ``Usage``, ChargeFrequency ``Usage-Based``, ChargeClass null (no corrections:
  a late span changes the ledger, and a re-export shows the new figure), PricingCategory
  ``Standard`` (rate-card prices, predetermined), BillingCurrency ``USD``.
* ServiceCategory ``AI and Machine Learning``, ServiceSubcategory ``Generative AI`` (its parent).
* ProviderName = PublisherName = ServiceProviderName = InvoiceIssuerName: the company that sells
  the model API (the bill comes from it); HostProviderName the cloud it runs on, where one is
  known (Bedrock: AWS, Azure OpenAI: Microsoft, Vertex/Gemini: Google Cloud), else the same
  company. FOCUS 1.3 deprecates ProviderName and PublisherName; 1.2 readers still need them.
* ListCost = ContractedCost = EffectiveCost = the rate card's cost; ListUnitPrice =
  ContractedUnitPrice = the row's exact rate (``units.price``): ListUnitPrice x PricingQuantity
  = ListCost exactly (ListCost-C-009-C). A user rate card's discount is in that price: the
  ledger stores the cost after it.
* BillingPeriod: the UTC calendar month of the charge period (hours and days never straddle one).
* SubAccount: the run's team or tenant (setting ``export.sub_account``), null when the run has none.
* Tags: the run's workflow type, tenant, feature, team, cost center and environment, those it has.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from otelspend.finance.export.allocated import AllocatedShare
from otelspend.finance.export.billed import Billed, BilledCell
from otelspend.finance.export.charges import TAG_KEYS, Charge
from otelspend.finance.export.kinds import BY_KEY
from otelspend.finance.export.units import exact_decimal, price, rate_form, render_decimal
from otelspend.money import femto_to_usd

Row = dict[str, Any]


@dataclass(frozen=True)
class Company:
    """The companies behind a provider: who sells the calls, who hosts them, the service name."""

    name: str
    service: str
    host: str


COMPANIES: dict[str, Company] = {
    "openai": Company("OpenAI", "OpenAI API", "OpenAI"),
    "anthropic": Company("Anthropic", "Claude API", "Anthropic"),
    "aws.bedrock": Company("AWS", "Amazon Bedrock", "AWS"),
    "azure.ai.openai": Company("Microsoft", "Azure OpenAI", "Microsoft"),
    "azure.ai.inference": Company("Microsoft", "Azure AI Inference", "Microsoft"),
    "gcp.vertex_ai": Company("Google Cloud", "Vertex AI", "Google Cloud"),
    "gcp.gemini": Company("Google", "Gemini API", "Google Cloud"),
    "gcp.gen_ai": Company("Google", "Gemini API", "Google Cloud"),
    "mistral_ai": Company("Mistral AI", "Mistral API", "Mistral AI"),
    "x_ai": Company("xAI", "xAI API", "xAI"),
    "deepseek": Company("DeepSeek", "DeepSeek API", "DeepSeek"),
    "groq": Company("Groq", "GroqCloud", "Groq"),
    "cohere": Company("Cohere", "Cohere API", "Cohere"),
    "perplexity": Company("Perplexity", "Perplexity API", "Perplexity"),
    "fireworks": Company("Fireworks AI", "Fireworks API", "Fireworks AI"),
    "together_ai": Company("Together AI", "Together API", "Together AI"),
    "openrouter": Company("OpenRouter", "OpenRouter API", "OpenRouter"),
}
"""OTel semconv provider names -> who sells the calls, the service, where it runs."""


@functools.lru_cache(maxsize=4096)
def company(provider: str) -> Company:
    """The provider as FOCUS names it; an unlisted provider is named by its semconv id."""
    found = COMPANIES.get(provider)
    if found is not None:
        return found
    name = provider or "unknown provider"
    return Company(name, f"{name} API", name)


@dataclass(frozen=True)
class RowOptions:
    """What the rows need besides the charges: sub-account dimension and default billing account."""

    sub_account: str = "team"
    """team | tenant: which run attribution is the SubAccount."""
    default_account: str = "default"
    """BillingAccountId where no account mapping names one."""


def _utc(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


@functools.lru_cache(maxsize=4096)
def billing_period(start_s: int) -> tuple[dt.datetime, dt.datetime]:
    """The UTC calendar month containing ``start_s``: [first day 00:00, next month's first day)."""
    start = _utc(start_s)
    first = dt.datetime(start.year, start.month, 1, tzinfo=dt.UTC)
    following = dt.datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=dt.UTC)
    return first, following


@functools.lru_cache(maxsize=65_536)
def tags_json(values: tuple[str, ...]) -> str | None:
    """The run attribution as a FOCUS Tags object (KeyValueFormat), null when there is none."""
    present = {key: value for key, value in zip(TAG_KEYS, values, strict=True) if value}
    return json.dumps(present, sort_keys=True, separators=(",", ":")) if present else None


def _common(
    period_start_s: int, period_end_s: int, provider: str, tags: tuple[str, ...], account: str, options: RowOptions
) -> Row:
    """The columns a row shares with every row of its period, provider, attribution and account
    (built once per distinct combination: a fresh copy is returned each time)."""
    return dict(_common_cached(period_start_s, period_end_s, provider, tags, account, options))


@functools.lru_cache(maxsize=65_536)
def _common_cached(
    period_start_s: int, period_end_s: int, provider: str, tags: tuple[str, ...], account: str, options: RowOptions
) -> Row:
    who = company(provider)
    billing_start, billing_end = billing_period(period_start_s)
    account_id = account or options.default_account
    sub = tags[TAG_KEYS.index(options.sub_account)] or None
    return {
        "BillingAccountId": account_id,
        "BillingAccountName": account_id,
        "BillingCurrency": "USD",
        "BillingPeriodStart": billing_start,
        "BillingPeriodEnd": billing_end,
        "ChargePeriodStart": _utc(period_start_s),
        "ChargePeriodEnd": _utc(period_end_s),
        "ChargeCategory": "Usage",
        "ChargeFrequency": "Usage-Based",
        "PricingCategory": "Standard",
        "ChargeClass": None,
        "HostProviderName": who.host,
        "InvoiceIssuerName": who.name,
        "ProviderName": who.name,
        "PublisherName": who.name,
        "ServiceProviderName": who.name,
        "ServiceName": who.service,
        "ServiceCategory": "AI and Machine Learning",
        "ServiceSubcategory": "Generative AI",
        "SubAccountId": sub,
        "SubAccountName": sub,
        "SubAccountType": options.sub_account.capitalize() if sub else None,
        "Tags": tags_json(tags),
        "x_Provider": provider,
        "AllocatedMethodDetails": None,
        "AllocatedMethodId": None,
        "AllocatedResourceId": None,
        "AllocatedResourceName": None,
        "AllocatedTags": None,
        "SkuPriceDetails": None,
    }


def usage_row(charge: Charge, billed: Billed, options: RowOptions) -> Row:
    """One ledger charge as a FOCUS Usage row."""
    kind = BY_KEY[charge.kind]
    priced = price(charge.cost_femto, charge.quantity, charge.rate, kind.unit)
    cost = femto_to_usd(charge.cost_femto)
    row = _common(charge.period_start_s, charge.period_end_s, charge.provider, charge.tags, charge.account, options)
    row.update(
        _priced_columns(
            charge.provider, charge.model, charge.price_source, charge.price_entry, charge.price_effective_from,
            charge.kind, charge.rate.numerator, charge.rate.denominator,
        )
    )  # fmt: skip
    row["BilledCost"] = cost if billed.femto == charge.cost_femto else femto_to_usd(billed.femto)
    row["ListCost"] = row["ContractedCost"] = row["EffectiveCost"] = row["x_CalculatedCost"] = cost
    row["PricingQuantity"] = priced.pricing_quantity
    row["ConsumedQuantity"] = priced.consumed_quantity
    row["x_RunCount"] = charge.runs
    row["x_CallCount"] = charge.calls
    row["x_CostSource"] = billed.source
    row["x_BilledConfidence"] = billed.confidence
    return row


@functools.lru_cache(maxsize=65_536)
def _priced_columns(
    provider: str,
    model: str,
    price_source: str,
    price_entry: str,
    price_effective_from: str,
    kind_key: str,
    numerator: int,
    denominator: int,
) -> Row:
    """The columns a usage row shares with every row of its price, kind and rate (built once
    each; keyed by strings and integers, which hash fast)."""
    kind = BY_KEY[kind_key]
    form = rate_form(numerator, denominator, kind.unit)
    sku = price_entry or f"{provider}/{model}"
    columns: Row = {
        "ChargeDescription": f"{model or price_entry or provider}: {kind.describes}",
        "ListUnitPrice": form.unit_price,
        "ContractedUnitPrice": form.unit_price,
        "PricingUnit": form.pricing_unit,
        "ConsumedUnit": form.consumed_unit,
        "SkuId": sku,
        "SkuMeter": kind.meter,
        "SkuPriceId": f"{sku}/{kind.key}/{price_effective_from or 'any'}/{_rate_id(Fraction(numerator, denominator))}",
        "x_ChargeKind": kind.key,
        "x_Model": model or None,
        "x_PriceSource": price_source or None,
        "x_PriceEffectiveFrom": price_effective_from or None,
    }
    if not model and price_entry:  # a charge (tool, retrieval, compute): named by its price entry
        columns["ServiceName"] = price_entry
    return columns


def _rate_id(rate: Fraction) -> str:
    """A rate as a stable id: femto-USD per base unit (``3000000000`` or ``7/3``)."""
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}:{rate.denominator}"


def unattributed_row(cell: BilledCell, period_end_s: int, options: RowOptions) -> Row:
    """Billed money no ledger usage carries: an Adjustment row, so BilledCost still sums to the bill.

    Its ListCost, ContractedCost and EffectiveCost match BilledCost (ListCost-C-008-C: a charge
    unrelated to other charges); no quantity or unit price (only required for Usage and Purchase).
    """
    amount = femto_to_usd(cell.billed_femto)
    row = _common(cell.period_start_s, period_end_s, cell.provider, ("",) * len(TAG_KEYS), cell.account, options)
    row.update(
        {
            "ChargeCategory": "Adjustment",
            "ChargeFrequency": "Usage-Based",
            "ChargeDescription": f"{cell.model or cell.provider}: billed usage the ledger has no calls for",
            "BilledCost": amount,
            "ListCost": amount,
            "ContractedCost": amount,
            "EffectiveCost": amount,
            "ListUnitPrice": None,
            "ContractedUnitPrice": None,
            "PricingQuantity": None,
            "PricingUnit": None,
            "ConsumedQuantity": None,
            "ConsumedUnit": None,
            "PricingCategory": None,
            "SkuId": None,
            "SkuMeter": None,
            "SkuPriceId": None,
            "x_ChargeKind": "billed_unattributed",
            "x_Model": cell.model or None,
            "x_RunCount": 0,
            "x_CallCount": 0,
            "x_CalculatedCost": Decimal(0),
            "x_CostSource": "billed",
            "x_BilledConfidence": cell.confidence,
            "x_PriceSource": None,
            "x_PriceEffectiveFrom": None,
        }
    )
    return row


def allocated_row(share: AllocatedShare, options: RowOptions) -> Row:
    """A pool's share placed on a consumer (FOCUS 1.3 data-generator split cost allocation); money
    the pool had no consumer for is an ``unallocated_share`` row with no owner."""
    kind = BY_KEY["unallocated_share" if share.unallocated else "allocated_share"]
    quantity = max(share.signal_quantity, 1)
    rate = Fraction(share.amount_femto, quantity)
    priced = price(share.amount_femto, quantity, rate, kind.unit)
    amount = femto_to_usd(share.amount_femto)
    ratio = exact_decimal(share.ratio)
    ratio_text = render_decimal(ratio) if ratio is not None else repr(float(share.ratio))
    # AllocatedRatio and UsageQuantity are JSON numbers; written as text so a Decimal stays exact.
    details = (
        f'{{"Elements":[{{"AllocatedRatio":{ratio_text},"UsageUnit":{json.dumps(share.signal_unit)},'
        f'"UsageQuantity":{share.signal_quantity}}}]}}'
    )
    row = _common(share.period_start_s, share.period_end_s, "", tuple(share.consumer), share.account, options)
    row.update(
        {
            "ChargeCategory": "Usage",
            "ChargeFrequency": "Usage-Based",
            "ChargeDescription": f"{share.pool_name}: {kind.describes}",
            "BilledCost": amount,
            "ListCost": amount,
            "ContractedCost": amount,
            "EffectiveCost": amount,
            "ListUnitPrice": priced.unit_price,
            "ContractedUnitPrice": priced.unit_price,
            "PricingQuantity": priced.pricing_quantity,
            "PricingUnit": priced.pricing_unit,
            "ConsumedQuantity": priced.consumed_quantity,
            "ConsumedUnit": priced.consumed_unit,
            "PricingCategory": "Standard",
            "SkuId": f"pool/{share.pool_id}",
            "SkuMeter": kind.meter,
            "SkuPriceId": f"pool/{share.pool_id}/{share.rule}/{_rate_id(rate)}",
            "AllocatedMethodId": share.rule,
            "AllocatedMethodDetails": details,
            "AllocatedResourceId": share.pool_id,
            "AllocatedResourceName": share.pool_name,
            "AllocatedTags": tags_json(share.consumer),
            "ServiceName": "Shared-cost pools",
            "ProviderName": "Internal",
            "PublisherName": "Internal",
            "ServiceProviderName": "Internal",
            "InvoiceIssuerName": "Internal",
            "HostProviderName": None,
            "x_ChargeKind": kind.key,
            "x_Model": None,
            "x_RunCount": share.runs,
            "x_CallCount": 0,
            "x_CalculatedCost": amount,
            "x_CostSource": "calculated",
            "x_BilledConfidence": None,
            "x_PriceSource": share.rule,
            "x_PriceEffectiveFrom": None,
        }
    )
    return row


def clip_periods(rows: list[Row], start_s: int, end_s: int) -> None:
    """Narrow each row's charge period to the export window ``[start_s, end_s)``, in place.

    A window that does not fall on the grain's boundaries (a daily export from 10:00) holds only
    part of its first and last periods: the rows say so, so the charge periods of two adjacent
    exports never overlap and a row never claims usage from outside its file's window.
    """
    first, last = _utc(start_s), _utc(end_s)
    for row in rows:
        if row["ChargePeriodStart"] < first:
            row["ChargePeriodStart"] = first
        if row["ChargePeriodEnd"] > last:
            row["ChargePeriodEnd"] = last

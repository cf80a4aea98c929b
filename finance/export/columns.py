"""The columns of an otelspend FOCUS export, in file order: FOCUS columns first (alphabetical,
as the spec lists them), then the ``x_`` columns, never intermixed (ColumnHandling-A-013-O)."""

from __future__ import annotations

from typing import Literal

ExportType = Literal["decimal", "datetime", "string", "json", "integer"]

FOCUS_VERSION = "1.3"

FOCUS: tuple[tuple[str, ExportType], ...] = (
    ("AllocatedMethodDetails", "json"),
    ("AllocatedMethodId", "string"),
    ("AllocatedResourceId", "string"),
    ("AllocatedResourceName", "string"),
    ("AllocatedTags", "json"),
    ("BilledCost", "decimal"),
    ("BillingAccountId", "string"),
    ("BillingAccountName", "string"),
    ("BillingCurrency", "string"),
    ("BillingPeriodEnd", "datetime"),
    ("BillingPeriodStart", "datetime"),
    ("ChargeCategory", "string"),
    ("ChargeClass", "string"),
    ("ChargeDescription", "string"),
    ("ChargeFrequency", "string"),
    ("ChargePeriodEnd", "datetime"),
    ("ChargePeriodStart", "datetime"),
    ("ConsumedQuantity", "decimal"),
    ("ConsumedUnit", "string"),
    ("ContractedCost", "decimal"),
    ("ContractedUnitPrice", "decimal"),
    ("EffectiveCost", "decimal"),
    ("HostProviderName", "string"),
    ("InvoiceIssuerName", "string"),
    ("ListCost", "decimal"),
    ("ListUnitPrice", "decimal"),
    ("PricingCategory", "string"),
    ("PricingQuantity", "decimal"),
    ("PricingUnit", "string"),
    ("ProviderName", "string"),
    ("PublisherName", "string"),
    ("ServiceCategory", "string"),
    ("ServiceName", "string"),
    ("ServiceProviderName", "string"),
    ("ServiceSubcategory", "string"),
    ("SkuId", "string"),
    ("SkuMeter", "string"),
    ("SkuPriceDetails", "json"),
    ("SkuPriceId", "string"),
    ("SubAccountId", "string"),
    ("SubAccountName", "string"),
    ("SubAccountType", "string"),
    ("Tags", "json"),
)

CUSTOM: tuple[tuple[str, ExportType], ...] = (
    ("x_ChargeKind", "string"),
    ("x_Provider", "string"),
    ("x_Model", "string"),
    ("x_RunCount", "integer"),
    ("x_CallCount", "integer"),
    ("x_CalculatedCost", "decimal"),
    ("x_CostSource", "string"),
    ("x_BilledConfidence", "string"),
    ("x_PriceSource", "string"),
    ("x_PriceEffectiveFrom", "string"),
)
"""x_ChargeKind: uncached_input | cached_input | cache_write | output | reasoning | request_fee | tool |
retrieval | compute | unitemized | allocated_share | unallocated_share | billed_unattributed. x_RunCount:
distinct runs with usage in the row (runs count once per row they have usage in, so the column does not
sum across rows; an allocated row: the runs its share was placed on). x_CallCount: counted calls (and
priced charge spans) in the row. x_CalculatedCost: the rate card's cost (= ListCost), kept beside BilledCost when that
is the bill's. x_CostSource: calculated | billed. x_BilledConfidence: high | medium | low when billed.
x_PriceSource / x_PriceEffectiveFrom: the rate card (with version) and the date of the price in force."""

COLUMNS: tuple[tuple[str, ExportType], ...] = (*FOCUS, *CUSTOM)
NAMES: tuple[str, ...] = tuple(name for name, _ in COLUMNS)

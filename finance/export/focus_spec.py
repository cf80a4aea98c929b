"""What the FOCUS specification says about each column, as data the validator reads.

Written from the FinOps Foundation's FOCUS 1.2 rule model (``model-1.2.json`` of
finopsfoundation/focus_validator: one MUST / SHOULD / MAY rule per requirement of the spec,
e.g. ``BilledCost-C-003-M`` "BilledCost MUST NOT be null") and the FOCUS 1.3 column text for
what 1.3 adds (``ServiceProviderName``, ``HostProviderName``, the ``Allocated*`` columns of
data-generator split cost allocation). Rule ids below are the model's where it has one.
"""

from __future__ import annotations

from typing import Literal

ColumnType = Literal["decimal", "datetime", "string", "key_value", "json_object"]

MANDATORY_12: tuple[str, ...] = (
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
    "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodEnd",
    "ChargePeriodStart", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost",
    "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
)  # fmt: skip
"""Columns a FOCUS 1.2 dataset MUST contain (CostAndUsage-D-0xx-M presence rules)."""

MANDATORY_13_ADDED: tuple[str, ...] = ("ServiceProviderName", "HostProviderName")
"""FOCUS 1.3: both MUST be present (HostProviderName may hold nulls)."""

CONDITIONAL: tuple[str, ...] = (
    "AvailabilityZone", "BillingAccountType", "CapacityReservationId", "CapacityReservationStatus",
    "ChargeFrequency", "CommitmentDiscountCategory", "CommitmentDiscountId", "CommitmentDiscountName",
    "CommitmentDiscountQuantity", "CommitmentDiscountStatus", "CommitmentDiscountType",
    "CommitmentDiscountUnit", "ConsumedQuantity", "ConsumedUnit", "ContractedUnitPrice", "InvoiceId",
    "ListUnitPrice", "PricingCategory", "PricingCurrency", "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost", "PricingCurrencyListUnitPrice", "RegionId", "RegionName", "ResourceId",
    "ResourceName", "ResourceType", "ServiceSubcategory", "SkuId", "SkuMeter", "SkuPriceDetails", "SkuPriceId",
    "SubAccountId", "SubAccountName", "SubAccountType", "Tags",
)  # fmt: skip
"""Conditional and recommended FOCUS 1.2 columns: checked when present."""

ADDED_13: tuple[str, ...] = (
    "AllocatedMethodDetails", "AllocatedMethodId", "AllocatedResourceId", "AllocatedResourceName", "AllocatedTags",
)  # fmt: skip

FOCUS_COLUMNS: frozenset[str] = frozenset((*MANDATORY_12, *MANDATORY_13_ADDED, *CONDITIONAL, *ADDED_13))

TYPES: dict[str, ColumnType] = {
    **dict.fromkeys(
        (
            "BilledCost", "ContractedCost", "EffectiveCost", "ListCost", "PricingQuantity", "ConsumedQuantity",
            "ListUnitPrice", "ContractedUnitPrice", "CommitmentDiscountQuantity", "PricingCurrencyContractedUnitPrice",
            "PricingCurrencyEffectiveCost", "PricingCurrencyListUnitPrice",
        ),
        "decimal",
    ),
    **dict.fromkeys(("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"), "datetime"),
    **dict.fromkeys(("Tags", "SkuPriceDetails", "AllocatedTags"), "key_value"),
    "AllocatedMethodDetails": "json_object",
}  # fmt: skip
"""Every other FOCUS column is a String."""

NOT_NULL: tuple[str, ...] = (
    "BilledCost", "BillingAccountId", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory",
    "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost",
    "ProviderName", "PublisherName", "ServiceCategory", "ServiceName", "ChargeFrequency", "ServiceSubcategory",
    "PricingCurrency", "PricingCurrencyEffectiveCost", "ServiceProviderName",
)  # fmt: skip
"""``<Column>-C-00x-M`` "MUST NOT be null" (checked when the column is present)."""

NOT_NULL_FOR_USAGE_OR_PURCHASE: tuple[str, ...] = (
    "ListUnitPrice", "PricingQuantity", "SkuId", "SkuPriceId", "PricingCategory", "ContractedUnitPrice",
    "PricingCurrencyListUnitPrice", "PricingCurrencyContractedUnitPrice",
)  # fmt: skip
"""MUST NOT be null when ChargeCategory is Usage or Purchase and ChargeClass is not Correction."""

NULL_FOR_TAX: tuple[str, ...] = (
    "ListUnitPrice", "PricingQuantity", "SkuId", "SkuPriceId", "PricingCategory", "ContractedUnitPrice",
    "PricingCurrencyListUnitPrice", "PricingCurrencyContractedUnitPrice",
)  # fmt: skip
"""MUST be null when ChargeCategory is Tax."""

NULL_TOGETHER: tuple[tuple[str, str], ...] = (
    ("PricingUnit", "PricingQuantity"),
    ("ConsumedUnit", "ConsumedQuantity"),
    ("SubAccountName", "SubAccountId"),
    ("SubAccountType", "SubAccountId"),
    ("BillingAccountType", "BillingAccountId"),
    ("RegionName", "RegionId"),
    ("ResourceType", "ResourceId"),
    ("CommitmentDiscountCategory", "CommitmentDiscountId"),
    ("CommitmentDiscountType", "CommitmentDiscountId"),
    ("CommitmentDiscountUnit", "CommitmentDiscountQuantity"),
)
"""(A, B): A MUST be null when B is null, and MUST NOT be null when B is not null."""

NULL_WHEN_NULL: tuple[tuple[str, str], ...] = (
    ("SkuMeter", "SkuId"),
    ("SkuPriceDetails", "SkuPriceId"),
    ("ResourceName", "ResourceId"),
    ("CommitmentDiscountName", "CommitmentDiscountId"),
    ("CommitmentDiscountStatus", "CommitmentDiscountId"),
    ("CapacityReservationStatus", "CapacityReservationId"),
    ("AllocatedMethodDetails", "AllocatedMethodId"),
)
"""(A, B): A MUST be null when B is null."""

NON_NEGATIVE: tuple[str, ...] = (
    "ListUnitPrice", "ContractedUnitPrice", "PricingCurrencyListUnitPrice", "PricingCurrencyContractedUnitPrice",
)  # fmt: skip

PRODUCTS: tuple[tuple[str, str], ...] = (("ListUnitPrice", "ListCost"), ("ContractedUnitPrice", "ContractedCost"))
"""(unit price, cost): unit price x PricingQuantity MUST match the cost (ListCost-C-009-C,
ContractedCost-C-009-C) when neither is null and ChargeClass is not Correction."""

CHARGE_CATEGORIES = frozenset({"Usage", "Purchase", "Tax", "Credit", "Adjustment"})
CHARGE_CLASSES = frozenset({"Correction"})
CHARGE_FREQUENCIES = frozenset({"One-Time", "Recurring", "Usage-Based"})
PRICING_CATEGORIES = frozenset({"Standard", "Committed", "Dynamic", "Other"})
COMMITMENT_DISCOUNT_CATEGORIES = frozenset({"Spend", "Usage"})
COMMITMENT_DISCOUNT_STATUSES = frozenset({"Used", "Unused"})
CAPACITY_RESERVATION_STATUSES = frozenset({"Used", "Unused"})

SUBCATEGORIES: dict[str, tuple[str, ...]] = {
    "AI and Machine Learning": (
        "AI Platforms", "Bots", "Generative AI", "Machine Learning", "Natural Language Processing",
        "Other (AI and Machine Learning)",
    ),
    "Analytics": (
        "Analytics Platforms", "Business Intelligence", "Data Processing", "Search", "Streaming Analytics",
        "Other (Analytics)",
    ),
    "Business Applications": ("Productivity and Collaboration", "Other (Business Applications)"),
    "Compute": (
        "Containers", "End User Computing", "Quantum Compute", "Serverless Compute", "Virtual Machines",
        "Other (Compute)",
    ),
    "Databases": (
        "Caching", "Data Warehouses", "Ledger Databases", "NoSQL Databases", "Relational Databases",
        "Time Series Databases", "Other (Databases)",
    ),
    "Developer Tools": (
        "Developer Platforms", "Continuous Integration and Deployment", "Development Environments",
        "Source Code Management", "Quality Assurance", "Other (Developer Tools)",
    ),
    "Identity": ("Identity and Access Management", "Other (Identity)"),
    "Integration": ("API Management", "Messaging", "Workflow Orchestration", "Other (Integration)"),
    "Internet of Things": ("IoT Analytics", "IoT Platforms", "Other (Internet of Things)"),
    "Management and Governance": (
        "Architecture", "Compliance", "Cost Management", "Data Governance", "Disaster Recovery",
        "Endpoint Management", "Observability", "Support", "Other (Management and Governance)",
    ),
    "Media": ("Content Creation", "Gaming", "Media Streaming", "Mixed Reality", "Other (Media)"),
    "Migration": ("Data Migration", "Resource Migration", "Other (Migration)"),
    "Mobile": ("Other (Mobile)",),
    "Multicloud": ("Multicloud Integration", "Other (Multicloud)"),
    "Networking": (
        "Application Networking", "Content Delivery", "Network Connectivity", "Network Infrastructure",
        "Network Routing", "Network Security", "Other (Networking)",
    ),
    "Security": (
        "Secret Management", "Security Posture Management", "Threat Detection and Response", "Other (Security)",
    ),
    "Storage": (
        "Backup Storage", "Block Storage", "File Storage", "Object Storage", "Storage Platforms", "Other (Storage)",
    ),
    "Web": ("Application Platforms", "Other (Web)"),
    "Other": ("Other (Other)",),
}  # fmt: skip
"""ServiceCategory allowed values (ServiceCategory-C-003-M) and each one's ServiceSubcategory
values (ServiceSubcategory-C-003-M / C-004-M: one and only one parent)."""

SERVICE_CATEGORIES = frozenset(SUBCATEGORIES)
SUBCATEGORY_PARENT: dict[str, str] = {sub: parent for parent, subs in SUBCATEGORIES.items() for sub in subs}

ISO_4217: frozenset[str] = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
    CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD
    GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT
    LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR
    NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD
    SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD
    XCG XOF XPF YER ZAR ZMW ZWG""".split()  # noqa: SIM905 - a table reads better as text
)
"""ISO 4217 national currency codes (BillingCurrency-C-006-M: "MUST be expressed in national currency")."""

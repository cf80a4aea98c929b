"""Rows to validate: built with the export's own row builders from hand-made charges."""

from __future__ import annotations

from fractions import Fraction

from otelspend.finance.export.billed import Billed
from otelspend.finance.export.charges import Charge
from otelspend.finance.export.rows import Row, RowOptions, usage_row

DAY = 1_796_342_400  # 2026-12-03T00:00:00Z


def charge(**changes: object) -> Charge:
    base = Charge(
        period_start_s=DAY, period_end_s=DAY + 86_400, provider="openai", model="gpt-4o-mini",
        price_source="genai-prices 0.0.1", price_entry="openai/gpt-4o-mini", price_effective_from="",
        tags=("support_triage", "acme", "chat", "support", "cc-100", "production"), kind="uncached_input",
        rate=Fraction(150_000_000), quantity=1_000, cost_femto=150_000_000_000, runs=2, calls=3,
    )  # fmt: skip
    return base._replace(**changes)


def row(**changes: object) -> Row:
    c = charge(**changes)
    return usage_row(c, Billed(c.cost_femto, "calculated", None), RowOptions())

"""The seams to billing and allocation: billed money split over rows exactly, what no row carries
kept as an Adjustment row, allocated shares as FOCUS 1.3 split-allocation rows; all validate."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from otelspend.finance.export.allocated import AllocatedShare
from otelspend.finance.export.billed import BilledCell, apply_billing
from otelspend.finance.export.rows import RowOptions, allocated_row, unattributed_row, usage_row
from otelspend.finance.export.validate import validate_file
from otelspend.finance.export.writers import csv_chunks
from tests.finance.export.rows import DAY, charge

costs = st.lists(st.integers(0, 10**15), min_size=1, max_size=12)


@given(costs=costs, billed=st.integers(-(10**16), 10**16))
def test_a_cells_billed_money_is_split_over_its_rows_exactly(costs: list[int], billed: int) -> None:
    charges = [charge(kind="output", cost_femto=c * 3, rate=Fraction(3), quantity=max(c, 1)) for c in costs]
    charges = [charge(cost_femto=c.quantity * 3, quantity=c.quantity, rate=Fraction(3), runs=i) for i, c in
               enumerate(charges)]  # fmt: skip
    cell = BilledCell(DAY, "openai", "gpt-4o-mini", "", billed, "high")
    parts, orphans = apply_billing(charges, [cell])
    assert orphans == [] and sum(p.femto for p in parts) == billed
    assert all(p.source == "billed" and p.confidence == "high" for p in parts)


def test_unmatched_and_unattributed_billing_becomes_adjustment_rows(tmp_path: Path) -> None:
    c = charge()
    cells = [
        BilledCell(DAY, "openai", "gpt-4o-mini", "", 200_000_000_000, "medium"),
        BilledCell(DAY, "anthropic", "claude-haiku-4-5", "", 5 * 10**12, "low"),
        BilledCell(DAY, "openai", "", "", 7, "low", unattributed=True),
    ]
    parts, orphans = apply_billing([c], cells)
    assert [p.femto for p in parts] == [200_000_000_000] and len(orphans) == 2
    options = RowOptions()
    rows = [usage_row(c, parts[0], options), *(unattributed_row(o, DAY + 86_400, options) for o in orphans)]
    share = AllocatedShare(DAY, DAY + 86_400, "vector-db", "Vector database", "vector-db@3f2a9c1e",
                           ("", "acme", "", "", "", ""), 12_500_000_000_000, Fraction(1, 8), "Runs", 40)  # fmt: skip
    rows.append(allocated_row(share, options))
    path = tmp_path / "seams.csv"
    path.write_bytes(b"".join(csv_chunks([rows])))
    report = validate_file(path)
    assert report.errors == report.warnings == 0, report.summary()
    assert report.totals["BilledCost"] == Decimal(200_000_000_000 + 5 * 10**12 + 7 + 12_500_000_000_000).scaleb(-15)
    assert rows[1]["ChargeCategory"] == "Adjustment" and rows[1]["x_CostSource"] == "billed"
    assert rows[3]["AllocatedMethodDetails"] == (
        '{"Elements":[{"AllocatedRatio":0.125,"UsageUnit":"Runs","UsageQuantity":40}]}'
    )
    assert rows[3]["SubAccountId"] is None and rows[3]["AllocatedTags"] == '{"tenant":"acme"}'

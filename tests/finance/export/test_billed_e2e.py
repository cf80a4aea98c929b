"""The FOCUS export of a reconciled ledger (issue 13's end-to-end scenario, reused): BilledCost is
the bill trued up over runs, x_CostSource says so, the account mapping names the billing account,
and money the true-up placed on no run is an Adjustment row, so BilledCost adds up to the bill."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from otelspend.finance.export.validate import validate_file
from tests.finance.billing.test_e2e import BILLED, GPT4O, USAGE, _usd, reconciled  # noqa: F401  (the fixture)

WINDOW = {"from": "2025-06-01T00:00:00Z", "to": "2025-06-06T00:00:00Z"}


def _export(api: Any, tmp_path: Path, granularity: str, fmt: str) -> tuple[Path, list[dict[str, str]]]:
    response = api.get("/v1/export/focus", params={**WINDOW, "granularity": granularity, "format": fmt})
    assert response.status_code == 200, response.text
    path = tmp_path / f"reconciled.{fmt}"
    path.write_bytes(response.content)
    if fmt != "csv":
        return path, []
    return path, list(csv.DictReader(io.StringIO(response.content.decode())))


def test_billed_cost_is_the_reconciled_bill_and_adds_up_to_it(reconciled: Any, tmp_path: Path) -> None:  # noqa: F811
    _, api = reconciled
    path, rows = _export(api, tmp_path, "day", "csv")
    report = validate_file(path)
    assert report.ok and report.warnings == 0, report.summary()

    bill = sum(
        (_usd(inp - cached, BILLED[m]["input"]) + _usd(cached, BILLED[m]["cache_read"]) + _usd(out, BILLED[m]["output"])
         for (_, _, m), (inp, cached, out, _) in USAGE.items()),
        Decimal(0),
    )  # fmt: skip
    metrics = "cost_usd,billed_cost_usd"
    (total,) = api.get("/v1/rollups", params={"metrics": metrics, **WINDOW}).json()["rows"]
    assert sum(Decimal(r["BilledCost"]) for r in rows) == bill == Decimal(total["billed_cost_usd"])
    assert sum(Decimal(r["x_CalculatedCost"] or 0) for r in rows) == Decimal(total["cost_usd"])

    usage = [r for r in rows if r["ChargeCategory"] == "Usage"]
    assert usage and {r["x_CostSource"] for r in usage} == {"billed"}
    assert {r["BillingAccountId"] for r in usage} == {"search"}  # the account mapping's account
    # The untagged project's money matched no run: one Adjustment row carries it.
    (adjustment,) = [r for r in rows if r["ChargeCategory"] == "Adjustment"]
    assert Decimal(adjustment["BilledCost"]) == Decimal("0.011") and adjustment["x_CostSource"] == "billed"

    by_day: dict[str, set[str]] = defaultdict(set)
    for r in usage:
        by_day[r["ChargePeriodStart"][:10]].add(r["x_BilledConfidence"])
    assert by_day["2025-06-01"] == {"high"}  # the bill for the same calls
    assert by_day["2025-06-02"] == {"low"}  # a request missing from the telemetry
    # Per day and model, billed money is the bill's for that day (the true-up's run shares).
    day1 = [r for r in usage if r["ChargePeriodStart"].startswith("2025-06-01") and r["x_Model"] == GPT4O]
    assert sum(Decimal(r["BilledCost"]) for r in day1) == Decimal("0.10075")


def test_the_hourly_parquet_export_of_a_reconciled_ledger_validates(reconciled: Any, tmp_path: Path) -> None:  # noqa: F811
    _, api = reconciled
    path, _ = _export(api, tmp_path, "hour", "parquet")
    report = validate_file(path)
    assert report.ok and report.warnings == 0, report.summary()


def test_statements_carry_the_reconciled_bill_as_the_rollups_do(reconciled: Any) -> None:  # noqa: F811
    _, api = reconciled
    response = api.get("/v1/statements", params={"month": "2025-06", "by": "tenant"})
    assert response.status_code == 200, response.text
    statements = {s["owner"]: s for s in response.json()["statements"]}
    window = {"from": "2025-06-01T00:00:00Z", "to": "2025-07-01T00:00:00Z"}
    params = {"group_by": "tenant", "metrics": "cost_usd,billed_cost_usd,variance_usd,billed_confidence", **window}
    rollups = {r["tenant"] or "": r for r in api.get("/v1/rollups", params=params).json()["rows"]}
    assert set(statements) == {"acme", ""}
    # Billing labels the true-up's unplaced money '(unattributed)'; statements have one unattributed owner.
    rollups[""] = rollups.pop("(unattributed)")
    for owner, statement in statements.items():
        expected = rollups[owner]
        assert Decimal(statement["billed_cost_usd"]) == Decimal(expected["billed_cost_usd"])
        assert Decimal(statement["variance_usd"]) == Decimal(expected["variance_usd"])
        assert statement["billed_confidence"] == expected["billed_confidence"]
    assert Decimal(statements["acme"]["direct_cost_usd"]) == Decimal(rollups["acme"]["cost_usd"])
    # The untagged project's money is the explicit unattributed statement's: billed, no direct cost.
    assert Decimal(statements[""]["billed_cost_usd"]) == Decimal("0.011")
    assert Decimal(statements[""]["direct_cost_usd"]) == 0

"""The validator: a file the export writes passes; each broken rule of the spec is named."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from otelspend.finance.export.validate import validate_file
from otelspend.finance.export.writers import csv_chunks, parquet_chunks
from tests.finance.export.rows import DAY, row

Table = list[dict[str, str]]


def good_csv() -> tuple[list[str], Table]:
    text = b"".join(
        csv_chunks([[row(), row(kind="output", rate=Fraction(600_000_000), quantity=10, cost_femto=6_000_000_000)]])
    )
    reader = csv.DictReader(io.StringIO(text.decode()))
    return list(reader.fieldnames or []), list(reader)


def write(path: Path, header: list[str], rows: Table) -> Path:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows([[r.get(name, "") for name in header] for r in rows])
    return path


def test_the_exports_own_files_pass_with_no_warning(tmp_path: Path) -> None:
    header, rows = good_csv()
    report = validate_file(write(tmp_path / "ok.csv", header, rows))
    assert (report.version, report.rows, report.errors, report.warnings) == ("1.3", 2, 0, 0), report.summary()
    parquet = tmp_path / "ok.parquet"
    parquet.write_bytes(b"".join(parquet_chunks([[row()]])))
    report = validate_file(parquet)
    assert (report.rows, report.errors, report.warnings) == (1, 0, 0), report.summary()
    assert report.totals["BilledCost"] == report.totals["ListCost"] > 0


def _set(column: str, value: str, index: int = 0) -> Callable[[list[str], Table], None]:
    def change(header: list[str], rows: Table) -> None:
        rows[index][column] = value

    return change


def _drop(column: str) -> Callable[[list[str], Table], None]:
    return lambda header, rows: header.remove(column)


def _rename(old: str, new: str) -> Callable[[list[str], Table], None]:
    def change(header: list[str], rows: Table) -> None:
        header[header.index(old)] = new
        for r in rows:
            r[new] = r.pop(old)

    return change


def _custom_first(header: list[str], rows: Table) -> None:
    header.remove("x_Model")
    header.insert(0, "x_Model")


def _two_skus(header: list[str], rows: Table) -> None:
    rows[1]["SkuPriceId"] = rows[0]["SkuPriceId"]
    rows[1]["SkuId"] = "openai/gpt-4o"


CASES = [
    pytest.param(_drop("BilledCost"), "BilledCost-presence", "MUST", id="mandatory-column-missing"),
    pytest.param(_drop("ServiceProviderName"), "HostProviderName", None, id="1.2-file-without-1.3-columns"),
    pytest.param(_rename("x_Model", "ModelName"), "ColumnHandling-A-010-M", "MUST", id="custom-without-x_"),
    pytest.param(_custom_first, "ColumnHandling-A-013-O", "SHOULD", id="custom-before-focus-columns"),
    pytest.param(_set("BilledCost", "1,5"), "NumericFormat-A-000-M", "MUST", id="decimal-with-comma"),
    pytest.param(_set("BilledCost", "+1.5"), "NumericFormat-A-000-M", "MUST", id="decimal-with-plus"),
    pytest.param(_set("ChargePeriodStart", "2026-12-03 00:00:00"), "DateTimeFormat-A-003-M", "MUST", id="no-T-no-Z"),
    pytest.param(_set("ChargePeriodEnd", "2026-12-02T00:00:00Z"), "ChargePeriod-order", "MUST", id="end-before-start"),
    pytest.param(_set("BillingPeriodEnd", "2026-12-02T00:00:00Z"), "ChargePeriod-in-BillingPeriod", "MUST",
                 id="charge-outside-billing-period"),
    pytest.param(_set("ChargeCategory", "usage"), "ChargeCategory-C-003-M", "MUST", id="charge-category-case"),
    pytest.param(_set("ChargeClass", "Refund"), "ChargeClass-C-005-C", "MUST", id="charge-class"),
    pytest.param(_set("ServiceSubcategory", "Virtual Machines"), "ServiceSubcategory-C-004-M", "MUST",
                 id="subcategory-of-another-category"),
    pytest.param(_set("ServiceCategory", "AI"), "ServiceCategory-C-003-M", "MUST", id="service-category"),
    pytest.param(_set("ListCost", "0.2"), "ListCost-C-009-C", "MUST", id="unit-price-times-quantity"),
    pytest.param(_set("ListUnitPrice", "-0.1"), "ListUnitPrice-non-negative", "MUST", id="negative-unit-price"),
    pytest.param(_set("BillingCurrency", "usd"), "BillingCurrency-C-006-M", "MUST", id="currency-code"),
    pytest.param(_set("Tags", '{"team": {"a": 1}}'), "KeyValueFormat-A-004-M", "MUST", id="nested-tag"),
    pytest.param(_set("Tags", '{"a": 1, "a": 2}'), "KeyValueFormat-A-002-M", "MUST", id="duplicate-tag-key"),
    pytest.param(_set("Tags", "team=search"), "KeyValueFormat-A-001-M", "MUST", id="tags-not-json"),
    pytest.param(_set("PricingUnit", ""), "PricingUnit-null-with-PricingQuantity", "MUST", id="unit-without-qty"),
    pytest.param(_set("PricingUnit", "tokens"), "PricingUnit-UnitFormat", "SHOULD", id="unit-format"),
    pytest.param(_set("SkuPriceId", ""), "SkuPriceId-usage-not-null", "MUST", id="usage-without-sku-price"),
    pytest.param(_set("ProviderName", ""), "ProviderName-not-null", "MUST", id="provider-null"),
    pytest.param(_set("SubAccountName", ""), "SubAccountName-null-with-SubAccountId", "MUST", id="sub-account-name"),
    pytest.param(_set("ConsumedQuantity", ""), "ConsumedQuantity-C-006-C", "MUST", id="usage-without-consumed"),
    pytest.param(_set("ChargeDescription", ""), "ChargeDescription-C-003-O", "SHOULD", id="no-description"),
    pytest.param(_set("InvoiceIssuerName", "AWS Marketplace"), "BilledCost-C-005-C", "MUST", id="marketplace"),
    pytest.param(_two_skus, "SkuPriceId-C-008-M", "MUST", id="price-id-with-two-skus"),
    pytest.param(_set("ChargeFrequency", "Usage-Based"), None, None, id="control-no-finding"),
    pytest.param(_set("AllocatedMethodDetails", '{"Elements": [{"AllocatedRatio": 1.5}]}'),
                 "AllocatedMethodDetails-null-when-AllocatedMethodId", "MUST", id="details-without-method"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "rule", "keyword"), CASES)
def test_each_broken_rule_is_named(tmp_path: Path, change: Any, rule: str | None, keyword: str | None) -> None:
    header, rows = good_csv()
    change(header, rows)
    report = validate_file(write(tmp_path / "case.csv", header, rows))
    found = {(f.rule, f.keyword) for f in report.findings}
    if rule is None:
        assert report.errors == report.warnings == 0, report.summary()
    elif keyword is None:  # 1.2 file: the 1.3 columns are not required then
        assert report.version == "1.3" and ("HostProviderName-presence", "MUST") not in found
        assert validate_file(tmp_path / "case.csv", version="1.2").errors == 0
    else:
        assert (rule, keyword) in found, report.summary()
        finding = next(f for f in report.findings if f.rule == rule)
        assert str(finding).startswith(keyword) and rule in str(finding)


def test_allocation_details_are_checked_when_a_method_is_named(tmp_path: Path) -> None:
    header, rows = good_csv()
    rows[0]["AllocatedMethodId"] = "vector-db@1"
    rows[0]["AllocatedMethodDetails"] = json.dumps({"Elements": [{"AllocatedRatio": 1.5, "UsageQuantity": 3}]})
    report = validate_file(write(tmp_path / "alloc.csv", header, rows))
    assert ("AllocatedMethodDetails-AllocatedRatio", "MUST") in {(f.rule, f.keyword) for f in report.findings}


def test_parquet_types_are_checked(tmp_path: Path) -> None:
    table = pa.table(
        {
            "BilledCost": pa.array(["1.0"]),
            "ChargePeriodStart": pa.array([DAY], type=pa.int64()),
        }
    )
    path = tmp_path / "types.parquet"
    pq.write_table(table, path)
    report = validate_file(path)
    found = {f.rule for f in report.findings}
    assert {"BilledCost-type", "ChargePeriodStart-type", "ListCost-presence"} <= found


def test_findings_are_capped_but_all_counted(tmp_path: Path) -> None:
    header, rows = good_csv()
    many = [dict(rows[0], BillingCurrency="usd") for _ in range(60)]
    report = validate_file(write(tmp_path / "many.csv", header, many), keep_per_rule=5)
    assert report.counts[("BillingCurrency-C-006-M", "MUST")] == 60
    assert sum(1 for f in report.findings if f.rule == "BillingCurrency-C-006-M") == 5
    assert "55 more finding" in report.summary()

"""A FOCUS validator for any FOCUS 1.2 / 1.3 file, CSV or Parquet, read as a stream.

Checks what the specification states as MUST / SHOULD rules (rule ids of the FinOps
Foundation's 1.2 rule model where it has one; see ``focus_spec``):

* presence: the mandatory columns (and, for 1.3, ServiceProviderName and HostProviderName);
* columns: FOCUS names or ``x_`` custom columns (ColumnHandling-A-010-M), custom columns after
  every FOCUS column and not intermixed (ColumnHandling-A-013-O, a SHOULD), no duplicates;
* types and formats: Decimal columns in NumericFormat, date-times as ``YYYY-MM-DDTHH:mm:ssZ``
  (DateTimeFormat), key-value columns as JSON objects with scalar values and unique keys
  (KeyValueFormat), units in UnitFormat (a SHOULD), BillingCurrency a national ISO 4217 code;
* nullability: columns that MUST NOT be null, conditional pairs (PricingUnit with
  PricingQuantity, SubAccountName with SubAccountId, ...), Usage/Purchase and Tax rules;
* allowed values: ChargeCategory, ChargeClass, ChargeFrequency, ServiceCategory,
  ServiceSubcategory and its one parent, PricingCategory, commitment and capacity statuses;
* arithmetic: unit price x PricingQuantity = cost (ListCost-C-009-C, ContractedCost-C-009-C),
  non-negative unit prices, marketplace rows (ProviderName != InvoiceIssuerName) billed 0;
* periods: start before end, the charge period inside its billing period;
* across rows: each SkuPriceId has one SkuId, each ServiceName one ServiceCategory;
* FOCUS 1.3 split allocation: AllocatedMethodDetails is null when AllocatedMethodId is, and a
  JSON object with an ``Elements`` array whose entries carry a numeric AllocatedRatio.

Not checkable from a file alone (skipped): uniqueness of ids within a provider, that BilledCost
sums to an invoice, that allocated ratios of one origin charge sum to 1 (the origin charge is
not in the file).

Memory is bounded: rows are read in batches, findings are kept up to ``keep_per_rule`` per rule
(every one is counted), cross-row maps hold one entry per SkuPriceId and ServiceName.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Context, Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Any, BinaryIO, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from otelspend.finance.export import focus_spec as spec

Keyword = Literal["MUST", "SHOULD"]
NUMERIC = re.compile(r"-?\d+(\.\d+)?([eE]-?\d+)?")
DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
UNIT = re.compile(r"(\d+ )?[A-Z][A-Za-z]*(-[A-Z][A-Za-z]*)?(/(\d+ )?[A-Z][A-Za-z]*)?")
CUSTOM_NAME = re.compile(r"x_[A-Za-z0-9]+")
SUMMED = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")


@dataclass(frozen=True)
class Finding:
    """One rule a file breaks: rule id, severity, column, row and message."""

    rule: str
    keyword: Keyword
    message: str
    row: int | None = None
    """1-based data row (None: the file's columns)."""
    column: str | None = None
    value: str | None = None

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row is not None else "columns"
        column = f", {self.column}" if self.column else ""
        value = f" (value {self.value!r})" if self.value is not None else ""
        return f"{self.keyword} {self.rule} [{where}{column}]{value}: {self.message}"


@dataclass
class Report:
    """The result: findings (capped per rule), their counts, and sums of the cost columns."""

    version: str
    columns: tuple[str, ...] = ()
    rows: int = 0
    findings: list[Finding] = field(default_factory=list)
    counts: Counter[tuple[str, Keyword]] = field(default_factory=Counter)
    totals: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(SUMMED, Decimal(0)))
    keep_per_rule: int = 20

    def add(self, finding: Finding) -> None:
        """Record ``finding`` (at most ``MAX_PER_RULE`` per rule are kept; all are counted)."""
        key = (finding.rule, finding.keyword)
        self.counts[key] += 1
        if self.counts[key] <= self.keep_per_rule:
            self.findings.append(finding)

    @property
    def errors(self) -> int:
        """How many MUST rules were broken."""
        return sum(n for (_, keyword), n in self.counts.items() if keyword == "MUST")

    @property
    def warnings(self) -> int:
        """How many SHOULD rules were broken."""
        return sum(n for (_, keyword), n in self.counts.items() if keyword == "SHOULD")

    @property
    def ok(self) -> bool:
        """No MUST rule broken."""
        return self.errors == 0

    def summary(self) -> str:
        """One line: rows, errors, warnings and the sums of the cost columns."""
        head = (
            f"FOCUS {self.version}: {self.rows} rows, {len(self.columns)} columns, "
            f"{self.errors} error(s), {self.warnings} warning(s)"
        )
        lines = [head, *(f"  {finding}" for finding in self.findings)]
        hidden = sum(max(0, n - self.keep_per_rule) for n in self.counts.values())
        if hidden:
            lines.append(f"  ... and {hidden} more finding(s) of the rules above")
        return "\n".join(lines)


# -- reading ------------------------------------------------------------------------------------

Cell = Any
"""A value as read: None (null), str (CSV text, Parquet strings), Decimal, int, float, datetime."""


def _csv_rows(stream: BinaryIO, batch: int) -> tuple[list[str], Iterator[list[dict[str, Cell]]]]:
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    reader = csv.reader(text)
    header = next(reader, [])

    def rows() -> Iterator[list[dict[str, Cell]]]:
        out: list[dict[str, Cell]] = []
        for values in reader:
            out.append({name: (value if value != "" else None) for name, value in zip(header, values, strict=False)})
            if len(out) >= batch:
                yield out
                out = []
        if out:
            yield out

    return header, rows()


def _parquet_rows(path: Path, batch: int) -> tuple[list[str], pa.Schema, Iterator[list[dict[str, Cell]]]]:
    parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow

    def rows() -> Iterator[list[dict[str, Cell]]]:
        for record_batch in parquet.iter_batches(batch_size=batch):
            yield record_batch.to_pylist()

    return list(schema.names), schema, rows()


# -- checks ------------------------------------------------------------------------------------


class _Validator:
    def __init__(self, report: Report, columns: list[str], parquet_schema: pa.Schema | None) -> None:
        self.report = report
        self.present = set(columns)
        self.schema = parquet_schema
        self.sku_parent: dict[str, str] = {}
        self.service_category: dict[str, str] = {}
        self.row_number = 0

    def add(self, rule: str, keyword: Keyword, message: str, column: str | None = None, value: Any = None) -> None:
        shown = None if value is None else str(value)[:200]
        self.report.add(Finding(rule, keyword, message, self.row_number or None, column, shown))

    # column-level -----------------------------------------------------------------------------

    def check_columns(self, columns: list[str]) -> None:
        version = self.report.version
        required = (*spec.MANDATORY_12, *(spec.MANDATORY_13_ADDED if version == "1.3" else ()))
        for name in required:
            if name not in self.present:
                self.add(f"{name}-presence", "MUST", f"{name} MUST be present in a FOCUS {version} dataset", name)
        for name, count in Counter(columns).items():
            if count > 1:
                self.add("ColumnHandling-duplicate", "MUST", "a column appears more than once", name)
        seen_custom = False
        for name in columns:
            if name in spec.FOCUS_COLUMNS:
                if seen_custom:
                    self.add(
                        "ColumnHandling-A-013-O",
                        "SHOULD",
                        "custom columns SHOULD be listed after all FOCUS columns and not intermixed",
                        name,
                    )
                continue
            if not name.startswith("x_"):
                self.add("ColumnHandling-A-010-M", "MUST", "custom columns MUST be prefixed with x_", name)
            elif not CUSTOM_NAME.fullmatch(name):
                self.add("ColumnHandling-A-011-O", "SHOULD", "custom column ids SHOULD be x_ + alphanumeric", name)
            seen_custom = True
        if self.schema is not None:
            self._check_parquet_types()

    def _check_parquet_types(self) -> None:
        assert self.schema is not None
        for arrow_field in self.schema:
            kind = spec.TYPES.get(arrow_field.name, "string" if arrow_field.name in spec.FOCUS_COLUMNS else None)
            t, name = arrow_field.type, arrow_field.name
            if kind == "decimal" and not (pa.types.is_decimal(t) or pa.types.is_integer(t) or pa.types.is_floating(t)):
                self.add(f"{name}-type", "MUST", f"MUST be of type Decimal, stored as {t}", name)
            elif kind == "datetime" and not (
                (pa.types.is_timestamp(t) and t.tz in ("UTC", "+00:00", "Etc/UTC")) or pa.types.is_string(t)
            ):
                self.add(f"{name}-type", "MUST", f"MUST be a UTC Date/Time, stored as {t}", name)
            elif kind in ("string", "key_value", "json_object") and not (
                pa.types.is_string(t) or pa.types.is_large_string(t)
            ):
                self.add(f"{name}-type", "MUST", f"MUST be of type String, stored as {t}", name)

    # row-level --------------------------------------------------------------------------------

    def check_row(self, raw: dict[str, Cell]) -> None:
        # Products and sums are compared exactly: enough digits for any 38-digit decimal.
        with localcontext(_EXACT):
            self._check_row(raw)

    def _check_row(self, raw: dict[str, Cell]) -> None:
        self.row_number += 1
        row = {name: self._typed(name, value) for name, value in raw.items() if name in spec.FOCUS_COLUMNS}
        self._nulls(row, raw)
        self._values(row)
        self._arithmetic(row)
        self._periods(row)
        self._cross_row(row)
        self._allocation(row)
        for name in SUMMED:
            if isinstance(row.get(name), Decimal):
                self.report.totals[name] += row[name]

    def _typed(self, name: str, value: Cell) -> Cell:
        """The cell as the column's type (Decimal, datetime, str), or ``_BAD`` if it is not one."""
        if value is None:
            return None
        kind = spec.TYPES.get(name, "string")
        if kind == "decimal":
            return self._decimal(name, value)
        if kind == "datetime":
            return self._datetime(name, value)
        if not isinstance(value, str):
            self.add(f"{name}-type", "MUST", "MUST be of type String", name, value)
            return _BAD
        if value.strip() == "":
            self.add("NullHandling-A-002-M", "MUST", "empty strings MUST NOT stand for null", name, value)
            return _BAD
        if kind in ("key_value", "json_object"):
            self._json(name, value, kind)
        return value

    def _decimal(self, name: str, value: Cell) -> Cell:
        if isinstance(value, bool):
            self.add(f"{name}-type", "MUST", "MUST be of type Decimal", name, value)
            return _BAD
        if isinstance(value, Decimal | int):
            return Decimal(value)
        if isinstance(value, float):
            return Decimal(repr(value))
        if not isinstance(value, str) or not NUMERIC.fullmatch(value):
            self.add("NumericFormat-A-000-M", "MUST", "MUST be a plain integer or decimal number", name, value)
            return _BAD
        try:
            return Decimal(value)
        except InvalidOperation:
            self.add("NumericFormat-A-000-M", "MUST", "MUST be a valid decimal value", name, value)
            return _BAD

    def _datetime(self, name: str, value: Cell) -> Cell:
        if isinstance(value, dt.datetime):
            if value.tzinfo is None or value.utcoffset() != dt.timedelta(0):
                self.add("DateTimeFormat-A-001-M", "MUST", "date/time values MUST be in UTC", name, value)
                return _BAD
            return value
        if not isinstance(value, str) or not DATETIME.fullmatch(value):
            self.add("DateTimeFormat-A-003-M", "MUST", "MUST be YYYY-MM-DDTHH:mm:ssZ", name, value)
            return _BAD
        try:
            return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        except ValueError:
            self.add("DateTimeFormat-A-002-M", "MUST", "MUST be a valid ISO 8601 date and time", name, value)
            return _BAD

    def _json(self, name: str, value: str, kind: str) -> None:
        duplicates: list[str] = []

        def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
            keys = [key for key, _ in items]
            duplicates.extend(key for key, n in Counter(keys).items() if n > 1)
            return dict(items)

        try:
            parsed = json.loads(value, object_pairs_hook=pairs)
        except ValueError:
            self.add("KeyValueFormat-A-001-M", "MUST", "MUST be a serialized JSON object", name, value)
            return
        if not isinstance(parsed, dict):
            self.add("KeyValueFormat-A-001-M", "MUST", "MUST be a JSON object", name, value)
            return
        if duplicates:
            self.add("KeyValueFormat-A-002-M", "MUST", f"keys MUST be unique ({duplicates[0]!r} repeats)", name, value)
        if kind == "key_value" and any(isinstance(v, dict | list) for v in parsed.values()):
            self.add("KeyValueFormat-A-004-M", "MUST", "values MUST NOT be objects or arrays", name, value)

    def _nulls(self, row: dict[str, Cell], raw: dict[str, Cell]) -> None:
        present = self.present
        for name in spec.NOT_NULL:
            if name in present and raw.get(name) is None:
                self.add(f"{name}-not-null", "MUST", f"{name} MUST NOT be null", name)
        if "ChargeDescription" in present and raw.get("ChargeDescription") is None:
            self.add("ChargeDescription-C-003-O", "SHOULD", "ChargeDescription SHOULD NOT be null", "ChargeDescription")
        self._nulls_by_category(row, raw)
        for a, b in spec.NULL_TOGETHER:
            if a in present and b in present and (raw.get(a) is None) != (raw.get(b) is None):
                self.add(f"{a}-null-with-{b}", "MUST", f"{a} MUST be null exactly when {b} is null", a, raw.get(a))
        for a, b in spec.NULL_WHEN_NULL:
            if a in present and b in present and raw.get(b) is None and raw.get(a) is not None:
                self.add(f"{a}-null-when-{b}", "MUST", f"{a} MUST be null when {b} is null", a, raw.get(a))
        if "ConsumedQuantity" in present:
            self._consumed_nulls(row, raw)

    def _nulls_by_category(self, row: dict[str, Cell], raw: dict[str, Cell]) -> None:
        present = self.present
        category = row.get("ChargeCategory")
        if category in ("Usage", "Purchase") and row.get("ChargeClass") != "Correction":
            for name in spec.NOT_NULL_FOR_USAGE_OR_PURCHASE:
                if name in present and raw.get(name) is None:
                    self.add(f"{name}-usage-not-null", "MUST", f"{name} MUST NOT be null for {category} charges", name)
        if category == "Tax":
            for name in spec.NULL_FOR_TAX:
                if name in present and raw.get(name) is not None:
                    self.add(f"{name}-tax-null", "MUST", f"{name} MUST be null for Tax charges", name, raw.get(name))

    def _consumed_nulls(self, row: dict[str, Cell], raw: dict[str, Cell]) -> None:
        category = row.get("ChargeCategory")
        consumed = raw.get("ConsumedQuantity")
        if category is not None and category != "Usage" and consumed is not None:
            self.add("ConsumedQuantity-C-004-C", "MUST", "MUST be null when ChargeCategory is not Usage",
                     "ConsumedQuantity", consumed)  # fmt: skip
        corrected = row.get("ChargeClass") == "Correction"
        unused = row.get("CommitmentDiscountStatus") == "Unused"
        if category == "Usage" and not corrected and not unused and consumed is None:
            self.add("ConsumedQuantity-C-006-C", "MUST", "MUST NOT be null for Usage charges", "ConsumedQuantity")

    def _values(self, row: dict[str, Cell]) -> None:
        allowed = (
            ("ChargeCategory", spec.CHARGE_CATEGORIES, "ChargeCategory-C-003-M"),
            ("ChargeClass", spec.CHARGE_CLASSES, "ChargeClass-C-005-C"),
            ("ChargeFrequency", spec.CHARGE_FREQUENCIES, "ChargeFrequency-C-003-M"),
            ("ServiceCategory", spec.SERVICE_CATEGORIES, "ServiceCategory-C-003-M"),
            ("PricingCategory", spec.PRICING_CATEGORIES, "PricingCategory-C-007-M"),
            ("CommitmentDiscountCategory", spec.COMMITMENT_DISCOUNT_CATEGORIES, "CommitmentDiscountCategory-C-005-M"),
            ("CommitmentDiscountStatus", spec.COMMITMENT_DISCOUNT_STATUSES, "CommitmentDiscountStatus-C-005-M"),
            ("CapacityReservationStatus", spec.CAPACITY_RESERVATION_STATUSES, "CapacityReservationStatus-C-006-M"),
        )
        for name, values, rule in allowed:
            value = row.get(name)
            if isinstance(value, str) and value not in values:
                self.add(rule, "MUST", f"MUST be one of {', '.join(sorted(values))}", name, value)
        subcategory = row.get("ServiceSubcategory")
        if isinstance(subcategory, str):
            parent = spec.SUBCATEGORY_PARENT.get(subcategory)
            if parent is None:
                self.add("ServiceSubcategory-C-003-M", "MUST", "MUST be one of the allowed values",
                         "ServiceSubcategory", subcategory)  # fmt: skip
            elif isinstance(row.get("ServiceCategory"), str) and row["ServiceCategory"] != parent:
                self.add("ServiceSubcategory-C-004-M", "MUST", f"its parent ServiceCategory is {parent!r}",
                         "ServiceSubcategory", subcategory)  # fmt: skip
        if row.get("ChargeCategory") == "Purchase" and row.get("ChargeFrequency") == "Usage-Based":
            self.add("ChargeFrequency-C-004-C", "MUST", "MUST NOT be Usage-Based for a Purchase", "ChargeFrequency")
        currency = row.get("BillingCurrency")
        if isinstance(currency, str) and currency not in spec.ISO_4217:
            self.add("BillingCurrency-C-006-M", "MUST", "MUST be a national ISO 4217 currency code",
                     "BillingCurrency", currency)  # fmt: skip
        for name in ("PricingUnit", "ConsumedUnit"):
            unit = row.get(name)
            if isinstance(unit, str) and not UNIT.fullmatch(unit):
                self.add(f"{name}-UnitFormat", "SHOULD", "SHOULD conform to UnitFormat", name, unit)

    def _arithmetic(self, row: dict[str, Cell]) -> None:
        for name in spec.NON_NEGATIVE:
            value = row.get(name)
            if isinstance(value, Decimal) and value < 0:
                self.add(f"{name}-non-negative", "MUST", "MUST be a non-negative decimal value", name, value)
        quantity = row.get("PricingQuantity")
        if row.get("ChargeClass") != "Correction" and isinstance(quantity, Decimal):
            for price_name, cost_name in spec.PRODUCTS:
                unit_price, cost = row.get(price_name), row.get(cost_name)
                if isinstance(unit_price, Decimal) and isinstance(cost, Decimal) and unit_price * quantity != cost:
                    product = unit_price * quantity
                    self.add(f"{cost_name}-C-009-C", "MUST",
                             f"{price_name} x PricingQuantity = {product} MUST match {cost_name} = {cost}",
                             cost_name, cost)  # fmt: skip
        provider, issuer, billed = row.get("ProviderName"), row.get("InvoiceIssuerName"), row.get("BilledCost")
        if (
            isinstance(provider, str)
            and isinstance(issuer, str)
            and provider != issuer
            and isinstance(billed, Decimal)
            and billed != 0
        ):
            self.add("BilledCost-C-005-C", "MUST", "MUST be 0 when paid to a third party (ProviderName is not "
                     "InvoiceIssuerName)", "BilledCost", billed)  # fmt: skip

    def _periods(self, row: dict[str, Cell]) -> None:
        bs, be = row.get("BillingPeriodStart"), row.get("BillingPeriodEnd")
        cs, ce = row.get("ChargePeriodStart"), row.get("ChargePeriodEnd")
        for start, end, name in ((bs, be, "BillingPeriod"), (cs, ce, "ChargePeriod")):
            if isinstance(start, dt.datetime) and isinstance(end, dt.datetime) and not start < end:
                self.add(f"{name}-order", "MUST", f"{name}Start MUST be before {name}End (exclusive end)",
                         f"{name}End", end)  # fmt: skip
        if (
            isinstance(bs, dt.datetime)
            and isinstance(be, dt.datetime)
            and isinstance(cs, dt.datetime)
            and isinstance(ce, dt.datetime)
            and not (bs <= cs and ce <= be)
        ):
            self.add("ChargePeriod-in-BillingPeriod", "MUST", "the charge period MUST lie within its billing period",
                     "ChargePeriodStart", cs)  # fmt: skip

    def _cross_row(self, row: dict[str, Cell]) -> None:
        price_id, sku = row.get("SkuPriceId"), row.get("SkuId")
        if isinstance(price_id, str) and isinstance(sku, str):
            known = self.sku_parent.setdefault(price_id, sku)
            if known != sku:
                self.add("SkuPriceId-C-008-M", "MUST", f"MUST have one parent SkuId (also {known!r})", "SkuId", sku)
        service, category = row.get("ServiceName"), row.get("ServiceCategory")
        if isinstance(service, str) and isinstance(category, str):
            known = self.service_category.setdefault(service, category)
            if known != category:
                self.add("ServiceName-C-005-C", "MUST", f"MUST have one ServiceCategory (also {known!r})",
                         "ServiceCategory", category)  # fmt: skip

    def _allocation(self, row: dict[str, Cell]) -> None:
        details = row.get("AllocatedMethodDetails")
        if not isinstance(details, str):
            return
        try:
            parsed = json.loads(details)
        except ValueError:
            return  # reported by the JSON format check
        elements = parsed.get("Elements") if isinstance(parsed, dict) else None
        if not isinstance(elements, list) or not elements:
            self.add("AllocatedMethodDetails-Elements", "MUST", "MUST hold an Elements array of objects",
                     "AllocatedMethodDetails", details)  # fmt: skip
            return
        for element in elements:
            ratio = element.get("AllocatedRatio") if isinstance(element, dict) else None
            if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
                self.add("AllocatedMethodDetails-AllocatedRatio", "MUST", "each element MUST have a numeric "
                         "AllocatedRatio between 0 and 1", "AllocatedMethodDetails", details)  # fmt: skip
            elif "UsageQuantity" in element and "UsageUnit" not in element:
                self.add("AllocatedMethodDetails-UsageUnit", "MUST", "UsageUnit MUST be present with UsageQuantity",
                         "AllocatedMethodDetails", details)  # fmt: skip


_EXACT = Context(prec=120)


class _Bad:
    """A value that failed its type check (already reported; other checks skip it)."""


_BAD = _Bad()


def _version(columns: list[str], requested: str | None) -> str:
    if requested:
        return requested
    return "1.3" if {"ServiceProviderName", "HostProviderName"} & set(columns) else "1.2"


def validate_file(
    path: Path, *, fmt: str | None = None, version: str | None = None, batch: int = 10_000, keep_per_rule: int = 20
) -> Report:
    """Validate a FOCUS file (``fmt`` csv | parquet; default from the file name)."""
    fmt = fmt or ("parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv")
    if fmt == "parquet":
        columns, schema, batches = _parquet_rows(path, batch)
        return _run(columns, schema, batches, version, keep_per_rule)
    with path.open("rb") as stream:
        columns, batches = _csv_rows(stream, batch)
        return _run(columns, None, batches, version, keep_per_rule)


def validate_stream(stream: BinaryIO, *, version: str | None = None, batch: int = 10_000) -> Report:
    """Validate a CSV FOCUS file read from ``stream``."""
    columns, batches = _csv_rows(stream, batch)
    return _run(columns, None, batches, version, 20)


def _run(
    columns: list[str],
    schema: pa.Schema | None,
    batches: Iterator[list[dict[str, Cell]]],
    version: str | None,
    keep_per_rule: int,
) -> Report:
    report = Report(_version(columns, version), tuple(columns), keep_per_rule=keep_per_rule)
    validator = _Validator(report, columns, schema)
    validator.check_columns(columns)
    for rows in batches:
        for row in rows:
            validator.check_row(row)
    report.rows = validator.row_number
    return report

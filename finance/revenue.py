"""Revenue per tenant and/or customer (optionally per feature) per period, beside the costs.

Lines come from a CSV file (``otelspend revenue import FILE``) or JSON (``POST /v1/revenue``)::

    period,tenant,customer,feature,revenue_usd
    2026-11,acme,,,12000.00           # a month
    2026-11-15,,globex,search,80.25   # a day

``period`` is ``YYYY-MM`` or ``YYYY-MM-DD``; instead of it, ``period_start`` and ``period_end``
(dates, the end exclusive) name any span of days. A line names a tenant, a customer or both;
``feature`` is optional; ``currency``, when present, must be ``USD``. Amounts are exact
decimals (at most 15 places; negative for a credit).

Each line is spread over the days of its period with ``split_largest_remainder`` (equal
weights: any window carries its days' part, and the days add up to the line exactly). Stored
per (tenant, customer, feature, day), the latest import of a day wins, so re-importing a file
(or a corrected one) replaces what it covered instead of adding to it. A file with any bad
line is refused whole, every error named (line, column, value, expectation): nothing of it is
stored.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from otelspend.clickhouse.client import Store
from otelspend.clickhouse.queries import revenue as queries
from otelspend.money import split_largest_remainder, usd_to_femto

MAX_ERRORS = 20
MAX_DAYS = 3660
"""A line may cover at most ten years of days."""
COLUMNS = frozenset(
    {"period", "period_start", "period_end", "tenant", "customer", "feature", "revenue_usd", "currency"}
)


class RevenueError(ValueError):
    """Revenue input refused; the message names each bad line, column, value and expectation."""


@dataclass(frozen=True)
class RevenueLine:
    """One validated line: ``[start, end)`` in days, who, and how much (femto-USD)."""

    start: dt.date
    end: dt.date
    tenant: str
    customer: str
    feature: str
    amount_femto: int

    def days(self) -> list[tuple[dt.date, int]]:
        """The line spread exactly over its days (earlier days take the leftover femto-dollars)."""
        count = (self.end - self.start).days
        split = split_largest_remainder(self.amount_femto, [1] * count)
        return [(self.start + dt.timedelta(days=i), share) for i, share in enumerate(split.shares)]


@dataclass
class Imported:
    """What an import stored."""

    lines: int
    days: int
    revenue_femto: int
    first_day: dt.date | None
    last_day: dt.date | None
    source: str

    def as_dict(self) -> dict[str, Any]:
        """For the API and the CLI (money as an exact decimal string)."""
        from otelspend.money import femto_to_usd

        return {
            "lines": self.lines,
            "days": self.days,
            "revenue_usd": str(femto_to_usd(self.revenue_femto)),
            "first_day": self.first_day.isoformat() if self.first_day else None,
            "last_day": self.last_day.isoformat() if self.last_day else None,
            "source": self.source,
        }


def parse_csv(text: str, label: str = "<revenue>") -> list[RevenueLine]:
    """Validate a revenue CSV; raises ``RevenueError`` listing every bad line."""
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in reader.fieldnames or []]
    problems = []
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        problems.append(f"header: unknown column {unknown[0]!r} (expected some of {', '.join(sorted(COLUMNS))})")
    if "revenue_usd" not in header:
        problems.append("header: a revenue_usd column is required")
    if not ({"period"} <= set(header) or {"period_start", "period_end"} <= set(header)):
        problems.append("header: give a period column (YYYY-MM or YYYY-MM-DD), or period_start and period_end")
    if problems:
        raise RevenueError(f"revenue {label}: " + "; ".join(problems))
    records = [
        ({(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}, reader.line_num)
        for row in reader
    ]
    return parse_records(records, label, "line")


def parse_records(
    records: Iterable[tuple[Mapping[str, Any], int]], label: str, what: str = "item"
) -> list[RevenueLine]:
    """Validate records (mapping, position); raises ``RevenueError`` listing every bad one."""
    lines: list[RevenueLine] = []
    problems: list[str] = []
    for record, position in records:
        try:
            lines.append(_line(record))
        except ValueError as exc:
            if len(problems) < MAX_ERRORS:
                problems.append(f"{what} {position}, {exc}")
            else:
                problems.append("...")
                break
    if problems:
        raise RevenueError(f"revenue {label}: " + "; ".join(problems))
    if not lines:
        raise RevenueError(f"revenue {label}: no revenue lines")
    _no_overlap(lines, label, what)
    return lines


def _line(record: Mapping[str, Any]) -> RevenueLine:
    unknown = [key for key in record if key not in COLUMNS]
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown field (expected some of {', '.join(sorted(COLUMNS))})")
    text = {key: "" if value is None else str(value).strip() for key, value in record.items()}
    currency = text.get("currency", "")
    if currency and currency.upper() != "USD":
        raise ValueError(f"currency = {currency!r}: only USD (the ledger's currency; convert before importing)")
    tenant, customer, feature = text.get("tenant", ""), text.get("customer", ""), text.get("feature", "")
    if not tenant and not customer:
        raise ValueError("tenant/customer: name a tenant, a customer or both")
    start, end = _period(text)
    raw = text.get("revenue_usd", "")
    try:
        amount = Decimal(raw)
        if not amount.is_finite():
            raise InvalidOperation
        femto = usd_to_femto(amount)
    except (InvalidOperation, ValueError):
        raise ValueError(f"revenue_usd = {raw!r}: expected a decimal amount in USD with at most 15 places") from None
    return RevenueLine(start, end, tenant, customer, feature, femto)


def _period(text: Mapping[str, str]) -> tuple[dt.date, dt.date]:
    period = text.get("period", "")
    if period:
        if text.get("period_start") or text.get("period_end"):
            raise ValueError("period: give period, or period_start and period_end, not both")
        try:
            if len(period) == 7:
                first = dt.date.fromisoformat(period + "-01")
                return first, dt.date(first.year + (first.month == 12), first.month % 12 + 1, 1)
            day = dt.date.fromisoformat(period)
            return day, day + dt.timedelta(days=1)
        except ValueError:
            raise ValueError(f"period = {period!r}: expected YYYY-MM (a month) or YYYY-MM-DD (a day)") from None
    values = []
    for name in ("period_start", "period_end"):
        raw = text.get(name, "")
        try:
            values.append(dt.date.fromisoformat(raw))
        except ValueError:
            raise ValueError(f"{name} = {raw!r}: expected a date YYYY-MM-DD") from None
    start, end = values
    if not start < end:
        raise ValueError(f"period_end = {end.isoformat()!r}: must be after period_start (the end is exclusive)")
    if (end - start).days > MAX_DAYS:
        raise ValueError(f"period_end = {end.isoformat()!r}: a line covers at most {MAX_DAYS} days")
    return start, end


def _no_overlap(lines: Sequence[RevenueLine], label: str, what: str) -> None:
    """Two lines of one input may not claim the same (tenant, customer, feature, day)."""
    seen: dict[tuple[str, str, str, dt.date], int] = {}
    for index, line in enumerate(lines, start=1):
        for day, _ in line.days():
            key = (line.tenant, line.customer, line.feature, day)
            if key in seen:
                raise RevenueError(
                    f"revenue {label}: {what}s {seen[key]} and {index} both give revenue for "
                    f"tenant {line.tenant!r}, customer {line.customer!r}, feature {line.feature!r} on {day.isoformat()}"
                )
            seen[key] = index


def store_lines(store: Store, lines: Sequence[RevenueLine], source: str) -> Imported:
    """Write the lines' days in one insert (the latest import of a day wins)."""
    now = time.time_ns()
    imported_at = dt.datetime.fromtimestamp(now / 1e9, tz=dt.UTC)
    rows: list[list[Any]] = []
    days: list[dt.date] = []
    for line in lines:
        for day, share in line.days():
            days.append(day)
            rows.append(
                [
                    day,
                    line.tenant,
                    line.customer,
                    line.feature,
                    Decimal(share).scaleb(-15),
                    line.start,
                    line.end,
                    Decimal(line.amount_femto).scaleb(-15),
                    source,
                    imported_at,
                    now,
                ]
            )
    store.insert_rows(queries.table(store.database), rows, queries.COLUMNS)
    return Imported(
        len(lines),
        len(rows),
        sum(line.amount_femto for line in lines),
        min(days) if days else None,
        max(days) if days else None,
        source,
    )

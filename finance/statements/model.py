"""Monthly chargeback statements per owner (team, cost center or tenant). Pure.

A statement is what an owner is charged for one UTC calendar month: the direct (calculated)
cost of its runs, its share of shared-cost pools (the allocation rollup, by pool), the reconciled
billed cost and the variance with its confidence (once billing exists), its top workflows and
features, and the change against the previous month. Money is integer femto-USD. Runs without
the owner attribute are one explicit ``unattributed`` statement, so the statements of a month
add up to the month's total exactly (``MonthStatements.check``).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from otelspend.money import femto_to_usd, usd_to_femto

UNATTRIBUTED = ""
"""The owner value of runs without the attribute."""
UNATTRIBUTED_LABEL = "(unattributed)"
MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


def month_window(month: str) -> tuple[int, int]:
    """``2026-11`` -> (start, end) unix seconds of that UTC calendar month."""
    match = MONTH.fullmatch(month)
    if match is None:
        raise ValueError(f"month {month!r}: expected YYYY-MM, e.g. 2026-11")
    year, number = int(match.group(1)), int(match.group(2))
    if not 2000 <= year < 2200:
        raise ValueError(f"month {month!r}: the year must be from 2000 to 2199")
    start = dt.datetime(year, number, 1, tzinfo=dt.UTC)
    days = calendar.monthrange(year, number)[1]
    return int(start.timestamp()), int((start + dt.timedelta(days=days)).timestamp())


def previous_month(month: str) -> str:
    """The month before ``month`` (YYYY-MM); ValueError before the first month held."""
    year, number = int(month[:4]), int(month[5:7])
    return f"{year - 1:04d}-12" if number == 1 else f"{year:04d}-{number - 1:02d}"


@dataclass(frozen=True)
class Line:
    """A top workflow or feature of an owner."""

    name: str
    cost_femto: int
    runs: int


@dataclass(frozen=True)
class PoolShare:
    """An owner's allocated share of one shared-cost pool (issue 14's allocations, by run start)."""

    pool: str
    cost_femto: int


@dataclass(frozen=True)
class Statement:
    """One owner's statement for one month: direct, allocated and billed money, breakdowns."""

    owner: str
    direct_femto: int
    runs: int
    successful_runs: int
    calls: int
    unpriced_calls: int
    previous_femto: int
    top_workflows: tuple[Line, ...] = ()
    top_features: tuple[Line, ...] = ()
    allocated: tuple[PoolShare, ...] = ()
    """Shares of shared-cost pools, largest first (empty when no pool allocated to the owner)."""
    billed_femto: int | None = None
    """Reconciled billed cost (None until billing has been imported for the month)."""
    billed_calculated_femto: int | None = None
    """The calculated cost of the calls the billed cost covers (reconciled days only)."""
    billed_confidence: str | None = None

    @property
    def label(self) -> str:
        """The owner's name as shown ('(unattributed)' for the explicit empty owner)."""
        return self.owner or UNATTRIBUTED_LABEL

    @property
    def allocated_femto(self) -> int:
        """The owner's allocated cost over every pool, in femto-USD."""
        return sum(share.cost_femto for share in self.allocated)

    @property
    def total_femto(self) -> int:
        """Direct plus allocated cost: what the owner is charged back."""
        return self.direct_femto + self.allocated_femto

    @property
    def variance_femto(self) -> int | None:
        """Billed minus the calculated cost of the same calls, in femto-USD (None without billing)."""
        if self.billed_femto is None:
            return None
        return self.billed_femto - (self.billed_calculated_femto or 0)

    @property
    def change_pct(self) -> Decimal | None:
        """Month over month change of the direct cost, in percent (None without a previous month)."""
        if self.previous_femto == 0:
            return None
        return (Decimal(self.direct_femto - self.previous_femto) * 100 / Decimal(self.previous_femto)).quantize(
            Decimal("0.1")
        )


@dataclass(frozen=True)
class MonthStatements:
    """Every owner's statement for one month; ``check`` proves they add up to the month."""

    month: str
    by: str
    statements: tuple[Statement, ...]
    month_femto: int
    """The month's total direct cost, from the rollups without any grouping."""
    previous_month: str = ""
    previous_month_femto: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def total_femto(self) -> int:
        """The month's direct cost over every owner, in femto-USD."""
        return sum(s.direct_femto for s in self.statements)

    def check(self) -> None:
        """The owners' statements add up to the month exactly (nothing lost, nothing twice)."""
        if self.total_femto != self.month_femto:
            raise AssertionError(f"statements add up to {self.total_femto} femto-USD, the month is {self.month_femto}")

    def owner(self, name: str) -> Statement | None:
        """The statement of owner ``name`` ('' = unattributed), or None."""
        return next((s for s in self.statements if s.owner == name), None)


def _femto(value: Any) -> int:
    return usd_to_femto(Decimal(value or 0))


def _top(rows: Iterable[Mapping[str, Any]], owner: str, limit: int) -> tuple[Line, ...]:
    lines = [Line(str(r["value"]), _femto(r["cost_usd"]), int(r["runs"])) for r in rows if r["owner"] == owner]
    lines.sort(key=lambda line: (-line.cost_femto, line.name))
    return tuple(lines[:limit])


_CONFIDENCE = {1: "low", 2: "medium", 3: "high"}


@dataclass(frozen=True)
class OwnerMoney:
    """An owner's money besides its direct cost, as the statement queries return it."""

    billed: Sequence[Mapping[str, Any]] = ()
    """Reconciled billed money per owner (``owner_billed``), empty without billing."""
    allocated: Sequence[Mapping[str, Any]] = ()
    """Shared costs per owner and pool (``owner_allocated``), empty without cost pools."""


def build(
    month: str,
    by: str,
    totals: Sequence[Mapping[str, Any]],
    previous: Sequence[Mapping[str, Any]],
    workflows: Sequence[Mapping[str, Any]],
    features: Sequence[Mapping[str, Any]],
    *,
    money: OwnerMoney | None = None,
    top: int = 5,
) -> MonthStatements:
    """Statements from the rollup query results (``clickhouse.queries.statements``); ``money``:
    the owners' billed and allocated money, when there is any."""
    money = money or OwnerMoney()
    before = {str(r["owner"]): _femto(r["cost_usd"]) for r in previous}
    bills = {str(r["owner"]): r for r in money.billed}
    shares = _pool_shares(money.allocated)
    statements = []
    present = {str(r["owner"]) for r in totals}
    # An owner billed for money no run of the month carries (an unattributed share) still gets a
    # statement, and so does one that spent last month and nothing this month: its drop is news.
    absent = sorted((set(bills) | set(shares) | {o for o, femto in before.items() if femto}) - present)
    rows = list(totals) + [
        {"owner": o, "cost_usd": 0, "runs": 0, "successful_runs": 0, "calls": 0, "unpriced_calls": 0} for o in absent
    ]
    for row in rows:
        owner = str(row["owner"])
        bill = bills.get(owner)
        quiet = int(row["runs"]) == 0 and _femto(row["cost_usd"]) == 0 and owner not in shares
        if quiet and bill is None and not before.get(owner):
            continue
        statements.append(
            Statement(
                owner=owner,
                direct_femto=_femto(row["cost_usd"]),
                runs=int(row["runs"]),
                successful_runs=int(row["successful_runs"]),
                calls=int(row["calls"]),
                unpriced_calls=int(row["unpriced_calls"]),
                previous_femto=before.get(owner, 0),
                top_workflows=_top(workflows, owner, top),
                top_features=_top(features, owner, top),
                allocated=shares.get(owner, ()),
                billed_femto=None if bill is None else _femto(bill["billed_usd"]),
                billed_calculated_femto=None if bill is None else _femto(bill["calculated_usd"]),
                billed_confidence=None if bill is None else _CONFIDENCE.get(int(bill["confidence_rank"]), "low"),
            )
        )
    # Largest first; the unattributed bucket always last, so it reads as what is left over.
    statements.sort(key=lambda s: (s.owner == UNATTRIBUTED, -s.direct_femto, s.owner))
    return MonthStatements(
        month=month,
        by=by,
        statements=tuple(statements),
        month_femto=sum(_femto(r["cost_usd"]) for r in totals),
        previous_month=previous_month(month),
        previous_month_femto=sum(before.values()),
    )


def _pool_shares(rows: Iterable[Mapping[str, Any]]) -> dict[str, tuple[PoolShare, ...]]:
    """Per owner, its shares of each pool, largest first (pools with no net money left out)."""
    sums: dict[str, dict[str, int]] = {}
    for row in rows:
        pools = sums.setdefault(str(row["owner"]), {})
        pools[str(row["pool"])] = pools.get(str(row["pool"]), 0) + _femto(row["allocated_usd"])
    found = {
        owner: tuple(sorted((PoolShare(pool, femto) for pool, femto in pools.items() if femto), key=_largest))
        for owner, pools in sums.items()
    }
    return {owner: shares for owner, shares in found.items() if shares}


def _largest(share: PoolShare) -> tuple[int, str]:
    return -share.cost_femto, share.pool


def usd(femto: int | None) -> str | None:
    """Money as an exact decimal string (15 places), None stays None."""
    return None if femto is None else format(femto_to_usd(femto), "f")

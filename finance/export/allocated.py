"""Allocated-share rows: the seam to shared-cost allocation (issue 14).

An ``AllocationSource`` returns, for a window, each pool's share placed on a consumer, with the
rule that placed it (FOCUS 1.3 split cost allocation: ``AllocatedMethodId`` names the rule and
its version, ``AllocatedMethodDetails`` the ratio and the signal it was computed from).
``StoredAllocation`` reads the ``allocations`` table (the rows in force), placed by run start as
the rollups place allocated money, so the allocated rows add up to the rollups'
``allocated_cost_usd`` of the same window; ``NoAllocation`` writes no allocated rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any, Protocol

from otelspend.clickhouse.client import Store
from otelspend.clickhouse.queries import export as queries
from otelspend.finance.allocation.pools import SIGNALS
from otelspend.finance.export.charges import TAG_KEYS
from otelspend.money import usd_to_femto


@dataclass(frozen=True)
class AllocatedShare:
    """One owner's share of a shared-cost pool for one charge period (issue 14's allocation)."""

    period_start_s: int
    period_end_s: int
    pool_id: str
    pool_name: str
    rule: str
    """Rule id and version, e.g. ``vector-db@3f2a9c1e``."""
    consumer: tuple[str, ...]
    """Tag values in ``charges.TAG_KEYS`` order, '' where the share's dimension does not set them."""
    amount_femto: int
    ratio: Fraction
    """This share over the pool's amount for the period (the ratios of one pool-period add to 1)."""
    signal_unit: str
    """What the signal counts, as a FOCUS unit ("Runs", "Tokens", "GPU-Seconds")."""
    signal_quantity: int
    """The consumer's signal in whole units (the share's quantity)."""
    account: str = ""
    unallocated: bool = False
    """Money the pool had no consumer for in the period (no owner; never lost)."""
    runs: int = 0
    """The runs the share was placed on."""


class AllocationSource(Protocol):
    """Where allocated shares come from: the allocation table once it exists."""

    def shares(self, start_s: int, end_s: int, granularity: str) -> Sequence[AllocatedShare]:
        """Shares of periods starting in ``[start_s, end_s)`` at ``granularity``."""
        ...

    def days(self, start_s: int, end_s: int) -> set[int]:
        """UTC days (unix seconds) in ``[start_s, end_s)`` that may hold shares (a superset)."""
        ...


class NoAllocation:
    """No shared-cost pools (allocation has not landed): no allocated rows."""

    def shares(self, start_s: int, end_s: int, granularity: str) -> Sequence[AllocatedShare]:
        """The shares whose charge period starts in ``[start_s, end_s)``."""
        return ()

    def days(self, start_s: int, end_s: int) -> set[int]:
        """No day holds shares."""
        return set()


NS = 10**9
PERIOD_S = {"hour": 3_600, "day": 86_400}


@dataclass(frozen=True)
class StoredAllocation:
    """Shares from the ``allocations`` table (issue 14): one per charge period x pool period x rule
    version x sub-account (the run attribution ``sub_account`` names), plus one per pool period
    for the money no consumer took. ``AllocatedMethodId`` is ``pool@rule_version``; the ratio is
    the share's amount over its pool period's whole amount (read once per pool period: a month's
    pool is summed once, not once per exported day)."""

    store: Store
    sub_account: str = "team"
    amounts: dict[tuple[str, int], int] = field(default_factory=dict, compare=False, repr=False)
    """Pool period amounts already read, femto-USD by (pool, period start)."""

    def days(self, start_s: int, end_s: int) -> set[int]:
        """Days with allocation rows (those with no run still need their unallocated money)."""
        query = queries.allocation_days(self.store.database, start_s * NS, end_s * NS)
        return {int(row[0]) for row in self.store.rows(*query)}

    def shares(self, start_s: int, end_s: int, granularity: str) -> Sequence[AllocatedShare]:
        """Allocated money placed (by run start) in ``[start_s, end_s)``."""
        grain: queries.Granularity = "hour" if granularity == "hour" else "day"
        query = queries.allocated(self.store.database, start_s * NS, end_s * NS, grain, self.sub_account)
        rows = self.store.dicts(*query)
        self._read_amounts({(str(row["pool"]), int(row["pool_period"])) for row in rows})
        return [self._share(row, grain) for row in rows]

    def _read_amounts(self, wanted: set[tuple[str, int]]) -> None:
        missing = wanted - self.amounts.keys()
        if not missing:
            return
        starts = [start for _, start in missing]
        query = queries.pool_amounts(self.store.database, sorted({p for p, _ in missing}), min(starts), max(starts))
        for row in self.store.dicts(*query):
            key = (str(row["pool"]), int(row["period_start_s"]))
            if key in missing:
                self.amounts[key] = usd_to_femto(row["pool_usd"])

    def _share(self, row: Mapping[str, Any], grain: str) -> AllocatedShare:
        amount = usd_to_femto(row["amount_usd"])
        whole = self.amounts.get((str(row["pool"]), int(row["pool_period"])), 0)
        consumer = [""] * len(TAG_KEYS)
        consumer[TAG_KEYS.index(self.sub_account)] = str(row["owner"])
        period = int(row["period"])
        return AllocatedShare(
            period_start_s=period,
            period_end_s=period + PERIOD_S[grain],
            pool_id=str(row["pool"]),
            pool_name=str(row["pool"]),
            rule=f"{row['pool']}@{row['rule_version']}",
            consumer=tuple(consumer),
            amount_femto=amount,
            ratio=Fraction(amount, whole) if whole else Fraction(0),
            signal_unit=SIGNALS.get(str(row["signal"]), ("Unit", ""))[0],
            signal_quantity=int(Decimal(row["quantity"]).to_integral_value(ROUND_HALF_EVEN)),
            unallocated=bool(row["unallocated"]),
            runs=int(row["runs"]),
        )

"""BilledCost: the rate card's cost, or the bill's where billing has been reconciled. Pure.

The seam to billing (issue 13) is ``BilledCosts``: for a window it returns the billed money
trued up over runs, summed per (period, provider, model, billing account) — a *cell* — with the
reconciliation's confidence; money that matched no run comes as an unattributed cell. The
export splits each cell's billed amount over the rows of that cell in proportion to their
calculated cost (``split_largest_remainder``: whole femto-USD, the parts add up to the cell
exactly), so the file's BilledCost adds up to the bill. A cell whose rows have no calculated
cost at all (free usage billed anyway) is split by quantity; a cell with no rows at all
becomes one ``Adjustment`` row, so no billed femto-dollar is dropped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from otelspend.finance.export.charges import Charge
from otelspend.money import split_largest_remainder


@dataclass(frozen=True)
class BilledCell:
    """Billed money of one (period, provider, model, billing account) cell, with its confidence."""

    period_start_s: int
    provider: str
    model: str
    account: str
    billed_femto: int
    confidence: str
    """high | medium | low (the reconciliation's grade)."""
    unattributed: bool = False
    """Billed money the true-up could place on no run."""


class BilledCosts(Protocol):
    """Where reconciled billed money comes from (billing, issue 13)."""

    def cells(self, start_s: int, end_s: int, granularity: str) -> Sequence[BilledCell]:
        """Billed money of runs that started in ``[start_s, end_s)``, per period of ``granularity``."""
        ...


class NoBilling:
    """Nothing billed yet: every row's BilledCost is its calculated cost."""

    def cells(self, start_s: int, end_s: int, granularity: str) -> Sequence[BilledCell]:
        """The billed cells whose charge period starts in ``[start_s, end_s)``."""
        return ()


@dataclass(frozen=True)
class Billed:
    """What a row shows as BilledCost."""

    femto: int
    source: str
    """calculated | billed"""
    confidence: str | None


def _cell_key(period: int, provider: str, model: str, account: str) -> tuple[int, str, str, str]:
    return (period, provider, model, account)


def apply_billing(charges: Sequence[Charge], cells: Sequence[BilledCell]) -> tuple[list[Billed], list[BilledCell]]:
    """Billed figures for ``charges`` (same order) and the billed cells no charge covers."""
    by_cell: dict[tuple[int, str, str, str], list[int]] = defaultdict(list)
    for index, charge in enumerate(charges):
        by_cell[_cell_key(charge.period_start_s, charge.provider, charge.model, charge.account)].append(index)
    out = [Billed(charge.cost_femto, "calculated", None) for charge in charges]
    orphans: list[BilledCell] = []
    totals: dict[tuple[int, str, str, str], tuple[int, str]] = {}
    for cell in cells:
        key = _cell_key(cell.period_start_s, cell.provider, cell.model, cell.account)
        if cell.unattributed or key not in by_cell:
            orphans.append(cell)
            continue
        billed, confidence = totals.get(key, (0, cell.confidence))
        totals[key] = (billed + cell.billed_femto, _weakest(confidence, cell.confidence))
    for key, (billed, confidence) in totals.items():
        indexes = by_cell[key]
        weights = [max(charges[i].cost_femto, 0) for i in indexes]
        if not any(weights):
            weights = [charges[i].quantity for i in indexes]
        split = split_largest_remainder(billed, weights)
        assert split.unallocated == 0, "a cell's rows always have a positive quantity"
        for i, share in zip(indexes, split.shares, strict=True):
            out[i] = Billed(share, "billed", confidence)
    return out, orphans


_GRADES = {"high": 2, "medium": 1, "low": 0}


def _weakest(a: str, b: str) -> str:
    return a if _GRADES.get(a, 0) <= _GRADES.get(b, 0) else b

"""The true-up: each reconciled cell's billed money over the runs behind it. Pure.

A cell's billed usage money is split over the runs whose counted calls fall in it (per run
and model name as the ledger has it, so a share joins the rollups' ``model``), in
proportion to each run's calculated cost there (``otelspend.money.split_largest_remainder``:
whole femto-USD, the shares add up to the billed amount exactly, ties to the earlier run in
run-id order). When none of the cell's runs has a calculated cost (all unpriced), their
tokens are the weights instead. What no run takes — a cell with bill lines and no calls,
or a split with nothing to weigh — is one **unattributed** share, never dropped. The shares
are a separate figure (``billed_cost_usd``): a run's calculated ``cost_usd`` never changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from otelspend.finance.billing.reconcile import Cell
from otelspend.money import split_largest_remainder

UNATTRIBUTED = ""
"""run_id of the share no run takes."""


@dataclass(frozen=True)
class Share:
    """Billed money of one cell assigned to one run (or unattributed), with its provenance."""

    run_id: str
    ledger_model: str
    """The model as the ledger names it (the rollups' ``model``); the cell's name when unattributed."""
    period_start: int
    provider: str
    model: str
    """The cell's model match key."""
    account: str
    billed: int
    """femto-USD."""
    calculated: int
    """The run's calculated cost in the cell, femto-USD (0 for the unattributed share)."""
    confidence: str
    line_ids: tuple[str, ...]

    @property
    def unattributed(self) -> bool:
        """Whether the share belongs to no run (money no run's calls explain)."""
        return self.run_id == UNATTRIBUTED


def shares(cells: Iterable[Cell]) -> list[Share]:
    """Every cell with billed money, split over its runs; the shares of a cell add up to its
    billed amount exactly."""
    out: list[Share] = []
    for cell in cells:
        if not cell.bill_lines or cell.billed == 0:
            continue
        keys = sorted(cell.runs)
        weights = [max(cell.runs[k], 0) for k in keys]
        if not any(weights):
            weights = [cell.run_tokens.get(k, 0) for k in keys]
        split = split_largest_remainder(cell.billed, weights)
        provenance = tuple(cell.line_ids)
        for (run_id, ledger_model), share in zip(keys, split.shares, strict=True):
            if share or cell.runs[(run_id, ledger_model)]:
                out.append(
                    Share(
                        run_id,
                        ledger_model,
                        cell.period_start,
                        cell.provider,
                        cell.model,
                        cell.account,
                        share,
                        cell.runs[(run_id, ledger_model)],
                        cell.confidence,
                        provenance,
                    )
                )
        if split.unallocated:
            out.append(
                Share(
                    UNATTRIBUTED,
                    cell.model_name,
                    cell.period_start,
                    cell.provider,
                    cell.model,
                    cell.account,
                    split.unallocated,
                    0,
                    cell.confidence,
                    provenance,
                )
            )
    return out

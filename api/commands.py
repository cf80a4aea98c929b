"""What the API asks of the running process: a narrow protocol, never the app object.

The composition root (``otelspend.app.OtelSpend``) implements it. A read-only API (tests,
benchmarks over a stored ledger) has none: routes that need it answer 503.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from otelspend.enrich.pricing import PriceBook
from otelspend.finance.allocation.pools import CostRules


class CommandRefused(RuntimeError):
    """The command cannot run as asked (e.g. the rate card on disk is invalid): answer 409."""


class ControlsApi(Protocol):
    """What the API asks of the spend controls (``otelspend.controls.service.Controls``)."""

    def check(self, values: Mapping[str, str], run_id: str = "") -> dict[str, Any]:
        """allow | warn | deny with reasons, from memory."""
        ...

    def run_action(self, run_id: str) -> dict[str, Any]:
        """``stop`` for a run flagged by a retry loop, else ``continue``."""
        ...

    def status(self) -> dict[str, Any]:
        """What the controls are doing."""
        ...

    def budgets(self) -> list[dict[str, Any]]:
        """Every budget in force with where it stands."""
        ...

    def budget(self, budget_id: str) -> dict[str, Any] | None:
        """One budget with where it stands; None when unknown."""
        ...

    def put_budget(self, doc: Mapping[str, Any], *, budget_id: str | None = None) -> dict[str, Any]:
        """Create or replace a budget (durable on return); ControlsConfigError, BudgetConflict, KeyError."""
        ...

    def delete_budget(self, budget_id: str) -> bool:
        """Delete a budget created over the API; False when unknown."""
        ...


class Commands(Protocol):
    """Commands and state the API needs from the running pipeline."""

    def price_book(self) -> PriceBook:
        """The rate cards in force."""
        ...

    def controls(self) -> ControlsApi | None:
        """The spend controls; None when they are off (``controls.enabled``)."""
        ...

    def pipeline_problem(self) -> str | None:
        """None while spans are accepted, else why not (for ``/readyz``)."""
        ...

    def reprice(self, start_ns: int, end_ns: int, *, dry_run: bool, timeout_seconds: float) -> dict[str, Any]:
        """Re-price stored spans that started in the window; runs and rollups follow.

        Raises ``CommandRefused`` (409) or ``TimeoutError`` (504)."""
        ...

    def rebuild_rollups(self, start_s: int, end_s: int, *, timeout_seconds: float) -> int:
        """Rebuild the rollups of whole UTC days covering the window; returns the hours rebuilt."""
        ...

    def record_outcome(
        self,
        *,
        run_id: str = "",
        workflow_id: str = "",
        outcome: str,
        score: float | None = None,
        label: str = "",
        recorded_ns: int | None = None,
        note: str = "",
    ) -> list[str]:
        """Store an outcome (durable on return) and re-emit the runs it applies to."""
        ...

    def cost_rules(self) -> CostRules:
        """The cost pools and units of value in force (the ``cost_pools`` file)."""
        ...

    def allocate(
        self, start_ns: int, end_ns: int, *, pools: list[str], dry_run: bool, timeout_seconds: float
    ) -> dict[str, Any]:
        """Restate every pool period overlapping the window (all pools, or these), however old.

        Raises ``CommandRefused`` (409: the pools file on disk is invalid, an unknown pool) or
        ``TimeoutError`` (504: the allocation job's turn held the allocator too long)."""
        ...

    def allocation_status(self) -> dict[str, Any]:
        """Whether the allocation job runs (or why not), the rules in force, its last turn."""
        ...

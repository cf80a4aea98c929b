"""What the API asks of the running process: a narrow protocol, never the app object.

The composition root (``otelspend.app.OtelSpend``) implements it. A read-only API (tests,
benchmarks over a stored ledger) has none: routes that need it answer 503.
"""

from __future__ import annotations

from typing import Any, Protocol

from otelspend.enrich.pricing import PriceBook


class CommandRefused(RuntimeError):
    """The command cannot run as asked (e.g. the rate card on disk is invalid): answer 409."""


class Commands(Protocol):
    """Commands and state the API needs from the running pipeline."""

    def price_book(self) -> PriceBook:
        """The rate cards in force."""
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

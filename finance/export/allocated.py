"""Allocated-share rows: the seam to shared-cost allocation (issue 14).

An ``AllocationSource`` returns, for a window, each pool's share placed on a consumer, with the
rule that placed it (FOCUS 1.3 split cost allocation: ``AllocatedMethodId`` names the rule and
its version, ``AllocatedMethodDetails`` the ratio and the signal it was computed from). Until
allocation exists the export uses ``NoAllocation`` and writes no allocated rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol


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


class AllocationSource(Protocol):
    """Where allocated shares come from: the allocation table once it exists."""

    def shares(self, start_s: int, end_s: int, granularity: str) -> Sequence[AllocatedShare]:
        """Shares of periods starting in ``[start_s, end_s)`` at ``granularity``."""
        ...


class NoAllocation:
    """No shared-cost pools (allocation has not landed): no allocated rows."""

    def shares(self, start_s: int, end_s: int, granularity: str) -> Sequence[AllocatedShare]:
        """The shares whose charge period starts in ``[start_s, end_s)``."""
        return ()

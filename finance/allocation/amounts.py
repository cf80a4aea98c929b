"""A pool's amount for a period: its fixed USD, or the billed amount of imported bill lines.

A fixed pool (``amount_usd``) costs the same every period. A billed pool (``billed:``, a filter
on the normalised billing lines: provider, account, project, model, kind, charge, description,
...) costs what the bill lines in force (billing import: the latest import of each line wins)
bill for periods that *start* within the pool's period: a daily pool over a provider's daily
lines, a monthly pool over a monthly invoice. Until such a line is imported (or when the
matching lines state quantities but no money) the period's amount is not known: the period
waits, reported as skipped, never allocated at zero; an import later makes the job allocate it
(``Allocator`` looks again at the periods of every bill import recorded since its last turn).
"""

from __future__ import annotations

from decimal import Decimal

from otelspend.clickhouse.client import Store
from otelspend.clickhouse.queries import allocation as queries
from otelspend.finance.allocation.periods import NS, PoolPeriod
from otelspend.finance.allocation.pools import Pool
from otelspend.money import usd_to_femto


def fixed_amount(pool: Pool, period: PoolPeriod) -> int | None:
    """A fixed pool's amount in femto-USD; None for a billed pool (no store to read bills from)."""
    return pool.amount_femto


class PoolAmounts:
    """Fixed amounts, and billed amounts read from the bill lines in force in ``store``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __call__(self, pool: Pool, period: PoolPeriod) -> int | None:
        """The pool's amount for the period in femto-USD, or None while no bill line states it."""
        if pool.amount_femto is not None:
            return pool.amount_femto
        query = queries.billed_amount(self.store.database, period.start_ns // NS, period.end_ns // NS, pool.bill_filter)
        total, _lines, with_money = self.store.rows(*query)[0]
        if not with_money:
            return None
        return usd_to_femto(Decimal(total))

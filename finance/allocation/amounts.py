"""A pool's amount for a period: its fixed USD, or the billed amount of imported bill lines.

A fixed pool (``amount_usd``) costs the same every period. A billed pool (``billed:`` a filter
on the normalised billing lines: provider, account, project, model, kind, charge,
description ...) costs what the lines matching the filter bill within the period; until
billing lines can be read (billing import, issue 13), a billed pool's periods wait: they are
not allocated, and say so, rather than allocated at zero.
"""

from __future__ import annotations

from otelspend.finance.allocation.periods import PoolPeriod
from otelspend.finance.allocation.pools import Pool


def fixed_or_billed_amount(pool: Pool, period: PoolPeriod) -> int | None:
    """The pool's amount in femto-USD for the period; None while it cannot be known."""
    if pool.amount_femto is not None:
        return pool.amount_femto
    return None  # billed pools: wired to the billing lines once billing import is in this build

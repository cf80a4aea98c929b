"""The ledger's charges, as the export query returns them, and how they merge into rows. Pure.

A ``Charge`` is the usage of one charge kind, at one exact rate, by the calls of runs that share
the row's period, provider, model, price and run attribution. The query also keeps the two run
fields an account mapping may match on (ingest token, service); ``merge`` folds them away once
each charge knows its billing account, summing charges that now share every column.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any, NamedTuple

TAG_KEYS: tuple[str, ...] = ("workflow_type", "tenant", "feature", "team", "cost_center", "environment")
"""Run attribution carried to every row's Tags (the ledger's dimension names)."""


class Charge(NamedTuple):
    """One aggregate of the ledger: a charge kind at one exact rate within one row grain (a
    tuple: a day of the 10M-span ledger makes 48k of them, and a tuple is built fastest)."""

    period_start_s: int
    period_end_s: int
    provider: str
    model: str
    price_source: str
    price_entry: str
    price_effective_from: str
    tags: tuple[str, ...]
    """Values in TAG_KEYS order ('' where the run has none)."""
    kind: str
    rate: Fraction
    """femto-USD per base unit of the kind."""
    quantity: int
    cost_femto: int
    runs: int
    calls: int
    ingest_token: str = ""
    service: str = ""
    account: str = ""

    def tag(self, key: str) -> str:
        """The run attribution ``key`` of this charge ('' when the runs have none)."""
        return self.tags[TAG_KEYS.index(key)]

    @property
    def key(self) -> tuple[object, ...]:
        """Every column the row shows (what two charges must share to merge)."""
        return (
            self.period_start_s, self.provider, self.model, self.price_source, self.price_entry,
            self.price_effective_from, self.tags, self.account, self.kind, self.rate,
        )  # fmt: skip


AccountOf = Callable[[str, dict[str, str]], str]
"""(provider, owner fields: ingest_token, service, team, environment) -> billing account name."""


def with_accounts(charges: Iterable[Charge], account_of: AccountOf) -> list[Charge]:
    """Each charge with its billing account, then merged by the columns rows show.

    Runs are disjoint across charges that differ only by ingest token or service (a run has one
    of each), so run and call counts add up exactly when such charges merge.
    """
    team, environment = TAG_KEYS.index("team"), TAG_KEYS.index("environment")
    merged: dict[tuple[object, ...], list[Any]] = {}
    for charge in charges:
        owner = {
            "ingest_token": charge.ingest_token,
            "service": charge.service,
            "team": charge.tags[team],
            "environment": charge.tags[environment],
        }
        placed = charge._replace(account=account_of(charge.provider, owner), ingest_token="", service="")
        known = merged.get(placed.key)
        if known is None:
            merged[placed.key] = [placed, placed.quantity, placed.cost_femto, placed.runs, placed.calls, 1]
        else:
            known[1] += placed.quantity
            known[2] += placed.cost_femto
            known[3] += placed.runs
            known[4] += placed.calls
            known[5] += 1
    out = [
        first if parts == 1 else first._replace(quantity=quantity, cost_femto=cost, runs=runs, calls=calls)
        for first, quantity, cost, runs, calls, parts in merged.values()
    ]
    return sorted(out, key=_order)


def _order(charge: Charge) -> tuple[object, ...]:
    return (
        charge.period_start_s, charge.provider, charge.model, charge.account, charge.tags, charge.kind,
        charge.price_entry, charge.price_effective_from, charge.price_source, charge.rate,
    )  # fmt: skip

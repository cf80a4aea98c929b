"""Exact money splits: every part of a whole adds back up to it.

The finance layer divides money in several places (a billed amount over the runs behind
it, a shared-cost pool over its consumers, a statement over owners). Each split is the same
operation, done once here: integer femto-USD (``otelspend.record.FEMTO_PER_USD``) handed
out in proportion to non-negative integer or rational weights by the largest-remainder
(Hamilton) method. The shares sum to the whole exactly, each share is within one unit of
its exact proportional value, and ties in the remainders go to the earlier weight, so the
result depends only on the inputs' order.

A split with nothing to split over (no weights, or all of them zero) places nothing: the
caller keeps the whole in an explicit unallocated bucket, never drops it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from otelspend.record import FEMTO_PER_USD

Weight = int | Fraction


@dataclass(frozen=True)
class Split:
    """The result of dividing ``total`` femto-USD: one share per weight, plus what was not placed."""

    total: int
    shares: tuple[int, ...]
    unallocated: int

    def __post_init__(self) -> None:
        if sum(self.shares) + self.unallocated != self.total:
            raise AssertionError(f"split does not balance: {sum(self.shares)} + {self.unallocated} != {self.total}")


def split_largest_remainder(total: int, weights: Sequence[Weight]) -> Split:
    """Divide integer ``total`` (femto-USD, may be negative) in proportion to ``weights``.

    Weights must be non-negative. With no positive weight, every share is 0 and the whole
    ``total`` is returned as ``unallocated``.
    """
    if any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative")
    integers = all(type(w) is int for w in weights)
    weight_sum = sum(weights) if integers else sum((Fraction(w) for w in weights), Fraction(0))
    if not weights or weight_sum == 0:
        return Split(total, tuple(0 for _ in weights), total)
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    if integers:
        return _split_integers(total, sign, magnitude, weights)  # type: ignore[arg-type]
    exact = [Fraction(w) * magnitude / weight_sum for w in weights]
    floors = [e.numerator // e.denominator for e in exact]
    left = magnitude - sum(floors)
    # Hand the remaining units to the largest fractional parts; earlier index wins a tie.
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return Split(total, tuple(sign * f for f in floors), 0)


def _split_integers(total: int, sign: int, magnitude: int, weights: Sequence[int]) -> Split:
    """The same split for integer weights in integer arithmetic (about ten times faster than
    Fractions, which matters when a pool is shared over a million runs).

    ``exact = w * magnitude / W`` has floor ``(w * magnitude) // W`` and fractional part
    ``((w * magnitude) % W) / W``: over one denominator, the largest fractional parts are
    the largest integer remainders, so the shares (and the tie rule) are identical."""
    weight_sum = sum(weights)
    parts = [divmod(w * magnitude, weight_sum) for w in weights]
    floors = [quotient for quotient, _ in parts]
    left = magnitude - sum(floors)
    if left:
        remainders = [remainder for _, remainder in parts]
        # A stable sort in reverse keeps equal remainders in index order: the earlier weight wins a tie.
        for i in sorted(range(len(weights)), key=remainders.__getitem__, reverse=True)[:left]:
            floors[i] += 1
    return Split(total, tuple(sign * f for f in floors) if sign < 0 else tuple(floors), 0)


def usd_to_femto(value: Decimal | str | int) -> int:
    """An exact decimal USD amount as integer femto-USD; refuses finer precision than 1e-15."""
    amount = Decimal(value) * FEMTO_PER_USD
    if amount != amount.to_integral_value():
        raise ValueError(f"{value!r} USD has more precision than 1e-15 USD")
    return int(amount)


def femto_to_usd(femto: int) -> Decimal:
    """Integer femto-USD as an exact ``Decimal`` USD amount (15 decimal places)."""
    return Decimal(femto).scaleb(-15)

"""Budget arithmetic, exact: threshold crossings, the forecast for the period's end, the
projected exhaustion time.

Amounts are integers (femto-USD for money budgets, tokens for token budgets) and
thresholds exact fractions, so "crossed" is an integer comparison with no rounding: a
budget of 25 USD at threshold 0.8 is crossed by a spend of exactly 20 USD and not by
19.999999999999999 USD.

The forecast is the pace so far held to the end of the period (the spend per elapsed
nanosecond times the period's length), the same linear projection LiteLLM reports as
``projected_spend``; it is only trusted once ``min_elapsed`` of the period has passed, so
the first expensive run of a day does not project a month of overspend.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from otelspend.controls.periods import Period


def crossed(spent: int, amount: int, threshold: Fraction) -> bool:
    """Whether ``spent`` has reached ``threshold`` x ``amount`` (exact)."""
    return spent * threshold.denominator >= amount * threshold.numerator


def threshold_value(amount: int, threshold: Fraction) -> int:
    """The smallest integer spend that crosses ``threshold`` of ``amount`` (ceiling)."""
    return -((-amount * threshold.numerator) // threshold.denominator)


def forecast(spent: int, period: Period, now_ns: int) -> int:
    """The spend at the period's end if the pace so far continues (floor; ``spent`` before any time passed)."""
    elapsed = period.elapsed_ns(now_ns)
    if elapsed <= 0 or spent <= 0:
        return spent
    return spent * (period.end_ns - period.start_ns) // elapsed


def exhaustion_ns(spent: int, amount: int, period: Period, now_ns: int) -> int | None:
    """When the amount runs out at the pace so far: None when it does not within the period
    (or there is no pace yet); ``now_ns`` when it is already spent."""
    if spent >= amount:
        return now_ns
    elapsed = period.elapsed_ns(now_ns)
    if elapsed <= 0 or spent <= 0:
        return None
    # remaining / (spent / elapsed), rounded up to the next nanosecond
    at = now_ns + -((-(amount - spent) * elapsed) // spent)
    return at if at < period.end_ns else None


@dataclass(frozen=True)
class Pace:
    """Where a budget stands at ``now_ns``."""

    spent: int
    amount: int
    forecast: int
    remaining: int
    """``amount - spent``, never below zero."""
    exhaustion_ns: int | None
    elapsed: Fraction
    """Share of the period passed (0..1)."""
    forecast_exceeded: bool
    """The forecast passes the amount while it is not yet spent, and enough of the period passed to trust it."""


def pace(spent: int, amount: int, period: Period, now_ns: int, min_elapsed: Fraction) -> Pace:
    """Spend, forecast, remaining and exhaustion of a budget at ``now_ns``."""
    length = period.end_ns - period.start_ns
    elapsed = Fraction(period.elapsed_ns(now_ns), length)
    projected = forecast(spent, period, now_ns)
    exceeded = spent < amount and projected > amount and elapsed >= min_elapsed
    return Pace(
        spent=spent,
        amount=amount,
        forecast=projected,
        remaining=max(amount - spent, 0),
        exhaustion_ns=exhaustion_ns(spent, amount, period, now_ns),
        elapsed=elapsed,
        forecast_exceeded=exceeded,
    )

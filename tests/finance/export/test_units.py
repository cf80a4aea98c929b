"""Unit prices that multiply back to the cost exactly, whatever the rate (property tests)."""

from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otelspend.finance.export.units import GPU_MICROSECONDS, REQUESTS, TOKENS, exact_decimal, price, render_decimal

rates = st.builds(Fraction, st.integers(0, 10**12), st.integers(1, 10**4))


@given(rate=rates, blocks=st.integers(1, 10**7), unit=st.sampled_from([TOKENS, REQUESTS, GPU_MICROSECONDS]))
def test_unit_price_times_pricing_quantity_is_the_cost(rate: Fraction, blocks: int, unit) -> None:
    quantity = blocks * rate.denominator  # each call's cost is whole femto-USD: the denominator divides it
    cost = rate.numerator * blocks
    priced = price(cost, quantity, rate, unit)
    with localcontext() as ctx:
        ctx.prec = 100
        assert priced.unit_price * priced.pricing_quantity == Decimal(cost).scaleb(-15)
        assert priced.consumed_quantity * unit.consumed_scale == quantity
    assert priced.unit_price >= 0
    assert "E" not in render_decimal(priced.unit_price) and "E" not in render_decimal(priced.pricing_quantity)


@pytest.mark.parametrize(
    ("rate", "quantity", "unit", "expected"),
    [
        pytest.param(Fraction(3_000_000_000), 1_000, TOKENS, ("1000000 Tokens", "0.001", "3"), id="3-usd-per-mtok"),
        pytest.param(Fraction(75_000_000), 4, TOKENS, ("1000000 Tokens", "0.000004", "0.075"), id="cache-read"),
        pytest.param(Fraction(7, 3), 6, TOKENS, ("3 Tokens", "2", "0.000000000000007"), id="sub-femto-rate"),
        pytest.param(Fraction(10**13), 2, REQUESTS, ("Requests", "2", "0.01"), id="request-fee"),
        pytest.param(
            Fraction(1_000_000), 1_500_000, GPU_MICROSECONDS, ("GPU-Seconds", "1.5", "0.001"), id="gpu-second"
        ),
    ],
)
def test_units_shown(rate: Fraction, quantity: int, unit, expected: tuple[str, str, str]) -> None:
    priced = price(int(rate * quantity), quantity, rate, unit)
    shown = (priced.pricing_unit, render_decimal(priced.pricing_quantity), render_decimal(priced.unit_price))
    assert shown == expected


def test_a_cost_that_is_not_rate_times_quantity_is_refused() -> None:
    with pytest.raises(ValueError, match="is not"):
        price(10, 3, Fraction(3), TOKENS)
    with pytest.raises(ValueError, match="positive quantity"):
        price(0, 0, Fraction(0), TOKENS)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(Fraction(1, 4), "0.25"), (Fraction(1, 3), None), (Fraction(5, 10**19), None), (Fraction(-3, 2), "-1.5")],
)
def test_exact_decimal(value: Fraction, expected: str | None) -> None:
    found = exact_decimal(value)
    assert (None if found is None else render_decimal(found)) == expected

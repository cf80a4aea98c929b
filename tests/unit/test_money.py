"""Property tests for the one money split every allocation and true-up uses."""

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otelspend.money import femto_to_usd, split_largest_remainder, usd_to_femto

weights = st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=60)
totals = st.integers(min_value=-(10**24), max_value=10**24)


@given(totals, weights)
def test_shares_add_up_and_stay_within_one_unit_of_exact(total: int, ws: list[int]) -> None:
    split = split_largest_remainder(total, ws)
    assert sum(split.shares) + split.unallocated == total
    if sum(ws) == 0:
        assert split.unallocated == total and set(split.shares) == {0}
        return
    assert split.unallocated == 0
    for share, w in zip(split.shares, ws, strict=True):
        exact = Fraction(total * w, sum(ws))
        assert abs(share - exact) < 1


@given(totals, st.lists(st.fractions(min_value=0, max_value=1000), min_size=1, max_size=30))
def test_rational_weights(total: int, ws: list[Fraction]) -> None:
    split = split_largest_remainder(total, ws)
    assert sum(split.shares) + split.unallocated == total
    if sum(ws):
        for share, w in zip(split.shares, ws, strict=True):
            assert abs(share - total * w / sum(ws)) < 1


def test_ties_go_to_the_earlier_weight() -> None:
    assert split_largest_remainder(10, [1, 1, 1]).shares == (4, 3, 3)
    assert split_largest_remainder(-10, [1, 1, 1]).shares == (-4, -3, -3)


def test_nothing_to_split_over_keeps_the_whole_unallocated() -> None:
    assert split_largest_remainder(7, []).unallocated == 7
    assert split_largest_remainder(7, [0, 0]).shares == (0, 0)


def test_negative_weight_is_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        split_largest_remainder(10, [1, -1])


@pytest.mark.parametrize(
    ("usd", "femto"),
    [
        pytest.param("300.00", 300 * 10**15, id="dollars"),
        pytest.param("0.000000000000001", 1, id="one-femto"),
        pytest.param(Decimal("-1.5"), -15 * 10**14, id="negative"),
    ],
)
def test_usd_femto_round_trip(usd: str | Decimal, femto: int) -> None:
    assert usd_to_femto(usd) == femto
    assert femto_to_usd(femto) == Decimal(usd)


def test_finer_than_femto_is_refused() -> None:
    with pytest.raises(ValueError, match="precision"):
        usd_to_femto("0.0000000000000001")


@given(totals, weights)
def test_integer_weights_split_as_rational_ones(total: int, ws: list[int]) -> None:
    """Integer weights take an integer fast path: the same shares as the same weights as Fractions."""
    assert split_largest_remainder(total, ws) == split_largest_remainder(total, [Fraction(w) for w in ws])

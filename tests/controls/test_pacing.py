"""Budget arithmetic and calendar periods: exact crossings, forecasts, exhaustion, tiling (hypothesis)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otelspend.controls.pacing import crossed, exhaustion_ns, forecast, pace, threshold_value
from otelspend.controls.periods import NS, Period, period_at, zone
from otelspend.money import femto_to_usd, usd_to_femto

ZONES = ["UTC", "Europe/Paris", "America/New_York", "America/Santiago", "Asia/Kolkata", "Australia/Lord_Howe",
         "Pacific/Chatham", "America/St_Johns"]  # fmt: skip
amounts = st.integers(min_value=1, max_value=10**24)
spends = st.integers(min_value=0, max_value=10**24)
shares = st.fractions(min_value=Fraction(1, 1000), max_value=10, max_denominator=1000)
instants = st.integers(min_value=946_684_800 * NS, max_value=4_102_444_800 * NS)  # 2000..2100


@given(spent=spends, amount=amounts, share=shares)
def test_a_threshold_is_crossed_exactly_at_its_value_never_one_femto_before(spent, amount, share):
    value = threshold_value(amount, share)
    assert crossed(value, amount, share)
    assert value == 0 or not crossed(value - 1, amount, share)
    assert crossed(spent, amount, share) == (spent >= value)
    # The same decision in decimal USD (how a person would check it).
    assert crossed(spent, amount, share) == (
        femto_to_usd(spent) >= femto_to_usd(amount) * Decimal(share.numerator) / Decimal(share.denominator)
    )


@pytest.mark.parametrize(
    ("spent", "amount", "share", "expected"),
    [
        pytest.param("20.000000000000000", "25.00", "0.8", True, id="exactly-80-percent"),
        pytest.param("19.999999999999999", "25.00", "0.8", False, id="one-femto-short"),
        pytest.param("25.000000000000000", "25.00", "1.0", True, id="exactly-spent"),
        pytest.param("0", "25.00", "0.5", False, id="nothing-spent"),
    ],
)
def test_crossings_in_usd(spent, amount, share, expected):
    assert crossed(usd_to_femto(spent), usd_to_femto(amount), Fraction(share)) is expected


@settings(max_examples=300)
@given(zone_name=st.sampled_from(ZONES), kind=st.sampled_from(["day", "week", "month"]), at=instants)
def test_periods_tile_time_in_any_zone(zone_name, kind, at):
    tz = ZoneInfo(zone_name)
    period = period_at(kind, tz, at)
    assert period.start_ns <= at < period.end_ns
    assert period_at(kind, tz, period.end_ns).start_ns == period.end_ns  # the next one starts where this ends
    assert period_at(kind, tz, period.start_ns - 1).end_ns == period.start_ns
    length_h = (period.end_ns - period.start_ns) / 3600 / NS
    bounds = {"day": (22.5, 25.5), "week": (166.5, 169.5), "month": (670.5, 745.5)}[kind]
    assert bounds[0] <= length_h <= bounds[1]


@pytest.mark.parametrize(
    ("kind", "zone_name", "at", "start", "end", "label"),
    [
        pytest.param("day", "UTC", "2026-12-05T13:00:00+00:00", "2026-12-05T00:00:00+00:00",
                     "2026-12-06T00:00:00+00:00", "2026-12-05", id="utc-day"),
        pytest.param("day", "Europe/Paris", "2026-03-29T12:00:00+02:00", "2026-03-29T00:00:00+01:00",
                     "2026-03-30T00:00:00+02:00", "2026-03-29", id="paris-23h-day"),
        pytest.param("day", "Europe/Paris", "2026-10-25T12:00:00+01:00", "2026-10-25T00:00:00+02:00",
                     "2026-10-26T00:00:00+01:00", "2026-10-25", id="paris-25h-day"),
        pytest.param("week", "UTC", "2026-12-05T13:00:00+00:00", "2026-11-30T00:00:00+00:00",
                     "2026-12-07T00:00:00+00:00", "2026-W49", id="iso-week-from-monday"),
        pytest.param("month", "Asia/Kolkata", "2026-12-31T20:00:00+00:00", "2027-01-01T00:00:00+05:30",
                     "2027-02-01T00:00:00+05:30", "2027-01", id="kolkata-new-year-before-utc"),
        pytest.param("day", "America/Santiago", "2026-09-06T12:00:00-03:00", "2026-09-06T01:00:00-03:00",
                     "2026-09-07T00:00:00-03:00", "2026-09-06", id="skipped-midnight"),
    ],
)  # fmt: skip
def test_calendar_periods(kind, zone_name, at, start, end, label):
    def ns(text: str) -> int:
        return int(dt.datetime.fromisoformat(text).timestamp()) * NS

    period = period_at(kind, zone(zone_name), ns(at))
    assert (period.start_ns, period.end_ns, period.label) == (ns(start), ns(end), label)


def test_an_unknown_zone_is_named():
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        zone("Mars/Olympus")


DAY = Period("day", 0, 86_400 * NS, "1970-01-01")


@given(spent=spends, amount=amounts, elapsed=st.integers(min_value=1, max_value=86_400 * NS))
def test_forecast_and_exhaustion_follow_the_pace(spent, amount, elapsed):
    projected = forecast(spent, DAY, elapsed)
    exact = Fraction(spent) * 86_400 * NS / elapsed
    assert projected == int(exact) >= spent  # floor of the pace held to the end
    at = exhaustion_ns(spent, amount, DAY, elapsed)
    if spent >= amount:
        assert at == elapsed
    elif spent == 0 or exact < amount:
        assert at is None or at < DAY.end_ns
        if exact < amount:
            assert at is None
    else:
        assert at is not None and elapsed < at < DAY.end_ns
        # at the pace, the amount is reached at `at` (rounded up to the nanosecond), not a nanosecond before
        assert Fraction(spent, elapsed) * at >= amount > Fraction(spent, elapsed) * (at - 1)


def test_on_pace_to_exceed_needs_enough_of_the_period():
    amount = usd_to_femto("25")
    early = pace(usd_to_femto("2"), amount, DAY, 3_600 * NS, Fraction(1, 10))  # 2 USD in the first hour: 48/day
    assert early.forecast == usd_to_femto("48") and not early.forecast_exceeded  # 1/24 of the day < 10 %
    later = pace(usd_to_femto("6"), amount, DAY, 3 * 3_600 * NS, Fraction(1, 10))
    assert later.forecast_exceeded and later.exhaustion_ns == 45_000 * NS  # 19 USD left at 2 USD/h: 3 h + 9.5 h
    assert later.remaining == usd_to_femto("19")
    spent = pace(amount, amount, DAY, 4 * 3_600 * NS, Fraction(1, 10))
    assert not spent.forecast_exceeded and spent.remaining == 0 and spent.exhaustion_ns == 4 * 3_600 * NS

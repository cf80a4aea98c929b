"""One alert per incident with cool-down; robust seasonal baselines; the detectors on series."""

from __future__ import annotations

from fractions import Fraction

import pytest

from otelspend.controls.anomaly import DriverFigures, HourFigures, cost_per_success, drivers, tenant_costs, top_changes
from otelspend.controls.baseline import HOUR_S, WEEK_S, Rules, judge, mad, median
from otelspend.controls.incidents import Incident, IncidentBook

NS = 10**9


def incident(key: str, now: int, auto: bool = True) -> Incident:
    return Incident(key, f"inc_{key}", "run.retry_loop", {"id": "e"}, now, now, auto)


def test_an_incident_alerts_once_resolves_once_and_cools_down():
    book = IncidentBook(cooldown_ns=100 * NS, resolve_after_ns=10 * NS)
    assert book.seen("k", 0) == "new"
    book.opened(incident("k", 0))
    assert [book.seen("k", t * NS) for t in (1, 5, 9)] == ["ongoing"] * 3
    assert book.quiet(18 * NS) == [] and book.quiet(19 * NS) == ["k"]  # 10 s after the last detection
    assert book.resolve("k", 19 * NS) is not None and book.resolve("k", 20 * NS) is None
    assert book.seen("k", 50 * NS) == "suppressed"  # within the cool-down
    book.prune(119 * NS)
    assert book.seen("k", 119 * NS) == "new"  # a new incident after it


def test_condition_incidents_wait_for_their_detector():
    book = IncidentBook(cooldown_ns=0, resolve_after_ns=NS)
    book.opened(incident("budget", 0, auto=False))
    assert book.quiet(10**6 * NS) == []


@pytest.mark.parametrize(
    ("values", "center", "spread"),
    [
        pytest.param([1, 2, 3, 4, 100], 3, 1, id="odd"),
        pytest.param([1, 2, 3, 4], Fraction(5, 2), 1, id="even"),
        pytest.param([7, 7, 7], 7, 0, id="identical"),
    ],
)
def test_median_and_mad(values, center, spread):
    fractions = [Fraction(v) for v in values]
    assert (median(fractions), mad(fractions)) == (center, spread)


RULES = Rules(factor=Fraction(2), min_impact=Fraction(5), min_weeks=2)


@pytest.mark.parametrize(
    ("actual", "samples", "out"),
    [
        pytest.param(100, [20, 22, 18, 21], True, id="five-times"),
        pytest.param(30, [20, 22, 18, 21], False, id="within-factor"),
        pytest.param(24, [10, 10, 10, 10], True, id="identical-weeks-floor-the-mad"),
        pytest.param(19, [10, 10, 10, 10], False, id="floor-and-factor"),
        pytest.param(5, [1, 1, 1], False, id="below-min-impact"),
        pytest.param(1, [20, 22, 18], False, id="a-drop-is-not-a-spend-alert"),
    ],
)
def test_judgements(actual, samples, out):
    judgement = judge(Fraction(actual), [Fraction(s) for s in samples], RULES)
    assert judgement is not None and judgement.out_of_range is out


def test_no_baseline_without_enough_weeks():
    assert judge(Fraction(100), [Fraction(1)], RULES) is None


def weekly(level: int, *, weeks: int = 5, spike: int = 1, spike_hours: int = 0, end: int = 100 * WEEK_S):
    """An hourly series, the same every week (busier on weekday hours), with the last hours x spike."""
    series = {}
    for hour in range(end - weeks * WEEK_S, end, HOUR_S):
        daytime = 9 <= (hour // HOUR_S) % 24 < 18
        runs = level * (3 if daytime else 1)
        figures = HourFigures(cost=runs * 10**15, runs=runs, successful=runs, unpriced=0)
        if hour >= end - spike_hours * HOUR_S:
            figures = HourFigures(figures.cost * spike, runs * spike, runs * spike, 0)
        series[hour] = figures
    return series


def test_seasonal_tenant_series_are_normal_until_one_spikes():
    end = 100 * WEEK_S + 15 * HOUR_S  # judged at 15:00, weekday daytime
    rules = Rules(min_impact=Fraction(1) * 10**15)
    series = {"steady": weekly(4, end=end), "spiky": weekly(4, end=end, spike=5, spike_hours=2)}
    evaluations = tenant_costs(series, end - 5 * WEEK_S, end + 60, rules, min_runs=5)
    out = {(e.key, e.window.name) for e in evaluations if e.out_of_range}
    assert out == {("spiky", "hour")}  # the day rose by 8/60 x 4 = 53 %: under the factor 2
    spiky_hour = next(e for e in evaluations if e.key == "spiky" and e.window.name == "hour")
    assert spiky_hour.judgement.expected == 12 * 10**15 and spiky_hour.cost == 60 * 10**15  # type: ignore[union-attr]
    # cost per successful run does not move when a tenant just runs more
    assert not any(e.out_of_range for e in cost_per_success(series, end - 5 * WEEK_S, end + 60, rules, min_runs=5))


def test_what_moved():
    before = DriverFigures(100, 90, 10**17, 300, 300_000, 100, 10, {"gpt-4o-mini": 8 * 10**16, "gpt-4o": 2 * 10**16})
    now = DriverFigures(25, 22, 10**17, 75, 180_000, 25, 2, {"gpt-4o-mini": 2 * 10**16, "gpt-4o": 8 * 10**16})
    found = {d["driver"]: d for d in drivers(now, before)}
    assert found["model_mix"]["moved"] and found["model_mix"]["models"][0]["current_share"] == 0.8
    assert found["input_tokens_per_call"]["change"] == 1.4 and found["input_tokens_per_call"]["moved"]
    assert not found["calls_per_run"]["moved"]
    assert [d["driver"] for d in drivers(now, before)][:2] == ["input_tokens_per_call", "model_mix"]
    assert top_changes({"a": 50, "b": 10}, {"a": 40, "b": 40}, 4) == [("a", 50, Fraction(10))]

"""The scheduled detectors, as pure functions of hourly rollup figures.

* **Per-tenant cost** (``anomaly.tenant_cost``): a tenant's cost in the last complete hour,
  and in the 24 hours ending with it, against the same windows 1-4 weeks earlier.
* **Cost per successful run** (``anomaly.workflow_cost_spike``): per workflow type, cost
  divided by successful runs over the same two windows, against the same baseline.

``otelspend.controls.baseline`` decides what is out of range. A window whose baseline has
too few runs (``min_runs``, median over the samples) is not judged: a handful of runs an
hour is noise, and the 24-hour window still covers a quiet series. When something is out
of range, ``drivers`` and ``top_changes`` say what moved, from the same rollups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from otelspend.controls.baseline import HOUR_S, Judgement, Rules, judge, median, weekly_samples

WindowName = Literal["hour", "day"]


@dataclass(frozen=True)
class HourFigures:
    """One series' figures in one rollup hour."""

    cost: int
    """femto-USD of the priced calls."""
    runs: int
    successful: int
    unpriced: int


Series = Mapping[str, Mapping[int, HourFigures]]
"""Series key (tenant, workflow type) -> hour start (unix s) -> figures."""


@dataclass(frozen=True)
class Window:
    """``[start_s, end_s)``, whole hours."""

    name: WindowName
    start_s: int
    end_s: int


def windows(now_s: int) -> tuple[Window, Window]:
    """The last complete hour before ``now_s`` and the 24 hours ending with it."""
    end = now_s // HOUR_S * HOUR_S
    return Window("hour", end - HOUR_S, end), Window("day", end - 24 * HOUR_S, end)


@dataclass(frozen=True)
class Evaluation:
    """One series in one window: its figures and, if a baseline exists, the judgement."""

    key: str
    window: Window
    runs: int
    successful: int
    unpriced: int
    cost: int
    judgement: Judgement | None

    @property
    def out_of_range(self) -> bool:
        """Judged and out of range."""
        return self.judgement is not None and self.judgement.out_of_range


def _totals(hours: Mapping[int, HourFigures], start_s: int, end_s: int) -> HourFigures:
    cost = runs = successful = unpriced = 0
    for hour in range(start_s, end_s, HOUR_S):
        figures = hours.get(hour)
        if figures is not None:
            cost += figures.cost
            runs += figures.runs
            successful += figures.successful
            unpriced += figures.unpriced
    return HourFigures(cost, runs, successful, unpriced)


def tenant_costs(series: Series, first_s: int, now_s: int, rules: Rules, min_runs: int) -> list[Evaluation]:
    """Every tenant's cost in both windows against its weekly baseline."""
    out = []
    for key, hours in sorted(series.items()):
        for window in windows(now_s):
            total = _totals(hours, window.start_s, window.end_s)

            def runs_in(a: int, b: int, h: Mapping[int, HourFigures] = hours) -> Fraction:
                return Fraction(_totals(h, a, b).runs)

            def cost_in(a: int, b: int, h: Mapping[int, HourFigures] = hours) -> Fraction:
                return Fraction(_totals(h, a, b).cost)

            runs = weekly_samples(runs_in, window.start_s, window.end_s, weeks=rules.weeks, first_s=first_s)
            judgement = None
            if len(runs) >= rules.min_weeks and median(runs) >= min_runs:
                samples = weekly_samples(cost_in, window.start_s, window.end_s, weeks=rules.weeks, first_s=first_s)
                judgement = judge(Fraction(total.cost), samples, rules)
            out.append(Evaluation(key, window, total.runs, total.successful, total.unpriced, total.cost, judgement))
    return out


def cost_per_success(series: Series, first_s: int, now_s: int, rules: Rules, min_runs: int) -> list[Evaluation]:
    """Every workflow type's cost per successful run in both windows against its weekly baseline.

    The impact rule applies to the money the change costs: ``(actual - expected) x successful
    runs`` must reach ``rules.min_impact``; a window needs ``min_runs`` successful runs, and so
    does each baseline sample."""
    out = []
    for key, hours in sorted(series.items()):
        for window in windows(now_s):
            total = _totals(hours, window.start_s, window.end_s)

            def per_success(a: int, b: int, h: Mapping[int, HourFigures] = hours) -> Fraction | None:
                figures = _totals(h, a, b)
                return Fraction(figures.cost, figures.successful) if figures.successful >= min_runs else None

            judgement = None
            if total.successful >= min_runs:
                samples = weekly_samples(per_success, window.start_s, window.end_s, weeks=rules.weeks, first_s=first_s)
                per_run_rules = Rules(
                    z_threshold=rules.z_threshold,
                    factor=rules.factor,
                    min_impact=rules.min_impact / total.successful,
                    rel_floor=rules.rel_floor,
                    abs_floor=rules.abs_floor,
                    min_weeks=rules.min_weeks,
                    weeks=rules.weeks,
                )
                judgement = judge(Fraction(total.cost, total.successful), samples, per_run_rules)
            out.append(Evaluation(key, window, total.runs, total.successful, total.unpriced, total.cost, judgement))
    return out


# -- what moved ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriverFigures:
    """Totals of one workflow type over some hours (the alert window, or all baseline windows)."""

    runs: int
    successful: int
    cost: int
    calls: int
    input_tokens: int
    tool_calls: int
    retries: int
    cost_by_model: Mapping[str, int]


MOVED = Fraction(1, 5)
"""A per-run or per-call driver "moved" when it changed by at least 20 %."""
MIX_MOVED = Fraction(1, 10)
"""A model "moved" in the mix when its share of cost changed by at least 10 points."""


def _ratio(a: int, b: int) -> Fraction | None:
    return Fraction(a, b) if b else None


def drivers(current: DriverFigures, baseline: DriverFigures) -> list[dict[str, Any]]:
    """Model mix, input tokens per call, calls per run, tool calls per run (retrieval and other
    tools), retries per run: now against the baseline, biggest change first."""
    found: list[dict[str, Any]] = []
    for name, now, before in (
        (
            "input_tokens_per_call",
            _ratio(current.input_tokens, current.calls),
            _ratio(baseline.input_tokens, baseline.calls),
        ),
        ("calls_per_run", _ratio(current.calls, current.runs), _ratio(baseline.calls, baseline.runs)),
        ("tool_calls_per_run", _ratio(current.tool_calls, current.runs), _ratio(baseline.tool_calls, baseline.runs)),
        ("retries_per_run", _ratio(current.retries, current.runs), _ratio(baseline.retries, baseline.runs)),
    ):
        if now is None or before is None:
            continue
        change = (now - before) / before if before else (Fraction(1) if now else Fraction(0))
        found.append(
            {
                "driver": name,
                "baseline": round(float(before), 4),
                "current": round(float(now), 4),
                "change": round(float(change), 4),
                "moved": abs(change) >= MOVED,
            }
        )
    mix = _mix(current.cost_by_model, baseline.cost_by_model)
    if mix:
        biggest = max(abs(Fraction(m["current_share"]) - Fraction(m["baseline_share"])) for m in mix)
        found.append(
            {"driver": "model_mix", "models": mix, "change": round(float(biggest), 4), "moved": biggest >= MIX_MOVED}
        )
    found.sort(key=lambda d: (not d["moved"], -abs(d["change"])))
    return found


def _mix(current: Mapping[str, int], baseline: Mapping[str, int]) -> list[dict[str, Any]]:
    now_total, before_total = sum(current.values()), sum(baseline.values())
    if not now_total or not before_total:
        return []
    rows: list[dict[str, Any]] = []
    for model in sorted(set(current) | set(baseline)):
        now = Fraction(current.get(model, 0), now_total)
        before = Fraction(baseline.get(model, 0), before_total)
        rows.append({"model": model, "baseline_share": round(float(before), 4), "current_share": round(float(now), 4)})
    rows.sort(key=lambda r: -abs(r["current_share"] - r["baseline_share"]))
    return rows[:5]


def top_changes(
    current: Mapping[str, int], baseline_total: Mapping[str, int], baseline_windows: int, n: int = 3
) -> list[tuple[str, int, Fraction]]:
    """The ``n`` names whose cost rose most over their baseline mean: (name, actual femto, expected femto)."""
    rows = []
    for name in set(current) | set(baseline_total):
        expected = Fraction(baseline_total.get(name, 0), baseline_windows) if baseline_windows else Fraction(0)
        rows.append((name, current.get(name, 0), expected))
    rows.sort(key=lambda r: (-(r[1] - r[2]), r[0]))
    return [row for row in rows[:n] if row[1] - row[2] > 0]


def baseline_hours(window: Window, samples: Sequence[Fraction], first_s: int, weeks: int) -> list[int]:
    """The hours of the baseline windows that produced ``samples`` (weeks after the ledger began)."""
    hours: list[int] = []
    for week in range(1, weeks + 1):
        shift = week * 7 * 24 * HOUR_S
        if window.start_s - shift < first_s:
            break
        hours.extend(range(window.start_s - shift, window.end_s - shift, HOUR_S))
    return hours if samples else []

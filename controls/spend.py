"""What each budget has spent in its current period, kept exact from the run deltas.

The pipeline reports every emission as signed rows (a re-emitted run cancels its previous
row and adds the new one), so adding ``sign x value`` of each matching row keeps the spend
equal to what the store holds, however often runs change. A budget's first figures come
from the store (``controls.store.budget_totals``) at a moment when every
earlier delta is already stored and later ones are not yet counted (see the engine);
after that, deltas alone keep it current. Spend is keyed by period (the period of each
row's run start), so a period rolls over without a query.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from otelspend.controls.budgets import Budget
from otelspend.controls.events import BUDGET_FORECAST, BUDGET_THRESHOLD, Detection, Measure, count, rfc3339_ms, usd
from otelspend.controls.pacing import Pace, crossed, pace, threshold_value
from otelspend.controls.periods import Period, period_at
from otelspend.money import femto_to_usd
from otelspend.record import RUN_CALL_COLUMNS, RUN_COLUMNS

_R = {c.name: i for i, c in enumerate(RUN_COLUMNS)}
_C = {c.name: i for i, c in enumerate(RUN_CALL_COLUMNS)}
_RUN_SLOTS = (_R["start_time"], _R["sign"], _R["cost_usd"], _R["unpriced_calls"], _R["input_tokens"],
              _R["output_tokens"], _R["llm_calls"])  # fmt: skip
_CALL_SLOTS = (_C["start_time"], _C["sign"], _C["cost_usd"], _C["unpriced_calls"], _C["input_tokens"],
               _C["output_tokens"], _C["calls"])  # fmt: skip


@dataclass
class Totals:
    """Signed sums of a budget's rows in one period."""

    cost: int = 0
    """femto-USD of priced calls."""
    tokens: int = 0
    """input + output tokens (input includes cache reads and writes)."""
    unpriced: int = 0
    calls: int = 0
    runs: int = 0
    """Runs (run-level budgets only: a call-level budget counts calls)."""

    def add(self, sign: int, cost: int | None, unpriced: int, tokens: int, calls: int, runs: int) -> None:
        """Add one signed row."""
        self.cost += sign * (cost or 0)
        self.tokens += sign * tokens
        self.unpriced += sign * unpriced
        self.calls += sign * calls
        self.runs += sign * runs


@dataclass
class _Tracked:
    budget: Budget
    generation: int
    by_period: dict[int, Totals] = field(default_factory=dict)
    loaded_period: int | None = None
    """Start of the period whose figures came from the store (None until loaded)."""
    current: Period | None = None


class BudgetLedger:
    """Budgets in force and their spend per period."""

    def __init__(self) -> None:
        self.tracked: dict[str, _Tracked] = {}
        self._generation = 0
        self._indexes: dict[bool, list[tuple[tuple[int, ...], dict[tuple[Any, ...], list[_Tracked]]]]] | None = None

    def replace(self, budgets: Iterable[Budget]) -> list[tuple[str, int]]:
        """Put ``budgets`` in force; returns (id, generation) of those to load from the store
        (new, or changed in any way: filter, period, zone, amount)."""
        wanted = {budget.id: budget for budget in budgets}
        self._indexes = None
        for budget_id in set(self.tracked) - set(wanted):
            del self.tracked[budget_id]
        to_load = []
        for budget_id, budget in wanted.items():
            known = self.tracked.get(budget_id)
            if known is not None and known.budget.spec == budget.spec:
                known.budget = budget  # same definition (maybe another source label)
                continue
            self._generation += 1
            self.tracked[budget_id] = _Tracked(budget, self._generation)
            to_load.append((budget_id, self._generation))
        return to_load

    def stale(self) -> list[tuple[str, int]]:
        """Every budget, to be loaded again (after deltas were missed or history was restated)."""
        out = []
        for budget_id, tracked in self.tracked.items():
            self._generation += 1
            tracked.generation = self._generation
            tracked.loaded_period = None
            out.append((budget_id, self._generation))
        return out

    def period(self, budget_id: str, at_ns: int) -> Period:
        """The budget's period containing ``at_ns`` (cached: most rows fall in the current one)."""
        tracked = self.tracked[budget_id]
        current = tracked.current
        if current is None or not current.contains(at_ns):
            current = period_at(tracked.budget.spec.period, tracked.budget.tz, at_ns)
            if tracked.current is None or current.start_ns >= tracked.current.start_ns:
                tracked.current = current
        return current

    def apply(self, runs: Sequence[tuple[Any, ...]], calls: Sequence[tuple[Any, ...]]) -> None:
        """Add the signed rows of one emission to every budget they match.

        Budgets are grouped by the columns they filter on, so a row costs one dict lookup per
        group (not one comparison per budget)."""
        for rows, slots, run_level, groups in ((runs, _RUN_SLOTS, 1, self._index(False)),
                                               (calls, _CALL_SLOTS, 0, self._index(True))):  # fmt: skip
            if not rows or not groups:
                continue
            start_i, sign_i, cost_i, unpriced_i, in_i, out_i, calls_i = slots
            for row in rows:
                for columns, by_values in groups:
                    matched = by_values.get(tuple(row[i] for i in columns))
                    if matched is None:
                        continue
                    for tracked in matched:
                        period = self.period(tracked.budget.id, row[start_i])
                        totals = tracked.by_period.get(period.start_ns)
                        if totals is None:
                            totals = tracked.by_period[period.start_ns] = Totals()
                        totals.add(
                            row[sign_i], row[cost_i], row[unpriced_i], row[in_i] + row[out_i], row[calls_i], run_level
                        )

    def _index(self, call_level: bool) -> list[tuple[tuple[int, ...], dict[tuple[Any, ...], list[_Tracked]]]]:
        """(filter columns, {filter values: budgets}) for the run-level or call-level budgets."""
        if self._indexes is None:
            groups: dict[tuple[bool, tuple[int, ...]], dict[tuple[Any, ...], list[_Tracked]]] = {}
            for tracked in self.tracked.values():
                budget = tracked.budget
                pairs = budget.call_filter if budget.call_level else budget.run_filter
                columns = tuple(index for index, _ in pairs)
                values = tuple(value for _, value in pairs)
                groups.setdefault((budget.call_level, columns), {}).setdefault(values, []).append(tracked)
            self._indexes = {level: [] for level in (False, True)}
            for (level, columns), by_values in groups.items():
                self._indexes[level].append((columns, by_values))
        return self._indexes[call_level]

    def load(self, budget_id: str, generation: int, period_start: int, totals: Totals) -> bool:
        """Figures read from the store for one period; ignored when the budget changed since."""
        tracked = self.tracked.get(budget_id)
        if tracked is None or tracked.generation != generation:
            return False
        tracked.by_period = {start: t for start, t in tracked.by_period.items() if start > period_start}
        tracked.by_period[period_start] = totals
        tracked.loaded_period = period_start
        return True

    def totals(self, budget_id: str, period: Period) -> Totals:
        """The spend of a budget in ``period`` (zero when nothing matched yet)."""
        return self.tracked[budget_id].by_period.get(period.start_ns, Totals())

    def loaded(self, budget_id: str, period: Period) -> bool:
        """Whether the budget's figures are complete for ``period``: loaded for it, or for an
        earlier period (a period that began after the load starts from zero, counted by deltas)."""
        loaded = self.tracked[budget_id].loaded_period
        return loaded is not None and loaded <= period.start_ns

    def prune(self, now_ns: int) -> None:
        """Forget the spend of periods that ended."""
        for budget_id, tracked in self.tracked.items():
            current = self.period(budget_id, now_ns)
            for start in [s for s in tracked.by_period if s < current.start_ns]:
                del tracked.by_period[start]


# -- where a budget stands -------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetStatus:
    """A budget at one moment: spend, forecast, crossings, status."""

    budget: Budget
    period: Period
    totals: Totals
    pace: Pace
    loaded: bool
    crossed: tuple[Fraction, ...]
    now_ns: int

    @property
    def spent(self) -> int:
        """Spend in the budget's unit."""
        return self.pace.spent

    @property
    def status(self) -> str:
        """``loading`` (figures not read from the store yet), ``exceeded``, ``warning`` (a
        threshold below the amount crossed, or on pace to exceed) or ``ok``."""
        if not self.loaded:
            return "loading"
        if self.pace.spent >= self.pace.amount:
            return "exceeded"
        if self.crossed or (self.pace.forecast_exceeded and self.budget.spec.forecast):
            return "warning"
        return "ok"

    def measure(self, value: int) -> Measure:
        """An amount in the budget's unit."""
        return usd(value) if self.budget.unit == "USD" else count(value, "tokens")

    def money(self, value: int) -> str:
        """An amount as the API shows it: exact USD decimal string, or a token count."""
        return str(femto_to_usd(value)) if self.budget.unit == "USD" else str(value)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form served by ``GET /v1/budgets/{id}``."""
        budget, pace_, period = self.budget, self.pace, self.period
        return {
            "id": budget.id,
            "name": budget.spec.name,
            "source": budget.source,
            "definition": budget.definition(),
            "unit": budget.unit,
            "period": {
                "kind": period.kind,
                "label": period.label,
                "timezone": budget.spec.timezone,
                "from": rfc3339_ms(period.start_ns),
                "to": rfc3339_ms(period.end_ns),
                "elapsed": round(float(pace_.elapsed), 6),
            },
            "amount": self.money(pace_.amount),
            "spent": self.money(pace_.spent),
            "remaining": self.money(pace_.remaining),
            "forecast": self.money(pace_.forecast),
            "forecast_exceeded": pace_.forecast_exceeded,
            "projected_exhaustion": rfc3339_ms(pace_.exhaustion_ns) if pace_.exhaustion_ns is not None else None,
            "status": self.status,
            "thresholds": [
                {
                    "share": float(share),
                    "value": self.money(threshold_value(pace_.amount, share)),
                    "crossed": share in self.crossed,
                }
                for share in budget.thresholds
            ],
            "unpriced_calls": self.totals.unpriced,
            "calls": self.totals.calls,
            "runs": self.totals.runs if not budget.call_level else None,
            "tokens": self.totals.tokens,
            "cost_usd": str(femto_to_usd(self.totals.cost)),
            "action": budget.spec.action,
        }


def evaluate(ledger: BudgetLedger, budget_id: str, now_ns: int, min_elapsed: Fraction) -> BudgetStatus:
    """Where a budget stands at ``now_ns``."""
    budget = ledger.tracked[budget_id].budget
    period = ledger.period(budget_id, now_ns)
    totals = ledger.totals(budget_id, period)
    spent = totals.cost if budget.unit == "USD" else totals.tokens
    current = pace(spent, budget.amount, period, now_ns, min_elapsed)
    shares = tuple(t for t in budget.thresholds if crossed(spent, budget.amount, t))
    return BudgetStatus(budget, period, totals, current, ledger.loaded(budget_id, period), shares, now_ns)


def forecast_key(budget: Budget, period: Period) -> str:
    """The incident key of "on pace to exceed" for one period (and definition)."""
    return f"{BUDGET_FORECAST}:{budget.id}:{period.label}:{budget.version}"


def still_on_pace(status: BudgetStatus) -> bool:
    """Spent already, and the pace still projects past the amount: an open "on pace to exceed"
    incident stays open (it is not resolved by the spend arriving), but none is opened."""
    pace_ = status.pace
    return pace_.spent >= pace_.amount and pace_.forecast > pace_.amount


def detections(status: BudgetStatus) -> list[Detection]:
    """The incidents a budget's status asserts: one per crossed threshold, and "on pace to
    exceed" (when the budget asks for it). Keys carry the period: a new period is a new incident."""
    if not status.loaded:
        return []
    budget, period, pace_ = status.budget, status.period, status.pace
    dims = dict(budget.spec.filter)
    base_details: dict[str, Any] = {
        "budget_id": budget.id,
        "period": {
            "kind": period.kind,
            "label": period.label,
            "from": rfc3339_ms(period.start_ns),
            "to": rfc3339_ms(period.end_ns),
            "timezone": budget.spec.timezone,
        },
        "amount": status.money(pace_.amount),
        "spent": status.money(pace_.spent),
        "forecast": status.money(pace_.forecast),
        "unpriced_calls": status.totals.unpriced,
        "action": budget.spec.action,
    }
    if status.totals.unpriced and budget.unit == "USD":
        base_details["note"] = (
            f"{status.totals.unpriced} call(s) could not be priced: their cost is unknown and not in the spend"
        )
    links = {"budget": f"/v1/budgets/{budget.id}", "page": "/budgets"}
    found = []
    for share in status.crossed:
        percent = format(float(share * 100), "g")
        found.append(
            Detection(
                type=BUDGET_THRESHOLD,
                key=f"{BUDGET_THRESHOLD}:{budget.id}:{period.label}:{budget.version}:{share}",
                severity="critical" if share >= 1 else "warning",
                title=f"Budget {budget.id} reached {percent} % of {status.money(pace_.amount)} {budget.unit} "
                f"({period.kind} {period.label})",
                dimensions=dims,
                observed=status.measure(pace_.spent),
                threshold=status.measure(threshold_value(pace_.amount, share)),
                details={**base_details, "share": float(share)},
                auto_resolve=False,
                links=links,
            )
        )
    if budget.spec.forecast and pace_.forecast_exceeded:
        found.append(
            Detection(
                type=BUDGET_FORECAST,
                key=forecast_key(budget, period),
                severity="warning",
                title=f"Budget {budget.id} is on pace to exceed {status.money(pace_.amount)} {budget.unit} "
                f"({period.kind} {period.label})",
                dimensions=dims,
                observed=status.measure(pace_.forecast),
                threshold=status.measure(pace_.amount),
                details={
                    **base_details,
                    "elapsed": round(float(pace_.elapsed), 6),
                    "projected_exhaustion": rfc3339_ms(pace_.exhaustion_ns) if pace_.exhaustion_ns else None,
                },
                auto_resolve=False,
                links=links,
            )
        )
    return found

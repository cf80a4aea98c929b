"""``GET /v1/controls/check``: may this call go ahead? Answered from memory, never the store.

The answer is the strictest of its reasons: ``deny`` beats ``warn`` beats ``allow``.

* **Run flagged** (a retry loop was raised on ``run_id``): deny.
* **Budget**: a budget applies when every dimension of its filter is in the request with
  the same value (a budget on ``tenant=acme`` applies to a check that says
  ``tenant=acme``; one that also filters on ``model`` applies only to checks naming that
  model). Spent in full: the budget's ``action`` (deny by default). A threshold crossed or
  on pace to exceed: warn. Calls no rate card prices in a money budget: warn (their cost
  is unknown, so the spend is a lower bound).
* **Model policy**: a rule applies when every key it matches on is in the request and
  matches; a model outside it gets the rule's ``action``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from otelspend.controls.policy import Policy, UnitPrices
from otelspend.controls.spend import BudgetStatus

CHECK_DIMENSIONS: tuple[str, ...] = (
    "tenant", "customer", "feature", "workflow_type", "environment", "team", "user", "model", "provider",
)  # fmt: skip
"""Query parameters of the check besides ``run_id``."""
_RANK = {"allow": 0, "warn": 1, "deny": 2}


@dataclass(frozen=True)
class Flag:
    """A run flagged for review."""

    run_id: str
    reason: str
    flagged_ns: int
    incident_id: str


def run_action(flag: Flag | None, run_id: str) -> dict[str, Any]:
    """``GET /v1/controls/runs/{run_id}``: stop for a flagged run, else continue."""
    if flag is None:
        return {"run_id": run_id, "action": "continue", "reason": None}
    return {
        "run_id": run_id,
        "action": "stop",
        "reason": flag.reason,
        "incident_id": flag.incident_id,
        "flagged_at_ns": flag.flagged_ns,
    }


@dataclass(frozen=True)
class BudgetCheck:
    """What one budget adds to a decision, prepared when its status is published: the filter a
    request must match and the reasons it then gets (none for a budget with nothing to say)."""

    budget_id: str
    filter: tuple[tuple[str, str], ...]
    reasons: tuple[dict[str, Any], ...]

    def applies(self, values: Mapping[str, str]) -> bool:
        """Every dimension of the filter is in the request with the same value."""
        return all(values.get(key) == value for key, value in self.filter)


def budget_checks(statuses: Sequence[BudgetStatus]) -> tuple[BudgetCheck, ...]:
    """The budgets that would add a reason to a decision (spent, past a threshold, on pace to
    exceed, or counting unpriced calls), prepared once per evaluation, not per request."""
    checks = []
    for status in statuses:
        reasons = _budget_reasons(status) if status.loaded else []
        if reasons:
            checks.append(
                BudgetCheck(status.budget.id, tuple(sorted(status.budget.spec.filter.items())), tuple(reasons))
            )
    return tuple(checks)


def decide(
    values: Mapping[str, str],
    run_id: str,
    *,
    checks: Sequence[BudgetCheck],
    policy_reasons: Callable[[Mapping[str, str]], Sequence[dict[str, Any]]],
    flags: Mapping[str, Flag],
) -> dict[str, Any]:
    """The decision for one request; ``values`` holds the non-empty check dimensions."""
    reasons: list[dict[str, Any]] = []
    flag = flags.get(run_id) if run_id else None
    if flag is not None:
        reasons.append(
            {"control": "retry_loop", "action": "deny", "run_id": run_id, "message": f"run flagged: {flag.reason}"}
        )
    for check in checks:
        if check.applies(values):
            reasons.extend(check.reasons)
    if values.get("model"):
        reasons.extend(policy_reasons(values))
    action = max((r["action"] for r in reasons), key=_RANK.__getitem__, default="allow")
    return {"action": action, "reasons": reasons}


def _budget_reasons(status: BudgetStatus) -> list[dict[str, Any]]:
    budget = status.budget
    pace = status.pace
    base = {"control": "budget", "budget": budget.id, "period": status.period.label}
    spent = f"{status.money(pace.spent)} of {status.money(pace.amount)} {budget.unit}"
    found = []
    if pace.spent >= pace.amount:
        found.append({**base, "action": budget.spec.action, "message": f"budget {budget.id} spent: {spent}"})
    elif status.crossed:
        share = max(status.crossed)
        found.append(
            {**base, "action": "warn", "message": f"budget {budget.id} past {float(share):.0%} of its amount: {spent}"}
        )
    elif pace.forecast_exceeded and budget.spec.forecast:
        found.append(
            {
                **base,
                "action": "warn",
                "message": f"budget {budget.id} on pace to exceed: forecast {status.money(pace.forecast)} "
                f"of {status.money(pace.amount)} {budget.unit}",
            }
        )
    if status.totals.unpriced and budget.unit == "USD":
        found.append(
            {
                **base,
                "action": "warn",
                "message": f"budget {budget.id}: {status.totals.unpriced} call(s) could not be priced, "
                "so the spend shown is a lower bound",
            }
        )
    return found


def policy_reasons(
    policy: Policy, values: Mapping[str, str], prices: Callable[[str, str], UnitPrices | str]
) -> list[dict[str, Any]]:
    """The rules a model in the request breaks; a rule applies when every key it matches on is given."""
    model = values.get("model", "")
    found = []
    unit: UnitPrices | str | None = None
    for rule in policy.rules:
        if any(key not in values for key, _ in rule.match) or not rule.applies(values, final=True):
            continue
        if rule.prices_needed and unit is None:
            unit = prices(values.get("provider", ""), model)
        violation = rule.check(model, unit)
        if violation is not None:
            found.append(
                {"control": "model_policy", "rule": rule.id, "action": rule.action, "message": violation.reason}
            )
    return found

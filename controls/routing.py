"""The model-routing policy on the span stream: each counted call checked once its run's
attributes are known.

A rule can be decided for a run once every key it matches on is known: on the call itself,
its resource or an earlier span, else when the root arrives (``final``), else after
``policy_wait_seconds``. Calls wait in their run until then. Which rules apply is cached per
run until its attributes change, and a model is judged once per rule and price. Every
violating call is counted; the engine gets one detection per incident key at most every
``REPORT_SECONDS`` (enough to open the incident and keep it open).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

from otelspend.controls.events import POLICY_VIOLATION, Detection, Measure, decimal
from otelspend.controls.policy import Policy, PolicyRule, UnitPrices, Violation
from otelspend.controls.runstate import CallState, RunState
from otelspend.record import L

_MODEL, _PROVIDER, _START, _INPUT = L.model, L.provider, L.start_time, L.input_tokens

REPORT_SECONDS = 10.0
"""A policy incident is reported to the engine at most this often (its calls are all counted)."""
_UNKNOWN: Any = object()
PriceLookup = Callable[[str, str, int, int], "UnitPrices | str"]
"""(provider, model, start_ns, input_tokens) -> unit prices, or why the model is unpriced."""


class RoutingWatch:
    """Checks counted calls against the policy in force."""

    def __init__(self, prices: PriceLookup) -> None:
        self.prices = prices
        self.policy = Policy()
        self.violations: dict[str, int] = {}
        """Violating calls by rule id (the engine turns them into otelspend_policy_violations_total)."""
        self._checked: dict[tuple[str, str, Any], Any] = {}
        """(rule, model, prices) -> the violation or None: a model is judged once per rule and price."""
        self._last_reported: dict[tuple[str, ...], float] = {}
        self.waiting: set[str] = set()
        """Runs with calls waiting for attributes (the only ones ``StreamControls.tick`` visits)."""

    def set_policy(self, policy: Policy) -> None:
        """Use ``policy`` for calls from now on."""
        self.policy = policy
        self._checked = {}
        self._last_reported = {}

    def may_violate(self, span: tuple[Any, ...]) -> bool:
        """Whether an inference span's model breaks some rule, whatever the run it is in (a
        screened run is analysed in full only then); judged once per model and price."""
        model, provider = span[_MODEL], span[_PROVIDER]
        prices: UnitPrices | str | None = None
        for rule in self.policy.rules:
            if rule.prices_needed and prices is None:
                prices = self.prices(provider, model, span[_START], span[_INPUT] or 0)
            if self._judge(rule, model, prices) is not None:
                return True
        return False

    def _judge(self, rule: PolicyRule, model: str, prices: UnitPrices | str | None) -> Violation | None:
        key = (rule.id, model, prices if rule.prices_needed else None)
        violation = self._checked.get(key, _UNKNOWN)
        if violation is _UNKNOWN:
            violation = rule.check(model, prices)
            if len(self._checked) >= 10_000:
                self._checked.clear()
            self._checked[key] = violation
        return violation  # type: ignore[no-any-return]

    def call(self, run: RunState, call: CallState, found: list[Detection]) -> None:
        """A new counted call: check it now, or once its run's attributes are known."""
        if not self._evaluate(run, call, found, final=run.final):
            run.pending.append((call, run.last_active))
            self.waiting.add(run.run_id)

    def settle(self, run: RunState, found: list[Detection], *, force: bool) -> None:
        """Check the run's waiting calls (``force``: with what is known, whatever is missing)."""
        waiting, run.pending = run.pending, []
        for call, since in waiting:
            if not self._evaluate(run, call, found, final=force or run.final):
                run.pending.append((call, since))
        if not run.pending:
            self.waiting.discard(run.run_id)

    def _applicable(self, run: RunState, final: bool) -> tuple[PolicyRule, ...] | None:
        """The rules covering the run, None while undecidable; cached until its context changes."""
        version = run.context_version * 2 + final
        if run.rules_version == version:
            return run.rules
        applicable: list[PolicyRule] = []
        decided: tuple[PolicyRule, ...] | None = None
        for rule in self.policy.rules:
            applies = rule.applies(run.context, final=final)
            if applies is None:
                break
            if applies:
                applicable.append(rule)
        else:
            decided = tuple(applicable)
        run.rules, run.rules_version = decided, version
        return decided

    def _evaluate(self, run: RunState, call: CallState, found: list[Detection], *, final: bool) -> bool:
        """Check one call against every rule; False when a rule cannot be decided yet."""
        applicable = self._applicable(run, final)
        if applicable is None:
            return False
        prices: UnitPrices | str | None = None
        for rule in applicable:
            if rule.prices_needed and prices is None:
                prices = self.prices(call.provider, call.model, call.start, call.input_tokens)
            violation = self._judge(rule, call.model, prices)
            if violation is not None:
                self.violations[rule.id] = self.violations.get(rule.id, 0) + 1
                context = run.context
                incident = (rule.id, call.model, context.get("workflow_type", ""), context.get("feature", ""),
                            context.get("environment", ""))  # fmt: skip
                # One detection per incident key every REPORT_SECONDS is enough to open it and keep it
                # open (it resolves after alerts.resolve_after_seconds of silence); every call is
                # still counted (self.violations -> otelspend_policy_violations_total).
                if self._last_reported.get(incident, -REPORT_SECONDS) + REPORT_SECONDS <= run.last_active:
                    self._last_reported[incident] = run.last_active
                    found.append(self._violation(run, call, rule, violation, prices))
        return True

    @staticmethod
    def _violation(
        run: RunState, call: CallState, rule: PolicyRule, violation: Violation, prices: UnitPrices | str | None
    ) -> Detection:
        dims = {k: run.context.get(k, "") for k in ("workflow_type", "feature", "environment")}
        observed: Measure = Measure(call.model, "model")
        threshold: Measure | None = Measure(", ".join(rule.allow), "models") if rule.allow is not None else None
        if isinstance(prices, UnitPrices) and "cap" in violation.reason:
            kind_input = "input tokens" in violation.reason
            price = prices.input if kind_input else prices.output
            cap = rule.max_input if kind_input else rule.max_output
            if price is not None and cap is not None:
                observed = decimal(_decimal(price), "USD per million tokens")
                threshold = decimal(_decimal(cap), "USD per million tokens")
        return Detection(
            type=POLICY_VIOLATION,
            key=f"{POLICY_VIOLATION}:{rule.id}:{call.model}:" + ":".join(dims.values()),
            severity="warning",
            title=f"Model outside policy {rule.id}: {violation.reason}",
            dimensions={
                **{k: v for k, v in dims.items() if v},
                "model": call.model,
                "tenant": run.context.get("tenant", ""),
            },
            observed=observed,
            threshold=threshold,
            details={
                "rule": rule.id,
                "action": rule.action,
                "reason": violation.reason,
                "run_id": run.run_id,
                "span_id": call.span_id,
                "provider": call.provider,
                "model": call.model,
            },
            links={"run": f"/runs/{run.run_id}"},
        )


def _decimal(value: Fraction) -> Decimal:
    return Decimal(value.numerator) / Decimal(value.denominator)

"""Budget spend from signed run deltas: exact whatever the order, per period; statuses and the
incidents they assert; the decision endpoint's reasons."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from otelspend.controls.budgets import parse_budget
from otelspend.controls.decision import Flag, budget_checks, decide, policy_reasons, run_action
from otelspend.controls.events import BUDGET_FORECAST, BUDGET_THRESHOLD
from otelspend.controls.policy import Policy, PolicyRule, UnitPrices
from otelspend.controls.spend import BudgetLedger, Totals, detections, evaluate
from otelspend.money import usd_to_femto
from otelspend.record import RUN_CALL_COLUMNS, RUN_COLUMNS

NS = 10**9
DAY0 = 1_796_428_800 * NS  # 2026-12-05T00:00:00Z
_R = {c.name: i for i, c in enumerate(RUN_COLUMNS)}
_C = {c.name: i for i, c in enumerate(RUN_CALL_COLUMNS)}


def run_row(sign: int, *, start: int, cost: int | None, tenant: str = "acme", unpriced: int = 0, **more: Any) -> tuple:
    row: list[Any] = [""] * len(RUN_COLUMNS)
    for name, value in {
        "sign": sign, "start_time": start, "cost_usd": cost, "unpriced_calls": unpriced, "input_tokens": 100,
        "output_tokens": 10, "llm_calls": 1, "tenant": tenant, **more,
    }.items():  # fmt: skip
        row[_R[name]] = value
    return tuple(row)


def call_row(sign: int, *, start: int, cost: int, model: str, tenant: str = "acme") -> tuple:
    row: list[Any] = [""] * len(RUN_CALL_COLUMNS)
    values = {"sign": sign, "start_time": start, "cost_usd": cost, "unpriced_calls": 0, "input_tokens": 50,
              "output_tokens": 5, "calls": 1, "model": model, "tenant": tenant}  # fmt: skip
    for name, value in values.items():
        row[_C[name]] = value
    return tuple(row)


def ledger_with(*definitions: dict[str, Any]) -> BudgetLedger:
    ledger = BudgetLedger()
    budgets = [parse_budget(d, "test") for d in definitions]
    for budget_id, generation in ledger.replace(budgets):
        start = ledger.period(budget_id, DAY0).start_ns
        assert ledger.load(budget_id, generation, start, Totals())
    return ledger


ACME = {"id": "acme", "filter": {"tenant": "acme"}, "period": "day", "amount_usd": "25.00"}


@given(st.lists(st.tuples(st.integers(0, 10**15), st.booleans(), st.integers(0, 86_399)), max_size=40), st.randoms())
def test_signed_deltas_add_up_exactly_in_any_order(runs, rng):
    """Each run emitted, some re-emitted at another cost (cancel + new): the spend is the sum of
    the final costs, whatever order the rows arrive in."""
    rows, expected = [], 0
    for cost, reemitted, second in runs:
        start = DAY0 + second * NS
        rows.append(run_row(+1, start=start, cost=cost))
        final = cost
        if reemitted:
            final = cost * 2 + 1
            rows += [run_row(-1, start=start, cost=cost), run_row(+1, start=start, cost=final)]
        expected += final
    rng.shuffle(rows)
    ledger = ledger_with(ACME)
    for row in rows:
        ledger.apply([row], [])
    status = evaluate(ledger, "acme", DAY0 + 86_399 * NS, Fraction(1, 10))
    assert status.totals.cost == expected and status.totals.runs == len(runs)


def test_rows_count_in_their_own_period_and_filter():
    ledger = ledger_with(ACME, {"id": "gpt4o", "filter": {"model": "gpt-4o"}, "period": "day", "amount_usd": "1"})
    ledger.apply(
        [run_row(+1, start=DAY0 + 10, cost=7), run_row(+1, start=DAY0 - 10, cost=100),  # yesterday
         run_row(+1, start=DAY0 + 20, cost=1000, tenant="beta")],  # another tenant
        [call_row(+1, start=DAY0 + 10, cost=3, model="gpt-4o"), call_row(+1, start=DAY0 + 10, cost=4, model="other")],
    )  # fmt: skip
    now = DAY0 + 3600 * NS
    assert evaluate(ledger, "acme", now, Fraction(0)).totals.cost == 7
    model_budget = evaluate(ledger, "gpt4o", now, Fraction(0))
    assert (model_budget.totals.cost, model_budget.totals.tokens, model_budget.totals.calls) == (3, 55, 1)


def test_statuses_and_the_incidents_they_assert():
    ledger = ledger_with({**ACME, "thresholds": [0.5, 1.0]})
    ledger.apply([run_row(+1, start=DAY0 + NS, cost=usd_to_femto("12.4999"))], [])
    status = evaluate(ledger, "acme", DAY0 + 12 * 3600 * NS, Fraction(1, 10))
    assert (status.status, status.crossed, detections(status)) == ("ok", (), [])
    ledger.apply([run_row(+1, start=DAY0 + 2 * NS, cost=usd_to_femto("0.0001"))], [])  # exactly half now
    status = evaluate(ledger, "acme", DAY0 + 12 * 3600 * NS, Fraction(1, 10))
    (half,) = detections(status)
    assert status.status == "warning" and half.type == BUDGET_THRESHOLD
    assert half.key == f"budget.threshold_crossed:acme:2026-12-05:{status.budget.version}:1/2"
    assert half.severity == "warning"
    assert (half.observed.value, half.threshold.value) == ("12.500000000000000", "12.500000000000000")  # type: ignore[union-attr]
    # Spending the rest of the pace by 6 am: on pace to exceed (forecast 50 USD) as well.
    early = evaluate(ledger, "acme", DAY0 + 6 * 3600 * NS, Fraction(1, 10))
    assert {d.type for d in detections(early)} == {BUDGET_THRESHOLD, BUDGET_FORECAST}
    assert early.as_dict()["forecast"] == "50.000000000000000"
    assert early.as_dict()["projected_exhaustion"] == "2026-12-05T12:00:00.000Z"


def test_unpriced_calls_are_counted_beside_the_spend_never_as_zero():
    ledger = ledger_with(ACME)
    ledger.apply([run_row(+1, start=DAY0 + NS, cost=None, unpriced=3)], [])
    status = evaluate(ledger, "acme", DAY0 + 3600 * NS, Fraction(1, 10))
    assert (status.totals.cost, status.totals.unpriced, status.as_dict()["unpriced_calls"]) == (0, 3, 3)
    answer = decide({"tenant": "acme"}, "", checks=budget_checks([status]), policy_reasons=lambda _: [], flags={})
    assert answer["action"] == "warn" and "3 call(s) could not be priced" in answer["reasons"][0]["message"]


def test_the_decision_is_the_strictest_reason():
    ledger = ledger_with(ACME, {"id": "all", "period": "day", "amount_usd": "1000", "action": "warn"})
    ledger.apply([run_row(+1, start=DAY0 + NS, cost=usd_to_femto("30"))], [])
    statuses = [evaluate(ledger, i, DAY0 + 3600 * NS, Fraction(1, 10)) for i in ("acme", "all")]
    rule = PolicyRule("mini", (("workflow_type", "support"),), ("gpt-4o-mini",), (), None, None, "deny")
    flags = {"f" * 32: Flag("f" * 32, "4 retries within 60 s", 1, "inc_1")}

    def ask(**values: str) -> dict[str, Any]:
        run_id = values.pop("run_id", "")

        def rules(given: dict[str, str]) -> list[dict[str, Any]]:
            return policy_reasons(Policy((rule,)), given, lambda *_: UnitPrices(None, None))

        return decide(values, run_id, checks=budget_checks(statuses), policy_reasons=rules, flags=flags)

    assert ask(tenant="beta") == {"action": "allow", "reasons": []}
    assert ask(tenant="acme")["action"] == "deny"  # 30 of 25 spent
    assert ask(tenant="beta", model="gpt-4o")["action"] == "allow"  # the rule needs workflow_type
    denied = ask(tenant="beta", model="gpt-4o", workflow_type="support")
    assert denied["action"] == "deny" and denied["reasons"][0]["rule"] == "mini"
    assert ask(run_id="f" * 32)["reasons"][0]["message"] == "run flagged: 4 retries within 60 s"
    assert run_action(flags["f" * 32], "f" * 32)["action"] == "stop"
    assert run_action(None, "0" * 32) == {"run_id": "0" * 32, "action": "continue", "reason": None}

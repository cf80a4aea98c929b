"""Reconciliation, pure: each cause gets the exact amount, confidence is graded, shares add up."""

from __future__ import annotations

from decimal import Decimal

import pytest

from otelspend.finance.billing.accounts import Account, AccountMap
from otelspend.finance.billing.lines import Charge, UsageKind
from otelspend.finance.billing.reconcile import CAUSES, Tolerances, reconcile
from otelspend.finance.billing.trueup import UNATTRIBUTED, shares
from tests.finance.billing.scenario import DAY0, FEMTO, GPT4O, bill_for, femto, line, row

U, C, W5, W1, OUT = (UsageKind.UNCACHED_INPUT, UsageKind.CACHED_INPUT, UsageKind.CACHE_WRITE_5M,
                     UsageKind.CACHE_WRITE_1H, UsageKind.OUTPUT)  # fmt: skip
TOL = Tolerances()
NO_MAP = AccountMap()


def _only(result):
    (cell,) = result.cells
    return cell


def _nonzero(cell) -> dict[str, int]:
    return {name: value for name, value in cell.causes.items() if value}


def test_a_bill_built_from_the_same_calls_reconciles_to_zero_with_high_confidence() -> None:
    usage = {U: 1_000_000, C: 400_000, W5: 200_000, W1: 40_000, OUT: 300_000}
    ledger = [row(usage, run="r1"), row({U: 200_000, OUT: 100_000}, run="r2")]
    bill = bill_for({U: 1_200_000, C: 400_000, W5: 200_000, W1: 40_000, OUT: 400_000})
    cell = _only(reconcile(bill, ledger, NO_MAP, TOL))
    assert cell.variance == 0 and _nonzero(cell) == {} and cell.confidence == "high"
    assert (
        cell.billed
        == cell.calculated
        == femto(1_200_000, GPT4O[U])
        + femto(400_000, GPT4O[C])
        + femto(240_000, GPT4O[W5])
        + femto(400_000, GPT4O[OUT])
    )
    assert cell.model == "4-gpt-o" and cell.model_name == "gpt-4o-2024-08-06"


def test_a_missing_request_is_missing_telemetry_at_the_bills_price() -> None:
    ledger = [row({U: 1_000_000, OUT: 200_000}, calls=4)]
    bill = [*bill_for({U: 1250000, OUT: 250000}), line(UsageKind.REQUEST, quantity=5)]
    cell = _only(reconcile(bill, ledger, NO_MAP, TOL))
    expected = femto(250_000, GPT4O[U]) + femto(50_000, GPT4O[OUT])
    assert cell.variance == expected and _nonzero(cell) == {"missing_telemetry": expected}
    assert cell.confidence == "low"


def test_a_stale_rate_card_price_is_a_price_mismatch_with_both_unit_prices() -> None:
    stale = {**GPT4O, U: Decimal("5")}  # the card still has the old input price
    ledger = [row({U: 1_000_000, OUT: 100_000}, prices=stale)]
    bill = bill_for({U: 1_000_000, OUT: 100_000})
    cell = _only(reconcile(bill, ledger, NO_MAP, TOL))
    assert cell.variance == -femto(1_000_000, Decimal("2.5"))
    assert _nonzero(cell) == {"price_mismatch": cell.variance}
    assert cell.prices["uncached_input"] == {"billed_usd_per_mtok": "2.5", "rate_card_usd_per_mtok": "5"}
    assert cell.quantity_ok and not cell.money_ok and cell.confidence == "low"


def test_an_ignored_cache_discount_is_a_discount() -> None:
    # The instrumentation reported no cached tokens: the ledger priced all input as uncached.
    ledger = [row({U: 1_000_000, OUT: 100_000})]
    bill = bill_for({U: 200_000, C: 800_000, OUT: 100_000})
    cell = _only(reconcile(bill, ledger, NO_MAP, TOL))
    expected = femto(800_000, GPT4O[C]) - femto(800_000, GPT4O[U])
    assert cell.variance == expected and _nonzero(cell) == {"discount": expected}


def test_a_cache_rate_the_rate_card_ignored_is_a_discount() -> None:
    no_cache_price = {**GPT4O, C: GPT4O[U]}  # cache hits priced at the input rate
    ledger = [row({U: 200_000, C: 800_000, OUT: 100_000}, prices=no_cache_price)]
    bill = bill_for({U: 200_000, C: 800_000, OUT: 100_000})
    cell = _only(reconcile(bill, ledger, NO_MAP, TOL))
    assert _nonzero(cell) == {"discount": femto(800_000, GPT4O[C]) - femto(800_000, GPT4O[U])}


def test_a_batch_tier_on_the_bill_is_a_discount() -> None:
    ledger = [row({U: 1_000_000, OUT: 100_000})]
    half = {kind: price / 2 for kind, price in GPT4O.items()}
    bill = bill_for({U: 1_000_000, OUT: 100_000}, prices=half, tier="batch")
    cell = _only(reconcile(bill, ledger, NO_MAP, TOL))
    assert _nonzero(cell) == {"discount": -cell.calculated // 2}


def test_an_untagged_project_is_untagged_with_its_amount() -> None:
    accounts = AccountMap(
        (Account("search", "openai", (("project_id", "proj_search"),), (("ingest_token", "search-prod"),)),), "m@1"
    )
    ledger = [row({U: 1_000_000}, owner={"ingest_token": "search-prod"}), row({U: 400_000}, run="r9",
              owner={"ingest_token": "batch-jobs"})]  # fmt: skip
    bill = bill_for({U: 1_000_000}, project="proj_search") + bill_for({U: 400_000}, project="proj_batch")
    result = reconcile(bill, ledger, accounts, TOL)
    by_account = {cell.account: cell for cell in result.cells}
    assert by_account["search"].variance == 0 and by_account["search"].confidence == "high"
    assert by_account[""].mapped is False and by_account[""].variance == 0  # unmapped calls vs untagged bill
    bill = bill_for({U: 1_000_000}, project="proj_search") + bill_for({U: 400_000}, project="proj_new")
    ledger = [row({U: 1_000_000}, owner={"ingest_token": "search-prod"})]
    result = reconcile(bill, ledger, accounts, TOL)
    untagged = next(cell for cell in result.cells if cell.account == "")
    assert _nonzero(untagged) == {"untagged": femto(400_000, GPT4O[U])}


def test_unpriced_calls_are_unpriced_in_ledger_at_the_bills_price() -> None:
    ledger = [row({U: 1_000_000}), row({U: 600_000, OUT: 10_000}, run="r2", unpriced=True)]
    bill = bill_for({U: 1_600_000, OUT: 10_000})
    cell = _only(reconcile(bill, ledger, NO_MAP, TOL))
    assert _nonzero(cell) == {"unpriced_in_ledger": femto(600_000, GPT4O[U]) + femto(10_000, GPT4O[OUT])}


def test_ledger_usage_the_bill_does_not_have_is_not_in_bill() -> None:
    ledger = [row({U: 1_000_000}), row({U: 1_000_000}, run="r2", model="gpt-4o-mini")]
    bill = bill_for({U: 1_000_000})
    result = reconcile(bill, ledger, NO_MAP, TOL)
    mini = next(cell for cell in result.cells if cell.model == "4-gpt-mini-o")
    assert _nonzero(mini) == {"not_in_bill": -femto(1_000_000, GPT4O[U])} and mini.confidence == "low"


def test_days_and_providers_the_bill_does_not_cover_are_left_alone() -> None:
    ledger = [row({U: 1_000_000}), row({U: 1_000_000}, provider="anthropic", model="claude-sonnet-4-5"),
              row({U: 1_000_000}, hour=DAY0 + 86_400 + 60)]  # fmt: skip
    result = reconcile(bill_for({U: 1_000_000}), ledger, NO_MAP, TOL)
    assert [(c.provider, c.period_start) for c in result.cells] == [("openai", DAY0)]


def test_money_agreeing_per_model_but_not_per_account_is_medium() -> None:
    accounts = AccountMap(
        (
            Account("a", None, (("project_id", "pa"),), (("service", "sa"),)),
            Account("b", None, (("project_id", "pb"),), (("service", "sb"),)),
        )
    )
    ledger = [row({U: 1_000_000}, owner={"service": "sa"}), row({U: 1_000_000}, run="r2", owner={"service": "sb"})]
    bill = bill_for({U: 1_500_000}, project="pa") + bill_for({U: 500_000}, project="pb")
    result = reconcile(bill, ledger, accounts, TOL)
    assert {cell.account: cell.confidence for cell in result.cells} == {"a": "medium", "b": "medium"}


def test_a_line_without_a_model_is_allocated_and_graded_low() -> None:
    ledger = [row({U: 1_000_000}), row({U: 3_000_000}, run="r2", model="gpt-4o-mini", prices=GPT4O)]
    bill = [line(UsageKind.OTHER, amount=Decimal("10.000000000000001"), model="")]
    result = reconcile(bill, ledger, NO_MAP, TOL)
    billed = {cell.model: cell.billed for cell in result.cells}
    assert sum(billed.values()) == 10 * FEMTO + 1
    assert billed == {"4-gpt-o": 2_500_000_000_000_000, "4-gpt-mini-o": 7_500_000_000_000_001}
    assert {cell.confidence for cell in result.cells} == {"low"} and all(c.allocated for c in result.cells)


def test_taxes_and_credits_are_reported_apart() -> None:
    bill = [*bill_for({U: 1000000}), line(UsageKind.OTHER, amount=Decimal("0.16"), model="", charge=Charge.TAX)]
    result = reconcile(bill, [row({U: 1_000_000})], NO_MAP, TOL)
    assert _only(result).variance == 0
    assert [(o.charge, o.billed) for o in result.other] == [("tax", 160_000_000_000_000)]


def test_hourly_lines_make_hourly_cells() -> None:
    bill = bill_for({U: 1_000_000}, start=DAY0 + 3600, end=DAY0 + 7200)
    ledger = [row({U: 1_000_000}, hour=DAY0 + 3600), row({U: 1_000_000}, run="r2", hour=DAY0 + 7200)]
    result = reconcile(bill, ledger, NO_MAP, TOL)
    assert [(c.period_start - DAY0, c.period_end - DAY0, c.variance) for c in result.cells] == [
        (3600, 7200, 0),
        (7200, 10800, -femto(1_000_000, GPT4O[U])),
    ]


def test_tolerances_decide_agreement() -> None:
    ledger = [row({U: 1_000_000})]
    bill = bill_for({U: 1_004_000})  # 0.4 % more tokens, $0.01 more
    assert _only(reconcile(bill, ledger, NO_MAP, TOL)).confidence == "high"
    strict = Tolerances(quantity_pct=Decimal("0.1"), money_pct=Decimal("0"), money_usd=Decimal("0"))
    assert _only(reconcile(bill, ledger, NO_MAP, strict)).confidence == "low"


# -- true-up -----------------------------------------------------------------------------------------


def test_trueup_shares_add_up_to_the_billed_amount_in_proportion_to_cost() -> None:
    ledger = [row({U: 1_000_000}, run="a"), row({U: 2_000_000}, run="b"), row({U: 1}, run="c", unpriced=True)]
    bill = [line(U, amount=Decimal("10"))]
    result = reconcile(bill, ledger, NO_MAP, TOL)
    got = {s.run_id: s.billed for s in shares(result.cells)}
    assert got == {"a": 3_333_333_333_333_333, "b": 6_666_666_666_666_667}  # the larger remainder
    assert sum(got.values()) == 10 * FEMTO


@pytest.mark.parametrize(
    ("ledger", "expected"),
    [
        pytest.param([], {UNATTRIBUTED: 5 * FEMTO}, id="no runs: all unattributed"),
        pytest.param([row({U: 100}, run="x", unpriced=True), row({U: 300}, run="y", unpriced=True)],
                     {"x": 5 * FEMTO // 4, "y": 15 * FEMTO // 4}, id="all unpriced: by tokens"),
    ],
)  # fmt: skip
def test_trueup_of_cells_without_calculated_cost(ledger, expected) -> None:
    result = reconcile([line(U, amount=Decimal("5"))], ledger, NO_MAP, TOL)
    assert {s.run_id: s.billed for s in shares(result.cells)} == expected


def test_causes_always_name_every_cause() -> None:
    cell = _only(reconcile(bill_for({U: 10}), [row({U: 10})], NO_MAP, TOL))
    assert set(cell.causes) == set(CAUSES)


def test_a_usage_report_alone_is_compared_on_quantities_only() -> None:
    bill = [line(U, quantity=1_000_000), line(OUT, quantity=100)]
    cell = _only(reconcile(bill, [row({U: 1_000_000, OUT: 100})], NO_MAP, TOL))
    assert not cell.compared and cell.quantity_ok and cell.confidence == "low" and _nonzero(cell) == {}
    assert shares([cell]) == []

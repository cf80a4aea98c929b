"""Property tests (hypothesis) of the reconciliation money: causes add up to the variance,
true-up shares add up to the billed amount, a bill built from the ledger reconciles to 0."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from otelspend.finance.billing.accounts import Account, AccountMap
from otelspend.finance.billing.lines import UsageKind
from otelspend.finance.billing.reconcile import CAUSES, Tolerances, reconcile
from otelspend.finance.billing.trueup import shares
from tests.finance.billing.scenario import DAY0, FEMTO, GPT4O, bill_for, line, row

KINDS = [UsageKind.UNCACHED_INPUT, UsageKind.CACHED_INPUT, UsageKind.CACHE_WRITE_5M, UsageKind.CACHE_WRITE_1H,
         UsageKind.OUTPUT]  # fmt: skip
MODELS = ["gpt-4o", "gpt-4o-mini", ""]
PROJECTS = ["pa", "pb", "pc"]
ACCOUNTS = AccountMap(
    (
        Account("a", None, (("project_id", "pa"),), (("service", "sa"),)),
        Account("b", "openai", (("project_id", "pb"),), (("service", "sb"),)),
    )
)
usage = st.dictionaries(st.sampled_from(KINDS), st.integers(0, 10**9), max_size=5)
price = st.decimals(min_value=0, max_value=100, places=2)
ledger_rows = st.lists(
    st.builds(
        lambda tokens, run, model, service, unpriced, hour, p: row(
            tokens, run=run, model=model or "gpt-4o", owner={"service": service}, unpriced=unpriced,
            hour=DAY0 + hour * 3600, prices={k: p for k in KINDS}),
        usage, st.sampled_from(["r1", "r2", "r3", "r4"]), st.sampled_from(MODELS), st.sampled_from(["sa", "sb", "x"]),
        st.booleans(), st.integers(0, 23), price,
    ),
    max_size=8,
)  # fmt: skip
money = st.decimals(min_value=-1000, max_value=10**6, places=15, allow_nan=False, allow_infinity=False)
bill_lines = st.lists(
    st.builds(
        lambda kind, quantity, amount, model, project: line(kind, quantity=quantity, amount=amount, model=model,
                                                              project=project),
        st.sampled_from([*KINDS, UsageKind.REQUEST, UsageKind.WEB_SEARCH, UsageKind.OTHER]),
        st.none() | st.integers(0, 10**9), st.none() | money, st.sampled_from(MODELS), st.sampled_from(PROJECTS),
    ),
    min_size=1,
    max_size=10,
)  # fmt: skip


@settings(max_examples=300, deadline=None, derandomize=True)
@given(bill_lines, ledger_rows, st.booleans())
def test_causes_add_up_to_the_variance_and_shares_to_the_billed_amount(bill, ledger, mapped) -> None:
    result = reconcile(bill, ledger, ACCOUNTS if mapped else AccountMap(), Tolerances())
    billed_total = 0
    for cell in result.cells:
        assert set(cell.causes) == set(CAUSES)
        if not cell.compared:  # the bill states no money here: quantities only
            assert cell.billed == 0 and not any(cell.causes.values()) and cell.confidence == "low"
            assert shares([cell]) == []
            continue
        assert sum(cell.causes.values()) == cell.variance == cell.billed - cell.calculated
        assert all(isinstance(v, int) for v in cell.causes.values())
        assert cell.confidence in ("high", "medium", "low")
        billed_total += cell.billed
        cell_shares = [s for s in shares([cell])]
        assert sum(s.billed for s in cell_shares) == cell.billed
        if cell.runs and any(cell.runs.values()) and cell.billed:
            total_weight = sum(max(w, 0) for w in cell.runs.values())
            for share in cell_shares:
                if share.run_id:
                    exact = Fraction(cell.billed) * max(cell.runs[(share.run_id, share.ledger_model)], 0) / total_weight
                    assert abs(share.billed - exact) < 1
    usage_billed = sum(Fraction(b.amount) * FEMTO for b in bill if b.amount is not None)
    assert billed_total == usage_billed, "no billed money lost or created across cells"


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.tuples(usage, st.sampled_from(["r1", "r2", "r3"]), st.sampled_from(["gpt-4o", "gpt-4o-mini"])),
                min_size=1, max_size=6))  # fmt: skip
def test_a_bill_built_from_the_ledger_reconciles_to_zero_with_high_confidence(calls) -> None:
    ledger = [row(tokens, run=run, model=model) for tokens, run, model in calls]
    bill = []
    for model in {m for _, _, m in calls}:
        total: dict[UsageKind, int] = {}
        for tokens, _, m in calls:
            if m == model:
                for kind, count in tokens.items():
                    total[kind] = total.get(kind, 0) + count
        bill += bill_for(total, model=model)
    result = reconcile(bill, ledger, AccountMap(), Tolerances())
    for cell in result.cells:
        assert cell.variance == 0 and not any(cell.causes.values())
        assert cell.confidence == "high" or cell.calculated == 0
        assert cell.billed == cell.calculated
    assert sum(c.billed for c in result.cells) == sum(r.cost for r in ledger)
    assert GPT4O  # prices of the scenario module


@settings(max_examples=200, deadline=None, derandomize=True)
@given(usage, st.integers(-(10**6), 10**6))
def test_a_change_of_billed_money_alone_is_all_price(tokens, cents) -> None:
    ledger = [row(tokens)]
    bill = bill_for(tokens)
    bill.append(line(UsageKind.OTHER, amount=Decimal(cents) / 100))
    cell = next(c for c in reconcile(bill, ledger, AccountMap(), Tolerances()).cells)
    assert cell.variance == cents * FEMTO // 100
    assert cell.causes["price_mismatch"] + cell.causes["discount"] == cell.variance


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.decimals(min_value=-(10**12), max_value=10**12, places=15, allow_nan=False, allow_infinity=False))
def test_ledger_amounts_read_as_femto_exactly(amount: Decimal) -> None:
    from otelspend.finance.billing.days import _femto
    from otelspend.money import usd_to_femto

    padded = f"{amount.quantize(Decimal('1e-15')):f}"
    trimmed = padded.rstrip("0").rstrip(".")  # how ClickHouse renders Decimal(38, 15): "0.5", "0"
    for text in (padded, trimmed or "0"):
        assert _femto(text) == usd_to_femto(Decimal(text))

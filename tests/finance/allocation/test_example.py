"""The README's worked example: ``examples/cost-pools.yaml`` over eight runs of one day and a bill
with a tax line, allocated on real chDB through the billing import. The numbers printed in the
README are the ones this test computes: it fails when either drifts."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import yaml

from otelspend.clickhouse.client import Store
from otelspend.finance.allocation.amounts import PoolAmounts
from otelspend.finance.allocation.job import Allocator
from otelspend.finance.allocation.pools import load_cost_rules, parse_cost_rules
from otelspend.finance.billing import service
from otelspend.money import usd_to_femto
from tests.finance.allocation.runs import insert_runs, run_row

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "cost-pools.yaml"
README = ROOT / "README.md"
DAY = int(dt.datetime(2026, 11, 2, tzinfo=dt.UTC).timestamp()) * 10**9
HOUR = 3600 * 10**9
RUNS = [  # id, tenant, customer, workflow type, input, output tokens, direct cost, outcome
    ("r1", "acme", "northwind", "support_triage", 1_000, 200, "0.012", "accepted"),
    ("r2", "acme", "northwind", "support_triage", 800, 100, "0.009", "rejected"),
    ("r3", "acme", "contoso", "meeting_summary", 6_000, 1_000, "0.040", ""),
    ("r4", "globex", "northwind", "meeting_summary", 3_000, 500, "0.020", ""),
    ("r5", "globex", "fabrikam", "invoice_extraction", 2_000, 300, "0.015", ""),
    ("r6", "globex", "fabrikam", "invoice_extraction", 2_500, 300, "0.018", ""),
    ("r7", "initech", "fabrikam", "support_triage", 900, 150, "0.010", "accepted"),
    ("r8", "initech", "contoso", "support_triage", 1_100, 250, "0.014", "accepted"),
]
FOCUS_HEADER = (
    "BilledCost,BillingAccountId,BillingCurrency,ChargeCategory,ChargeDescription,ChargePeriodEnd,"
    "ChargePeriodStart,ProviderName,ServiceProviderName,ServiceCategory,ServiceName,SubAccountId"
)
TAX_LINE = (
    "12.60,123456789012,USD,Tax,Sales tax on model usage,2026-12-01T00:00:00Z,2026-11-01T00:00:00Z,"
    "Amazon Web Services,Anthropic,AI and Machine Learning,Amazon Bedrock,210987654321"
)


def _ledger(store: Store, tmp_path: Path) -> None:
    insert_runs(
        store,
        [
            run_row(
                run_id,
                DAY + (i + 9) * HOUR,
                tenant=tenant,
                customer=customer,
                workflow_type=workflow,
                input_tokens=inp,
                output_tokens=out,
                cost_usd=usd_to_femto(cost),
                outcome=outcome,
                status="success",
            )
            for i, (run_id, tenant, customer, workflow, inp, out, cost, outcome) in enumerate(RUNS)
        ],
    )
    bill = tmp_path / "focus-november.csv"
    bill.write_text(f"{FOCUS_HEADER}\n{TAX_LINE}\n")
    assert service.import_file(store, bill).lines == 1


def _usd(value: Decimal) -> str:
    return f"{value:.15f}".rstrip("0").rstrip(".") if value else "0"


def render(store: Store) -> str:
    """The README block: per pool period, each consumer's share; then per tenant, the loaded cost."""
    db = store.database
    shares = store.rows(
        f"SELECT pool, consumer, sum(sign * amount_usd) FROM {db}.allocations GROUP BY pool, consumer "
        "HAVING sum(sign * amount_usd) != 0 ORDER BY pool, consumer"
    )
    lines = ["| pool | consumer | allocated USD |", "|---|---|---:|"]
    lines += [f"| {pool} | {consumer} | {_usd(Decimal(amount))} |" for pool, consumer, amount in shares]
    tenants = store.rows(
        f"SELECT tenant, sum(cost_usd) FROM {db}.runs GROUP BY tenant HAVING sum(sign) > 0 ORDER BY tenant"
    )
    allocated = dict(
        store.rows(f"SELECT tenant, sum(sign * amount_usd) FROM {db}.allocations GROUP BY tenant ORDER BY tenant")
    )
    lines += ["", "| tenant | direct USD | allocated USD | loaded USD |", "|---|---:|---:|---:|"]
    for tenant, direct in tenants:
        alloc = Decimal(allocated.get(tenant, 0))
        lines.append(f"| {tenant} | {_usd(Decimal(direct))} | {_usd(alloc)} | {_usd(Decimal(direct) + alloc)} |")
    return "\n".join(lines)


def readme_block() -> str:
    text = README.read_text()
    found = re.search(r"<!-- example-pools:begin -->\n(.*?)\n<!-- example-pools:end -->", text, re.S)
    assert found, "README: the example-pools block is missing"
    return found.group(1)


def test_the_readme_shows_the_example_file() -> None:
    """The pools file in the README is examples/cost-pools.yaml (the same rules, comments aside)."""
    text = README.read_text()
    block = text.split("`examples/cost-pools.yaml` is a complete file:", 1)[1].split("```yaml\n", 1)[1]
    shown = parse_cost_rules(block.split("\n```", 1)[0], Path("README.md"))
    assert yaml.safe_load(block.split("\n```", 1)[0]) == yaml.safe_load(EXAMPLE.read_text())
    assert [p.rule_version for p in shown.pools] == [p.rule_version for p in load_cost_rules(EXAMPLE).pools]


def test_the_example_file_produces_the_readme_numbers(store: Store, tmp_path: Path) -> None:
    _ledger(store, tmp_path)
    rules = load_cost_rules(EXAMPLE)
    allocator = Allocator(store, lambda: rules, PoolAmounts(store), node="n", lookback_days=35)
    report = allocator.allocate(DAY, DAY + 24 * HOUR)
    assert not [p for p in report.periods if p.skipped], "the bill covers November"
    for pool_id, amount in (("vector-db", "300"), ("observability", "40"), ("gpu-cluster", "4200"),
                            ("support-contract", "900"), ("provider-fees", "12.6")):  # fmt: skip
        total = store.scalar(
            f"SELECT sum(sign * amount_usd) FROM {store.database}.allocations WHERE pool = {{p:String}}",
            {"p": pool_id},
        )
        assert Decimal(total) == Decimal(amount), f"{pool_id} adds up to its amount exactly"
    assert render(store) == readme_block(), "README's example numbers drifted: paste this block:\n" + render(store)

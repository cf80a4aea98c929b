"""The cost-pools file: the issue's minimal file as written, every mistake named, reloads."""

from __future__ import annotations

import logging
import os
from decimal import Decimal
from pathlib import Path

import pytest

from otelspend.finance.allocation.pools import PoolsError, load_cost_rules, parse_cost_rules
from otelspend.reloadable import Reloadable

MINIMAL = """\
pools:
  - id: vector-db
    owner: platform-team
    review: 2027-03-01
    description: Managed vector database, shared by every tenant
    amount_usd: "300.00"
    period: day
    scope: {}            # every run
    signal: runs
    method: proportional
    by: tenant
"""

BASE = {
    "owner": "platform-team",
    "review": "2027-03-01",
    "description": "shared",
    "amount_usd": '"10"',
    "period": "day",
    "signal": "runs",
    "method": "proportional",
    "by": "tenant",
}


def pool_yaml(pool_id: str = "p", **fields: str | None) -> str:
    merged = {**BASE, **fields}
    lines = [f"  - id: {pool_id}"] + [f"    {key}: {value}" for key, value in merged.items() if value is not None]
    return "\n".join(lines) + "\n"


def test_the_issues_minimal_file_works_as_written(tmp_path: Path) -> None:
    path = tmp_path / "pools.yaml"
    path.write_text(MINIMAL)
    rules = load_cost_rules(path)
    (pool,) = rules.pools
    assert (pool.id, pool.owner, pool.period, pool.signal, pool.method, pool.by) == (
        "vector-db",
        "platform-team",
        "day",
        "runs",
        "proportional",
        "tenant",
    )
    assert pool.amount_femto == 300 * 10**15
    assert pool.scope_filter == {}
    assert pool.cost_kind == "shared"
    assert rules.source.startswith("pools.yaml@") and len(rules.source) == len("pools.yaml@") + 8


def test_rule_version_follows_allocating_fields_only() -> None:
    base = parse_cost_rules("pools:\n" + pool_yaml()).pools[0]
    same_amount = parse_cost_rules("pools:\n" + pool_yaml(amount_usd='"10.000"')).pools[0]
    new_owner = parse_cost_rules("pools:\n" + pool_yaml(owner="finance", description="x")).pools[0]
    new_signal = parse_cost_rules("pools:\n" + pool_yaml(signal="tokens")).pools[0]
    new_amount = parse_cost_rules("pools:\n" + pool_yaml(amount_usd='"10.01"')).pools[0]
    assert base.rule_version == same_amount.rule_version == new_owner.rule_version
    assert len({base.rule_version, new_signal.rule_version, new_amount.rule_version}) == 3


def test_fixed_coefficients_and_filters() -> None:
    text = "pools:\n" + pool_yaml(
        method="fixed", coefficients="{acme: 60, 42: 40}", scope="{environment: [prod, staging], tenant: acme}"
    )
    (pool,) = parse_cost_rules(text).pools
    assert pool.coefficients == {"acme": Decimal(60), "42": Decimal(40)}
    assert pool.scope_filter == {"environment": ("prod", "staging"), "tenant": ("acme",)}


def test_units_of_value() -> None:
    text = (
        "pools: []\nunits:\n  - id: resolution\n    description: a ticket resolved\n"
        "    scope: {workflow_type: support_triage}\n    count: {outcome: accepted}\n"
    )
    (unit,) = parse_cost_rules(text).units
    assert unit.scope == {"workflow_type": ("support_triage",)} and unit.count == {"outcome": ("accepted",)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "pools:\n" + pool_yaml(method="fixed", coefficients="{a: 60, b: 30}"),
            "pool 1 (id 'p'), coefficients: the percentages add up to 90, not 100",
            id="coefficients-not-100",
        ),
        pytest.param(
            "pools:\n" + pool_yaml(method="fixed"),
            "pool 1 (id 'p'), coefficients: method fixed needs coefficients",
            id="fixed-without-coefficients",
        ),
        pytest.param(
            "pools:\n" + pool_yaml(coefficients="{a: 100}"),
            "pool 1 (id 'p'), coefficients: only method fixed takes coefficients",
            id="coefficients-without-fixed",
        ),
        pytest.param(
            "pools:\n" + pool_yaml(signal="tokenz"),
            "pool 1 (id 'p'), signal = 'tokenz': Input should be 'runs', 'spans'",
            id="unknown-signal",
        ),
        pytest.param(
            "pools:\n" + pool_yaml(by="tenat"),
            "pool 1 (id 'p'), by = 'tenat': unknown dimension (allowed: ",
            id="unknown-by-dimension",
        ),
        pytest.param(
            "pools:\n" + pool_yaml(by="model"),
            "pool 1 (id 'p'), by = 'model': is call-level: a run has several",
            id="call-level-by",
        ),
        pytest.param(
            "pools:\n" + pool_yaml(scope="{tenat: acme}"),
            "pool 1 (id 'p'), scope: unknown dimension 'tenat' (allowed: ",
            id="unknown-scope-dimension",
        ),
        pytest.param(
            "pools:\n" + pool_yaml(scope="{tenant: []}"),
            "pool 1 (id 'p'), scope: tenant: an empty list matches nothing",
            id="empty-scope-list",
        ),
        pytest.param(
            "pools:\n" + pool_yaml() + pool_yaml(),
            "pools: two pools claim the id 'p' (pools 1 and 2)",
            id="same-id-twice",
        ),
        pytest.param(
            "pools:\n"
            + pool_yaml("a", amount_usd=None, billed="{provider: pinecone}")
            + pool_yaml("b", amount_usd=None, billed="{provider: [pinecone, qdrant], kind: other}"),
            "pools: pools 1 ('a') and 2 ('b') claim the same cost: their billed filters can match the same billing",
            id="two-pools-same-bill",
        ),
        pytest.param(
            "pools:\n" + pool_yaml(billed="{provider: pinecone}"),
            "pool 1 (id 'p'): give exactly one of amount_usd",
            id="amount-and-bill",
        ),
        pytest.param(
            "pools:\n" + pool_yaml(amount_usd='"0.0000000000000001"'),
            "pool 1 (id 'p'), amount_usd = '0.0000000000000001': more precision than 1e-15 USD",
            id="finer-than-femto",
        ),
        pytest.param(
            "pools:\n" + pool_yaml(amount_usd='"-3"'),
            "pool 1 (id 'p'), amount_usd = '-3': Input should be greater than or equal to 0",
            id="negative-amount",
        ),
        pytest.param(
            "pools:\n" + pool_yaml(period="week"),
            "pool 1 (id 'p'), period = 'week': Input should be 'day' or 'month'",
            id="unknown-period",
        ),
        pytest.param(
            "pools:\n" + pool_yaml(owner=None),
            "pool 1 (id 'p'), owner: Field required",
            id="no-owner",
        ),
        pytest.param(
            "pools:\n" + pool_yaml(reviw="2027-01-01"),
            "pool 1 (id 'p'), reviw = '2027-01-01': unknown field",
            id="typo-field",
        ),
        pytest.param(
            "pools:\n" + pool_yaml(period="month", effective_from="2027-01-15"),
            "pool 1 (id 'p'), effective_from: a monthly pool starts and ends on the first day of a month",
            id="month-mid-start",
        ),
        pytest.param(
            "pools:\n  - id: p\n    owner: [x\n",
            "not valid YAML at line 4, column 1",
            id="bad-yaml",
        ),
        pytest.param(
            "pools: []\nunits:\n  - id: u\n    description: d\n    count: {}\n",
            "unit 1 (id 'u'), count: name what a unit is",
            id="unit-counts-everything",
        ),
        pytest.param(
            "pools: []\nunits:\n  - id: u\n    description: d\n    count: {model: gpt-4o}\n",
            "unit 1 (id 'u'), count: run dimension 'model' is not a run dimension",
            id="unit-call-dimension",
        ),
    ],
)
def test_bad_pools_are_refused_naming_file_pool_and_field(text: str, message: str) -> None:
    with pytest.raises(PoolsError) as caught:
        parse_cost_rules(text, source=Path("pools.yaml"))
    assert str(caught.value).startswith("cost pools pools.yaml: ")
    assert message in str(caught.value), str(caught.value)


def test_a_bad_reload_keeps_the_previous_rules_and_says_why(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "pools.yaml"
    path.write_text(MINIMAL)
    reloadable = Reloadable("cost pools", path, load_cost_rules)
    first = reloadable.current
    path.write_text(MINIMAL.replace("signal: runs", "signal: vibes"))
    os.utime(path, (1, 1))
    with caplog.at_level(logging.ERROR, logger="otelspend"):
        assert reloadable.check() is False
    assert reloadable.current is first
    assert "signal = 'vibes'" in reloadable.last_error
    assert "cost pools reload failed, keeping the previous version" in caplog.text
    path.write_text(MINIMAL.replace("signal: runs", "signal: tokens"))
    os.utime(path, (2, 2))
    assert reloadable.check() is True
    assert reloadable.current.pools[0].signal == "tokens" and reloadable.last_error == ""

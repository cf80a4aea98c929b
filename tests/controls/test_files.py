"""Budgets and policy files: valid ones load; each mistake is refused naming the file, the item,
the field, the value and what was expected; a reload with a mistake keeps the previous version."""

from __future__ import annotations

import os
import shutil
from fractions import Fraction
from pathlib import Path

import pytest

from otelspend.controls.budgets import load_budget_file, parse_budget
from otelspend.controls.policy import UnitPrices, load_policy, unit_prices
from otelspend.controls.validation import ControlsConfigError
from otelspend.enrich.pricing import PriceBook
from otelspend.money import usd_to_femto
from otelspend.reloadable import Reloadable

DATA = Path(__file__).with_name("testdata")


def test_a_valid_budgets_file():
    daily, tokens = load_budget_file(DATA / "budgets_valid.yaml")
    assert (daily.id, daily.unit, daily.amount, daily.call_level) == ("acme-daily", "USD", usd_to_femto("25"), False)
    assert daily.thresholds == (Fraction(1, 2), Fraction(4, 5), Fraction(1)) and daily.spec.action == "deny"
    assert (tokens.unit, tokens.amount, tokens.call_level, tokens.spec.timezone) == (
        "tokens", 5_000_000, True, "Europe/Paris",
    )  # fmt: skip
    assert tokens.source == f"file:{DATA / 'budgets_valid.yaml'}"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        pytest.param("budgets_bad_period", "budget 2 (id 'acme'), period = 'fortnight': Input should be 'day', "
                     "'week' or 'month'", id="bad-period"),
        pytest.param("budgets_two_amounts", "budget 1 (id 'both'): Value error", id="two-amounts"),
        pytest.param("budgets_unknown_dimension", "budget 1 (id 'x'), filter: unknown dimension tenat; expected "
                     "among workflow_type", id="unknown-dimension"),
        pytest.param("budgets_bad_zone", "budget 1 (id 'x'), timezone = 'Mars/Olympus': unknown time zone",
                     id="bad-zone"),
        pytest.param("budgets_too_precise", "amount_usd = '0.0000000000000001': expected at most 15 decimal places",
                     id="finer-than-femto"),
        pytest.param("budgets_bad_threshold", "thresholds.1 = 0: Input should be greater than 0", id="zero-threshold"),
        pytest.param("budgets_duplicate", "budgets: duplicate budget id 'same' (budgets 1 and 2)", id="duplicate"),
        pytest.param("budgets_typo_field", "budget 1 (id 'x'), treshold: unknown field", id="typo"),
        pytest.param("budgets_not_yaml", "not valid YAML at line 2", id="not-yaml"),
    ],
)  # fmt: skip
def test_an_invalid_budgets_file_names_file_item_field_and_value(name, message):
    path = DATA / f"{name}.yaml"
    with pytest.raises(ControlsConfigError) as info:
        load_budget_file(path)
    text = str(info.value)
    assert text.startswith(f"budgets file {path}: ")
    assert message.replace("Value error", "expected exactly one of amount_usd") in text, text


def test_a_budget_from_the_api_is_validated_the_same_way():
    budget = parse_budget(
        {"id": "acme-daily", "filter": {"tenant": "acme"}, "period": "day", "amount_usd": "25.00",
         "thresholds": [0.5, 0.8, 1.0]}, "request body",
    )  # fmt: skip
    assert budget.thresholds == (Fraction(1, 2), Fraction(4, 5), Fraction(1))  # 0.8 from JSON is exactly 4/5
    with pytest.raises(ControlsConfigError) as info:
        parse_budget({"id": "bad id!", "period": "day", "amount_usd": "-3"}, "request body")
    problems = {p.field: p for p in info.value.problems}
    assert set(problems) == {"id", "amount_usd"}
    assert problems["amount_usd"].value == "-3" and "greater than 0" in problems["amount_usd"].message
    assert info.value.problems[0].as_dict()["loc"][0] == "body"


def test_a_valid_policy_file():
    policy = load_policy(DATA / "policy_valid.yaml")
    support, previews, cap = policy.rules
    context = {"workflow_type": "support_triage", "environment": "production"}
    assert support.applies(context, final=True) and not support.applies({**context, "environment": "dev"}, final=True)
    assert support.applies({"workflow_type": "support_triage"}, final=False) is None  # environment not known yet
    assert support.check("claude-haiku-4-5-20251001", None) is None
    violation = support.check("gpt-4o", None)
    assert violation is not None and violation.action == "deny" and "not among the allowed" in violation.reason
    assert previews.check("gemini-2.5-pro-preview", None).action == "warn"  # type: ignore[union-attr]
    assert cap.check("anything", "unknown_model").reason.endswith("(unknown_model), so a price cap cannot clear it")  # type: ignore[union-attr]
    assert cap.check("cheap", UnitPrices(Fraction(1), Fraction(2))) is None
    over = cap.check("dear", UnitPrices(Fraction(5), Fraction(2)))
    assert over is not None and "costs 5 USD per million input tokens, above the cap of 3" in over.reason


def test_model_list_prices_come_from_the_rate_card_in_force():
    compiled = PriceBook().quote("openai", "gpt-4o", "gpt-4o", 1_767_225_600 * 10**9).compiled  # 2026-01-01
    prices = unit_prices(compiled)
    assert (prices.input, prices.output) == (Fraction(5, 2), Fraction(10))  # USD per million tokens


@pytest.mark.parametrize(
    ("name", "message"),
    [
        pytest.param("policy_unknown_key", "rule 1 (id 'r1'), match: cannot match on workflow; expected keys among",
                     id="unknown-key"),
        pytest.param("policy_says_nothing", "rule 1 (id 'r1'): a rule needs models, deny_models or max_usd_per_mtok",
                     id="empty-rule"),
        pytest.param("policy_negative_cap", "rule 1 (id 'cap'), max_usd_per_mtok.input = -1: Input should be "
                     "greater than or equal to 0", id="negative-cap"),
        pytest.param("policy_bad_action", "rule 1 (id 'r1'), action = 'block': Input should be 'deny' or 'warn'",
                     id="bad-action"),
        pytest.param("policy_not_a_mapping", "top level: expected a mapping with a 'rules' list", id="a-list"),
    ],
)  # fmt: skip
def test_an_invalid_policy_file_names_file_rule_field_and_value(name, message):
    path = DATA / f"{name}.yaml"
    with pytest.raises(ControlsConfigError) as info:
        load_policy(path)
    assert str(info.value).startswith(f"policy file {path}: ") and message in str(info.value), str(info.value)


@pytest.mark.parametrize(
    ("good", "bad", "load"),
    [
        pytest.param("budgets_valid", "budgets_bad_period", load_budget_file, id="budgets"),
        pytest.param("policy_valid", "policy_unknown_key", load_policy, id="policy"),
    ],
)
def test_a_reload_with_a_mistake_keeps_the_previous_version(tmp_path, good, bad, load):
    path = tmp_path / "controls.yaml"
    shutil.copy(DATA / f"{good}.yaml", path)
    reloadable = Reloadable("controls file", path, load)
    before = reloadable.current
    shutil.copy(DATA / f"{bad}.yaml", path)
    os.utime(path, (1, 1))
    assert reloadable.check() is False
    assert reloadable.current is before and str(path) in reloadable.last_error
    shutil.copy(DATA / f"{good}.yaml", path)
    os.utime(path, (2, 2))
    assert reloadable.check() is True and reloadable.last_error == ""

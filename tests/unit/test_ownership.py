from __future__ import annotations

import pytest

from otelspend.enrich.ownership import OwnershipError, OwnershipRules, parse_ownership

RULES = """
version: 1
rules:
  - name: search in prod
    match: {service.name: "search-*", environment: prod}
    set: {team: search, cost_center: CC-1}
  - name: agents by regex
    match: {agent: "re:^support-(bot|agent)$"}
    set: {team: support, product: helpdesk}
  - name: shared key
    match: {ingest_token: shared}
    set: {tenant: acme, team: platform}
    override: true
"""


def context(**values: str) -> dict[str, str]:
    return values


def test_first_matching_rule_sets_each_field():
    rules = parse_ownership(RULES)
    result = rules(context(**{"service.name": "search-api", "environment": "prod", "agent": "support-bot"}))
    assert (result["team"], result["cost_center"], result["product"]) == ("search", "CC-1", "helpdesk")


def test_values_already_on_the_run_win_unless_override():
    rules = parse_ownership(RULES)
    kept = rules(context(**{"service.name": "search-api", "environment": "prod", "team": "data"}))
    assert kept["team"] == "data" and kept["cost_center"] == "CC-1"
    overridden = rules(context(ingest_token="shared", tenant="beta", team="data"))
    assert (overridden["tenant"], overridden["team"]) == ("acme", "platform")


def test_no_match_leaves_fields_as_they_are():
    assert OwnershipRules()(context(team="x"))["team"] == "x"
    assert parse_ownership(RULES)(context(**{"service.name": "billing"}))["team"] == ""


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        pytest.param(
            "rules: [{name: a, match: {x: y}, set: {colour: red}}]",
            ["rule 1 ('a')", "cannot set colour"],
            id="unknown-field",
        ),
        pytest.param(
            "rules: [{name: a, match: {x: 're:('}, set: {team: t}}]",
            ["rule 1", "invalid regular expression"],
            id="bad-regex",
        ),
        pytest.param("rules: [{name: a, match: {}, set: {team: t}}]", ["rule 1", "match"], id="empty-match"),
        pytest.param("rules: [{name: a, mtach: {x: y}, set: {team: t}}]", ["mtach", "unknown field"], id="typo"),
        pytest.param("rules: [{name: a", ["not valid YAML"], id="broken-yaml"),
    ],
)
def test_invalid_rules_fail_with_the_rule_and_field(text, fragments):
    with pytest.raises(OwnershipError) as info:
        parse_ownership(text)
    for fragment in fragments:
        assert fragment in str(info.value)

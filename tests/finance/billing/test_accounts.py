"""The account mapping file: validated whole, first match wins, untagged when nothing covers a line."""

from __future__ import annotations

from pathlib import Path

import pytest

from otelspend.finance.billing.accounts import AccountMapError, load_accounts

VALID = """
version: 1
accounts:
  - name: search
    provider: openai
    match: {project_id: proj_search}
    owner: {ingest_token: search-prod}
  - name: support
    provider: anthropic
    match: {workspace_id: default}
    owner: {service: support-bot, environment: production}
  - name: anything-of-team-x
    match: {api_key_id: key_x}
    owner: {team: x}
"""


def test_lines_and_calls_find_their_account(tmp_path: Path) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text(VALID)
    accounts = load_accounts(path)
    assert accounts.configured and accounts.version.startswith("accounts.yaml@")
    assert accounts.for_line("openai", {"project_id": "proj_search"}) == "search"
    assert accounts.for_line("anthropic", {"project_id": "proj_search"}) is None  # untagged
    assert accounts.for_line("anthropic", {"workspace_id": "default"}) == "support"
    assert accounts.for_line("aws.bedrock", {"api_key_id": "key_x"}) == "anything-of-team-x"
    assert accounts.for_call("openai", {"ingest_token": "search-prod"}) == "search"
    assert accounts.for_call("anthropic", {"service": "support-bot", "environment": "staging"}) == ""
    assert accounts.for_call("openai", {"team": "x"}) == "anything-of-team-x"
    assert accounts.owner_fields == {"ingest_token", "service", "environment", "team"}


def test_no_file_means_no_accounts() -> None:
    accounts = load_accounts(None)
    assert not accounts.configured and accounts.for_line("openai", {}) == "" and accounts.for_call("openai", {}) == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(VALID.replace("project_id: proj_search", "projct_id: proj_search"),
                     "entry 1 (name 'search'), match = {'projct_id': 'proj_search'}: unknown field 'projct_id'",
                     id="typo in match"),
        pytest.param(VALID.replace("owner: {team: x}", "owner: {}"), "entry 3 (name 'anything-of-team-x'), owner",
                     id="empty owner"),
        pytest.param(VALID.replace("    provider: openai\n", "    provider: openai\n    colour: red\n"),
                     "entry 1 (name 'search'), colour = 'red': unknown field", id="unknown field"),
        pytest.param(VALID.replace("name: support", "name: search"), "duplicate name 'search'", id="duplicate"),
        pytest.param("accounts: [", "not valid YAML", id="not YAML"),
        pytest.param("- a\n- b\n", "expected a mapping", id="not a mapping"),
    ],
)  # fmt: skip
def test_an_invalid_file_is_refused_naming_the_entry_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text(text)
    with pytest.raises(AccountMapError, match=r"account mapping accounts\.yaml") as caught:
        load_accounts(path)
    assert message in str(caught.value)

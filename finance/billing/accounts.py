"""The account mapping: provider projects, workspaces and API keys -> the ledger's owners.

A YAML file (``billing.accounts`` in the settings) names accounts. Each says which billing
lines it covers (``match``: any of ``account_id``, ``project_id``, ``workspace_id``,
``api_key_id``, all must be equal) and which ledger calls are its own (``owner``: any of
``ingest_token``, ``service``, ``team``, ``environment``, all must be equal)::

    version: 1
    accounts:
      - name: search-prod
        provider: openai                 # optional: any provider
        match: {project_id: proj_search}
        owner: {ingest_token: search-prod}
      - name: support
        provider: anthropic
        match: {workspace_id: default}   # null workspace_id = the default workspace
        owner: {service: support-bot, environment: production}

Entries apply in file order; the first match wins on both sides. A billing line no entry
covers is **untagged** (reported with its amount); a ledger call no entry owns belongs to the
unmapped account ``""``. Without a mapping file every line and call is in account ``""``,
and bills are reconciled per day x provider x model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MATCH_FIELDS = ("account_id", "project_id", "workspace_id", "api_key_id")
OWNER_FIELDS = ("ingest_token", "service", "team", "environment")
UNMAPPED = ""


class AccountMapError(ValueError):
    """The mapping file is invalid; the message names the file, the entry and the field."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:/@\- ]+$")
    provider: str | None = Field(None, min_length=1)
    match: dict[str, str]
    owner: dict[str, str]

    @field_validator("match")
    @classmethod
    def _match_fields(cls, value: dict[str, str]) -> dict[str, str]:
        return _known(value, MATCH_FIELDS)

    @field_validator("owner")
    @classmethod
    def _owner_fields(cls, value: dict[str, str]) -> dict[str, str]:
        return _known(value, OWNER_FIELDS)


def _known(value: dict[str, str], allowed: Sequence[str]) -> dict[str, str]:
    if not value:
        raise ValueError(f"give at least one of {', '.join(allowed)}")
    unknown = [key for key in value if key not in allowed]
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (allowed: {', '.join(allowed)})")
    return value


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(1, ge=1, le=1)
    accounts: list[_Entry] = []


@dataclass(frozen=True)
class Account:
    """One mapping entry: which billing lines (``match``, optionally one provider) belong to which owner."""

    name: str
    provider: str | None
    match: tuple[tuple[str, str], ...]
    owner: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class AccountMap:
    """The mapping in force: ``version`` identifies the file content (for provenance)."""

    accounts: tuple[Account, ...] = ()
    version: str = ""

    @property
    def configured(self) -> bool:
        """Whether any account is mapped (without a mapping nothing is untagged)."""
        return bool(self.accounts)

    @property
    def owner_fields(self) -> frozenset[str]:
        """Owner fields the mapping uses (the ledger side groups calls by them)."""
        return frozenset(key for account in self.accounts for key, _ in account.owner)

    def for_line(self, provider: str, ids: Mapping[str, str]) -> str | None:
        """The account a billing line belongs to (``ids`` by MATCH_FIELDS), None if untagged."""
        for account in self.accounts:
            if account.provider is not None and account.provider != provider:
                continue
            if all(ids.get(key, "") == value for key, value in account.match):
                return account.name
        return None if self.accounts else UNMAPPED

    def for_call(self, provider: str, owner: Mapping[str, str]) -> str:
        """The account ledger calls belong to (``owner`` by OWNER_FIELDS), '' if none."""
        for account in self.accounts:
            if account.provider is not None and account.provider != provider:
                continue
            if all(owner.get(key, "") == value for key, value in account.owner):
                return account.name
        return UNMAPPED


def load_accounts(path: Path | None) -> AccountMap:
    """Read and validate a mapping file (None: no mapping). Raises AccountMapError."""
    if path is None:
        return AccountMap()
    import hashlib

    try:
        raw_text = path.read_text()
    except OSError as exc:
        raise AccountMapError(f"account mapping {path}: cannot read it ({exc.strerror})") from None
    try:
        document = yaml.safe_load(raw_text) or {}
    except yaml.YAMLError as exc:
        raise AccountMapError(f"account mapping {path.name}: not valid YAML ({exc})") from None
    if not isinstance(document, dict):
        raise AccountMapError(f"account mapping {path.name}: expected a mapping with version and accounts")
    try:
        parsed = _File.model_validate(document)
    except ValidationError as exc:
        raise AccountMapError("\n".join(_describe(path.name, document, e) for e in exc.errors())) from None
    names = [entry.name for entry in parsed.accounts]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise AccountMapError(f"account mapping {path.name}: accounts: duplicate name {duplicates[0]!r}")
    accounts = tuple(
        Account(e.name, e.provider, tuple(sorted(e.match.items())), tuple(sorted(e.owner.items())))
        for e in parsed.accounts
    )
    digest = hashlib.sha256(raw_text.encode()).hexdigest()[:8]
    return AccountMap(accounts, f"{path.name}@{digest}")


def _describe(file: str, document: Mapping[str, Any], error: Mapping[str, Any]) -> str:
    loc = [str(part) for part in error["loc"]]
    where = ".".join(loc)
    if len(loc) >= 2 and loc[0] == "accounts" and loc[1].isdigit():
        index = int(loc[1])
        entries = document.get("accounts") or []
        name = entries[index].get("name") if index < len(entries) and isinstance(entries[index], dict) else None
        where = (
            f"entry {index + 1}" + (f" (name {name!r})" if name else "") + (f", {'.'.join(loc[2:])}" if loc[2:] else "")
        )
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    return f"account mapping {file}: {where} = {error.get('input')!r}: {message}"

"""Reconcile stored days: the I/O edge around ``reconcile`` and ``trueup``.

For each UTC day: read the bill in force (latest version of every line of complete
imports), the ledger's counted calls of the providers the bill covers that day, run the
pure reconciliation, split billed money over runs (when ``billing.trueup``), and store the
cells, other charges and shares under a new version that becomes current once written.
Re-running a day replaces its results (a late span, a re-price, a restated bill).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from otelspend.clickhouse.client import Store
from otelspend.clickhouse.queries import billing as sql
from otelspend.clickhouse.queries.runs import RUN_ATTRIBUTION
from otelspend.finance.billing import store as billing_store
from otelspend.finance.billing.accounts import AccountMap, load_accounts
from otelspend.finance.billing.lines import BillingLine, Charge, UsageKind
from otelspend.finance.billing.reconcile import (
    CAUSES,
    Cell,
    LedgerRow,
    Reconciliation,
    Tolerances,
    prices_json,
    reconcile,
)
from otelspend.finance.billing.trueup import Share, shares
from otelspend.money import femto_to_usd, usd_to_femto

DAY = 86_400
NS = 10**9
MAX_DAYS = 400
UNATTRIBUTED_LABEL = "(unattributed)"
"""Run dimensions of the share no run takes: an explicit group in every rollup cut."""


@dataclass(frozen=True)
class Options:
    """What a reconciliation reads besides the store."""

    accounts: AccountMap
    tolerances: Tolerances
    trueup: bool = True

    @classmethod
    def from_settings(cls, billing: Any) -> Options:
        """From ``Settings.billing`` (the mapping file is read now: edits apply to the next run)."""
        return cls(
            load_accounts(billing.accounts),
            Tolerances(billing.quantity_tolerance_pct, billing.money_tolerance_pct, billing.money_tolerance_usd),
            billing.trueup,
        )

    def describe(self) -> str:
        """The options as JSON, stored with each reconciled day (what produced it)."""
        t = self.tolerances
        return json.dumps(
            {
                "accounts": self.accounts.version,
                "quantity_tolerance_pct": str(t.quantity_pct),
                "money_tolerance_pct": str(t.money_pct),
                "money_tolerance_usd": str(t.money_usd),
                "trueup": self.trueup,
            },
            sort_keys=True,
        )


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    """UTC days in ``[start, end)``."""
    count = (end - start).days
    if count > MAX_DAYS:
        raise ValueError(f"at most {MAX_DAYS} days at once")
    return [start + dt.timedelta(days=n) for n in range(max(count, 0))]


def reconcile_days(store: Store, days: Iterable[dt.date], options: Options) -> list[dict[str, Any]]:
    """Reconcile and store each day; one summary per day that has bill lines."""
    return [summary for day in sorted(set(days)) if (summary := reconcile_day(store, day, options)) is not None]


def reconcile_day(store: Store, day: dt.date, options: Options) -> dict[str, Any] | None:
    """Reconcile one UTC day and store the result; None when the day has no billing lines."""
    start = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
    lines = [_line(row) for row in billing_store.current_lines(store, start, start + DAY)]
    if not lines:
        return None
    providers = sorted({line.provider for line in lines})
    rows = billing_store.ledger_usage(
        store, start * NS, (start + DAY) * NS, providers, with_team="team" in options.accounts.owner_fields
    )
    result = reconcile(lines, (_ledger_row(row) for row in rows), options.accounts, options.tolerances)
    version = time.time_ns()
    trueup = shares(result.cells) if options.trueup else None
    billing_store.save_reconciliation(
        store,
        day,
        version,
        sql.arrow_table(sql.CELL_SCHEMA, _cell_columns(result, day, version)),
        sql.arrow_table(sql.OTHER_SCHEMA, _other_columns(result, day, version)),
        None if trueup is None else sql.arrow_table(sql.TRUEUP_SCHEMA, _share_columns(store, trueup, day, version)),
        options.describe(),
    )
    return summarize(day, result, trueup)


def summarize(day: dt.date, result: Reconciliation, trueup: list[Share] | None) -> dict[str, Any]:
    """A day's reconciliation in brief; money over the cells compared on money."""
    compared = [c for c in result.cells if c.compared]
    billed = sum(c.billed for c in compared)
    calculated = sum(c.calculated for c in compared)
    confidence: dict[str, int] = {"high": 0, "medium": 0, "low": 0}
    for cell in result.cells:
        confidence[cell.confidence] += 1
    return {
        "day": day.isoformat(),
        "cells": len(result.cells),
        "billed_usd": _usd(billed),
        "calculated_usd": _usd(calculated),
        "variance_usd": _usd(billed - calculated),
        "causes": {name: _usd(sum(c.causes[name] for c in compared)) for name in CAUSES},
        "confidence": confidence,
        "quantity_only_cells": len(result.cells) - len(compared),
        "other_charges_usd": _usd(sum(o.billed for o in result.other)),
        "unattributed_usd": None if trueup is None else _usd(sum(s.billed for s in trueup if s.unattributed)),
    }


def _usd(femto: int) -> str:
    return f"{femto_to_usd(femto):f}"


# -- rows in, rows out ---------------------------------------------------------------------------


def _line(row: Mapping[str, Any]) -> BillingLine:
    return BillingLine(
        format=row["format"],
        provider=row["provider"],
        account_id=row["account_id"],
        project_id=row["project_id"],
        workspace_id=row["workspace_id"],
        api_key_id=row["api_key_id"],
        model_billed=row["model_billed"],
        model=row["model"],
        kind=UsageKind(row["kind"]),
        charge=Charge(row["charge"]),
        period_start=int(row["period_start"].timestamp()),
        period_end=int(row["period_end"].timestamp()),
        quantity=row["quantity"],
        unit=row["unit"],
        amount=row["amount"],
        currency=row["currency"],
        list_amount=row["list_amount"],
        service_tier=row["service_tier"],
        description=row["description"],
        record=row["record"],
        identity=row["identity"],
    )


def _femto(text: str) -> int:
    """A ``Decimal(38, 15)`` rendered by ClickHouse (at most 15 decimals, trailing zeros trimmed)
    as femto-USD: the digits without the point, padded to 15 decimals (a ledger day has ~10^5
    rows of 7 amounts: this is the hot path)."""
    whole, _, fraction = text.partition(".")
    if len(fraction) <= 15 and whole.lstrip("-").isdigit() and (not fraction or fraction.isdigit()):
        femto = int(whole.lstrip("-") + fraction.ljust(15, "0"))
        return -femto if whole[:1] == "-" else femto
    return usd_to_femto(Decimal(text))


def _ledger_row(row: Mapping[str, Any]) -> LedgerRow:
    unpriced = {
        "uncached_input": row["unpriced_uncached_input"],
        "cached_input": row["unpriced_cached_input"],
        "cache_write": row["unpriced_cache_write"],
        "output": row["unpriced_output"],
    }
    cost_by = {
        group: _femto(row[f"cost_{group}"])
        for group in ("uncached_input", "cached_input", "cache_write", "output", "request", "other")
    }
    return LedgerRow(
        hour=int(row["hour"]),
        provider=row["provider"],
        model=row["model"],
        owner={
            "ingest_token": row["ingest_token"],
            "service": row["service"],
            "team": row["team"],
            "environment": row["environment"],
        },
        run_id=row["run_id"],
        calls=int(row["calls"]),
        unpriced_calls=int(row["unpriced_calls"]),
        tokens={
            UsageKind.UNCACHED_INPUT: int(row["uncached_input"]),
            UsageKind.CACHED_INPUT: int(row["cached_input"]),
            UsageKind.CACHE_WRITE_5M: int(row["cache_write_5m"]),
            UsageKind.CACHE_WRITE_1H: int(row["cache_write_1h"]),
            UsageKind.OUTPUT: int(row["output"]),
        },
        unpriced_tokens={k: int(v) for k, v in unpriced.items() if v},
        cost=_femto(row["cost"]),
        cost_by=cost_by,
        tiers=frozenset(row["tiers"]),
    )


_PLACES = Decimal("1e-12")
_TOKEN_KINDS = {
    "uncached_input": UsageKind.UNCACHED_INPUT,
    "cached_input": UsageKind.CACHED_INPUT,
    "cache_write_5m": UsageKind.CACHE_WRITE_5M,
    "cache_write_1h": UsageKind.CACHE_WRITE_1H,
    "output": UsageKind.OUTPUT,
    "requests": UsageKind.REQUEST,
}


def _cell_columns(result: Reconciliation, day: dt.date, version: int) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {name: [] for name in sql.CELL_SCHEMA.names}
    for cell in result.cells:
        values = _cell_values(cell, day, version)
        for name in columns:
            columns[name].append(values[name])
    return columns


def _cell_values(cell: Cell, day: dt.date, version: int) -> dict[str, Any]:
    values: dict[str, Any] = {
        "day": day,
        "version": version,
        "period_start": cell.period_start,
        "period_end": cell.period_end,
        "provider": cell.provider,
        "model": cell.model,
        "model_name": cell.model_name,
        "account": cell.account,
        "mapped": int(cell.mapped),
        "allocated": int(cell.allocated),
        "ledger_calls": cell.ledger_calls,
        "unpriced_calls": cell.unpriced_calls,
        "calculated_usd": femto_to_usd(cell.calculated),
        "billed_usd": femto_to_usd(cell.billed) if cell.compared else None,
        "list_usd": None if cell.listed is None else femto_to_usd(cell.listed),
        "variance_usd": femto_to_usd(cell.variance) if cell.compared else None,
        "confidence": cell.confidence,
        "prices": prices_json(cell),
        "line_ids": list(cell.line_ids),
    }
    for column, kind in _TOKEN_KINDS.items():
        values[f"ledger_{column}"] = cell.ledger_calls if kind is UsageKind.REQUEST else cell.ledger_tokens.get(kind, 0)
    for column, kind in (*_TOKEN_KINDS.items(), ("web_search", UsageKind.WEB_SEARCH)):
        billed = cell.billed_tokens.get(kind)
        values[f"billed_{column}"] = (
            None if billed is None else (Decimal(billed.numerator) / Decimal(billed.denominator)).quantize(_PLACES)
        )
    for cause in CAUSES:
        values[f"{cause}_usd"] = femto_to_usd(cell.causes[cause]) if cell.compared else None
    return values


def _other_columns(result: Reconciliation, day: dt.date, version: int) -> dict[str, list[Any]]:
    return {
        "day": [day] * len(result.other),
        "version": [version] * len(result.other),
        "provider": [o.provider for o in result.other],
        "charge": [o.charge for o in result.other],
        "billed_usd": [femto_to_usd(o.billed) for o in result.other],
        "line_ids": [list(o.line_ids) for o in result.other],
    }


def _share_columns(store: Store, trueup: list[Share], day: dt.date, version: int) -> dict[str, list[Any]]:
    runs = billing_store.run_attribution(store, [s.run_id for s in trueup if not s.unattributed])
    columns: dict[str, list[Any]] = {name: [] for name in sql.TRUEUP_SCHEMA.names}
    for share in trueup:
        run = runs.get(share.run_id)
        # Money of a run not (yet) emitted, or of no run, carries no attribution: unattributed
        # dimensions, placed at its period in time.
        values = {
            "day": day,
            "version": version,
            "run_id": share.run_id,
            "run_start": int(run["run_start_ns"]) if run else share.period_start * NS,
            "period_start": share.period_start,
            "provider": share.provider,
            "model": share.ledger_model,
            "model_key": share.model,
            "account": share.account,
            "unattributed": int(share.unattributed),
            "billed_usd": femto_to_usd(share.billed),
            "calculated_usd": femto_to_usd(share.calculated),
            "confidence": share.confidence,
            "line_ids": list(share.line_ids),
        }
        for name in RUN_ATTRIBUTION:
            values[name] = UNATTRIBUTED_LABEL if share.unattributed else (run or {}).get(name, "") or ""
        for name, value in values.items():
            columns[name].append(value)
    return columns

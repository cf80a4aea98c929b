"""Ground truth of a generated workload, totals read back from a store, and their diff.

``expected(workload, acked)`` is what otelspend must hold after ingesting the acknowledged
requests: every acknowledged span once; per model the calls (failed attempts included),
tokens and cost, priced independently with ``genai_prices.calc_price`` at each call's
start time; runs per workflow type; tool calls, failures and retries. ``store_totals``
reads the same figures from the spans, runs, hourly and daily rollups, and ``compare`` lists every
difference (an empty list means the ledger is exact).

Run as a module to read a stopped server's data from a fresh process (chDB allows one
data path per process)::

    python -m bench.truth totals --dsn chdb:///tmp/x/chdb --database otelspend
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any

from bench.traces import CHAT, MODELS, ROOT, SPAN_BITS, TOOL, Workload

MONEY_TOLERANCE_PER_CALL = Decimal("1e-12")
"""otelspend's compiled prices are property-tested equal to calc_price within 1e-12 USD a call."""
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")


@lru_cache(maxsize=200_000)
def call_cost(model_index: int, day: int, usage: tuple[int, int, int, int, int]) -> Decimal:
    """calc_price of one call (prices of these models change at most at UTC midnight)."""
    from genai_prices import Usage, calc_price

    inp, out, cache_read, cache_write, reasoning = usage
    model = MODELS[model_index]
    values = {"input_tokens": inp, "output_tokens": out, "cache_read_tokens": cache_read}
    if cache_write:
        values["cache_write_tokens"] = cache_write
    if reasoning:
        values["output_reasoning_tokens"] = reasoning
    when = dt.datetime.fromtimestamp(day * 86_400 + 43_200, dt.UTC)
    return calc_price(
        Usage(**values), model.response, provider_id=model.price_provider, genai_request_timestamp=when
    ).total_price


def expected(workload: Workload, acked: Sequence[bool] | None = None) -> dict[str, Any]:
    """Ground truth for the requests marked acknowledged (all of them by default)."""
    present: list[set[int] | None] = [None] * len(workload.traces)
    all_acked = acked is None or all(acked)
    if not all_acked:
        present = [set() for _ in workload.traces]
        mask = (1 << SPAN_BITS) - 1
        for request, ok in zip(workload.requests, acked or (), strict=True):
            if ok:
                for ref in request.refs:
                    target = present[ref >> SPAN_BITS]
                    assert target is not None
                    target.add(ref & mask)

    models: dict[str, dict[str, Any]] = {}
    runs_by_type: dict[str, int] = defaultdict(int)
    totals = {"spans": 0, "runs": 0, "complete_runs": 0, "tool_calls": 0, "tool_failures": 0, "retries": 0}
    cost = Decimal(0)
    for facts, spans_here in zip(workload.traces, present, strict=True):
        indexes: Iterable[int] = range(len(facts.spans)) if spans_here is None else sorted(spans_here)
        seen = 0
        has_root = False
        for index in indexes:
            fact = facts.spans[index]
            seen += 1
            kind = fact[0]
            if kind == ROOT:
                has_root = True
            elif kind == TOOL:
                totals["tool_calls"] += 1
                totals["tool_failures"] += fact[1]
            elif kind == CHAT:
                cost += _add_call(models, fact, totals)
        if not seen:
            continue
        totals["spans"] += seen
        totals["runs"] += 1
        totals["complete_runs"] += has_root
        # Without its root a run has no workflow keys (only the root span carries them).
        runs_by_type[facts.workflow_type if has_root else ""] += 1
    calls = sum(m["calls"] for m in models.values())
    return {
        "seed": workload.seed,
        "base_ns": workload.base_ns,
        "requests": len(workload.requests) if acked is None else sum(bool(a) for a in acked),
        **totals,
        "llm_calls": calls,
        "failed_calls": sum(m["failed"] for m in models.values()),
        "tokens": {name: sum(m[name] for m in models.values()) for name in TOKEN_FIELDS},
        "cost_usd": str(cost),
        "runs_by_workflow_type": dict(sorted(runs_by_type.items())),
        "models": {name: {**m, "cost_usd": str(m["cost_usd"])} for name, m in sorted(models.items())},
    }


def _add_call(models: dict[str, dict[str, Any]], fact: tuple[Any, ...], totals: dict[str, int]) -> Decimal:
    _, model_index, start_ns, inp, out, cache_read, cache_write, reasoning, failed, retries = fact
    model = MODELS[model_index]
    name = model.request if failed else model.response
    entry = models.get(name)
    if entry is None:
        entry = models[name] = {"provider": model.provider, "calls": 0, "failed": 0, "cost_usd": Decimal(0)}
        entry.update(dict.fromkeys(TOKEN_FIELDS, 0))
    entry["calls"] += 1
    if failed:
        entry["failed"] += 1
        return Decimal(0)
    totals["retries"] += retries
    usage = (inp, out, cache_read, cache_write, reasoning)
    for key, value in zip(TOKEN_FIELDS, usage, strict=True):
        entry[key] += value
    price = call_cost(model_index, start_ns // (86_400 * 10**9), usage)
    entry["cost_usd"] += price
    return price


# -- reading a store ------------------------------------------------------------------------


def store_totals(store: Any) -> dict[str, Any]:
    """The figures ``expected`` predicts, read from spans, runs and the hourly and daily rollups
    (``daily_*`` keys)."""
    db = store.database
    spans_final, distinct = store.rows(f"SELECT count(), uniqExact(trace_id, span_id) FROM {db}.spans FINAL")[0]
    models: dict[str, dict[str, Any]] = {}
    for row in store.dicts(
        f"""SELECT model, any(provider) AS provider, count() AS calls,
                   countIf(status_code = 'ERROR') AS failed,
                   sum(ifNull(input_tokens, 0)) AS input_tokens, sum(ifNull(output_tokens, 0)) AS output_tokens,
                   sum(ifNull(cache_read_tokens, 0)) AS cache_read_tokens,
                   sum(ifNull(cache_write_tokens, 0)) AS cache_write_tokens,
                   sum(ifNull(reasoning_tokens, 0)) AS reasoning_tokens,
                   sum(ifNull(cost_usd, toDecimal128(0, 15))) AS cost,
                   countIf(cost_usd IS NULL AND status_code != 'ERROR') AS unpriced
            FROM {db}.spans FINAL WHERE call_role = 'call' GROUP BY model"""
    ):
        name = row.pop("model")
        row["cost_usd"] = str(row.pop("cost"))
        models[name] = row
    runs = store.dicts(
        f"""SELECT count() AS runs, countIf(complete = 1) AS complete_runs, sum(spans) AS spans,
                   sum(llm_calls) AS llm_calls, sum(tool_calls) AS tool_calls, sum(tool_failures) AS tool_failures,
                   sum(retries) AS retries, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
                   sum(cache_read_tokens) AS cache_read_tokens, sum(cache_write_tokens) AS cache_write_tokens,
                   sum(reasoning_tokens) AS reasoning_tokens, sum(ifNull(cost_usd, toDecimal128(0, 15))) AS cost_usd
            FROM {db}.runs FINAL"""
    )[0]
    runs_by_type = dict(store.rows(f"SELECT workflow_type, count() FROM {db}.runs FINAL GROUP BY workflow_type"))
    hourly = _rollup_figures(store, db, "hourly")
    daily = _rollup_figures(store, db, "daily")
    return {
        "spans": spans_final,
        "distinct_spans": distinct,
        "models": models,
        "runs": _plain(runs),
        "runs_by_workflow_type": dict(sorted(runs_by_type.items())),
        **hourly,
        **{f"daily_{key}": value for key, value in daily.items()},
    }


def _rollup_figures(store: Any, db: str, period: str) -> dict[str, Any]:
    """Totals, runs per workflow type and per-model figures from the hourly or daily rollups."""
    runs_table, calls_table = f"{db}.rollup_runs_{period}", f"{db}.rollup_calls_{period}"
    totals = store.dicts(
        f"""SELECT sum(runs) AS runs, sum(calls) AS llm_calls, sum(tool_calls) AS tool_calls,
                   sum(tool_failures) AS tool_failures, sum(retries) AS retries,
                   sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
                   sum(cache_read_tokens) AS cache_read_tokens, sum(cache_write_tokens) AS cache_write_tokens,
                   sum(reasoning_tokens) AS reasoning_tokens, sum(cost_usd) AS cost_usd
            FROM {runs_table}"""
    )[0]
    by_type = store.rows(
        f"SELECT workflow_type, sum(runs) FROM {runs_table} GROUP BY workflow_type HAVING sum(runs) != 0"
    )
    models = {
        row.pop("model"): {**row, "cost_usd": str(row["cost_usd"])}
        for row in store.dicts(
            f"""SELECT model, sum(calls) AS calls, sum(input_tokens) AS input_tokens,
                       sum(output_tokens) AS output_tokens, sum(cache_read_tokens) AS cache_read_tokens,
                       sum(cache_write_tokens) AS cache_write_tokens, sum(reasoning_tokens) AS reasoning_tokens,
                       sum(cost_usd) AS cost_usd
                FROM {calls_table} WHERE model != '' GROUP BY model HAVING calls != 0"""
        )
    }
    # The calls rollups' runs column (run_mask bit 0) counts each run exactly once.
    calls_runs = store.scalar(f"SELECT sum(runs) FROM {calls_table}")
    return {
        "rollup_runs": _plain(totals),
        "rollup_runs_by_workflow_type": dict(sorted(dict(by_type).items())),
        "rollup_models": dict(sorted(models.items())),
        "rollup_calls_runs": int(calls_runs or 0),
    }


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {key: str(value) if isinstance(value, Decimal) else int(value or 0) for key, value in row.items()}


# -- comparing --------------------------------------------------------------------------------


def compare(truth: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Every way the stored figures differ from the ground truth (empty: exact)."""
    check = _Comparison(tolerance=MONEY_TOLERANCE_PER_CALL * max(truth["llm_calls"], 1))
    check.same("spans (FINAL)", truth["spans"], got["spans"])
    check.same("distinct (trace_id, span_id)", truth["spans"], got["distinct_spans"])
    _compare_runs(check, truth, got)
    _compare_models(check, truth, got)
    return check.problems


_PERIODS = (("hourly", ""), ("daily", "daily_"))
"""(rollup period, key prefix of its totals)."""


class _Comparison:
    """Collects the differences: exact for counts, within ``tolerance`` USD for money."""

    def __init__(self, tolerance: Decimal) -> None:
        self.tolerance = tolerance
        self.problems: list[str] = []

    def same(self, label: str, want: Any, have: Any, money: bool = False) -> None:
        """Record a problem unless ``have`` is ``want`` (money: within the tolerance)."""
        if money:
            if abs(Decimal(str(want)) - Decimal(str(have or 0))) > self.tolerance:
                self.problems.append(f"{label}: expected {want}, stored {have}")
        elif want != have:
            self.problems.append(f"{label}: expected {want}, stored {have}")


def _compare_runs(check: _Comparison, truth: dict[str, Any], got: dict[str, Any]) -> None:
    """Run totals: raw runs and both run rollups, then per workflow type and distinct runs at call level."""
    tokens = truth["tokens"]
    run_sources = [("runs", got["runs"])] + [(f"rollup_runs_{p}", got[f"{k}rollup_runs"]) for p, k in _PERIODS]
    for prefix, runs in run_sources:
        check.same(f"{prefix}: runs", truth["runs"], runs["runs"])
        for key in ("llm_calls", "tool_calls", "tool_failures", "retries"):
            check.same(f"{prefix}: {key}", truth[key], runs[key])
        for key in TOKEN_FIELDS:
            check.same(f"{prefix}: {key}", tokens[key], runs[key])
        check.same(f"{prefix}: cost_usd", truth["cost_usd"], runs["cost_usd"], money=True)
    check.same("runs: complete", truth["complete_runs"], got["runs"]["complete_runs"])
    check.same("runs: spans", truth["spans"], got["runs"]["spans"])
    check.same("runs by workflow_type", truth["runs_by_workflow_type"], got["runs_by_workflow_type"])
    for period, key in _PERIODS:
        by_type = got[f"{key}rollup_runs_by_workflow_type"]
        check.same(f"rollup_runs_{period} by workflow_type", truth["runs_by_workflow_type"], by_type)
        check.same(f"rollup_calls_{period}: distinct runs", truth["runs"], got[f"{key}rollup_calls_runs"])


def _compare_models(check: _Comparison, truth: dict[str, Any], got: dict[str, Any]) -> None:
    """Per model: calls, tokens and cost in the spans and both call rollups; failures and unpriced in the spans."""
    model_sources = [("spans", got["models"])]
    model_sources += [(f"rollup_calls_{period}", got[f"{key}rollup_models"]) for period, key in _PERIODS]
    for source, table in model_sources:
        check.same(f"models ({source})", sorted(truth["models"]), sorted(table))
    for name, want in truth["models"].items():
        for source, table in model_sources:
            have = table.get(name)
            if have is None:
                continue
            check.same(f"{source} {name}: calls", want["calls"], have["calls"])
            for key in TOKEN_FIELDS:
                check.same(f"{source} {name}: {key}", want[key], have[key])
            check.same(f"{source} {name}: cost_usd", want["cost_usd"], have["cost_usd"], money=True)
        spans_model = got["models"].get(name)
        if spans_model is not None:
            check.same(f"spans {name}: failed", want["failed"], spans_model["failed"])
            check.same(f"spans {name}: unpriced", 0, spans_model["unpriced"])


def stored_span_ids(store: Any) -> list[str]:
    """Every stored span as ``trace_id:span_id`` (small data sets only)."""
    rows = store.rows(f"SELECT DISTINCT trace_id, span_id FROM {store.database}.spans ORDER BY trace_id, span_id")
    return [f"{trace_id}:{span_id}" for trace_id, span_id in rows]


def read_totals(dsn: str, database: str, *, span_ids: bool = False) -> dict[str, Any]:
    """The stored totals of a stopped server's store (and every span id, if asked)."""
    from otelspend.clickhouse.client import Store

    store = Store(dsn, database)
    try:
        totals = store_totals(store)
        if span_ids:
            totals["span_ids"] = stored_span_ids(store)
        return totals
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``totals``: print the stored totals of a store as JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    totals = sub.add_parser("totals", help="print the stored totals of a (stopped) server as JSON")
    totals.add_argument("--dsn", required=True)
    totals.add_argument("--database", default="otelspend")
    totals.add_argument("--span-ids", action="store_true", help="also list every stored trace_id:span_id")
    args = parser.parse_args(argv)
    json.dump(read_totals(args.dsn, args.database, span_ids=args.span_ids), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

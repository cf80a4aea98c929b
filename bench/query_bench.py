"""Latency of the REST API's main queries over a large synthetic ledger (embedded chDB).

Generates (or reuses) a dataset of ``--spans`` spans with bench/synth.py, then calls the
API in-process (FastAPI app over the store, through Starlette's TestClient: routing,
validation, SQL, JSON) and prints p50 / p95 / max per query, with the machine it ran on.
Appends the table to bench/RESULTS.md.

    python -m bench.query_bench --spans 10000000 --path /tmp/otelspend-bench
    python -m bench.query_bench --path /tmp/otelspend-bench --reuse     # skip generation

Target: p95 under 150 ms for rollups and timeseries over the default window.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.machine import machine

TARGET_MS = 150.0
RESULTS = Path(__file__).with_name("RESULTS.md")


@dataclass(frozen=True)
class Query:
    """One timed API query: its name, kind, path and parameters."""

    name: str
    kind: str
    """rollups | timeseries | runs | outliers (only the first two have the 150 ms target)."""
    path: str
    params: dict[str, Any]


def _days_ago(days: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).isoformat()


def queries(sample_run: str) -> list[Query]:
    """The dashboard's and a finance user's typical queries, over 24 h, 7 and 30 days."""
    week, month = {"from": _days_ago(7)}, {"from": _days_ago(30)}
    wf = {"group_by": "workflow_type", "metrics": "cost_usd,runs,cost_per_success_usd"}
    success = {"group_by": "workflow_type", "metrics": "cost_per_success_usd,success_rate,successful_runs"}
    tenant_model = {"group_by": "tenant,model", "metrics": "cost_usd,calls,runs", "limit": 100}
    loaded = {
        "group_by": "tenant",
        "metrics": "direct_cost_usd,allocated_cost_usd,loaded_cost_usd,loaded_cost_per_success_usd",
        "limit": 100,
    }
    margin = {"group_by": "tenant", "metrics": "revenue_usd,loaded_cost_usd,margin_usd,margin_pct", "limit": 100}
    return [
        Query("most expensive workflows, 24h", "rollups", "/v1/rollups", wf),
        Query("cost per successful completion by workflow, 24h", "rollups", "/v1/rollups", success),
        Query("spend by tenant x model, 24h", "rollups", "/v1/rollups", tenant_model),
        Query("p95 latency by agent, 24h", "rollups", "/v1/rollups",
              {"group_by": "agent", "metrics": "latency_p95_ms,calls"}),
        Query("most expensive workflows, 7d", "rollups", "/v1/rollups", {**wf, **week}),
        Query("spend by tenant x model, 7d", "rollups", "/v1/rollups", {**tenant_model, **week}),
        Query("most expensive workflows, 30d", "rollups", "/v1/rollups", {**wf, **month}),
        Query("spend by tenant x model, 30d", "rollups", "/v1/rollups", {**tenant_model, **month}),
        Query("hourly cost, top 5 models, 24h", "timeseries", "/v1/timeseries",
              {"group_by": "model", "metrics": "cost_usd,calls", "limit": 5}),
        Query("hourly cost and runs, 24h", "timeseries", "/v1/timeseries", {"metrics": "cost_usd,runs"}),
        Query("daily cost by workflow, 30d", "timeseries", "/v1/timeseries",
              {"bucket": "day", "group_by": "workflow_type", "metrics": "cost_usd,runs"}),
        # issue 14: loaded cost (direct + allocated shared costs), revenue and margin
        Query("loaded cost by tenant, 24h", "rollups", "/v1/rollups", loaded),
        Query("loaded cost by tenant, 7d", "rollups", "/v1/rollups", {**loaded, **week}),
        Query("loaded cost by tenant, 30d", "rollups", "/v1/rollups", {**loaded, **month}),
        Query("margin by tenant, 30d", "rollups", "/v1/rollups", {**margin, **month}),
        Query("loaded cost per success by workflow, 7d", "rollups", "/v1/rollups",
              {"group_by": "workflow_type", "metrics": "loaded_cost_usd,loaded_cost_per_success_usd", **week}),
        Query("allocated cost by pool x tenant, 30d", "rollups", "/v1/rollups",
              {"group_by": "pool,tenant", "metrics": "allocated_cost_usd", "limit": 100, **month}),
        Query("cost by cost kind, 7d", "rollups", "/v1/rollups",
              {"group_by": "cost_kind", "metrics": "direct_cost_usd,allocated_cost_usd", **week}),
        Query("costliest runs, 24h", "runs", "/v1/runs", {"limit": 50}),
        Query("slowest runs of one tenant, 24h", "runs", "/v1/runs",
              {"order_by": "duration_ms", "filter.tenant": "tenant-000", "limit": 50}),
        Query("runs calling one tool, 24h", "runs", "/v1/runs", {"filter.tool": "search", "limit": 50}),
        Query("one run with its span tree", "runs", f"/v1/runs/{sample_run}", {}),
        Query("outliers, 24h", "outliers", "/v1/outliers", {}),
    ]  # fmt: skip


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def measure(call: Callable[[], Any], repeat: int, warmup: int = 2) -> list[float]:
    """Milliseconds of each of ``repeat`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def main() -> int:
    """Build (or reuse) the ledger, time every query, print and append the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=10_000_000, help="dataset size (default 10M)")
    parser.add_argument("--days", type=float, default=30.0, help="time span of the dataset, ending now")
    parser.add_argument("--path", type=Path, default=Path("/tmp/otelspend-bench"), help="chDB data directory")
    parser.add_argument("--database", default="bench")
    parser.add_argument("--reuse", action="store_true", help="use the dataset already at --path")
    parser.add_argument("--repeat", type=int, default=30, help="timed calls per query")
    parser.add_argument("--no-results", action="store_true", help="do not append to bench/RESULTS.md")
    parser.add_argument("--only", default="", help="time only the queries whose name contains one of these (a,b)")
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from bench.synth import generate
    from otelspend.api.deps import ApiContext
    from otelspend.api.main import create_app
    from otelspend.clickhouse.client import Store
    from otelspend.clickhouse.migrate import migrate
    from otelspend.metrics import Metrics
    from otelspend.settings import load_settings

    settings = load_settings(
        {"clickhouse": {"dsn": f"chdb://{args.path}", "database": args.database}, "api": {"max_rows": 10_000}},
        environ={},
    )
    store = Store(settings.clickhouse.dsn, args.database)
    migrate(store)
    generated = ""
    if not args.reuse or not store.scalar(f"SELECT count() FROM {args.database}.runs"):
        started = time.monotonic()
        stats = generate(
            store,
            spans=args.spans,
            days=args.days,
            progress=lambda done, total: print(f"  generating: {done}/{total} runs", file=sys.stderr),
        )
        generated = f"generated in {time.monotonic() - started:.0f} s"
        print(f"dataset {generated}: {stats['rows']}", file=sys.stderr)
    db = args.database
    rollups = [f"rollup_{k}_{p}" for p in ("hourly", "daily") for k in ("runs", "calls", "alloc")]
    tables = ("spans", "runs", "run_calls", "allocations", *rollups)
    counts = {
        table: store.scalar(
            f"SELECT sum(rows) FROM system.parts WHERE database = '{db}' AND table = '{table}' AND active"
        )
        for table in tables
    }
    sample_run = store.scalar(f"SELECT run_id FROM {db}.runs WHERE start_time > now() - INTERVAL 1 DAY LIMIT 1")
    client = TestClient(create_app(ApiContext(settings=settings, store=store, metrics=Metrics())))

    host = machine()
    print(
        f"machine: {host['cpu']}, {host['cores']} cores, {host['ram']} RAM; chDB {host['chdb']}; "
        f"load average {host['load']} (1/5/15 min, the cores are shared)"
    )
    print("dataset: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    wanted = [part.strip() for part in args.only.split(",") if part.strip()]
    rows = _time_queries(client, sample_run, args.repeat, wanted)

    if not args.no_results:
        _append_results(host, counts, generated, args, rows)
    store.close()
    return 0


def _time_queries(client: Any, sample_run: str, repeat: int, wanted: list[str]) -> list[Any]:
    """Time each query (those named in ``wanted``, or all) through the API; print a line each."""
    rows = []
    for q in queries(sample_run):
        if wanted and not any(part in q.name for part in wanted):
            continue

        def call(q: Query = q) -> None:
            response = client.get(q.path, params=q.params)
            if response.status_code != 200:
                raise RuntimeError(f"{q.name}: {response.status_code} {response.text[:300]}")

        timings = measure(call, repeat)
        p50, p95 = statistics.median(timings), percentile(timings, 0.95)
        verdict = ("ok" if p95 < TARGET_MS else "OVER") if q.kind in ("rollups", "timeseries") else ""
        rows.append((q, p50, p95, max(timings), verdict))
        print(
            f"  {q.kind:<10} {q.name:<48} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  max {max(timings):7.1f} ms  {verdict}"
        )
    return rows


def _append_results(
    host: dict[str, str], counts: dict[str, int], generated: str, args: argparse.Namespace, rows: list[Any]
) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## Query latency, {stamp}",
        "",
        f"Machine: {host['cpu']}, {host['cores']} cores, {host['ram']} RAM; {host['os']}; "
        f"Python {host['python']}, chDB {host['chdb']} (embedded). Load average before the run: "
        f"{host['load']} (1/5/15 min; other work shares these cores).",
        f"Dataset: {', '.join(f'{t} {n:,}' for t, n in counts.items())}; {args.days:g} days"
        + (f"; {generated}" if generated else "")
        + ".",
        f"Each query: 2 warm-up calls, then {args.repeat} timed calls through the API (in-process TestClient). "
        f"Target: p95 < {TARGET_MS:.0f} ms for rollups and timeseries.",
        "",
        "| kind | query | p50 ms | p95 ms | max ms | target |",
        "|---|---|---:|---:|---:|---|",
    ]
    for q, p50, p95, worst, verdict in rows:
        lines.append(f"| {q.kind} | {q.name} | {p50:.1f} | {p95:.1f} | {worst:.1f} | {verdict} |")
    with RESULTS.open("a") as out:
        if out.tell() == 0:
            out.write("# Benchmark results\n\nAppended by the bench scripts; newest last.\n\n")
        out.write("\n".join(lines) + "\n\n")


if __name__ == "__main__":
    raise SystemExit(main())

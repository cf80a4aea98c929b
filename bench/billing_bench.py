"""Billing benchmarks: importing a large FOCUS file, and reconciliation over a large ledger.

    python -m bench.billing_bench import [--lines 1000000] [--file bench/out/focus-1m.csv]
    python -m bench.billing_bench reconcile --path /tmp/otelspend-bench [--reuse] [--spans 10000000]

``import`` writes a FOCUS 1.2 CSV of ``--lines`` AI usage rows (30 days x hours x 350
deployments x 4 token meters, every row distinct), then imports it into a fresh embedded
store exactly as ``otelspend billing import --format focus`` does (streamed, batched,
all or nothing; no reconciliation), and reports lines/s and the peak resident memory above
the process's before the import (sampled every 20 ms). Targets: < 60 s, < 300 MiB extra.

``reconcile`` takes the synthetic ledger of ``bench.query_bench`` (``--reuse`` an existing
one at ``--path``, else generate ``--spans``), bills each of its last 30 days per provider x
model x token kind (as FOCUS lines, with a few cells changed so causes are not all zero),
imports the bill, reconciles the 30 days (timed), then times ``GET /v1/reconciliation`` and
``GET /v1/rollups`` with ``billed_cost_usd`` through the API. Target: p95 < 300 ms for
``GET /v1/reconciliation`` over 30 days.

Both append their figures, with the machine, to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil

from bench.machine import machine
from bench.query_bench import measure, percentile

RESULTS = Path(__file__).with_name("RESULTS.md")
OUT = Path(__file__).with_name("out")
IMPORT_TARGET_S = 60.0
IMPORT_TARGET_MIB = 300.0
QUERY_TARGET_MS = 300.0
FOCUS_HEADER = [
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
    "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd",
    "ChargePeriodStart", "ConsumedQuantity", "ConsumedUnit", "ContractedCost", "EffectiveCost", "InvoiceIssuerName",
    "ListCost", "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName", "RegionId", "ResourceId",
    "ServiceCategory", "ServiceName", "ServiceSubcategory", "SkuId", "SkuMeter", "SkuPriceId", "SubAccountId", "Tags",
    "x_Model", "x_UsageKind",
]  # fmt: skip
METERS = (
    ("input", Decimal("2.50")),
    ("cached input", Decimal("1.25")),
    ("output", Decimal("10.00")),
    ("cache write", Decimal("3.125")),
)
MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "o4-mini", "gpt-5")


# -- 1M-line FOCUS import -------------------------------------------------------------------------


def write_focus(path: Path, lines: int, start: dt.datetime) -> None:
    """``lines`` distinct hourly AI usage rows (deployment x hour x meter), streamed to disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    hours = 30 * 24
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(FOCUS_HEADER)
        for n in range(lines):
            meter, price = METERS[n % 4]
            hour = (n // 4) % hours
            deployment = n // (4 * hours)
            model = MODELS[deployment % len(MODELS)]
            tokens = 1_000 + (n * 7919) % 250_000
            cost = (Decimal(tokens) * price / 1_000_000).quantize(Decimal("1e-10"))
            begin = start + dt.timedelta(hours=hour)
            end = begin + dt.timedelta(hours=1)
            writer.writerow([
                cost, "ba-001", "Acme", "USD", "2025-07-01T00:00:00Z", "2025-06-01T00:00:00Z", "Usage", "",
                f"{model} {meter} tokens", "Usage-Based", f"{end:%Y-%m-%dT%H:%M:%SZ}", f"{begin:%Y-%m-%dT%H:%M:%SZ}",
                tokens, "Tokens", cost, cost, "Microsoft", cost, tokens, "Tokens", "Microsoft", "Microsoft", "eastus",
                f"/subscriptions/s1/deployments/dep-{deployment:04d}", "AI and Machine Learning", "Azure OpenAI",
                "Generative AI", f"sku-{meter}", f"{model} {meter} 1M Tokens", f"price-{model}-{meter}",
                f"sub-{deployment % 12}", "", model, meter.replace(" ", "_"),
            ])  # fmt: skip


class PeakRss:
    """Samples this process's resident memory every 20 ms; ``peak`` is the largest seen."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_import(args: argparse.Namespace) -> int:
    """Write (or reuse) the FOCUS file and time its import, sampling peak memory."""
    from otelspend.clickhouse.client import Store
    from otelspend.clickhouse.migrate import migrate
    from otelspend.finance.billing import service

    path: Path = args.file
    if not path.exists() or args.regenerate:
        started = time.monotonic()
        write_focus(path, args.lines, dt.datetime(2025, 6, 1, tzinfo=dt.UTC))
        print(f"wrote {args.lines:,} FOCUS rows to {path} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    size_mib = path.stat().st_size / 2**20
    with tempfile.TemporaryDirectory(prefix="otelspend-billing-bench-") as directory:
        store = Store(f"chdb://{directory}", "bench")
        migrate(store)
        store.scalar("SELECT count() FROM bench.billing_lines")  # the engine is up before the baseline
        host = machine()
        baseline = psutil.Process().memory_info().rss
        with PeakRss() as rss:
            started, cpu_started = time.monotonic(), time.process_time()
            result = service.import_file(store, path, format="focus", source="bench")
            seconds, cpu = time.monotonic() - started, time.process_time() - cpu_started
        stored = store.scalar("SELECT count() FROM bench.billing_lines")
        store.close()
    extra_mib = (rss.peak - baseline) / 2**20
    verdict = "ok" if seconds < IMPORT_TARGET_S and extra_mib < IMPORT_TARGET_MIB else "OVER"
    print(
        f"imported {result.lines:,} lines ({stored:,} stored, {size_mib:.0f} MiB file) in {seconds:.1f} s "
        f"({cpu:.1f} s of CPU, every thread) = "
        f"{result.lines / seconds:,.0f} lines/s; peak RSS {rss.peak / 2**20:.0f} MiB, "
        f"{extra_mib:.0f} MiB above the {baseline / 2**20:.0f} MiB before the import: {verdict}"
    )
    if not args.no_results:
        _append([
            f"## Billing import, {_stamp()}",
            "",
            _machine_line(host),
            f"File: FOCUS 1.2 CSV, {result.lines:,} AI usage lines ({size_mib:.0f} MiB, 34 columns), imported with "
            "`service.import_file(..., format=\"focus\")` into a fresh embedded store (streamed, "
            f"{service.BATCH_LINES:,}-line inserts, all or nothing, no reconciliation).",
            "",
            "| lines | seconds | CPU seconds | lines/s | peak RSS MiB | extra MiB | target (< 60 s, < 300 MiB) |",
            "|---:|---:|---:|---:|---:|---:|---|",
            f"| {result.lines:,} | {seconds:.1f} | {cpu:.1f} | {result.lines / seconds:,.0f} | {rss.peak / 2**20:.0f} "
            f"| {extra_mib:.0f} | {verdict} |",
        ])  # fmt: skip
    return 0 if verdict == "ok" else 1


# -- reconciliation over the large ledger ---------------------------------------------------------

LEDGER_BY_DAY = """
SELECT toDate(start_time) AS day, provider, model, count() AS calls,
       sum(greatest(toInt64(ifNull(input_tokens, 0)) - toInt64(ifNull(cache_read_tokens, 0))
           - toInt64(ifNull(cache_write_tokens, 0)), 0)) AS uncached_input,
       sum(toInt64(ifNull(cache_read_tokens, 0))) AS cached_input,
       sum(toInt64(ifNull(cache_write_tokens, 0))) AS cache_write,
       sum(toInt64(ifNull(output_tokens, 0))) AS output,
       toString(sum(ifNull(cost_usd, toDecimal128(0, 15)))) AS cost
FROM {db}.spans FINAL
WHERE call_role = 'call' AND cost_usd IS NOT NULL AND start_time >= {a:DateTime} AND start_time < {b:DateTime}
GROUP BY day, provider, model ORDER BY day, provider, model
"""
FOCUS_PROVIDER = {"openai": ("OpenAI", "OpenAI API"), "anthropic": ("Anthropic", "Claude API"),
                  "gcp.gemini": ("Google", "Gemini API")}  # fmt: skip


def write_bill(store: Any, path: Path, first: dt.date, days: int) -> int:
    """A FOCUS bill of the ledger's priced calls per day x provider x model: one line per
    token kind with its quantity, and the money on a line of its own (the synthetic ledger
    stores each call's cost, not its components). One cell in twenty bills 3 % more input
    tokens and money, so causes are not all zero."""
    rows = store.dicts(
        LEDGER_BY_DAY.replace("{db}", store.database),
        {"a": dt.datetime.combine(first, dt.time(), dt.UTC),
         "b": dt.datetime.combine(first + dt.timedelta(days=days), dt.time(), dt.UTC)},
    )  # fmt: skip
    written = 0
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(FOCUS_HEADER)
        for index, row in enumerate(rows):
            if row["provider"] not in FOCUS_PROVIDER:
                continue
            provider, service = FOCUS_PROVIDER[row["provider"]]
            begin = dt.datetime.combine(row["day"], dt.time(), dt.UTC)
            end = begin + dt.timedelta(days=1)
            cost = Decimal(row["cost"])
            quantities = {kind: int(row[kind]) for kind in ("uncached_input", "cached_input", "cache_write", "output")}
            if index % 20 == 0 and quantities["uncached_input"]:
                cost += (cost * 3 / 100).quantize(Decimal("1e-15"))
                quantities["uncached_input"] += quantities["uncached_input"] * 3 // 100
            for kind, amount in (*((k, (q, Decimal(0))) for k, q in quantities.items()), ("other", (None, cost))):
                tokens, money = amount
                writer.writerow([
                    money, "ba-bench", "Bench", "USD", "", "", "Usage", "", f"{row['model']} {kind}", "Usage-Based",
                    f"{end:%Y-%m-%dT%H:%M:%SZ}", f"{begin:%Y-%m-%dT%H:%M:%SZ}", "" if tokens is None else tokens,
                    "" if tokens is None else "Tokens", money, money, provider, money, "" if tokens is None else tokens,
                    "" if tokens is None else "Tokens", provider, provider, "", "", "AI and Machine Learning", service,
                    "Generative AI", "", f"{row['model']} {kind}", "", "", "", row["model"], kind,
                ])  # fmt: skip
                written += 1
    return written


def run_reconcile(args: argparse.Namespace) -> int:
    """Bill 30 days of the synthetic ledger, reconcile them, then time the reconciliation queries."""
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
    host = machine()
    store = Store(settings.clickhouse.dsn, args.database)
    migrate(store)
    generated = ""
    if not args.reuse or not store.scalar(f"SELECT count() FROM {args.database}.runs"):
        started = time.monotonic()
        generate(store, spans=args.spans, days=30.0,
                 progress=lambda done, total: print(f"  generating: {done}/{total} runs", file=sys.stderr))  # fmt: skip
        generated = f"generated in {time.monotonic() - started:.0f} s"
    spans = store.scalar(f"SELECT count() FROM {args.database}.spans FINAL")
    runs = store.scalar(f"SELECT count() FROM {args.database}.runs FINAL")
    today = dt.datetime.now(dt.UTC).date()
    first = today - dt.timedelta(days=30)
    prepared = _prepare(store, args, settings, first, today)
    settled = _settle(store, args.database)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())

    client = TestClient(create_app(ApiContext(settings=settings, store=store, metrics=Metrics())))
    window = {"from": f"{first.isoformat()}T00:00:00Z", "to": f"{today.isoformat()}T00:00:00Z"}
    queries = [
        ("reconciliation, 30 days, day x provider x model x account", "/v1/reconciliation", window),
        ("reconciliation, 30 days, by day and provider", "/v1/reconciliation", {**window, "group_by": "day,provider"}),
        ("reconciliation, 30 days, by model", "/v1/reconciliation", {**window, "group_by": "model"}),
        ("rollups billed_cost_usd by tenant, 30 days", "/v1/rollups",
         {**window, "group_by": "tenant", "metrics": "cost_usd,billed_cost_usd,variance_usd"}),
        ("rollups billed_cost_usd by model, 30 days", "/v1/rollups",
         {**window, "group_by": "model", "metrics": "cost_usd,billed_cost_usd,billed_confidence"}),
    ]  # fmt: skip
    results = []
    for name, path, params in queries:

        def call(path: str = path, params: dict[str, Any] = params) -> None:
            response = client.get(path, params=params)
            if response.status_code != 200:
                raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")

        timings = measure(call, args.repeat)
        p50, p95 = statistics.median(timings), percentile(timings, 0.95)
        verdict = ("ok" if p95 < QUERY_TARGET_MS else "OVER") if path == "/v1/reconciliation" else ""
        results.append((name, p50, p95, max(timings), verdict))
        print(f"  {name:<58} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  max {max(timings):7.1f} ms  {verdict}")
    store.close()
    print(f"ledger {spans:,} spans, {runs:,} runs; background merges settled in {settled:.0f} s; load before the "
          f"queries {load}")  # fmt: skip
    if not args.no_results:
        _append([
            f"## Reconciliation over the synthetic ledger, {_stamp()}",
            "",
            _machine_line(host),
            f"Ledger: {spans:,} spans, {runs:,} runs over 30 days (bench.synth{'; ' + generated if generated else ''})"
            f". {prepared}",
            f"Queries after the store's background merges settled ({settled:.0f} s); load average just before them: "
            f"{load}. Each query: 2 warm-up calls, then {args.repeat} timed calls through the API (in-process "
            "TestClient). "
            f"Target: p95 < {QUERY_TARGET_MS:.0f} ms for GET /v1/reconciliation over 30 days.",
            "",
            "| query | p50 ms | p95 ms | max ms | target |",
            "|---|---:|---:|---:|---|",
            *(f"| {n} | {p50:.1f} | {p95:.1f} | {worst:.1f} | {v} |" for n, p50, p95, worst, v in results),
        ])  # fmt: skip
    return 0 if all(v != "OVER" for *_, v in results) else 1


def _settle(store: Any, database: str, limit_s: float = 300.0) -> float:
    """Wait (bounded) until the store has no merges or mutations running in ``database``: the
    reconciliation just wrote and deleted rows, and the latency asked about is a steady store's."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        busy = store.scalar(
            "SELECT (SELECT count() FROM system.merges WHERE database = {db:String})"
            " + (SELECT count() FROM system.mutations WHERE database = {db:String} AND NOT is_done)",
            {"db": database},
        )
        if not busy:
            break
        time.sleep(1.0)
    return time.monotonic() - started


def _prepare(store: Any, args: argparse.Namespace, settings: Any, first: dt.date, today: dt.date) -> str:
    """Bill the 30 days, import the bill and reconcile them (unless ``--queries-only``); says what was done."""
    from otelspend.clickhouse.queries import billing as billing_queries
    from otelspend.finance.billing import service
    from otelspend.finance.billing.days import Options, days_between, reconcile_days

    if args.queries_only:
        reconciled = store.dicts(*billing_queries.reconciled_days(args.database, first, today))
        if len(reconciled) < 30:
            raise SystemExit(f"--queries-only: {len(reconciled)} of the 30 days are reconciled; run without it")
        return "Queries only, over the bill, import and reconciliation of an earlier run."
    else:
        bill = OUT / f"ledger-bill-{uuid.uuid4().hex[:8]}.csv"
        OUT.mkdir(exist_ok=True)
        started = time.monotonic()
        lines = write_bill(store, bill, first, 30)
        bill_seconds = time.monotonic() - started
        started = time.monotonic()
        imported = service.import_file(store, bill, format="focus", source="bench")
        import_seconds = time.monotonic() - started
        bill.unlink()
        options = Options.from_settings(settings.billing)
        started = time.monotonic()
        days = reconcile_days(store, days_between(first, today), options)
        reconcile_seconds = time.monotonic() - started
        cells = sum(d["cells"] for d in days)
        shares = store.scalar(f"SELECT count() FROM {args.database}.billing_trueup")
        print(
            f"bill {lines:,} FOCUS lines written in {bill_seconds:.0f} s, imported in {import_seconds:.1f} s; "
            f"30 days reconciled in {reconcile_seconds:.1f} s ({cells:,} cells, {shares:,} true-up shares)"
        )
        return (
            f"Bill: {lines:,} FOCUS lines (day x provider x model x token kind of the ledger's priced calls, one "
            f"cell in twenty with 3 % more input), imported in {import_seconds:.1f} s ({imported.lines:,} lines). "
            f"Reconciling the 30 days (cells, true-up shares, stored): {reconcile_seconds:.1f} s, {cells:,} cells, "
            f"{shares:,} shares."
        )


# -- common ---------------------------------------------------------------------------------------


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _machine_line(host: dict[str, str]) -> str:
    return (
        f"Machine: {host['cpu']}, {host['cores']} cores, {host['ram']} RAM; {host['os']}; Python {host['python']}, "
        f"chDB {host['chdb']} (embedded). Load average before the run: {host['load']} (1/5/15 min; other work "
        "shares these cores)."
    )


def _append(lines: list[str]) -> None:
    with RESULTS.open("a") as out:
        out.write("\n".join(lines) + "\n\n")


def main() -> int:
    """Parse the command line and run the chosen benchmark."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    imports = sub.add_parser("import", help="import a large FOCUS file: time and memory")
    imports.add_argument("--lines", type=int, default=1_000_000)
    imports.add_argument("--file", type=Path, default=OUT / "focus-1m.csv")
    imports.add_argument("--regenerate", action="store_true", help="write the file even if it exists")
    imports.add_argument("--no-results", action="store_true")
    imports.set_defaults(func=run_import)
    recon = sub.add_parser("reconcile", help="reconcile 30 days of the synthetic ledger; API latency")
    recon.add_argument("--spans", type=int, default=10_000_000)
    recon.add_argument("--path", type=Path, default=Path("/tmp/otelspend-bench"))
    recon.add_argument("--database", default="bench")
    recon.add_argument("--reuse", action="store_true")
    recon.add_argument("--repeat", type=int, default=30)
    recon.add_argument("--queries-only", action="store_true", help="time the queries over an earlier reconciliation")
    recon.add_argument("--no-results", action="store_true")
    recon.set_defaults(func=run_reconcile)
    args = parser.parse_args()
    os.environ.setdefault("OTELSPEND_LOG_LEVEL", "warning")
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())

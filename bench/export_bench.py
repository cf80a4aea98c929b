"""FOCUS export of 30 days of a synthetic ledger: wall time, rows, bytes and peak memory.

Generates (or reuses) a ledger with bench/synth.py (cost components included), then exports its
whole window through ``finance.export.service.export`` (the code behind ``GET /v1/export/focus``)
into /dev/null-like sinks, once as CSV and once as Parquet, at daily grain, and prints the figures
with the machine. Appends them to bench/RESULTS.md.

    python -m bench.export_bench --spans 1000000 --path /tmp/otelspend-export-bench
    python -m bench.export_bench --path /tmp/otelspend-export-bench --reuse
    python -m bench.export_bench --path /tmp/otelspend-export-bench --reuse --formats csv --days 8

The engine is bounded as the server bounds it (``clickhouse.embedded_memory_mib``, 1 GiB by
default); ``--days`` exports only the first days, to compare memory against window length.

Target (issue 16): a 30-day export of the 10M-span ledger in under 60 s with bounded memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from bench.machine import machine
from otelspend.clickhouse.client import Store
from otelspend.finance.export.service import ExportTotals, export, request_from_settings
from otelspend.money import femto_to_usd
from otelspend.settings import ClickHouseSettings, ExportSettings

RESULTS = Path(__file__).with_name("RESULTS.md")
DAY_NS = 86_400 * 10**9


class PeakRss:
    """Samples this process's resident memory every 50 ms (chDB's memory included)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        process = psutil.Process()
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self.peak = psutil.Process().memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run(store: Store, start_ns: int, end_ns: int, fmt: str) -> dict[str, Any]:
    """Export the window once in ``fmt``: wall and CPU seconds, rows, bytes, memory."""
    totals = ExportTotals()
    size = 0
    process = psutil.Process()
    with PeakRss() as rss:
        before = rss.peak
        cpu_before = sum(process.cpu_times()[:2])
        started = time.monotonic()
        # The request the API builds: BilledCost from the true-up where billing has been reconciled.
        request = request_from_settings(ExportSettings(), start_ns, end_ns, "day", store=store)
        for chunk in export(store, request, fmt, totals):  # type: ignore[arg-type]
            size += len(chunk)
        seconds = time.monotonic() - started
        cpu = sum(process.cpu_times()[:2]) - cpu_before
    return {"fmt": fmt, "seconds": seconds, "cpu": cpu, "rows": totals.rows, "bytes": size, "rss_before": before,
            "rss_peak": rss.peak, "cost": totals.calculated_femto, "billed": totals.billed_femto}  # fmt: skip


def main() -> None:
    """Generate or reuse the ledger, export it as CSV and Parquet, append the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--path", required=True, help="chDB data directory")
    parser.add_argument("--database", default="bench")
    parser.add_argument("--reuse", action="store_true", help="export the ledger already at --path")
    parser.add_argument("--formats", default="csv,parquet", help="comma-separated: csv, parquet")
    parser.add_argument(
        "--engine-memory-mib",
        type=int,
        default=ClickHouseSettings().embedded_memory_mib,
        help="the embedded engine's memory limit (default: the server's)",
    )
    parser.add_argument("--days", type=int, help="export only the first N UTC days (memory against window length)")
    args = parser.parse_args()
    from bench.synth import generate
    from otelspend.clickhouse.migrate import migrate

    # The engine bounded as the server bounds it (clickhouse.embedded_memory_mib).
    store = Store(f"chdb://{args.path}", args.database, memory_limit_bytes=args.engine_memory_mib * 2**20)
    migrate(store)
    if not args.reuse:
        started = time.monotonic()
        stats = generate(store, spans=args.spans, days=30.0)
        print(f"generated in {time.monotonic() - started:.0f}s: {stats['rows']}", flush=True)
    db = args.database
    first, last = store.rows(f"SELECT min(start_time), max(start_time) FROM {db}.runs")[0]
    start_ns = int(first.timestamp()) // 86_400 * DAY_NS
    end_ns = (int(last.timestamp()) // 86_400 + 1) * DAY_NS
    if args.days:
        end_ns = min(end_ns, start_ns + args.days * DAY_NS)
    counts = {t: store.scalar(f"SELECT count() FROM {db}.{t}") for t in ("spans", "runs", "billing_trueup")}
    load = " ".join(f"{v:.2f}" for v in psutil.getloadavg())
    results = [run(store, start_ns, end_ns, fmt) for fmt in args.formats.split(",")]
    load_after = " ".join(f"{v:.2f}" for v in psutil.getloadavg())
    store.close()
    m = machine()
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## FOCUS export, {when}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram']} RAM; {m.get('os', '')}; load average before the "
        f"run: {load}, after: {load_after} (1/5/15 min; other work shares these cores).",
        f"Dataset: spans {counts['spans']:,}, runs {counts['runs']:,}, "
        f"true-up share rows {counts['billing_trueup']:,} (history included) "
        "(BilledCost from them where billing was reconciled, as the API exports); "
        f"{(end_ns - start_ns) // DAY_NS} UTC days exported at daily grain.",
        "",
        "| format | rows | file | seconds | CPU seconds | rows/s | peak RSS | RSS growth |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['fmt']} | {r['rows']:,} | {r['bytes'] / 2**20:.1f} MiB | {r['seconds']:.1f} | {r['cpu']:.1f} | "
            f"{r['rows'] / r['seconds']:,.0f} | {r['rss_peak'] / 2**20:.0f} MiB | "
            f"{(r['rss_peak'] - r['rss_before']) / 2**20:.0f} MiB |"
        )
    lines.append(
        "\n"
        + "; ".join(
            f"{r['fmt']}: BilledCost {femto_to_usd(r['billed']):,.2f} USD, x_CalculatedCost "
            f"{femto_to_usd(r['cost']):,.2f} USD"
            for r in results
        )
    )
    lines.append(
        "\nCPU seconds: user + system time of the process (chDB's threads included) during the export; "
        "with other work on the cores, wall time exceeds what an idle machine would take."
    )
    lines.append(
        f"\n(ru_maxrss of the whole process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)"
    )
    text = "\n".join(lines) + "\n"
    print(text)
    with RESULTS.open("a") as out:
        out.write("\n" + text)
    sys.stdout.flush()


if __name__ == "__main__":
    main()

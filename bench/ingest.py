"""Ingest benchmark: end-to-end spans/s of ``otelspend serve``, checked against ground truth.

    make bench ARGS="--spans 1000000"          # or: .venv/bin/python -m bench.ingest --spans 200000

1. Generates the seeded GenAI workload (``bench.traces``) and encodes every request.
2. Measures the *decode floor* on those same requests: upb decode plus a minimal Python
   walk of every attribute into dicts, the least any Python receiver pays per span.
3. Starts ``otelspend serve`` on a temporary data directory (embedded chDB, production
   settings except ``--settle-seconds``), sends the requests with ``--concurrency``
   exporters (``bench.otlp_client``), and polls /metrics until every span is stored and
   every run emitted. End to end = first send -> all queryable with cost and runs.
4. Samples the server's RSS and CPU time with psutil throughout.
5. Stops the server (SIGTERM), reads the stored totals (spans, per model calls, tokens and
   cost, runs, hourly and daily rollups) and compares them with the ground truth (``bench.truth``):
   any difference prints and exits 1, and nothing is recorded.
6. Prints the figures and appends them, with the machine, to ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psutil
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.loadgen import percentile
from bench.machine import machine
from bench.otlp_client import Sender, SendStats
from bench.processes import TreeSampler, Usage, usage
from bench.server import ServerProcess
from bench.traces import generate
from bench.truth import compare, expected

RESULTS = Path(__file__).with_name("RESULTS.md")
MIB = 1024 * 1024
TARGET_SPANS_PER_SECOND = 25_000
TARGET_FLOOR_RATIO = 0.25
TARGET_P99_MS = 250
TARGET_RSS_MIB = 600
"""Issue 18's targets for ``--spans 1000000`` (this machine, embedded store)."""
STAGES = (
    ("prepare", "decode, normalise, price, Arrow (workers, or receiver threads)"),
    ("stitch", "duplicates, stitching (pipeline thread)"),
    ("runs", "run computation (pipeline thread)"),
    ("insert", "span inserts (store writer thread, engine work in it included)"),
    ("emit", "run and breakdown inserts (store writer thread, idem)"),
)
"""``otelspend_cpu_seconds_total{stage}`` values, in data-flow order."""
FLAT_GROWTH = 0.10
"""Memory counts as flat when RSS grows less than this from half-way to the end of the load."""


# -- the decode floor -------------------------------------------------------------------------


def decode_floor(payloads: Sequence[bytes]) -> tuple[float, int]:
    """Seconds to decode every request and walk every attribute into dicts; spans walked."""
    spans = 0
    started = time.perf_counter()
    for payload in payloads:
        request = ExportTraceServiceRequest.FromString(payload)
        for resource_spans in request.resource_spans:
            _walk(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    _walk(span.attributes)
                    for event in span.events:
                        _walk(event.attributes)
                    spans += 1
    return time.perf_counter() - started, spans


def _walk(attributes: Any) -> dict[str, Any]:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value") or "string_value") for kv in attributes}


# -- the run ------------------------------------------------------------------------------------


@dataclass
class Figures:
    """What one benchmark run measured."""

    stats: SendStats
    spans: int
    runs: int
    end_to_end_seconds: float
    """First send -> every span stored and every run emitted."""
    ack_seconds: float
    """First send -> last acknowledgement."""
    cpu: Usage
    """CPU seconds of the process tree between first send and end to end."""
    stages: dict[str, float]
    """``otelspend_cpu_seconds_total`` by stage over the same interval."""
    processes: int
    """Processes in the server's tree (main + workers)."""
    load: tuple[str, str]
    """Load average (1, 5, 15 min) at the first send and at end to end."""
    peak_rss: int
    """Of the whole tree (sum over its processes)."""
    peak_pss: int
    rss_quarters: list[int]
    """Largest tree RSS up to 25 / 50 / 75 / 100 % of the requests acknowledged (100 %: drain included)."""


def run(args: argparse.Namespace) -> int:
    """The whole benchmark (workload, decode floor, server, load, checks, results); 1 when a total is wrong."""
    info = machine()
    print(f"machine: {info}", flush=True)
    started = time.perf_counter()
    workload = generate(seed=args.seed, spans=args.spans, batch_spans=args.batch)
    payloads = [request.payload for request in workload.requests]
    generated = time.perf_counter() - started
    traces = len(workload.traces)
    print(
        f"generated {workload.spans:,} spans in {traces:,} traces, {len(payloads):,} requests "
        f"({sum(map(len, payloads)) / MIB:.0f} MiB) in {generated:.1f}s",
        flush=True,
    )
    floor_seconds, floor_spans = decode_floor(payloads)
    floor_rate = floor_spans / floor_seconds
    print(f"decode floor: {floor_rate:,.0f} spans/s ({floor_seconds / floor_spans * 1e6:.1f} µs/span)", flush=True)

    env = {"OTELSPEND_RUNS_SETTLE_SECONDS": str(args.settle_seconds)}
    for item in args.env:
        name, _, value = item.partition("=")
        env[name] = value
    with tempfile.TemporaryDirectory(prefix="otelspend-bench-") as tmp:
        data_dir = Path(args.data_dir or tmp) / "data"
        server = ServerProcess(data_dir, env=env).start()
        try:
            figures = _drive(args, server, payloads, workload.spans, traces)
        except BaseException:
            print(server.log_tail(), file=sys.stderr)
            server.kill()
            raise
        code = server.terminate(timeout_seconds=300)
        if code != 0:
            print(f"server exited with {code} on SIGTERM\n{server.log_tail()}", file=sys.stderr)
            return 1
        print("checking stored totals against the ground truth ...", flush=True)
        truth = expected(workload)
        totals = server.stored_totals()
    problems = compare(truth, totals)
    stats = figures.stats
    if stats.failures or stats.rejected_spans:
        problems.append(
            f"{len(stats.failures)} request(s) failed, {stats.rejected_spans} span(s) rejected: "
            f"{stats.failures[:3]} {stats.rejection_messages[:3]}"
        )
    if problems:
        print("GROUND TRUTH MISMATCH — nothing recorded:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    text = report(args, info, figures, truth, floor_rate, floor_seconds / floor_spans)
    print(text)
    if not args.no_results:
        _append(Path(args.results), text)
        print(f"appended to {args.results}")
    return 0


def _drive(args: argparse.Namespace, server: ServerProcess, payloads: list[bytes], spans: int, runs: int) -> Figures:
    process = psutil.Process(server.pid)
    sender = Sender(server.endpoint(args.transport), concurrency=args.concurrency, seed=args.seed)
    sampler = TreeSampler(process, lambda: sender.acked_count / max(1, len(payloads)))
    sampler.start()
    _wait_for_workers(server)
    stages_start = _stage_seconds(server)
    cpu_start = usage(process, stages_start.pop("python", 0.0))
    load_start = _load()
    sender.start(payloads)
    store_error = _stop_on_store_error(server, sender)
    stats: SendStats = sender.wait(args.timeout)
    if store_error:
        sampler.stop()
        raise RuntimeError(f"the server reports store errors; load stopped:\n{store_error[0]}")
    if stats.acked_count != len(payloads):
        sampler.stop()
        raise RuntimeError(f"only {stats.acked_count} of {len(payloads)} requests acknowledged: {stats.failures[:3]}")
    server.wait_stored(spans, runs, timeout_seconds=args.timeout)
    settled = time.perf_counter()
    stages_end = _stage_seconds(server)
    cpu_end = usage(process, stages_end.pop("python", 0.0))
    load_end = _load()
    sampler.stop()
    assert stats.first_send is not None and stats.last_ack is not None
    return Figures(
        stats=stats,
        spans=spans,
        runs=runs,
        end_to_end_seconds=settled - stats.first_send,
        ack_seconds=stats.last_ack - stats.first_send,
        cpu=cpu_end.minus(cpu_start),
        stages={name: stages_end.get(name, 0.0) - stages_start.get(name, 0.0) for name, _ in STAGES},
        processes=sampler.peak_processes,
        load=(load_start, load_end),
        peak_rss=sampler.peak_rss,
        peak_pss=sampler.peak_pss,
        rss_quarters=[sampler.rss_at(q) for q in (0.25, 0.5, 0.75, 1.0)],
    )


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _stage_seconds(server: ServerProcess) -> dict[str, float]:
    """``otelspend_cpu_seconds_total`` by stage, from /metrics; under ``python`` the CPU of the
    main process's Python threads."""
    text = httpx.get(f"http://{server.api_address}/metrics", timeout=10).text
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("otelspend_python_threads_cpu_seconds "):
            found["python"] = float(line.split()[1])
        if line.startswith("otelspend_cpu_seconds_total{"):
            labels, _, value = line.rpartition(" ")
            stage = labels.split('stage="', 1)[1].split('"', 1)[0]
            found[stage] = found.get(stage, 0.0) + float(value)
    return found


def _wait_for_workers(server: ServerProcess, timeout: float = 60.0) -> None:
    """Until every receiver worker the server started is ready (starting them is not load)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = len(psutil.Process(server.pid).children())
        if server.metrics().get("otelspend_workers_ready", 0) >= workers:
            return
        time.sleep(0.1)


def _stop_on_store_error(server: ServerProcess, sender: Sender) -> list[str]:
    """Watch /metrics while sending: on a store error stop the load (a healthy run has none,
    and exporters retrying a stuck server would otherwise run into the timeout)."""
    found: list[str] = []

    def watch() -> None:
        while any(thread.is_alive() for thread in sender.threads):
            try:
                errors = server.metrics().get("otelspend_store_errors_total", 0)
            except httpx.HTTPError:
                errors = 0
            if errors:
                found.append(server.log_tail(10))
                sender.stop()
                return
            time.sleep(1.0)

    threading.Thread(target=watch, name="store-watch", daemon=True).start()
    return found


def report(
    args: argparse.Namespace,
    info: dict[str, str],
    figures: Figures,
    truth: dict[str, Any],
    floor_rate: float,
    floor_seconds_per_span: float,
) -> str:
    """The Markdown section recorded in RESULTS.md (also printed)."""
    stats = figures.stats
    spans = figures.spans
    rate = spans / figures.end_to_end_seconds
    p50, p99 = percentile(stats.ack_seconds, 0.5) * 1000, percentile(stats.ack_seconds, 0.99) * 1000
    quarters = figures.rss_quarters
    growth = (quarters[3] - quarters[1]) / quarters[1] if quarters[1] else 0.0
    refusals = ", ".join(f"{code} ×{count}" for code, count in sorted(stats.refusals.items())) or "none"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    cost = Decimal(truth["cost_usd"]).quantize(Decimal("0.01"))
    cpu = figures.cpu

    def mark(ok: bool) -> str:
        return "met" if ok else "**not met**"

    def per_span(seconds: float) -> str:
        return f"{seconds / spans * 1e6:.1f}"

    rows = [
        (
            "spans/s end to end",
            f"{rate:,.0f}",
            f"≥ {TARGET_SPANS_PER_SECOND:,}: {mark(rate >= TARGET_SPANS_PER_SECOND)}",
        ),
        (
            "decode floor, same requests",
            f"{floor_rate:,.0f} spans/s ({floor_seconds_per_span * 1e6:.1f} µs/span)",
            "",
        ),
        (
            "end to end ÷ floor",
            f"{rate / floor_rate:.3f}",
            f"≥ {TARGET_FLOOR_RATIO}: {mark(rate / floor_rate >= TARGET_FLOOR_RATIO)}",
        ),
        ("acknowledged spans/s", f"{spans / figures.ack_seconds:,.0f}", ""),
        (
            "export latency p50 / p99",
            f"{p50:,.1f} / {p99:,.1f} ms",
            f"p99 < {TARGET_P99_MS} ms: {mark(p99 < TARGET_P99_MS)}",
        ),
        (
            f"peak RSS, process tree ({figures.processes} processes)",
            f"{figures.peak_rss / MIB:,.0f} MiB (PSS {figures.peak_pss / MIB:,.0f} MiB)",
            f"≤ {TARGET_RSS_MIB} MiB: {mark(figures.peak_rss / MIB <= TARGET_RSS_MIB)}",
        ),
        (
            "RSS at 25 / 50 / 75 / 100 % acked",
            " / ".join(f"{q / MIB:,.0f}" for q in quarters) + f" MiB ({growth:+.0%} second half)",
            f"flat: {mark(growth < FLAT_GROWTH)}",
        ),
        (
            "CPU µs per span: total (main Python / engine / workers)",
            f"{per_span(cpu.total)} ({per_span(cpu.python)} / {per_span(cpu.engine)} / {per_span(cpu.workers)})",
            "",
        ),
        ("retryable refusals", refusals, ""),
        (
            "ground truth",
            f"exact: {spans:,} spans, {figures.runs:,} runs, {truth['llm_calls']:,} calls, ${cost:,} "
            "(spans, runs, hourly and daily rollups)",
            "",
        ),
    ]
    head = (
        f"## {now} · {spans:,} spans · {args.transport} · batch {args.batch} × {args.concurrency} exporters "
        f"· seed {args.seed}\n\n"
        f"commit {info['commit']} · {info['cpu']}, {info['cores']} cores, {info['ram']} · {info['os']} · "
        f"Python {info['python']} · chDB {info['chdb']} · clickhouse-connect {info['clickhouse_connect']} · "
        f"load average {info['load']} before the run, {figures.load[0]} at the first send, "
        f"{figures.load[1]} at the end · "
        f"settle {args.settle_seconds} s" + (f" · env {' '.join(args.env)}" if args.env else "") + "\n"
    )
    if args.note:
        head += f"\n{args.note}\n"
    table = ["| figure | value | target (issue 18) |", "|---|---|---|"]
    table += [f"| {name} | {value} | {target} |" for name, value, target in rows]
    stage_table = ["", "| CPU by stage | µs per span |", "|---|---:|"]
    counted = 0.0
    for name, what in STAGES:
        seconds = figures.stages.get(name, 0.0)
        counted += seconds
        stage_table.append(f"| {name}: {what} | {per_span(seconds)} |")
    stage_table.append(f"| engine threads: merges, views, background (main process, native) | {per_span(cpu.engine)} |")
    stage_table.append(
        f"| everything else: receivers, WAL, hand-off to workers, API, GC | "
        f"{per_span(max(0.0, cpu.python + cpu.workers - counted))} |"
    )
    stage_table.append(f"| total, process tree | {per_span(cpu.total)} |")
    return head + "\n" + "\n".join(table) + "\n" + "\n".join(stage_table) + "\n"


_HEADER = """# Ingest benchmark results

Appended by `python -m bench.ingest` (`make bench`); see `bench/README.md` for what each
figure measures. One section per run, newest last.
"""


def _append(path: Path, text: str) -> None:
    if not path.exists():
        path.write_text(_HEADER)
    with path.open("a") as handle:
        handle.write("\n" + text)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=200_000, help="spans to send (whole traces; default 200000)")
    parser.add_argument("--transport", choices=["grpc", "http"], default="grpc", help="default grpc")
    parser.add_argument("--batch", type=int, default=512, help="spans per export request (default 512)")
    parser.add_argument("--concurrency", type=int, default=4, help="parallel exporters (default 4)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--settle-seconds", type=float, default=1.0, help="runs.settle_seconds of the server (default 1.0)"
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="OTELSPEND_X=VALUE", help="extra server setting (repeatable)"
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up after this many seconds")
    parser.add_argument("--results", default=str(RESULTS), help="Markdown file to append to")
    parser.add_argument("--no-results", action="store_true", help="print only")
    parser.add_argument("--data-dir", help="keep the server's data here instead of a temporary directory")
    parser.add_argument("--note", default="", help="a line recorded with the results")
    args = parser.parse_args(argv)
    for item in args.env:
        if not item.startswith("OTELSPEND_") or "=" not in item:
            parser.error(f"--env {item!r}: expected OTELSPEND_NAME=value")
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())

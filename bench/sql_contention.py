"""Ingest with and without a heavy SQL query: does the SQL endpoint starve ingest?

    make bench-sql                      # or: .venv/bin/python -m bench.sql_contention --spans 200000 --rounds 3

The same seeded workload (``bench.traces``) is sent to a fresh ``otelspend serve`` (embedded
chDB, SQL endpoint at its defaults: 2 query threads, one engine thread per query) in
alternating rounds: *quiet* (nothing else) and *busy* (a client keeps a heavy query running
on the SQL endpoint the whole time, re-issuing it as soon as it ends). Throughput is end to
end: first send -> every span stored and every run emitted (``bench.server``), and every
round checks that all spans and runs arrived. Rounds alternate so that a change in the
machine's other load hits both sides; the medians are compared (target: busy within 20 % of
quiet) and appended, with the machine, to ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.machine import machine
from bench.otlp_client import Sender
from bench.server import ServerProcess
from bench.traces import generate

RESULTS = Path(__file__).with_name("RESULTS.md")
TARGET_RATIO = 0.80
HEAVY_QUERY = "SELECT count() FROM numbers({rows}) AS n WHERE sipHash64(n.number, (SELECT count() FROM spans)) % 7 = 3"
"""CPU-bound (one engine thread at the endpoint's default) and reading the live table."""


@dataclass
class HeavyClient:
    """Keeps ``parallel`` heavy queries running on the SQL endpoint until stopped."""

    url: str
    rows: int
    parallel: int = 1
    completed: int = 0
    cut: int = 0
    """Queries cut at the endpoint's execution ceiling: heavy all the same."""
    failed: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(self.parallel)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _loop(self) -> None:
        with httpx.Client(timeout=120) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                response = client.post(self.url, content=HEAVY_QUERY.format(rows=self.rows))
                if response.status_code == 200:
                    self.completed += 1
                    self.seconds.append(time.perf_counter() - started)
                elif response.headers.get("x-clickhouse-exception-code") == "159":
                    self.cut += 1
                else:
                    self.failed.append(response.text[:200])


@dataclass
class Round:
    busy: bool
    spans_per_second: float
    seconds: float
    heavy_queries: int = 0
    heavy_cut: int = 0
    heavy_seconds: float = 0.0


def one_round(args: argparse.Namespace, payloads: list[bytes], spans: int, runs: int, busy: bool) -> Round:
    with tempfile.TemporaryDirectory(prefix="otelspend-bench-sql-") as tmp:
        env = {"OTELSPEND_RUNS_SETTLE_SECONDS": str(args.settle_seconds)}
        server = ServerProcess(Path(tmp) / "data", env=env).start(timeout_seconds=240)
        heavy = HeavyClient(f"http://{server.sql_address}/", args.heavy_rows, args.parallel) if busy else None
        try:
            if heavy is not None:
                heavy.start()
                time.sleep(1.0)  # the query is running before the first export
            sender = Sender(server.endpoint("grpc"), concurrency=args.concurrency, seed=args.seed)
            sender.start(payloads)
            stats = sender.wait(args.timeout)
            if stats.acked_count != len(payloads):
                raise RuntimeError(f"only {stats.acked_count} of {len(payloads)} requests acknowledged")
            server.wait_stored(spans, runs, timeout_seconds=args.timeout)
            settled = time.perf_counter()
        finally:
            if heavy is not None:
                heavy.stop()
            code = server.terminate(timeout_seconds=300)
        if code != 0:
            raise RuntimeError(f"server exited with {code}\n{server.log_tail()}")
        if heavy is not None and heavy.failed:
            raise RuntimeError(f"heavy queries failed: {heavy.failed[:2]}")
    assert stats.first_send is not None
    elapsed = settled - stats.first_send
    result = Round(busy, spans / elapsed, elapsed)
    if heavy is not None:
        result.heavy_queries = heavy.completed
        result.heavy_cut = heavy.cut
        result.heavy_seconds = statistics.median(heavy.seconds) if heavy.seconds else 0.0
    return result


def report(args: argparse.Namespace, info: dict[str, str], rounds: list[Round], spans: int) -> str:
    quiet = [r.spans_per_second for r in rounds if not r.busy]
    busy = [r.spans_per_second for r in rounds if r.busy]
    ratio = statistics.median(busy) / statistics.median(quiet)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    heavy = [r for r in rounds if r.busy]
    query = HEAVY_QUERY.format(rows=args.heavy_rows)
    kind = "query" if args.parallel == 1 else "queries"
    lines = [
        f"## Ingest while the SQL endpoint runs a heavy query, {now}",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram']} RAM; {info['os']}; Python {info['python']}, "
        f"chDB {info['chdb']}; commit {info['commit']}. Load average before the run: {info['load']} "
        "(1/5/15 min; other work shares these cores).",
        f"Workload: {spans:,} spans per round over gRPC, {args.concurrency} exporters, {args.rounds} quiet and "
        f"{args.rounds} busy rounds alternating, a fresh server each; busy = {args.parallel} heavy {kind} "
        f"kept running on the SQL endpoint (`{query}`, "
        f"median {statistics.median(r.heavy_seconds for r in heavy):.1f} s each, "
        f"{sum(r.heavy_queries for r in heavy)} completed, {sum(r.heavy_cut for r in heavy)} cut at the 30 s "
        "ceiling). Server settings: the defaults "
        "(sql.max_concurrent_queries 2, sql.max_threads 1).",
        "",
        "| round | kind | spans/s end to end | seconds |",
        "|---:|---|---:|---:|",
    ]
    for index, r in enumerate(rounds, 1):
        lines.append(f"| {index} | {'busy' if r.busy else 'quiet'} | {r.spans_per_second:,.0f} | {r.seconds:.1f} |")
    verdict = "ok" if ratio >= TARGET_RATIO else "UNDER TARGET"
    lines += [
        "",
        f"Median quiet {statistics.median(quiet):,.0f} spans/s, busy {statistics.median(busy):,.0f} spans/s: "
        f"busy = {ratio:.0%} of quiet (target at least {TARGET_RATIO:.0%}: {verdict}).",
    ]
    if args.note:
        lines += ["", args.note]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=200_000, help="spans per round (default 200000)")
    parser.add_argument("--rounds", type=int, default=3, help="quiet and busy rounds each (default 3)")
    parser.add_argument("--parallel", type=int, default=1, help="heavy queries at once in busy rounds (default 1)")
    parser.add_argument("--heavy-rows", type=int, default=100_000_000, help="rows the heavy query hashes")
    parser.add_argument("--concurrency", type=int, default=4, help="parallel exporters (default 4)")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--settle-seconds", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument("--no-results", action="store_true", help="print only")
    parser.add_argument("--note", default="")
    args = parser.parse_args(argv)
    info = machine()
    print(f"machine: {info}", flush=True)
    workload = generate(seed=args.seed, spans=args.spans, batch_spans=args.batch)
    payloads = [request.payload for request in workload.requests]
    rounds = []
    for index in range(2 * args.rounds):
        busy = index % 2 == 1
        result = one_round(args, payloads, workload.spans, len(workload.traces), busy)
        print(f"round {index + 1}: {'busy' if busy else 'quiet'} {result.spans_per_second:,.0f} spans/s", flush=True)
        rounds.append(result)
    text = report(args, info, rounds, workload.spans)
    print(text)
    if not args.no_results:
        with open(args.results, "a", encoding="utf-8") as out:
            out.write("\n" + text)
        print(f"appended to {args.results}")
    return 0 if statistics.median(r.spans_per_second for r in rounds if r.busy) > 0 else 1


if __name__ == "__main__":
    sys.exit(main())

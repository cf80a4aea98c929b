"""Ingest with and without a heavy SQL query: does the SQL endpoint starve ingest?

    make bench-sql                       # or: .venv/bin/python -m bench.sql_contention --windows 12

One ``otelspend serve`` (embedded chDB, SQL endpoint at its defaults: 2 query threads, one
engine thread per query) is kept busy ingesting the seeded workload of the ingest benchmark
(``bench.traces``) over gRPC, as fast as it accepts it. Meanwhile the run alternates
*quiet* and *busy* windows of ``--window-seconds``: in a busy window a client keeps
``--parallel`` heavy queries running on the SQL endpoint (CPU-bound hashing that also reads
the live ``spans`` table), re-issued as soon as they end. Ingest throughput of a window is
the spans the server wrote to the store in it (``otelspend_spans_written_total``), measured
after a settling time at the start of each window (the last query of a busy window ends, a
new one starts). Alternating short windows on one server keep the machine's other load,
which moves a lot on a shared machine, from landing on one side. The medians of both kinds
are compared (target: busy at least 80 % of quiet), every span sent is checked stored at the
end, and the figures are appended with the machine to ``bench/RESULTS.md``.
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
    """Keeps ``parallel`` heavy queries running on the SQL endpoint while ``on`` is set."""

    url: str
    rows: int
    parallel: int = 1
    on: threading.Event = field(default_factory=threading.Event)
    completed: int = 0
    seconds: list[float] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        """Start the query threads (idle until ``on`` is set)."""
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(self.parallel)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop the query threads and wait for them."""
        self._stop.set()
        self.on.set()
        for thread in self._threads:
            thread.join()

    def _loop(self) -> None:
        with httpx.Client(timeout=120) as client:
            while not self._stop.is_set():
                if not self.on.wait(0.1):
                    continue
                started = time.perf_counter()
                response = client.post(self.url, content=HEAVY_QUERY.format(rows=self.rows))
                if response.status_code == 200:
                    self.completed += 1
                    self.seconds.append(time.perf_counter() - started)
                else:
                    self.failed.append(response.text[:200])


@dataclass
class Window:
    """One measured window: busy (heavy queries running) or quiet, and its written spans per second."""

    busy: bool
    spans_per_second: float


def written(server: ServerProcess) -> float:
    """Spans the server has written so far (its counter)."""
    return server.metrics().get("otelspend_spans_written_total", 0.0)


def measure(args: argparse.Namespace, server: ServerProcess, heavy: HeavyClient, sender: Sender) -> list[Window]:
    """Alternate quiet and busy windows; each one's written spans per second, after a settling pause."""
    windows: list[Window] = []
    for index in range(args.windows):
        busy = index % 2 == 1
        (heavy.on.set if busy else heavy.on.clear)()
        time.sleep(args.settle)
        before, started = written(server), time.perf_counter()
        time.sleep(args.window_seconds)
        rate = (written(server) - before) / (time.perf_counter() - started)
        if not any(thread.is_alive() for thread in sender.threads):
            raise RuntimeError("the workload ran out before the last window: give more --spans")
        windows.append(Window(busy, rate))
        print(f"window {index + 1}: {'busy' if busy else 'quiet'} {rate:,.0f} spans/s", flush=True)
    heavy.on.clear()
    return windows


def run(args: argparse.Namespace) -> tuple[list[Window], HeavyClient, int]:
    """Serve on a temporary directory, keep ingesting the workload, measure the windows; then
    check every request acknowledged and every span and run stored.
    """
    workload = generate(seed=args.seed, spans=args.spans, batch_spans=args.batch)
    payloads = [request.payload for request in workload.requests]
    with tempfile.TemporaryDirectory(prefix="otelspend-bench-sql-") as tmp:
        env = {
            "OTELSPEND_RUNS_SETTLE_SECONDS": str(args.settle_seconds),
            # Small inserts and a short queue: the written-spans counter then moves in steps
            # of at most 5,000, fine enough for windows of a few seconds.
            "OTELSPEND_CLICKHOUSE_BATCH_ROWS": "5000",
            "OTELSPEND_PIPELINE_QUEUE_SPANS": "5000",
        }
        server = ServerProcess(Path(tmp) / "data", env=env).start(timeout_seconds=240)
        heavy = HeavyClient(f"http://{server.sql_address}/", args.heavy_rows, args.parallel)
        try:
            heavy.start()
            sender = Sender(server.endpoint("grpc"), concurrency=args.concurrency, seed=args.seed)
            sender.start(payloads)
            time.sleep(args.warmup)
            windows = measure(args, server, heavy, sender)
            heavy.stop()
            stats = sender.wait(args.timeout)
            if stats.acked_count != len(payloads):
                raise RuntimeError(f"only {stats.acked_count} of {len(payloads)} requests acknowledged")
            server.wait_stored(workload.spans, len(workload.traces), timeout_seconds=args.timeout)
        finally:
            heavy.stop()
            code = server.terminate(timeout_seconds=300)
        if code != 0:
            raise RuntimeError(f"server exited with {code}\n{server.log_tail()}")
    if heavy.failed:
        raise RuntimeError(f"heavy queries failed: {heavy.failed[:2]}")
    return windows, heavy, workload.spans


def report(
    args: argparse.Namespace, info: dict[str, str], windows: list[Window], heavy: HeavyClient, spans: int
) -> str:
    """The result as a RESULTS.md section (windows, medians, the ratio against the target)."""
    quiet = statistics.median(w.spans_per_second for w in windows if not w.busy)
    busy = statistics.median(w.spans_per_second for w in windows if w.busy)
    ratio = busy / quiet
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    query = HEAVY_QUERY.format(rows=args.heavy_rows)
    kind = "query" if args.parallel == 1 else "queries"
    lines = [
        f"## Ingest while the SQL endpoint runs a heavy query, {now}",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram']} RAM; {info['os']}; Python {info['python']}, "
        f"chDB {info['chdb']}; commit {info['commit']}. Load average before the run: {info['load']} "
        f"(1/5/15 min; other work shares these cores). {args.privileges}",
        f"One server ingesting {spans:,} spans over gRPC ({args.concurrency} exporters, as fast as it accepts); "
        f"{args.windows} windows of {args.window_seconds:g} s alternating quiet / busy, each measured after "
        f"{args.settle:g} s; busy = {args.parallel} heavy {kind} kept running on the SQL endpoint (`{query}`, "
        f"median {statistics.median(heavy.seconds):.1f} s each, {heavy.completed} completed). Server settings: the "
        "defaults (sql.max_concurrent_queries 2, sql.max_threads 1) except clickhouse.batch_rows and "
        "pipeline.queue_spans 5,000 (so that written spans move in small steps). Every span sent was stored.",
        "",
        "| window | kind | spans/s written |",
        "|---:|---|---:|",
    ]
    for index, w in enumerate(windows, 1):
        lines.append(f"| {index} | {'busy' if w.busy else 'quiet'} | {w.spans_per_second:,.0f} |")
    verdict = "ok" if ratio >= TARGET_RATIO else "UNDER TARGET"
    lines += [
        "",
        f"Median quiet {quiet:,.0f} spans/s, busy {busy:,.0f} spans/s: busy = {ratio:.0%} of quiet "
        f"(target at least {TARGET_RATIO:.0%}: {verdict}).",
    ]
    if args.note:
        lines += ["", args.note]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the report and append it to ``--results``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=1_200_000, help="spans in the workload (enough for every window)")
    parser.add_argument("--windows", type=int, default=10, help="windows, alternating quiet and busy (default 10)")
    parser.add_argument("--window-seconds", type=float, default=15.0, help="measured part of a window (default 15)")
    parser.add_argument("--settle", type=float, default=4.0, help="seconds before measuring a window (default 4)")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of ingest before the first window")
    parser.add_argument("--parallel", type=int, default=1, help="heavy queries at once in busy windows (default 1)")
    parser.add_argument("--heavy-rows", type=int, default=20_000_000, help="rows the heavy query hashes")
    parser.add_argument("--concurrency", type=int, default=4, help="parallel exporters (default 4)")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--settle-seconds", type=float, default=1.0, help="runs.settle_seconds of the server")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument("--no-results", action="store_true", help="print only")
    parser.add_argument("--note", default="")
    args = parser.parse_args(argv)
    args.privileges = (
        "The server may renice threads (CAP_SYS_NICE): the endpoint's queries run at nice 19."
        if _can_nice()
        else "The server may not renice threads (no CAP_SYS_NICE): the endpoint's queries run at nice 0."
    )
    info = machine()
    print(f"machine: {info}", flush=True)
    windows, heavy, spans = run(args)
    text = report(args, info, windows, heavy, spans)
    print(text)
    if not args.no_results:
        with open(args.results, "a", encoding="utf-8") as out:
            out.write("\n" + text)
        print(f"appended to {args.results}")
    return 0


def _can_nice() -> bool:
    """CAP_SYS_NICE in this process' effective set (inherited by the server it starts)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) & (1 << 23))
    except OSError:
        pass
    return False


if __name__ == "__main__":
    sys.exit(main())

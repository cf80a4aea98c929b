"""Hot-path micro-benchmark: microseconds per span for normalising and for computing runs.

    .venv/bin/python -m bench.hotpath_bench [--spans 100000] [--repeat 7] [--seed 7]

The workload is the ingest benchmark's (``bench.traces.generate``): seeded agent traces
encoded as OTLP export requests, so the normaliser sees what real instrumentations send.

* **normalize**: ``Normalizer.normalize`` over every decoded request (decoding excluded);
* **compute_run**: the normalised rows are priced once (``PriceBook.price_rows``), cut to
  the stitcher's compact tuples (``lite_from_row``) and grouped by trace; then
  ``compute_run`` runs over every trace. Reported per span (a run's cost grows with its spans);
  then again with the conversion of its records to the rows the emitter writes;
* **field index**: reading ``row[F.x]`` for the ten columns the pricer reads, to compare
  the row-index constants' attribute access across versions.

Each figure is the median of ``--repeat`` passes in CPU time of this process
(``time.process_time``: on a shared machine, wall time mostly measures the neighbours; the
fastest wall-clock pass is printed too). Nothing is written; compare runs on the same
machine, ideally alternating the two versions.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.pricing_bench import machine
from bench.traces import generate
from otelspend.conventions import load_conventions
from otelspend.enrich.pricing import PriceBook
from otelspend.enrich.runs import call_row_of, compute_run, run_row_of
from otelspend.receiver.normalize import Normalizer
from otelspend.record import F, lite_from_row

FIXED_NOW_NS = 1_900_000_000 * 10**9
"""Workload base time and normaliser clock, fixed so every pass sees the same spans."""


def timed(fn: Callable[[], object], spans: int, repeat: int) -> tuple[float, float, float]:
    """(median CPU, min CPU, min wall) microseconds per span over ``repeat`` passes of ``fn``."""
    cpu, wall = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        fn()
        cpu.append((time.process_time() - started_cpu) / spans * 1e6)
        wall.append((time.perf_counter() - started) / spans * 1e6)
    return statistics.median(cpu), min(cpu), min(wall)


def field_reads(rows: list[list[Any]]) -> None:
    """The column reads the pricer makes per span, through the index constants."""
    for row in rows:
        (
            row[F.span_class],
            row[F.provider],
            row[F.model],
            row[F.input_tokens],
            row[F.output_tokens],
            row[F.cache_read_tokens],
            row[F.cache_write_tokens],
            row[F.reasoning_tokens],
            row[F.start_time],
            row[F.processing],
        )


def main(argv: list[str] | None = None) -> int:
    """Print the machine and the per-span figures (see the module docstring)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    workload = generate(seed=args.seed, spans=args.spans, base_ns=FIXED_NOW_NS - 3_600 * 10**9)
    requests = [ExportTraceServiceRequest.FromString(r.payload) for r in workload.requests]
    normalizer = Normalizer(load_conventions())

    def normalize_all() -> list[list[Any]]:
        rows: list[list[Any]] = []
        for request in requests:
            rows.extend(normalizer.normalize(request, now_ns=FIXED_NOW_NS).rows)
        return rows

    rows = normalize_all()
    PriceBook().price_rows(rows)
    traces: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in rows:
        traces[row[F.trace_id]].append(lite_from_row(row))
    groups = list(traces.values())

    def compute_all() -> None:
        for spans in groups:
            compute_run(spans)

    def compute_rows() -> None:
        for spans in groups:
            result = compute_run(spans)
            list(run_row_of(result.run))
            [list(call_row_of(call)) for call in result.calls]

    spans = len(rows)
    results = {
        "normalize": timed(normalize_all, spans, args.repeat),
        "compute_run": timed(compute_all, spans, args.repeat),
        "compute_run + rows": timed(compute_rows, spans, args.repeat),
        "field index (10 reads)": timed(lambda: field_reads(rows), spans, args.repeat),
    }
    print(f"machine: {machine()}")
    print(f"spans: {spans:,} in {len(groups):,} runs ({len(requests):,} requests), seed {args.seed}")
    for name, (median, low, wall) in results.items():
        print(f"{name:<24} {median:7.2f} us/span CPU (min {low:.2f}; fastest wall {wall:.2f}; {args.repeat} passes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CPU per span of the stream controls (retry loops and the model policy), in process.

    .venv/bin/python -m bench.controls_stream [--spans 100000] [--repeat 5] [--seed 7]

The workload is the ingest benchmark's (``bench.traces.generate``), normalised and priced
once, cut to the tuples the pipeline hands its observer, in the batches the requests made.
Each pass feeds every batch to a fresh ``StreamControls`` (the server's limits, with and
without the benchmark's 4 policy rules priced by the real rate card) and reports CPU time
per span (``time.process_time``: on a shared machine wall time measures the neighbours).
The garbage collector is tuned as ``otelspend serve`` tunes it. Compare with the CPU per
span of ingest as a whole (``make bench``: about 85 us/span on the development machine).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.controls_bench import write_config
from bench.hotpath_bench import FIXED_NOW_NS
from bench.machine import machine
from bench.traces import generate
from otelspend.controls.policy import Policy, UnitPriceCache, UnitPrices, load_policy
from otelspend.controls.stream import StreamControls, StreamLimits
from otelspend.conventions import load_conventions
from otelspend.enrich.pricing import PriceBook, Unpriced
from otelspend.receiver.normalize import Normalizer
from otelspend.record import lite_from_row


def batches_of(spans: int, seed: int, book: PriceBook) -> list[list[tuple[Any, ...]]]:
    """The workload's requests as the observer sees them: priced span tuples, one list per request."""
    workload = generate(seed=seed, spans=spans, base_ns=FIXED_NOW_NS - 3_600 * 10**9)
    normalizer = Normalizer(load_conventions())
    out = []
    for request in workload.requests:
        rows = normalizer.normalize(ExportTraceServiceRequest.FromString(request.payload), now_ns=FIXED_NOW_NS).rows
        book.price_rows(rows)
        out.append([lite_from_row(row) for row in rows])
    return out


def price_lookup(book: PriceBook) -> Any:
    """List prices as the service looks them up (a quote per provider and model, cached)."""
    cache = UnitPriceCache()
    quotes: dict[tuple[str, str], Any] = {}

    def prices(provider: str, model: str, start_ns: int, input_tokens: int) -> UnitPrices | str:
        compiled = quotes.get((provider, model))
        if compiled is None:
            try:
                compiled = book.quote(provider, model, model, start_ns).compiled
            except Unpriced as exc:
                compiled = exc.reason
            quotes[(provider, model)] = compiled
        return compiled if isinstance(compiled, str) else cache.prices(compiled, input_tokens)

    return prices


def one_pass(batches: Sequence[list[tuple[Any, ...]]], policy: Policy, prices: Any) -> tuple[float, int]:
    """(CPU seconds, detections) of feeding every batch to fresh stream controls."""
    stream = StreamControls(StreamLimits(), prices)
    stream.set_policy(policy)
    found = 0
    started = time.process_time()
    for batch in batches:
        found += len(stream.observe(batch, time.monotonic()))
    return time.process_time() - started, found


def main(argv: Sequence[str] | None = None) -> int:
    """Print the machine and the CPU per span with and without the policy."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    book = PriceBook()
    batches = batches_of(args.spans, args.seed, book)
    spans = sum(len(batch) for batch in batches)
    with tempfile.TemporaryDirectory() as tmp:
        write_config(Path(tmp))
        policy = load_policy(Path(tmp) / "policy.yaml")
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)  # as otelspend serve (otelspend.app._tune_garbage_collector)
    print(f"machine: {machine()}")
    print(f"spans: {spans:,} in {len(batches):,} batches, seed {args.seed}")
    for name, rules in (("retry loops", Policy()), ("retry loops + 4 policy rules", policy)):
        passes = [one_pass(batches, rules, price_lookup(book)) for _ in range(args.repeat)]
        cpu = [seconds / spans * 1e6 for seconds, _ in passes]
        print(f"{name:<30} {statistics.median(cpu):6.2f} us/span CPU (min {min(cpu):.2f}; "
              f"{args.repeat} passes; {passes[0][1]} detections)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

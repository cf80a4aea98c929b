"""Load generator: seeded GenAI agent traces sent as OTLP, plus the ground truth as JSON.

    python -m bench.loadgen --endpoint grpc://127.0.0.1:4317 --spans 100000 \\
        --batch 512 --concurrency 4 --seed 7 --truth truth.json

Traffic (``bench.traces``): root agent spans with workflow / tenant / feature keys, chat
spans over OpenAI, Anthropic, Gemini and Mistral models with input, output, cached and
reasoning tokens, tool spans, failed calls followed by retries; children are exported
before their roots and traces are split across requests. Requests are encoded before the
clock starts, then sent by ``--concurrency`` workers (``bench.otlp_client``), bounded by
``--spans`` and ``--duration``. The ground truth (``bench.truth``) covers exactly the
acknowledged requests: spans, runs per workflow type, per model calls, tokens and cost
(``genai_prices.calc_price``), tool calls, retries.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.otlp_client import Sender, SendStats
from bench.traces import Workload, generate
from bench.truth import expected


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def summary(workload: Workload, stats: SendStats) -> dict[str, object]:
    """What the load generator sent and how much was acknowledged, as printed JSON."""
    acked_spans = sum(r.spans for r, ok in zip(workload.requests, stats.acked, strict=True) if ok)
    elapsed = (stats.last_ack or 0) - (stats.first_send or 0)
    return {
        "requests": len(workload.requests),
        "acked_requests": stats.acked_count,
        "acked_spans": acked_spans,
        "send_seconds": round(elapsed, 3),
        "acked_spans_per_second": round(acked_spans / elapsed) if elapsed > 0 else None,
        "export_p50_ms": round(percentile(stats.ack_seconds, 0.5) * 1000, 2),
        "export_p99_ms": round(percentile(stats.ack_seconds, 0.99) * 1000, 2),
        "attempts": stats.attempts,
        "refusals": dict(stats.refusals),
        "failures": len(stats.failures),
        "rejected_spans": stats.rejected_spans,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Send the seeded workload to ``--endpoint`` and write the ground truth of what was acknowledged."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True, help="grpc://host:port or http://host:port")
    parser.add_argument("--spans", type=int, default=100_000, help="spans to generate (whole traces; default 100000)")
    parser.add_argument("--batch", type=int, default=512, help="spans per export request (default 512)")
    parser.add_argument("--concurrency", type=int, default=4, help="parallel exporters (default 4)")
    parser.add_argument("--duration", type=float, default=None, help="stop starting requests after N seconds")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--base-time", type=float, default=None, help="first trace start, Unix seconds (default now-10min)"
    )
    parser.add_argument("--in-flight", type=int, default=64, help="traces exported interleaved (default 64)")
    parser.add_argument("--truth", type=Path, help="write the ground truth of the acknowledged requests here")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    workload = generate(
        seed=args.seed,
        spans=args.spans,
        batch_spans=args.batch,
        in_flight_traces=args.in_flight,
        base_ns=None if args.base_time is None else int(args.base_time * 1e9),
    )
    print(
        f"generated {workload.spans} spans, {len(workload.traces)} traces, {len(workload.requests)} requests "
        f"in {time.perf_counter() - started:.1f}s",
        file=sys.stderr,
    )
    sender = Sender(args.endpoint, concurrency=args.concurrency, duration_seconds=args.duration, seed=args.seed)
    stats = sender.run([request.payload for request in workload.requests])
    report = summary(workload, stats)
    print(json.dumps(report, indent=1))
    if args.truth is not None:
        args.truth.write_text(json.dumps(expected(workload, stats.acked), indent=1, sort_keys=True) + "\n")
    return 0 if not stats.failures and not stats.rejected_spans else 1


if __name__ == "__main__":
    raise SystemExit(main())

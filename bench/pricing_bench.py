"""Pricing benchmark: microseconds per span for ``PriceBook.price_rows`` on a realistic mix.

    .venv/bin/python -m bench.pricing_bench [--spans 200000] [--repeat 5] [--seed 7]

The mix (seeded), like the spans of agent traffic reaching the pipeline:

* 25 % non-model spans (tools, agents, HTTP): nothing to price;
* 45 % calls priced by genai-prices (OpenAI, Anthropic, Gemini, Bedrock, Azure; dated
  snapshots; half of them prompt-cache hits, a few batch / flex tiers, a few long-context);
* 20 % calls priced by the user card (a negotiated override, a discount on the default,
  a batch tier by attribute, GPU-seconds of a self-hosted model);
* 10 % unpriced calls (unknown model, unknown provider, no usage).

Start times spread over 30 days, so price periods vary. Reported per pass:

* cold: a fresh PriceBook and genai-prices card (every (provider, model, period) resolved
  and compiled on first sight): the first batch after a start;
* warm: the steady state, where every lookup is cached (median of ``--repeat`` passes);
* warm per category, so a regression shows where it is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import genai_prices

from otelspend.enrich.genai_prices_card import GenaiPricesCard
from otelspend.enrich.pricing import PriceBook, at_ns
from otelspend.enrich.ratecard import parse_rate_card
from otelspend.record import ROW_TEMPLATE, F

CARD = """
entries:
  - id: gpt-4o-negotiated
    provider: openai
    model: "gpt-4o-2024-*"
    prices: {input: 2.0, cache_read: 1.0, output: 8.0}
  - id: router-batch
    model: "re:acme-router-v[0-9]+"
    prices: {input: 0.1, cache_read: 0.01, output: 0.4}
    request_fee: 0.0005
    tier: {attribute: processing, multipliers: {batch: 0.5}}
  - id: anthropic-commit
    provider: anthropic
    model: "claude-*"
    discount_pct: 12.5
  - id: llama-h100
    model: meta-llama/Llama-3.3-70B-Instruct
    gpu_second: 0.0011
    gpus: 2
"""

GENAI_CALLS = [
    ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ("openai", "gpt-4.1", "gpt-4.1-2025-04-14"),
    ("openai", "o3-mini", "o3-mini-2025-01-31"),
    ("gcp.vertex_ai", "gemini-2.5-pro", "gemini-2.5-pro"),
    ("gcp.gemini", "gemini-2.0-flash", "gemini-2.0-flash-001"),
    ("aws.bedrock", "us.anthropic.claude-3-7-sonnet-20250219-v1:0", ""),
    ("azure.ai.openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ("mistral_ai", "mistral-large-latest", "mistral-large-2411"),
]
CARD_CALLS = [
    ("openai", "gpt-4o", "gpt-4o-2024-08-06"),
    ("internal", "acme-router-v3", ""),
    ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
    ("vllm", "meta-llama/Llama-3.3-70B-Instruct", ""),
]
UNPRICED_CALLS = [("openai", "gpt-99-ultra", ""), ("no-such-cloud", "gpt-4o", ""), ("openai", "gpt-4o-mini", None)]
CATEGORIES = ("other", "genai-prices", "user card", "unpriced")


def make_rows(count: int, seed: int) -> list[tuple[str, list[Any]]]:
    """(category, span row) pairs in a seeded realistic mix."""
    rng = random.Random(seed)
    start = at_ns(dt.datetime(2025, 5, 1, tzinfo=dt.UTC))
    rows = []
    for _ in range(count):
        row = ROW_TEMPLATE.copy()
        row[F.start_time] = start + rng.randrange(30 * 86_400) * 10**9 + rng.randrange(10**9)
        row[F.duration_ns] = rng.randrange(50, 5_000) * 10**6
        row[F.attributes] = ([], [])
        draw = rng.random()
        if draw < 0.25:
            row[F.span_class] = rng.choice(("tool", "agent", "http"))
            rows.append(("other", row))
            continue
        if draw < 0.70:
            category, (provider, request, response) = "genai-prices", rng.choice(GENAI_CALLS)
        elif draw < 0.90:
            category, (provider, request, response) = "user card", rng.choice(CARD_CALLS)
        else:
            category, (provider, request, response) = "unpriced", rng.choice(UNPRICED_CALLS)
        row[F.span_class] = "llm"
        row[F.provider], row[F.request_model], row[F.response_model] = provider, request, response or ""
        if response is not None:
            inp = rng.choice((rng.randrange(200, 8_000), rng.randrange(8_000, 60_000), rng.randrange(200_000, 400_000)))
            row[F.input_tokens] = inp
            row[F.output_tokens] = rng.randrange(10, 3_000)
            if rng.random() < 0.5:  # a prompt-cache hit
                row[F.cache_read_tokens] = rng.randrange(0, inp)
            if rng.random() < 0.1:
                row[F.reasoning_tokens] = rng.randrange(0, row[F.output_tokens])
            if rng.random() < 0.05:
                row[F.processing] = "batch"
            elif rng.random() < 0.05:
                row[F.service_tier] = "flex"
        rows.append((category, row))
    return rows


def microseconds_per_span(fn: Callable[[list[list[Any]]], None], rows: list[list[Any]]) -> float:
    """Wall-clock microseconds per row of one ``fn(rows)`` call."""
    started = time.perf_counter()
    fn(rows)
    return (time.perf_counter() - started) / len(rows) * 1e6


def machine() -> str:
    """CPU model, cores, OS, Python and genai-prices version, on one line."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, genai-prices {genai_prices.__version__}"
    )


def main(argv: list[str] | None = None) -> int:
    """Print the machine and the cold, warm and per-category figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    mixed = make_rows(args.spans, args.seed)
    rows = [row for _, row in mixed]
    card = parse_rate_card(CARD)

    cold_book = PriceBook(card, GenaiPricesCard())
    cold = microseconds_per_span(cold_book.price_rows, rows)
    warm_book = PriceBook(card, GenaiPricesCard())
    warm_book.price_rows(rows)
    warm = statistics.median(microseconds_per_span(warm_book.price_rows, rows) for _ in range(args.repeat))
    by_category = {}
    for category in CATEGORIES:
        subset = [row for c, row in mixed if c == category]
        by_category[category] = (
            len(subset),
            statistics.median(microseconds_per_span(warm_book.price_rows, subset) for _ in range(args.repeat)),
        )

    priced = sum(row[F.cost_usd] is not None for row in rows)
    print(f"machine: {machine()}")
    print(f"spans: {len(rows)} ({priced} priced), seed {args.seed}, start times over 30 days")
    print(f"cold (fresh caches): {cold:8.2f} us/span")
    print(f"warm (median of {args.repeat}): {warm:8.2f} us/span  = {1e6 / warm:,.0f} spans/s on one core")
    for category, (count, value) in by_category.items():
        print(f"  {category:<13} {count:>7} spans {value:8.2f} us/span")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared pieces of the pricing tests: span rows, genai-prices ground truth, stored figures."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices

from otelspend.enrich.pricing import at_ns
from otelspend.record import FEMTO_PER_USD, ROW_TEMPLATE, F

TOLERANCE = Decimal("1e-9")
"""The issue's bar: stored cost equals genai_prices.calc_price to 1e-9 USD."""


def usd(femto: int | None) -> Decimal | None:
    """Femto-USD -> Decimal USD."""
    return None if femto is None else Decimal(femto) / FEMTO_PER_USD


def llm_row(
    *,
    provider: str = "openai",
    response_model: str = "",
    request_model: str = "",
    start: dt.datetime | int = dt.datetime(2025, 6, 1, 12, tzinfo=dt.UTC),
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cache_read: int | None = None,
    cache_write: int | None = None,
    cache_write_1h: int | None = None,
    reasoning: int | None = None,
    duration_s: float = 1.0,
    **columns: Any,
) -> list[Any]:
    """A normalised LLM span row, as the receiver would hand it to the pricer."""
    row = ROW_TEMPLATE.copy()
    start_ns = start if isinstance(start, int) else at_ns(start)
    row[F.trace_id] = uuid.uuid4().hex
    row[F.span_id] = uuid.uuid4().hex[:16]
    row[F.span_class] = "llm"
    row[F.operation] = "chat"
    row[F.provider] = provider
    row[F.response_model] = response_model
    row[F.request_model] = request_model
    row[F.model] = response_model or request_model
    row[F.start_time] = start_ns
    row[F.duration_ns] = int(duration_s * 10**9)
    row[F.end_time] = start_ns + row[F.duration_ns]
    row[F.input_tokens] = input_tokens
    row[F.output_tokens] = output_tokens
    row[F.cache_read_tokens] = cache_read
    row[F.cache_write_tokens] = cache_write
    row[F.cache_write_1h_tokens] = cache_write_1h
    row[F.reasoning_tokens] = reasoning
    row[F.call_role] = "call"
    row[F.version] = 1
    for name, value in columns.items():
        row[getattr(F, name)] = value
    return row


def calc_price(row: list[Any], model: str, provider_id: str | None) -> genai_prices.types.PriceCalculation:
    """genai-prices' own answer for a row's usage, model, start time and request context."""
    usage = genai_prices.Usage(
        input_tokens=row[F.input_tokens],
        output_tokens=row[F.output_tokens],
        cache_read_tokens=row[F.cache_read_tokens],
        cache_write_tokens=row[F.cache_write_tokens],
        cache_write_1h_tokens=row[F.cache_write_1h_tokens],
        output_reasoning_tokens=row[F.reasoning_tokens],
    )
    seconds, rest = divmod(row[F.start_time], 10**9)
    when = dt.datetime.fromtimestamp(seconds, tz=dt.UTC).replace(microsecond=rest // 1000)
    context = {k: v for k, v in (("processing", row[F.processing]), ("service_tier", row[F.service_tier])) if v}
    return genai_prices.calc_price(
        usage, model, provider_id=provider_id, genai_request_timestamp=when, price_context=context or None
    )


def write_card(path: Path, text: str) -> Path:
    """Write a rate card and move its mtime forward, so a reload sees the change on any filesystem."""
    previous = path.stat().st_mtime if path.exists() else 0.0
    path.write_text(text)
    mtime = max(path.stat().st_mtime, previous + 2)
    os.utime(path, (mtime, mtime))
    return path


def figures(scalar: Callable[[str], Any]) -> dict[str, Decimal]:
    """Total cost as every stored layer sees it, by plain SQL (each must agree with the others).

    ``scalar`` runs SQL with ``{db}`` standing for the test database (``Running.scalar``)."""
    return {
        "spans": scalar("SELECT sum(cost_usd) FROM {db}.spans FINAL WHERE call_role = 'call'"),
        "runs": scalar("SELECT sum(sign * ifNull(cost_usd, 0)) FROM {db}.runs"),
        "runs_final": scalar("SELECT sum(ifNull(cost_usd, 0)) FROM {db}.runs FINAL"),
        "run_calls": scalar("SELECT sum(sign * cost_usd) FROM {db}.run_calls"),
        "rollup_runs": scalar("SELECT sum(cost_usd) FROM {db}.rollup_runs_hourly"),
        "rollup_calls": scalar("SELECT sum(cost_usd) FROM {db}.rollup_calls_hourly"),
    }

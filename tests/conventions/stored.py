"""Read back what otelspend stored for a trace, from every place a figure lives: the run
(``runs FINAL``), its breakdown (``run_calls FINAL``), the counted spans (``spans FINAL``
with ``call_role = 'call'``) and the hourly call rollup (``rollup_calls_hourly``)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tests.conventions.ledger import FEMTO_PER_USD, Tokens

_KINDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")


@dataclass(frozen=True)
class Figures:
    """One trace's totals as one stored table shows them."""

    calls: int
    tokens: dict[str, int]
    cost_femto: int
    retries: int | None = None
    failed_calls: int | None = None


@dataclass(frozen=True)
class StoredCall:
    """One counted call (a span with ``call_role = 'call'``)."""

    model: str
    response_id: str
    failed: bool
    tokens: tuple[int, ...]
    cost_femto: int | None
    scope: str
    reported_cost_femto: int | None


def femto(value: Any) -> int:
    return int(Decimal(value or 0) * FEMTO_PER_USD)


def run_row(server: Any, trace_id: str) -> dict[str, Any]:
    rows = server.dicts("SELECT * FROM {db}.runs FINAL WHERE run_id = {t:String}", t=trace_id)
    assert len(rows) == 1, f"expected one current run for {trace_id}, found {len(rows)}"
    return rows[0]


def from_run(server: Any, trace_id: str) -> Figures:
    run = run_row(server, trace_id)
    return Figures(
        calls=run["llm_calls"],
        tokens={kind: run[kind] for kind in _KINDS},
        cost_femto=femto(run["cost_usd"]),
        retries=run["retries"],
    )


def from_run_calls(server: Any, trace_id: str) -> Figures:
    sums = ", ".join(f"sum({kind})" for kind in _KINDS)
    row = server.rows(
        f"SELECT sum(calls), {sums}, sum(cost_usd), sum(retries), sum(errors) - sum(tool_failures) "
        "FROM {db}.run_calls FINAL WHERE run_id = {t:String}",
        t=trace_id,
    )[0]
    return Figures(
        calls=row[0],
        tokens=dict(zip(_KINDS, row[1:6], strict=True)),
        cost_femto=femto(row[6]),
        retries=row[7],
        failed_calls=row[8],
    )


def from_rollup(server: Any, service: str) -> Figures:
    """The hourly call rollup for one service (each test scenario has its own service)."""
    sums = ", ".join(f"sum({kind})" for kind in _KINDS)
    row = server.rows(
        f"SELECT sum(calls), {sums}, sum(cost_usd), sum(retries) FROM {{db}}.rollup_calls_hourly "
        "WHERE service = {s:String}",
        s=service,
    )[0]
    return Figures(
        calls=row[0],
        tokens=dict(zip(_KINDS, row[1:6], strict=True)),
        cost_femto=femto(row[6]),
        retries=row[7],
    )


def counted_calls(server: Any, trace_id: str) -> list[StoredCall]:
    rows = server.dicts(
        "SELECT model, response_id, status_code, input_tokens, output_tokens, cache_read_tokens, "
        "cache_write_tokens, reasoning_tokens, cost_usd, scope_name, reported_cost_usd "
        "FROM {db}.spans FINAL WHERE trace_id = {t:String} AND call_role = 'call' ORDER BY start_time",
        t=trace_id,
    )
    return [
        StoredCall(
            model=r["model"],
            response_id=r["response_id"],
            failed=r["input_tokens"] is None and r["output_tokens"] is None and r["status_code"] == "ERROR",
            tokens=tuple(r[kind] or 0 for kind in _KINDS),
            cost_femto=None if r["cost_usd"] is None else femto(r["cost_usd"]),
            scope=r["scope_name"],
            reported_cost_femto=None if r["reported_cost_usd"] is None else femto(r["reported_cost_usd"]),
        )
        for r in rows
    ]


def from_spans(server: Any, trace_id: str) -> Figures:
    calls = counted_calls(server, trace_id)
    return Figures(
        calls=len(calls),
        tokens={kind: sum(c.tokens[i] for c in calls) for i, kind in enumerate(_KINDS)},
        cost_femto=sum(c.cost_femto or 0 for c in calls),
        failed_calls=sum(c.failed for c in calls),
    )


def roles(server: Any, trace_id: str) -> dict[str, str]:
    """span_id -> call_role, as currently stored."""
    rows = server.rows("SELECT span_id, call_role FROM {db}.spans FINAL WHERE trace_id = {t:String}", t=trace_id)
    return dict(rows)


def tokens_tuple(tokens: Tokens) -> tuple[int, ...]:
    return (tokens.input, tokens.output, tokens.cache_read, tokens.cache_write, tokens.reasoning)

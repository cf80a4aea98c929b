"""Runs and spans inserted as a writer other than otelspend's pipeline would store them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from otelspend.clickhouse.client import Store

RUN_COLUMNS = ("run_id", "version", "sign", "start_time", "end_time", "team", "cost_usd")
SPAN_COLUMNS = (
    "trace_id", "span_id", "version", "start_time", "call_role", "provider", "model", "price_entry", "cost_usd",
    "cost_input_usd", "cost_output_usd", "input_tokens", "output_tokens",
)  # fmt: skip


def insert(store: Store, runs: Sequence[Sequence[Any]], spans: Sequence[Sequence[Any]]) -> None:
    """Rows in ``RUN_COLUMNS`` and ``SPAN_COLUMNS`` order."""
    store.insert_rows("runs", runs, RUN_COLUMNS)
    store.insert_rows("spans", spans, SPAN_COLUMNS)

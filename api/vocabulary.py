"""The public query vocabulary, as the API publishes it: every dimension and metric it accepts.

The table itself (names, levels, units, descriptions and the SQL of each figure) lives with
the queries that use it, ``otelspend.clickhouse.queries.vocabulary``; this module adds what
only the API needs: default metrics, outcome values, the OpenAPI enums and descriptions.
Validation messages, ``GET /v1/vocabulary`` and the docs are generated from the same table.
"""

from __future__ import annotations

from enum import StrEnum

from otelspend.clickhouse.queries.vocabulary import (
    CALL_BITS,
    DIMENSIONS,
    METRICS,
    PARTIALS,
    Dimension,
    Filters,
    Kind,
    Level,
    Metric,
    Partial,
    Source,
    metric_partials,
)

DEFAULT_METRICS: tuple[str, ...] = ("cost_usd", "runs", "calls")
OUTCOMES: tuple[str, ...] = ("accepted", "edited", "rejected", "escalated")

DimensionName = StrEnum("DimensionName", {name: name for name in DIMENSIONS})  # type: ignore[misc]
MetricName = StrEnum("MetricName", {name: name for name in METRICS})  # type: ignore[misc]


def describe_dimensions() -> str:
    """Markdown list of the dimensions, for OpenAPI descriptions."""
    return "\n".join(f"- `{d.name}` ({d.level} level): {d.description}" for d in DIMENSIONS.values())


def describe_metrics() -> str:
    """Markdown list of the metrics with units, for OpenAPI descriptions."""
    return "\n".join(f"- `{m.name}` ({m.unit}): {m.description}" for m in METRICS.values())


__all__ = [
    "CALL_BITS",
    "DEFAULT_METRICS",
    "DIMENSIONS",
    "METRICS",
    "OUTCOMES",
    "PARTIALS",
    "Dimension",
    "DimensionName",
    "Filters",
    "Kind",
    "Level",
    "Metric",
    "MetricName",
    "Partial",
    "Source",
    "describe_dimensions",
    "describe_metrics",
    "metric_partials",
]

"""Columnar span writer: one Arrow insert per batch, resources written once per process."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa

from otelspend.clickhouse.client import Store
from otelspend.clickhouse.columnar import table_from_rows
from otelspend.record import SPAN_COLUMNS

_MAX_KNOWN_RESOURCES = 100_000


Resources = Mapping[int, tuple[str, list[tuple[str, str]]]]


class SpanWriter:
    """Writes span batches: resources not seen before (stored once each), then the spans."""

    def __init__(self, store: Store, on_resources: Callable[[Resources], None] | None = None) -> None:
        self.store = store
        self.on_resources = on_resources
        self._known_resources: set[int] = set()

    def write(self, rows: list[list[Any]], resources: Resources, spans: pa.Table | None = None) -> None:
        """Insert new resources, then the spans (``spans``: the rows already in Arrow form)."""
        if self.on_resources is not None:
            self.on_resources(resources)
        fresh = [(rid, value) for rid, value in resources.items() if rid not in self._known_resources]
        if fresh:
            now = time.time_ns()
            table = pa.Table.from_arrays(
                [
                    pa.array([rid for rid, _ in fresh], pa.uint64()),
                    pa.array([service for _, (service, _) in fresh], pa.string()),
                    pa.array([attrs for _, (_, attrs) in fresh], pa.map_(pa.string(), pa.string())),
                    pa.array([now] * len(fresh), pa.int64()).view(pa.timestamp("ns", tz="UTC")),
                ],
                names=["resource_id", "service_name", "attributes", "first_seen"],
            )
            self.store.insert_arrow(f"{self.store.database}.resources", table)
        if spans is None:
            spans = table_from_rows(SPAN_COLUMNS, rows)
        self.store.insert_arrow(f"{self.store.database}.spans", spans)
        if len(self._known_resources) > _MAX_KNOWN_RESOURCES:
            self._known_resources.clear()
        self._known_resources.update(rid for rid, _ in fresh)

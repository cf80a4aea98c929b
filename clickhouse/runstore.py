"""Reads and writes the stitcher needs: stored spans of a trace, the run rows currently in
force, API outcomes, and the inserts of run emissions and span role changes.

The statements are in ``otelspend.clickhouse.queries`` (``runs``, ``spans``, ``outcomes``);
this class runs them in chunks and decodes rows into the stitcher's records."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from otelspend.clickhouse.client import Store
from otelspend.clickhouse.columnar import table_from_rows
from otelspend.clickhouse.queries import outcomes as outcome_queries
from otelspend.clickhouse.queries import runs as run_queries
from otelspend.clickhouse.queries import spans as span_queries
from otelspend.record import FEMTO_PER_USD, LITE_FIELDS, RUN_CALL_COLUMNS, RUN_COLUMNS, SPAN_COLUMNS, ApiOutcome

_TS = {c.name for c in SPAN_COLUMNS if c.kind == "ts"} | {c.name for c in RUN_COLUMNS if c.kind == "ts"}
_USD = {c.name for c in (*SPAN_COLUMNS, *RUN_COLUMNS, *RUN_CALL_COLUMNS) if c.kind in ("usd", "usd?")}
_CHUNK = 5_000


@dataclass
class Emitted:
    """A run as it is currently stored: the +1 rows in force and their version."""

    version: int
    run: list[Any]
    calls: list[list[Any]]
    written_ns: int


def _femto(value: Any) -> int | None:
    if value is None:
        return None
    return int(Decimal(value) * FEMTO_PER_USD)


def _chunks(items: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield list(items[start : start + _CHUNK])


class RunStore:
    """The run-level reads and writes of one store (the stitcher's, emission's and reprice's)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.database

    # -- reads ----------------------------------------------------------------------------

    def existing(self, run_ids: Sequence[str]) -> set[str]:
        """Which of these runs have any stored row."""
        found: set[str] = set()
        for chunk in _chunks(run_ids):
            found.update(row[0] for row in self.store.rows(*run_queries.existing(self.db, chunk)))
        return found

    def spans(self, trace_ids: Sequence[str]) -> dict[str, list[tuple[Any, ...]]]:
        """Stored spans (latest version of each) as stitcher tuples, by trace."""
        out: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        for chunk in _chunks(trace_ids):
            sql, parameters = span_queries.of_traces(self.db, LITE_FIELDS, chunk)
            result = self.store.client().query(sql, parameters=parameters)
            names = result.column_names
            for record in result.result_rows:
                values = dict(zip(names, record, strict=True))
                lite: list[Any] = []
                for name in LITE_FIELDS:
                    if name == "attributes":
                        lite.append((list(values["attr_keys"]), list(values["attr_values"])))
                    elif name in _USD:
                        lite.append(_femto(values[name]))
                    else:
                        lite.append(values[name])
                out[values["trace_id"]].append(tuple(lite))
        return out

    def emitted(self, run_ids: Sequence[str]) -> dict[str, Emitted]:
        """The rows currently in force (FINAL collapses cancelled versions)."""
        found: dict[str, Emitted] = {}
        run_names = [c.name for c in RUN_COLUMNS]
        call_names = [c.name for c in RUN_CALL_COLUMNS]
        for chunk in _chunks(run_ids):
            for record in self._records("runs", run_names, chunk):
                if record["sign"] != 1:
                    continue
                row = [_stored(name, record[name]) for name in run_names]
                found[record["run_id"]] = Emitted(record["version"], row, [], record["written_at"])
            for record in self._records("run_calls", call_names, chunk):
                emitted = found.get(record["run_id"])
                # Every uncancelled row counts, whatever its version: a re-emission rewrites only
                # the breakdown rows that changed, so rows kept from earlier versions stay in force.
                if record["sign"] == 1 and emitted is not None:
                    emitted.calls.append([_stored(name, record[name]) for name in call_names])
        return found

    def _records(self, table: str, names: Sequence[str], run_ids: list[str]) -> list[dict[str, Any]]:
        return self.store.dicts(*run_queries.final_rows(self.db, table, names, run_ids, _TS))

    def api_outcomes(self, run_ids: Sequence[str], workflow_ids: Sequence[str]) -> dict[str, list[ApiOutcome]]:
        """API-posted outcomes by run id; those posted by workflow id are keyed 'wf:<id>'."""
        out: dict[str, list[ApiOutcome]] = defaultdict(list)
        if not run_ids and not workflow_ids:
            return out
        rows = self.store.rows(*outcome_queries.for_runs(self.db, run_ids, workflow_ids))
        for run_id, workflow_id, outcome, score, label, recorded in rows:
            key = run_id or f"wf:{workflow_id}"
            out[key].append(ApiOutcome(outcome, score, label, recorded))
        return out

    def outcome_keys_since(self, since_ns: int) -> tuple[set[str], set[str]]:
        """Run ids and workflow ids with API outcomes recorded since ``since_ns``."""
        rows = self.store.rows(*outcome_queries.keys_since(self.db, since_ns))
        return {r for r, _ in rows if r}, {w for r, w in rows if not r and w}

    def traces_ingested_since(self, node: str, since_ns: int) -> list[str]:
        """Traces with spans this node stored since ``since_ns`` (recovery reopens their runs)."""
        rows = self.store.rows(*span_queries.ingested_since(self.db, node, since_ns))
        return [row[0] for row in rows]

    def hours_written_since(self, node: str, since_ns: int) -> list[int]:
        """Hours (unix seconds) holding run rows this node wrote since ``since_ns``."""
        rows = self.store.rows(*run_queries.hours_written_since(self.db, node, since_ns))
        return sorted(row[0] for row in rows)

    # -- writes ---------------------------------------------------------------------------

    def insert_runs(self, rows: list[list[Any]]) -> None:
        """Insert run rows (cancel and new rows of one emission together)."""
        self.store.insert_arrow(f"{self.db}.runs", table_from_rows(RUN_COLUMNS, rows))

    def insert_run_calls(self, rows: list[list[Any]]) -> None:
        """Insert breakdown rows (cancel and new rows of one emission together)."""
        self.store.insert_arrow(f"{self.db}.run_calls", table_from_rows(RUN_CALL_COLUMNS, rows))

    def update_roles(self, changes: Sequence[tuple[str, str, str]], version: int) -> None:
        """Re-insert spans with a new role (and a higher version), server-side."""
        by_role: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for trace_id, span_id, role in changes:
            by_role[role].append((trace_id, span_id))
        for role, pairs in by_role.items():
            for start in range(0, len(pairs), _CHUNK):
                self.store.command(*span_queries.set_role(self.db, role, version, pairs[start : start + _CHUNK]))


def _stored(name: str, value: Any) -> Any:
    if name in _USD:
        return _femto(value)
    if isinstance(value, list | tuple) and name in ("models", "providers", "agents", "tools", "latencies_ms"):
        return list(value)
    return value

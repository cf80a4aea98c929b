"""Reads and writes the stitcher needs: stored spans of a trace, the run rows currently in
force, API outcomes, and the inserts of run emissions and span role changes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from otelspend.clickhouse.client import Store
from otelspend.clickhouse.columnar import table_from_rows
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


def _select_list(names: Sequence[str]) -> str:
    parts = []
    for name in names:
        if name in _TS:
            parts.append(f"toUnixTimestamp64Nano({name}) AS {name}")
        elif name == "attributes":
            parts.append("mapKeys(attributes) AS attr_keys, mapValues(attributes) AS attr_values")
        else:
            parts.append(f"`{name}`")
    return ", ".join(parts)


def _femto(value: Any) -> int | None:
    if value is None:
        return None
    return int(Decimal(value) * FEMTO_PER_USD)


def _chunks(items: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield list(items[start : start + _CHUNK])


class RunStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.database

    # -- reads ----------------------------------------------------------------------------

    def existing(self, run_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(run_ids):
            rows = self.store.rows(
                f"SELECT DISTINCT run_id FROM {self.db}.runs WHERE run_id IN {{ids:Array(String)}}", {"ids": chunk}
            )
            found.update(row[0] for row in rows)
        return found

    def spans(self, trace_ids: Sequence[str]) -> dict[str, list[tuple[Any, ...]]]:
        """Stored spans (latest version of each) as stitcher tuples, by trace."""
        out: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        select = _select_list(LITE_FIELDS)
        for chunk in _chunks(trace_ids):
            result = self.store.client().query(
                f"SELECT {select} FROM {self.db}.spans FINAL WHERE trace_id IN {{ids:Array(String)}}",
                parameters={"ids": chunk},
            )
            names = result.column_names
            for record in result.result_rows:
                values = dict(zip(names, record, strict=True))
                lite = []
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
        return self.store.dicts(
            f"SELECT {_select_list(names)} FROM {self.db}.{table} FINAL WHERE run_id IN {{ids:Array(String)}}",
            {"ids": run_ids},
        )

    def api_outcomes(self, run_ids: Sequence[str], workflow_ids: Sequence[str]) -> dict[str, list[ApiOutcome]]:
        """API-posted outcomes by run id; those posted by workflow id are keyed 'wf:<id>'."""
        out: dict[str, list[ApiOutcome]] = defaultdict(list)
        if not run_ids and not workflow_ids:
            return out
        rows = self.store.rows(
            f"SELECT run_id, workflow_id, outcome, score, label, toUnixTimestamp64Nano(recorded_at) "
            f"FROM {self.db}.outcomes WHERE run_id IN {{r:Array(String)}} "
            f"OR (run_id = '' AND workflow_id IN {{w:Array(String)}})",
            {"r": list(run_ids), "w": [w for w in workflow_ids if w]},
        )
        for run_id, workflow_id, outcome, score, label, recorded in rows:
            key = run_id or f"wf:{workflow_id}"
            out[key].append(ApiOutcome(outcome, score, label, recorded))
        return out

    def outcome_keys_since(self, since_ns: int) -> tuple[set[str], set[str]]:
        """Run ids and workflow ids with API outcomes recorded since ``since_ns``."""
        rows = self.store.rows(
            f"SELECT DISTINCT run_id, workflow_id FROM {self.db}.outcomes "
            "WHERE received_at >= fromUnixTimestamp64Nano({s:Int64})",
            {"s": since_ns},
        )
        return {r for r, _ in rows if r}, {w for r, w in rows if not r and w}

    def traces_ingested_since(self, node: str, since_ns: int) -> list[str]:
        rows = self.store.rows(
            f"SELECT DISTINCT trace_id FROM {self.db}.spans WHERE ingest_node = {{n:String}} "
            "AND ingested_at >= fromUnixTimestamp64Nano({s:Int64})",
            {"n": node, "s": since_ns},
        )
        return [row[0] for row in rows]

    def hours_written_since(self, node: str, since_ns: int) -> list[int]:
        """Hours (unix seconds) holding run rows this node wrote since ``since_ns``."""
        rows = self.store.rows(
            f"SELECT DISTINCT toUnixTimestamp(toStartOfHour(start_time)) FROM {self.db}.runs "
            "WHERE node = {n:String} AND written_at >= fromUnixTimestamp64Nano({s:Int64}) "
            f"UNION DISTINCT SELECT DISTINCT toUnixTimestamp(toStartOfHour(start_time)) FROM {self.db}.run_calls "
            "WHERE node = {n:String} AND written_at >= fromUnixTimestamp64Nano({s:Int64})",
            {"n": node, "s": since_ns},
        )
        return sorted(row[0] for row in rows)

    # -- writes ---------------------------------------------------------------------------

    def insert_runs(self, rows: list[list[Any]]) -> None:
        self.store.insert_arrow(f"{self.db}.runs", table_from_rows(RUN_COLUMNS, rows))

    def insert_run_calls(self, rows: list[list[Any]]) -> None:
        self.store.insert_arrow(f"{self.db}.run_calls", table_from_rows(RUN_CALL_COLUMNS, rows))

    def update_roles(self, changes: Sequence[tuple[str, str, str]], version: int) -> None:
        """Re-insert spans with a new role (and a higher version), server-side."""
        by_role: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for trace_id, span_id, role in changes:
            by_role[role].append((trace_id, span_id))
        for role, pairs in by_role.items():
            for start in range(0, len(pairs), _CHUNK):
                chunk = pairs[start : start + _CHUNK]
                self.store.command(
                    f"INSERT INTO {self.db}.spans SELECT * REPLACE ({{role:String}} AS call_role, "
                    f"{{version:UInt64}} AS version) FROM {self.db}.spans FINAL "
                    "WHERE trace_id IN {traces:Array(String)} "
                    "AND (trace_id, span_id) IN {pairs:Array(Tuple(String, String))}",
                    {"role": role, "version": version, "traces": sorted({t for t, _ in chunk}), "pairs": chunk},
                )


def _stored(name: str, value: Any) -> Any:
    if name in _USD:
        return _femto(value)
    if isinstance(value, list | tuple) and name in ("models", "providers", "agents", "tools", "latencies_ms"):
        return list(value)
    return value

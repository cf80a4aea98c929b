"""Outcomes posted over the API (``POST .../outcome``): the history is kept, the latest
``recorded_at`` wins on the run. An outcome names a run, or a workflow execution (``run_id``
empty) and then applies to every run of it, later ones included."""

from __future__ import annotations

from collections.abc import Sequence

from otelspend.clickhouse.queries.sql import Query, render

COLUMNS = ("run_id", "workflow_id", "outcome", "score", "label", "source", "recorded_at", "received_at", "note")
"""Columns of an inserted outcome, in this order (``Store.insert_rows``)."""

_HISTORY = """
SELECT run_id, workflow_id, outcome, score, label, source, toUnixTimestamp64Nano(recorded_at), note
FROM {db}.outcomes
WHERE run_id = {run_id:String} OR (run_id = '' AND workflow_id = {workflow_id:String} AND {workflow_id:String} != '')
ORDER BY recorded_at
"""
_FOR_RUNS = """
SELECT run_id, workflow_id, outcome, score, label, toUnixTimestamp64Nano(recorded_at) FROM {db}.outcomes
WHERE run_id IN {run_ids:Array(String)} OR (run_id = '' AND workflow_id IN {workflow_ids:Array(String)})
"""
_KEYS_SINCE = """
SELECT DISTINCT run_id, workflow_id FROM {db}.outcomes WHERE received_at >= fromUnixTimestamp64Nano({since:Int64})
"""


def table(database: str) -> str:
    """The outcomes table, for inserts."""
    return render("{db}.outcomes", db=database)


def history(database: str, run_id: str, workflow_id: str) -> Query:
    """Every outcome posted for a run, or for its workflow, oldest first: run id, workflow id,
    outcome, score, label, source, recorded_at (ns), note."""
    return Query(render(_HISTORY, db=database), {"run_id": run_id, "workflow_id": workflow_id})


def for_runs(database: str, run_ids: Sequence[str], workflow_ids: Sequence[str]) -> Query:
    """Outcomes posted for these runs or these workflows: run id, workflow id, outcome, score,
    label, recorded_at (ns)."""
    parameters = {"run_ids": list(run_ids), "workflow_ids": [w for w in workflow_ids if w]}
    return Query(render(_FOR_RUNS, db=database), parameters)


def keys_since(database: str, since_ns: int) -> Query:
    """``(run_id, workflow_id)`` of the outcomes received since ``since_ns``."""
    return Query(render(_KEYS_SINCE, db=database), {"since": since_ns})

"""Emit closed runs: compute them (pure), diff against what is stored, write exact deltas.

For each run leaving the stitcher: find out whether it was emitted before (memory, else
the store), load its stored spans when memory holds only part of it, compute it, and if
anything changed write the stored rows back with sign -1 (same version) followed by the
new rows with sign +1 (newer version). Runs and breakdown rows are reconciled separately
against their own stored state, so a crash between the two inserts heals on the next
emission instead of double counting.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from otelspend.clickhouse.runstore import Emitted, RunStore
from otelspend.enrich.runs import (
    CALL_FIELD_NAMES,
    RUN_FIELD_NAMES,
    ApiOutcome,
    L,
    RunOptions,
    compute_run,
)
from otelspend.enrich.stitcher import UNKNOWN, OpenRun

_BOOKKEEPING = {"version", "sign", "written_at", "node"}
_RUN_COMPARE = tuple(i for i, n in enumerate(RUN_FIELD_NAMES) if n not in _BOOKKEEPING)
_CALL_COMPARE = tuple(i for i, n in enumerate(CALL_FIELD_NAMES) if n not in _BOOKKEEPING)
_RUN_VERSION = RUN_FIELD_NAMES.index("version")
_RUN_SIGN = RUN_FIELD_NAMES.index("sign")
_RUN_WRITTEN = RUN_FIELD_NAMES.index("written_at")
_CALL_VERSION = CALL_FIELD_NAMES.index("version")
_CALL_SIGN = CALL_FIELD_NAMES.index("sign")
_CALL_WRITTEN = CALL_FIELD_NAMES.index("written_at")


@dataclass
class EmitStats:
    emitted: int = 0
    unchanged: int = 0
    late_ignored: int = 0
    outcome_pending: int = 0
    role_changes: int = 0


class Emitter:
    def __init__(
        self,
        runstore: RunStore,
        *,
        node: str,
        options: Callable[[], RunOptions],
        late_horizon_ns: int,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.runstore = runstore
        self.node = node
        self.options = options
        self.late_horizon_ns = late_horizon_ns
        self.clock_ns = clock_ns
        self.outcome_runs: set[str] = set()
        self.outcome_workflows: set[str] = set()
        """Run / workflow ids with API outcomes that a closing run must pick up."""

    def emit(self, runs: list[OpenRun], remember: Callable[[OpenRun, Emitted | None], None]) -> EmitStats:
        """Write the runs; ``remember(run, stored_rows)`` is called for each one written or checked."""
        stats = EmitStats()
        if not runs:
            return stats
        self._resolve_previous(runs)
        self._load_partial(runs)
        self._load_outcomes(runs)

        now = self.clock_ns()
        options = self.options()
        run_rows: list[list[Any]] = []
        call_rows: list[list[Any]] = []
        roles: list[tuple[str, str, str]] = []
        remembered: list[tuple[OpenRun, Emitted | None]] = []
        for run in runs:
            if not run.spans:
                stats.outcome_pending += 1  # an outcome for a run not seen yet: stays in the store
                remembered.append((run, None))
                continue
            previous: Emitted | None = run.previous
            if previous is not None and previous.written_ns < now - self.late_horizon_ns:
                stats.late_ignored += 1
                remembered.append((run, previous))
                continue
            result = compute_run(run.spans.values(), run.outcomes, options)
            version = max(now, (previous.version + 1) if previous else 0)
            new_run = [result.run.get(name) for name in RUN_FIELD_NAMES]
            new_run[_RUN_VERSION], new_run[_RUN_SIGN], new_run[_RUN_WRITTEN] = version, 1, now
            new_run[RUN_FIELD_NAMES.index("node")] = self.node
            new_calls = []
            for call in result.calls:
                row = [call.get(name) for name in CALL_FIELD_NAMES]
                row[_CALL_VERSION], row[_CALL_SIGN], row[_CALL_WRITTEN] = version, 1, now
                row[CALL_FIELD_NAMES.index("node")] = self.node
                new_calls.append(row)
            for span_id, role in result.roles.items():
                roles.append((run.run_id, span_id, role))
            if previous is not None and _same(previous, new_run, new_calls) and not result.roles:
                stats.unchanged += 1
                remembered.append((run, previous))
                continue
            if previous is not None:
                if _key(previous.run, _RUN_COMPARE) != _key(new_run, _RUN_COMPARE):
                    run_rows.append(_cancel(previous.run, _RUN_SIGN, _RUN_WRITTEN, now))
                    run_rows.append(new_run)
                else:
                    new_run = previous.run
                old_calls = {_key(r, _CALL_COMPARE): r for r in previous.calls}
                kept = []
                for row in new_calls:
                    same = old_calls.pop(_key(row, _CALL_COMPARE), None)
                    if same is not None:
                        kept.append(same)
                    else:
                        call_rows.append(row)
                        kept.append(row)
                call_rows.extend(_cancel(r, _CALL_SIGN, _CALL_WRITTEN, now) for r in old_calls.values())
                new_calls = kept
            else:
                run_rows.append(new_run)
                call_rows.extend(new_calls)
            stats.emitted += 1
            remembered.append((run, Emitted(version, new_run, new_calls, now)))

        # Cancels and new rows of a table go in one insert: one block, one atomic part.
        if run_rows:
            self.runstore.insert_runs(run_rows)
        if call_rows:
            self.runstore.insert_run_calls(call_rows)
        if roles:
            self.runstore.update_roles(roles, now)
            stats.role_changes = len(roles)
        for run, emitted in remembered:
            remember(run, emitted)
        return stats

    # -- loading what memory does not hold ---------------------------------------------------

    def _resolve_previous(self, runs: list[OpenRun]) -> None:
        unknown = [run for run in runs if run.previous is UNKNOWN]
        if not unknown:
            return
        existing = self.runstore.existing([run.run_id for run in unknown])
        emitted = self.runstore.emitted(sorted(existing)) if existing else {}
        for run in unknown:
            if run.run_id in existing:
                run.previous = emitted.get(run.run_id)
                run.partial = True
                run.load_outcomes = True
            else:
                run.previous = None

    def _load_partial(self, runs: list[OpenRun]) -> None:
        partial = [run for run in runs if run.partial]
        if not partial:
            return
        stored = self.runstore.spans([run.run_id for run in partial])
        for run in partial:
            for span in stored.get(run.run_id, ()):
                run.spans.setdefault(span[L.span_id], span)
            run.partial = False

    def _load_outcomes(self, runs: list[OpenRun]) -> None:
        wanted = []
        for run in runs:
            workflow = _workflow_id(run)
            if (
                run.load_outcomes
                or run.run_id in self.outcome_runs
                or (workflow and workflow in self.outcome_workflows)
            ):
                wanted.append((run, workflow))
        if not wanted:
            return
        found = self.runstore.api_outcomes([r.run_id for r, _ in wanted], [w for _, w in wanted if w])
        for run, workflow in wanted:
            outcomes: list[ApiOutcome] = list(found.get(run.run_id, ()))
            if workflow:
                outcomes.extend(found.get(f"wf:{workflow}", ()))
            run.outcomes = outcomes


def _workflow_id(run: OpenRun) -> str:
    fallback = ""
    for span in run.spans.values():
        value = span[L.workflow_id]
        if value:
            if not span[L.parent_span_id]:
                return value
            fallback = fallback or value
    return fallback


def _key(row: list[Any], indexes: tuple[int, ...]) -> tuple[Any, ...]:
    return tuple(_freeze(row[i]) for i in indexes)


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _same(previous: Emitted, run_row: list[Any], call_rows: list[list[Any]]) -> bool:
    if _key(previous.run, _RUN_COMPARE) != _key(run_row, _RUN_COMPARE):
        return False
    return Counter(_key(r, _CALL_COMPARE) for r in previous.calls) == Counter(_key(r, _CALL_COMPARE) for r in call_rows)


def _cancel(row: list[Any], sign_index: int, written_index: int, now: int) -> list[Any]:
    cancel = list(row)
    cancel[sign_index] = -1
    cancel[written_index] = now
    return cancel

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
from dataclasses import dataclass, field
from typing import Any

from otelspend.clickhouse.runstore import Emitted, RunStore
from otelspend.enrich.runs import CALL_FIELD_NAMES, RUN_FIELD_NAMES, RunOptions, call_row_of, compute_run, run_row_of
from otelspend.enrich.stitcher import UNKNOWN, OpenRun
from otelspend.record import ApiOutcome, L

_BOOKKEEPING = {"version", "sign", "written_at", "node"}
_RUN_COMPARE = tuple(i for i, n in enumerate(RUN_FIELD_NAMES) if n not in _BOOKKEEPING)
_CALL_COMPARE = tuple(i for i, n in enumerate(CALL_FIELD_NAMES) if n not in _BOOKKEEPING)
_RUN_VERSION = RUN_FIELD_NAMES.index("version")
_RUN_SIGN = RUN_FIELD_NAMES.index("sign")
_RUN_WRITTEN = RUN_FIELD_NAMES.index("written_at")
_CALL_VERSION = CALL_FIELD_NAMES.index("version")
_CALL_SIGN = CALL_FIELD_NAMES.index("sign")
_CALL_WRITTEN = CALL_FIELD_NAMES.index("written_at")
_RUN_NODE = RUN_FIELD_NAMES.index("node")
_CALL_NODE = CALL_FIELD_NAMES.index("node")


@dataclass
class _Decision:
    run: OpenRun
    stored: Emitted | None
    """What will be in force once written (the previous rows when nothing changes)."""
    kind: str
    """An EmitStats counter: emitted, unchanged, late_ignored, outcome_pending."""
    run_rows: list[list[Any]] = field(default_factory=list)
    call_rows: list[list[Any]] = field(default_factory=list)
    roles: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class EmitPlan:
    ready: list[_Decision] = field(default_factory=list)
    """Computed against a previous emission memory knows (or knows there was none)."""
    tentative: list[_Decision] = field(default_factory=list)
    """Computed as new runs; the store must confirm it has never seen them."""
    deferred: list[OpenRun] = field(default_factory=list)
    """Need stored spans or API outcomes: computed by commit."""


@dataclass
class EmitStats:
    emitted: int = 0
    unchanged: int = 0
    late_ignored: int = 0
    outcome_pending: int = 0
    role_changes: int = 0
    run_rows: list[list[Any]] = field(default_factory=list)
    """The signed run rows written (cancels and new rows): the exact delta, for observers."""
    call_rows: list[list[Any]] = field(default_factory=list)
    """The signed breakdown rows written."""


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
        return self.commit(self.plan(runs), remember)

    def plan(self, runs: list[OpenRun]) -> EmitPlan:
        """Compute, without the store, every run memory knows enough about (pipeline thread).

        A run whose previous emission memory does not know is computed as new, tentatively:
        ``commit`` checks the store first. Runs needing stored spans or API outcomes wait
        for ``commit``.
        """
        plan = EmitPlan()
        options = self.options()
        now = self.clock_ns()
        for run in runs:
            if run.partial or self._needs_outcomes(run):
                plan.deferred.append(run)
            elif run.previous is UNKNOWN:
                plan.tentative.append(self._decide(run, None, options, now))
            else:
                plan.ready.append(self._decide(run, run.previous, options, now))
        return plan

    def commit(self, plan: EmitPlan, remember: Callable[[OpenRun, Emitted | None], None]) -> EmitStats:
        """Verify, finish and write a plan (writer thread); the store sees every earlier write."""
        decisions = plan.ready
        deferred = plan.deferred
        if plan.tentative:
            existing = self.runstore.existing([d.run.run_id for d in plan.tentative])
            for decision in plan.tentative:
                if decision.run.run_id in existing:
                    decision.run.previous = UNKNOWN
                    deferred.append(decision.run)
                else:
                    decision.run.previous = None
                    decisions.append(decision)
        if deferred:
            self._resolve_previous(deferred)
            self._load_partial(deferred)
            self._load_outcomes(deferred)
            options = self.options()
            now = self.clock_ns()
            decisions.extend(self._decide(run, run.previous, options, now) for run in deferred)

        stats = EmitStats()
        now = self.clock_ns()
        run_rows: list[list[Any]] = []
        call_rows: list[list[Any]] = []
        roles: list[tuple[str, str, str]] = []
        for decision in decisions:
            setattr(stats, decision.kind, getattr(stats, decision.kind) + 1)
            run_rows.extend(decision.run_rows)
            call_rows.extend(decision.call_rows)
            roles.extend(decision.roles)
            if decision.stored is not None and decision.kind == "emitted":
                decision.stored.written_ns = now
        # written_at is the moment of writing: after a crash, the hours of rows written since
        # the last finished emission are rebuilt (otelspend.app recovery).
        for row in run_rows:
            row[_RUN_WRITTEN] = now
        for row in call_rows:
            row[_CALL_WRITTEN] = now
        # Cancels and new rows of a table go in one insert: one block, one atomic part.
        if run_rows:
            self.runstore.insert_runs(run_rows)
        if call_rows:
            self.runstore.insert_run_calls(call_rows)
        stats.run_rows, stats.call_rows = run_rows, call_rows
        if roles:
            self.runstore.update_roles(roles, now)
            stats.role_changes = len(roles)
        for decision in decisions:
            remember(decision.run, decision.stored)
        return stats

    def _needs_outcomes(self, run: OpenRun) -> bool:
        if run.load_outcomes or run.run_id in self.outcome_runs:
            return True
        workflow = _workflow_id(run) if self.outcome_workflows else ""
        return bool(workflow) and workflow in self.outcome_workflows

    def _decide(self, run: OpenRun, previous: Emitted | None, options: RunOptions, now: int) -> _Decision:
        """What to write for one run, given what is stored for it (pure apart from compute_run)."""
        if not run.spans:
            # An outcome for a run not seen yet: it stays in the store until the run arrives.
            return _Decision(run, previous, "outcome_pending")
        if previous is not None and previous.written_ns < now - self.late_horizon_ns:
            return _Decision(run, previous, "late_ignored")
        result = compute_run(run.spans.values(), run.outcomes, options)
        version = max(now, (previous.version + 1) if previous else 0)
        new_run = list(run_row_of(result.run))
        new_run[_RUN_VERSION], new_run[_RUN_SIGN], new_run[_RUN_NODE] = version, 1, self.node
        new_calls = []
        for call in result.calls:
            row = list(call_row_of(call))
            row[_CALL_VERSION], row[_CALL_SIGN], row[_CALL_NODE] = version, 1, self.node
            new_calls.append(row)
        roles = [(run.run_id, span_id, role) for span_id, role in result.roles.items()]
        if previous is None:
            return _Decision(run, Emitted(version, new_run, new_calls, now), "emitted", [new_run], new_calls, roles)
        if _same(previous, new_run, new_calls) and not roles:
            return _Decision(run, previous, "unchanged")
        run_rows: list[list[Any]] = []
        if _key(previous.run, _RUN_COMPARE) != _key(new_run, _RUN_COMPARE):
            run_rows = [_cancel(previous.run, _RUN_SIGN), new_run]
        else:
            new_run = previous.run
        old_calls = {_key(r, _CALL_COMPARE): r for r in previous.calls}
        call_rows: list[list[Any]] = []
        kept = []
        for row in new_calls:
            same = old_calls.pop(_key(row, _CALL_COMPARE), None)
            if same is not None:
                kept.append(same)
            else:
                call_rows.append(row)
                kept.append(row)
        call_rows.extend(_cancel(r, _CALL_SIGN) for r in old_calls.values())
        return _Decision(run, Emitted(version, new_run, kept, now), "emitted", run_rows, call_rows, roles)

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


def _cancel(row: list[Any], sign_index: int) -> list[Any]:
    cancel = list(row)
    cancel[sign_index] = -1
    return cancel

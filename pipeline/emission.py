"""Emit closed runs: compute them (pure), diff against what is stored, write exact deltas.

For each run leaving the stitcher: find out whether it was emitted before (memory, else
the store), load its stored spans when memory holds only part of it, compute it, and if
anything changed write the stored rows back with sign -1 (same version) followed by the
new rows with sign +1 (newer version). Runs and breakdown rows are reconciled separately
against their own stored state, so a crash between the two inserts heals on the next
emission instead of double counting.

Two threads, nothing shared: ``Emitter.plan`` runs on the pipeline thread, copies each
closing ``OpenRun`` into an immutable ``RunSnapshot`` and computes what memory knows
enough about; the plan is then handed whole to the store writer, whose ``Emitter.commit``
checks the store, finishes the rest on working copies of its own and writes. What it
wrote comes back as ``Written`` records for the pipeline thread to remember.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Protocol

from otelspend.clickhouse.runstore import Emitted, RunStore
from otelspend.enrich.runs import CALL_FIELD_NAMES, RUN_FIELD_NAMES, RunOptions, call_row_of, compute_run, run_row_of
from otelspend.enrich.stitcher import UNKNOWN, OpenRun
from otelspend.pipeline.errors import ErrorKind, classify, describe
from otelspend.pipeline.resources import Attributes, ResourceCache
from otelspend.record import ApiOutcome, L

log = logging.getLogger("otelspend")
Span = tuple[Any, ...]
ISOLATE_MAX_COMMITS = 32
"""Commits one refused emission may cost while its bad runs are looked for."""
REFUSED_RUNS_KEPT = 10_000
"""Runs whose refused span ids the writer remembers (refusals are rare; oldest forgotten first)."""

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


class RunView(Protocol):
    """What emission reads of a run (a snapshot, or the writer's working copy)."""

    @property
    def run_id(self) -> str:
        """The run's trace id."""

    @property
    def spans(self) -> Mapping[str, Span]:
        """span id -> compact span (``otelspend.record.L`` fields)."""

    @property
    def outcomes(self) -> Sequence[ApiOutcome]:
        """Outcomes posted over the API for the run or its workflow."""

    @property
    def load_outcomes(self) -> bool:
        """Whether the store may hold API outcomes memory does not."""


@dataclass(frozen=True)
class RunSnapshot:
    """A closed run as the pipeline thread hands it to the store writer: copied, immutable.

    The stitcher's ``OpenRun`` belongs to the pipeline thread; the writer never sees it.
    """

    run_id: str
    spans: Mapping[str, Span]
    has_root: bool
    previous: Any
    """Emitted rows in force, None if never emitted, UNKNOWN if memory does not know."""
    partial: bool
    outcomes: tuple[ApiOutcome, ...]
    load_outcomes: bool

    @classmethod
    def of(cls, run: OpenRun) -> RunSnapshot:
        """Copy what emission needs of ``run`` (pipeline thread)."""
        return cls(
            run.run_id,
            MappingProxyType(dict(run.spans)),
            run.has_root,
            run.previous,
            run.partial,
            tuple(run.outcomes),
            run.load_outcomes,
        )

    def for_retry(self) -> RunSnapshot:
        """After a failed attempt that may have written part of it: reconcile with the store."""
        return dataclasses.replace(self, previous=UNKNOWN, partial=True, load_outcomes=True)


@dataclass
class _Work:
    """The store writer's own working copy of a run it must finish (stored spans, outcomes)."""

    run_id: str
    spans: dict[str, Span]
    previous: Any
    partial: bool
    outcomes: list[ApiOutcome]
    load_outcomes: bool

    @classmethod
    def of(cls, snapshot: RunSnapshot, previous: Any = None, refused: Collection[str] = ()) -> _Work:
        spans = dict(snapshot.spans)
        for span_id in refused:
            spans.pop(span_id, None)
        return cls(
            snapshot.run_id,
            spans,
            snapshot.previous if previous is None else previous,
            snapshot.partial,
            list(snapshot.outcomes),
            snapshot.load_outcomes,
        )


class EmitKind(StrEnum):
    """What an emission did with one run; each value names its ``EmitStats`` counter."""

    EMITTED = "emitted"
    """Written: its first emission, or a change (cancel rows + new rows)."""
    UNCHANGED = "unchanged"
    """The stored rows were already right."""
    LATE_IGNORED = "late_ignored"
    """Emitted longer ago than the late horizon: its late spans do not reopen it."""
    OUTCOME_PENDING = "outcome_pending"
    """An API outcome for a run with no span yet: kept in the store until the run arrives."""


@dataclass(frozen=True)
class _Decision:
    """What one emission writes for one run (rows, role changes) and what is in force after."""

    run_id: str
    span_ids: frozenset[str]
    stored: Emitted | None
    """What will be in force once written (the previous rows when nothing changes)."""
    kind: EmitKind
    run_rows: tuple[list[Any], ...] = ()
    call_rows: tuple[list[Any], ...] = ()
    roles: tuple[tuple[str, str, str], ...] = ()
    """(run id, span id, role) of the spans whose stored role changes."""


@dataclass
class EmitPlan:
    """What the pipeline thread computed; handed whole to the store writer (its owner from then on)."""

    snapshots: list[RunSnapshot] = field(default_factory=list)
    """Every run of the emission (a retried attempt reconciles them all with the store)."""
    ready: list[_Decision] = field(default_factory=list)
    """Computed against a previous emission memory knows (or knows there was none)."""
    tentative: list[tuple[RunSnapshot, _Decision]] = field(default_factory=list)
    """Computed as new runs; the store must confirm it has never seen them."""
    deferred: list[RunSnapshot] = field(default_factory=list)
    """Need stored spans, API outcomes or resource attributes: computed by commit."""
    resources: dict[int, Attributes] = field(default_factory=dict)
    """Resource attributes memory holds for the deferred runs (the writer fetches the rest)."""
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(run id, reason): runs whose computation failed; quarantined, not written."""

    def retry(self) -> EmitPlan:
        """The plan of a retried attempt: everything reconciled with the store."""
        return EmitPlan(snapshots=self.snapshots, deferred=[s.for_retry() for s in self.snapshots])


@dataclass(frozen=True)
class Written:
    """One run an emission handled (written, or found right as stored): what to remember."""

    run_id: str
    stored: Emitted | None
    span_ids: frozenset[str]
    """Every span id of the run, stored ones included."""


@dataclass
class EmitStats:
    """What one emission did."""

    emitted: int = 0
    unchanged: int = 0
    late_ignored: int = 0
    outcome_pending: int = 0
    role_changes: int = 0
    written: list[Written] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(run id, reason): runs not written because computing them failed (quarantined)."""
    fetched_resources: dict[int, Attributes] = field(default_factory=dict)
    """Resource attributes the writer read from the store, for the pipeline's cache."""
    run_rows: list[list[Any]] = field(default_factory=list)
    """The signed run rows written (cancels and new rows): the exact delta, for observers."""
    call_rows: list[list[Any]] = field(default_factory=list)
    """The signed breakdown rows written."""

    def count(self, kind: EmitKind) -> None:
        """One more run handled this way."""
        setattr(self, kind.value, getattr(self, kind.value) + 1)


class Emitter:
    """Plans emissions on the pipeline thread and commits them on the store writer thread.

    ``outcome_runs`` / ``outcome_workflows`` change only in pipeline commands, which run
    while the writer is drained (``Pipeline.call``), and in recovery before the threads
    start: both threads read them, never while one writes.
    """

    def __init__(
        self,
        runstore: RunStore,
        *,
        node: str,
        options: Callable[[], RunOptions],
        late_horizon_ns: int,
        clock_ns: Callable[[], int] = time.time_ns,
        resources: ResourceCache | None = None,
        fetch_resources: Callable[[Collection[int]], Mapping[int, Attributes]] | None = None,
    ) -> None:
        self.runstore = runstore
        self.node = node
        self.options = options
        self.late_horizon_ns = late_horizon_ns
        self.clock_ns = clock_ns
        self.resources = resources
        """The pipeline thread's resource cache (plan only); None: ``options`` carries its own lookup."""
        self.fetch_resources = fetch_resources
        """Store read of resource attributes (commit only)."""
        self.outcome_runs: set[str] = set()
        self.outcome_workflows: set[str] = set()
        """Run / workflow ids with API outcomes that a closing run must pick up."""
        self._refused: OrderedDict[str, set[str]] = OrderedDict()
        """Store writer thread only: span ids the store refused for good, by run. An emission
        always runs after the inserts of its spans, so every run written leaves them out."""

    def refuse(self, keys: Iterable[tuple[str, str]]) -> None:
        """(trace id, span id) of spans the store refused for good: runs must not count them
        (store writer thread, before any later emission)."""
        for trace_id, span_id in keys:
            self._refused.setdefault(trace_id, set()).add(span_id)
            self._refused.move_to_end(trace_id)
        while len(self._refused) > REFUSED_RUNS_KEPT:
            self._refused.popitem(last=False)

    def emit(self, runs: Sequence[OpenRun], remember: Callable[[OpenRun, Any, frozenset[str]], None]) -> EmitStats:
        """Plan and commit on one thread (re-pricing); ``remember(run, stored, span_ids)`` per run."""
        by_id = {run.run_id: run for run in runs}
        stats = self.commit(self.plan(runs))
        for written in stats.written:
            remember(by_id[written.run_id], written.stored, written.span_ids)
        for run_id, reason in stats.failed:
            log.error("run %s not emitted: %s", run_id, reason)
            remember(by_id[run_id], UNKNOWN, frozenset())
        return stats

    def plan(self, runs: Sequence[OpenRun]) -> EmitPlan:
        """Snapshot the runs and compute every one memory knows enough about (pipeline thread).

        A run whose previous emission memory does not know is computed as new, tentatively:
        ``commit`` checks the store first. Runs needing stored spans, API outcomes or
        resource attributes memory does not hold wait for ``commit``. A run whose
        computation raises is failed for good (the same spans fail the same way again).
        """
        plan = EmitPlan(snapshots=[RunSnapshot.of(run) for run in runs])
        options = self._options_from_cache()
        now = self.clock_ns()
        for snapshot in plan.snapshots:
            if snapshot.partial or self._needs_outcomes(snapshot) or not self._resources_known(snapshot):
                self._defer(plan, snapshot)
                continue
            previous = None if snapshot.previous is UNKNOWN else snapshot.previous
            try:
                decision = self._decide(snapshot, previous, options, now)
            except Exception as exc:
                plan.failed.append((snapshot.run_id, f"cannot compute the run: {describe(exc)}"))
                continue
            if snapshot.previous is UNKNOWN:
                plan.tentative.append((snapshot, decision))
            else:
                plan.ready.append(decision)
        return plan

    def commit(self, plan: EmitPlan) -> EmitStats:
        """Verify, finish and write a plan (writer thread); the store sees every earlier write."""
        stats = EmitStats(failed=list(plan.failed))
        self._write(self._verified(plan, stats), stats)
        return stats

    def _verified(self, plan: EmitPlan, stats: EmitStats) -> list[_Decision]:
        """The plan's decisions the store confirms, plus the runs finished here: deferred ones,
        tentative ones the store already knows, and any computed with a span since refused."""
        work = [_Work.of(snapshot, refused=self._refused.get(snapshot.run_id, ())) for snapshot in plan.deferred]
        decisions, tentative = self._without_refused(plan, work)
        if tentative:
            existing = self.runstore.existing([snapshot.run_id for snapshot, _ in tentative])
            for snapshot, decision in tentative:
                if snapshot.run_id in existing:
                    work.append(_Work.of(snapshot, previous=UNKNOWN))
                else:
                    decisions.append(decision)
        if work:
            decisions.extend(self._finish(work, plan.resources, stats))
        return decisions

    def _without_refused(
        self, plan: EmitPlan, work: list[_Work]
    ) -> tuple[list[_Decision], list[tuple[RunSnapshot, _Decision]]]:
        """The ready and tentative decisions still valid; a run computed from memory before the
        pipeline learnt one of its spans was refused is redone here (added to ``work``)."""
        refused = self._refused
        if not refused:
            return list(plan.ready), plan.tentative
        by_id = {snapshot.run_id: snapshot for snapshot in plan.snapshots}
        decisions = []
        for decision in plan.ready:
            if decision.span_ids.isdisjoint(refused.get(decision.run_id, ())):
                decisions.append(decision)
            else:
                work.append(_Work.of(by_id[decision.run_id], refused=refused[decision.run_id]))
        tentative = []
        for snapshot, decision in plan.tentative:
            if decision.span_ids.isdisjoint(refused.get(decision.run_id, ())):
                tentative.append((snapshot, decision))
            else:
                work.append(_Work.of(snapshot, refused=refused[decision.run_id]))
        return decisions, tentative

    def _write(self, decisions: list[_Decision], stats: EmitStats) -> None:
        """Write the decisions' rows and role changes, stamped now, and count them in ``stats``."""
        now = self.clock_ns()
        run_rows: list[list[Any]] = []
        call_rows: list[list[Any]] = []
        roles: list[tuple[str, str, str]] = []
        for decision in decisions:
            stats.count(decision.kind)
            run_rows.extend(decision.run_rows)
            call_rows.extend(decision.call_rows)
            roles.extend(decision.roles)
            stored = decision.stored
            if stored is not None and decision.kind is EmitKind.EMITTED:
                stored = dataclasses.replace(stored, written_ns=now)
            stats.written.append(Written(decision.run_id, stored, decision.span_ids))
        # written_at is the moment of writing: after a crash, the hours of rows written since
        # the last finished emission are rebuilt (pipeline/recovery.py).
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

    def commit_isolating(
        self,
        plan: EmitPlan,
        budget: int = ISOLATE_MAX_COMMITS,
        on_refusal: Callable[[BaseException], None] | None = None,
    ) -> EmitStats:
        """``commit``, isolating runs the store refuses for good (writer thread).

        After a permanent error the plan's runs are committed again in halves, reconciled
        with the store (a failed attempt may have written part of them), until the runs
        refused on their own are found; those are failed with the reason, the rest written.
        Retryable errors propagate: the caller retries the whole emission.
        """
        total = EmitStats(failed=list(plan.failed))
        already = {run_id for run_id, _ in plan.failed}
        pending = [[snapshot for snapshot in plan.snapshots if snapshot.run_id not in already]]
        attempts = 0
        while pending:
            part = pending.pop()
            if not part:
                continue
            attempts += 1
            try:
                stats = self.commit(EmitPlan(snapshots=part, deferred=[s.for_retry() for s in part]))
            except Exception as exc:
                if classify(exc) is not ErrorKind.PERMANENT:
                    raise
                if on_refusal is not None:
                    on_refusal(exc)
                if len(part) == 1 or attempts + 2 > budget:
                    reason = f"the store refused the emission: {describe(exc)}"
                    total.failed.extend((snapshot.run_id, reason) for snapshot in part)
                    continue
                half = len(part) // 2
                pending += [part[half:], part[:half]]
                continue
            _add(total, stats)
        return total

    def _finish(self, work: list[_Work], known: Mapping[int, Attributes], stats: EmitStats) -> list[_Decision]:
        """Load what memory did not hold for these runs, then compute them (writer thread)."""
        self._resolve_previous(work)
        self._load_partial(work)
        self._load_outcomes(work)
        options = self.options()
        if self.fetch_resources is not None:
            resources = dict(known)
            missing = {rid for run in work for rid in _resource_ids(run.spans)} - resources.keys()
            if missing:
                stats.fetched_resources = dict(self.fetch_resources(missing))
                resources.update(stats.fetched_resources)
            options = dataclasses.replace(options, resource_attributes=lambda rid: resources.get(rid, {}))
        now = self.clock_ns()
        decisions = []
        for run in work:
            try:
                decisions.append(self._decide(run, run.previous, options, now))
            except Exception as exc:
                stats.failed.append((run.run_id, f"cannot compute the run: {describe(exc)}"))
        return decisions

    def _options_from_cache(self) -> RunOptions:
        options = self.options()
        cache = self.resources
        if cache is None:
            return options
        return dataclasses.replace(options, resource_attributes=lambda rid: cache.get(rid) or {})

    def _resources_known(self, run: RunView) -> bool:
        if self.resources is None:
            return True
        _, missing = self.resources.lookup(_resource_ids(run.spans))
        return not missing

    def _defer(self, plan: EmitPlan, snapshot: RunSnapshot) -> None:
        plan.deferred.append(snapshot)
        if self.resources is not None:
            known, _ = self.resources.lookup(_resource_ids(snapshot.spans))
            plan.resources.update(known)

    def _needs_outcomes(self, run: RunView) -> bool:
        if run.load_outcomes or run.run_id in self.outcome_runs:
            return True
        workflow = _workflow_id(run) if self.outcome_workflows else ""
        return bool(workflow) and workflow in self.outcome_workflows

    def _decide(self, run: RunView, previous: Emitted | None, options: RunOptions, now: int) -> _Decision:
        """What to write for one run, given what is stored for it (pure apart from compute_run)."""
        span_ids = frozenset(run.spans)
        if not run.spans:
            # An outcome for a run not seen yet: it stays in the store until the run arrives.
            return _Decision(run.run_id, span_ids, previous, EmitKind.OUTCOME_PENDING)
        if previous is not None and previous.written_ns < now - self.late_horizon_ns:
            return _Decision(run.run_id, span_ids, previous, EmitKind.LATE_IGNORED)
        result = compute_run(run.spans.values(), run.outcomes, options)
        version = max(now, (previous.version + 1) if previous else 0)
        new_run = list(run_row_of(result.run))
        new_run[_RUN_VERSION], new_run[_RUN_SIGN], new_run[_RUN_NODE] = version, 1, self.node
        new_calls = []
        for call in result.calls:
            row = list(call_row_of(call))
            row[_CALL_VERSION], row[_CALL_SIGN], row[_CALL_NODE] = version, 1, self.node
            new_calls.append(row)
        roles = tuple((run.run_id, span_id, role) for span_id, role in result.roles.items())
        if previous is None:
            stored = Emitted(version, new_run, new_calls, now)
            return _Decision(run.run_id, span_ids, stored, EmitKind.EMITTED, (new_run,), tuple(new_calls), roles)
        if _same(previous, new_run, new_calls) and not roles:
            return _Decision(run.run_id, span_ids, previous, EmitKind.UNCHANGED)
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
        stored = Emitted(version, new_run, kept, now)
        return _Decision(run.run_id, span_ids, stored, EmitKind.EMITTED, tuple(run_rows), tuple(call_rows), roles)

    # -- loading what memory does not hold (writer thread, on its own working copies) --------

    def _resolve_previous(self, runs: list[_Work]) -> None:
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

    def _load_partial(self, runs: list[_Work]) -> None:
        partial = [run for run in runs if run.partial]
        if not partial:
            return
        stored = self.runstore.spans([run.run_id for run in partial])
        for run in partial:
            for span in stored.get(run.run_id, ()):
                run.spans.setdefault(span[L.span_id], span)
            run.partial = False

    def _load_outcomes(self, runs: list[_Work]) -> None:
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


def _add(total: EmitStats, stats: EmitStats) -> None:
    for name in ("emitted", "unchanged", "late_ignored", "outcome_pending", "role_changes"):
        setattr(total, name, getattr(total, name) + getattr(stats, name))
    total.written += stats.written
    total.failed += stats.failed
    total.run_rows += stats.run_rows
    total.call_rows += stats.call_rows
    total.fetched_resources.update(stats.fetched_resources)


def _resource_ids(spans: Mapping[str, Span]) -> set[int]:
    """Resources a run's computation may read: its root spans' (any span's, without a root)."""
    roots = {span[L.resource_id] for span in spans.values() if not span[L.parent_span_id]}
    return roots or {span[L.resource_id] for span in spans.values()}


def _workflow_id(run: RunView) -> str:
    fallback = ""
    for span in run.spans.values():
        value: str = span[L.workflow_id]
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

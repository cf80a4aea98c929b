"""When a pool's period is (re)allocated: on a background thread every interval, or on demand.

**Which periods.** Each turn of the job (``Allocator.catch_up``) looks at the periods of every
pool from the later of the ledger's first run and ``lookback_days`` ago, up to the period
holding now (allocated provisionally while open: the day's or month's whole amount over the
runs so far, restated as more arrive). A period is (re)computed when

* it has no allocation in force yet, or one made under another rule version (a new pool, an
  edited rule: the file is reloaded before each turn);
* runs that started in it were written since the previous turn: new runs, late runs in a
  closed period, re-emissions (a late span, an outcome posted later, a re-price), all found
  through ``runs.written_at``;
* its pool left the file (or no longer covers it): its rows are cancelled.

Everything is written as exact deltas (``store.restate``), so looking at a period again with
nothing new writes nothing. Periods older than the lookback change only on demand
(``Allocator.allocate`` with an explicit window: ``otelspend allocate``), like ``reprice``.

**One writer.** The job's turns and on-demand commands take the same lock, so two
restatements of one period never interleave (each diffs against what the other wrote).

**Guarded.** A failing turn is counted and logged once per streak by the guard (the
pipeline's ``LoopGuard``, handed in by the composition root) and retried next interval; a
turn failing for the guard's give-up time stops the thread with a reason, which readiness
shows. The wait between turns is bounded and a shutdown ends it at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from otelspend.clickhouse.client import Store
from otelspend.clickhouse.queries import allocation as queries
from otelspend.finance.allocation.periods import DAY_NS, NS, PoolPeriod, period_of, periods_between, pool_active
from otelspend.finance.allocation.pools import CostRules, Pool
from otelspend.finance.allocation.store import AmountOf, Restated, restate, withdraw

log = logging.getLogger("otelspend")
T = TypeVar("T")
WRITE_SLACK_NS = 120 * NS
"""Runs are stamped ``written_at`` just before their insert is visible: each turn looks back this
far past the previous one, so a run written during a turn is seen by the next."""


class Guard(Protocol):
    """Error bookkeeping of a background loop (``otelspend.pipeline.guard.LoopGuard``)."""

    def run(self, step: str, fn: Callable[[], T]) -> T | None:
        """``fn()``; on an exception record it and return None."""
        ...

    def stuck(self) -> str | None:
        """Why the loop cannot go on, or None."""
        ...


class AllocationBusy(RuntimeError):
    """Another restatement holds the allocator longer than the caller wanted to wait."""


@dataclass
class TurnReport:
    """What a turn or a command did."""

    periods: list[Restated] = field(default_factory=list)
    started_ns: int = 0
    seconds: float = 0.0

    @property
    def rows_written(self) -> int:
        """Cancel and new rows written."""
        return sum(item.cancelled + item.inserted for item in self.periods)

    def as_dict(self) -> dict[str, Any]:
        """For the API and the CLI: every period touched, money as exact decimal strings."""
        from otelspend.money import femto_to_usd

        def money(femto: int | None) -> str | None:
            return None if femto is None else str(femto_to_usd(femto))

        return {
            "seconds": round(self.seconds, 3),
            "rows_written": self.rows_written,
            "periods": [
                {
                    "pool": item.pool,
                    "period": item.period,
                    "amount_usd": money(item.amount_femto),
                    "rows_in_force": item.rows_in_force,
                    "cancelled": item.cancelled,
                    "inserted": item.inserted,
                    "moved_usd": money(item.moved_femto),
                    "consumers": item.consumers,
                    "unallocated_usd": money(item.unallocated_femto),
                    "skipped": item.skipped or None,
                    "changes": {
                        consumer: {"before_usd": money(before), "after_usd": money(after)}
                        for consumer, (before, after) in item.changes.items()
                    },
                }
                for item in self.periods
            ],
        }


class Allocator:
    """Keeps allocations in step with runs and rules (see the module doc); one restatement at a time."""

    def __init__(
        self,
        store: Store,
        rules: Callable[[], CostRules],
        amount_of: AmountOf,
        *,
        node: str,
        lookback_days: int,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.store = store
        self.rules = rules
        self.amount_of = amount_of
        self.node = node
        self.lookback_days = lookback_days
        self.clock = clock
        self._lock = threading.Lock()
        self._since_ns = 0
        """Runs written from here on mark their periods dirty (0: the first turn looks at everything)."""
        self.last_turn: TurnReport | None = None

    # -- the job's turn --------------------------------------------------------------------------

    def catch_up(self) -> TurnReport:
        """One turn: (re)allocate every period that needs it (see the module doc)."""
        with self._lock:
            now = self.clock()
            report = TurnReport(started_ns=now)
            began = time.monotonic()
            since = self._since_ns
            for item in self._work(now, since):
                report.periods.append(item())
            self._since_ns = max(0, now - WRITE_SLACK_NS)  # only once every period of the turn is done
            report.seconds = time.monotonic() - began
            self.last_turn = report
            return report

    def _work(self, now: int, since: int) -> list[Callable[[], Restated]]:
        db = self.store.database
        first = int(self.store.scalar(*queries.first_run(db)) or 0)
        if first <= 0:
            return []  # an empty ledger: nothing to share yet
        horizon = max(first, now - self.lookback_days * DAY_NS)
        pools = self.rules().pools
        month_floor = period_of("month", horizon).start_ns
        in_force: dict[tuple[str, int], set[str]] = {}
        kinds: dict[tuple[str, int], str] = {}
        for pool_id, start_s, version, kind in self.store.rows(*queries.periods_in_force(db, month_floor // NS)):
            in_force.setdefault((pool_id, int(start_s) * NS), set()).add(version)
            kinds[(pool_id, int(start_s) * NS)] = kind
        dirty = {int(day) * NS for (day,) in self.store.rows(*queries.dirty_days(db, since, month_floor))}
        billed = self._bill_imports(since) if any(pool.billed for pool in pools) else []
        work: list[Callable[[], Restated]] = []
        wanted: set[tuple[str, int]] = set()
        for pool in pools:
            for period in self._periods(pool, horizon, now + 1):
                key = (pool.id, period.start_ns)
                wanted.add(key)
                touched = any(period.start_ns <= day < period.end_ns for day in dirty) or bool(
                    pool.billed and any(start < period.end_ns and period.start_ns < end for start, end in billed)
                )
                if in_force.get(key) != {pool.rule_version} or touched:
                    work.append(self._restater(pool, period))
        for key in sorted(in_force.keys() - wanted):
            pool_id, start = key
            period = period_of(kinds[key], start)  # type: ignore[arg-type]
            if period.start_ns >= period_of(period.kind, horizon).start_ns:
                work.append(self._withdrawer(pool_id, period))
        return work

    def _bill_imports(self, since: int) -> list[tuple[int, int]]:
        """Periods (ns) of the bill imports recorded since ``since``: billed pools look at them again."""
        rows = self.store.rows(*queries.bill_imports_since(self.store.database, since))
        return [(int(start) * NS, int(end) * NS) for start, end in rows]

    def _periods(self, pool: Pool, start_ns: int, end_ns: int) -> Iterable[PoolPeriod]:
        """The pool's periods overlapping ``[start_ns, end_ns)`` in which it exists."""
        return (p for p in periods_between(pool.period, start_ns, end_ns) if pool_active(pool, p))

    def _restater(self, pool: Pool, period: PoolPeriod, dry_run: bool = False) -> Callable[[], Restated]:
        return lambda: restate(self.store, pool, period, self.amount_of, node=self.node, dry_run=dry_run)

    def _withdrawer(self, pool_id: str, period: PoolPeriod, dry_run: bool = False) -> Callable[[], Restated]:
        return lambda: withdraw(self.store, pool_id, period, node=self.node, dry_run=dry_run)

    # -- on demand ---------------------------------------------------------------------------------

    def allocate(
        self,
        start_ns: int,
        end_ns: int,
        *,
        pool_ids: Iterable[str] = (),
        dry_run: bool = False,
        wait_seconds: float = 60.0,
    ) -> TurnReport:
        """Restate every period overlapping ``[start_ns, end_ns)`` of the named pools (default:
        all), however old; ``dry_run`` computes and reports without writing.

        Raises ``KeyError`` for an unknown pool and ``AllocationBusy`` when the job's turn holds
        the allocator past ``wait_seconds``."""
        rules = self.rules()
        wanted = list(pool_ids)
        unknown = [pool_id for pool_id in wanted if rules.pool(pool_id) is None]
        if unknown:
            raise KeyError(unknown[0])
        pools = [pool for pool in rules.pools if not wanted or pool.id in wanted]
        if not self._lock.acquire(timeout=wait_seconds):
            raise AllocationBusy(f"the allocator is busy (a restatement has run for over {wait_seconds:.0f}s)")
        try:
            report = TurnReport(started_ns=self.clock())
            began = time.monotonic()
            for pool in pools:
                for period in self._periods(pool, start_ns, end_ns):
                    report.periods.append(self._restater(pool, period, dry_run)())
            report.seconds = time.monotonic() - began
            return report
        finally:
            self._lock.release()


class AllocationJob:
    """The background thread running ``Allocator.catch_up`` every ``interval_seconds``."""

    def __init__(
        self,
        allocator: Allocator,
        guard: Guard,
        *,
        interval_seconds: float,
        reload: Callable[[], object] = lambda: None,
    ) -> None:
        self.allocator = allocator
        self.guard = guard
        self.interval_seconds = interval_seconds
        self.reload = reload
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._fatal: str | None = None

    def start(self) -> None:
        """Start the thread (its first turn runs at once)."""
        self._thread = threading.Thread(target=self._run, name="otelspend-allocation", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Run a turn now instead of at the end of the interval (after a rule reload, in tests)."""
        self._wake.set()

    def problem(self) -> str | None:
        """Why the job stopped for good, or None while it runs (or was never started)."""
        return self._fatal

    @property
    def alive(self) -> bool:
        """Whether the thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop after the current turn; safe to call twice."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("allocation thread did not stop within %.0fs; the next start restates what it left", timeout)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.guard.run("reload cost pools", self.reload)
                self.guard.run("allocate", self.allocator.catch_up)
                stuck = self.guard.stuck()
                if stuck is not None:
                    self._fatal = stuck
                    log.error("%s; allocations are not kept in step until restarted", stuck)
                    return
                self._wake.wait(self.interval_seconds)
                self._wake.clear()
        except BaseException as exc:  # a bug outside the guarded steps: say why, never end silently
            self._fatal = f"allocation thread stopped: {type(exc).__name__}: {exc}"
            log.exception("allocation thread stopped")

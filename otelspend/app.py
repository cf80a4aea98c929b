"""Assemble and run one otelspend process: receivers, pipeline, API.

``OtelSpend.start()`` applies migrations, recovers from a previous crash (reopens runs
whose spans were stored but not yet emitted, repairs rollup hours a crash may have left
half-written, replays the write-ahead log), then opens the receivers and the API. Port 0
picks a free port; the chosen addresses are logged in one parseable line:

    otelspend listening otlp_grpc=127.0.0.1:4317 otlp_http=127.0.0.1:4318 api=127.0.0.1:8000 sql=127.0.0.1:8123
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from otelspend.api.commands import CommandRefused
from otelspend.api.deps import ApiContext
from otelspend.api.main import create_app
from otelspend.api.sqlhttp.app import SqlHttpApp, create_sql_app
from otelspend.clickhouse.client import Store
from otelspend.clickhouse.migrate import apply_spans_ttl, migrate
from otelspend.clickhouse.queries import outcomes as outcome_queries
from otelspend.clickhouse.queries import runs as run_queries
from otelspend.clickhouse.rollups import rebuild_window
from otelspend.clickhouse.runstore import RunStore
from otelspend.clickhouse.writer import SpanWriter
from otelspend.controls.service import Controls
from otelspend.controls.validation import ControlsConfigError
from otelspend.conventions import load_conventions
from otelspend.enrich.genai_prices_card import GenaiPricesCard
from otelspend.enrich.ownership import OwnershipError, OwnershipRules, load_ownership
from otelspend.enrich.pricing import PriceBook
from otelspend.enrich.ratecard import RateCardError
from otelspend.enrich.runs import RunOptions
from otelspend.enrich.stitcher import Stitcher
from otelspend.finance.allocation.amounts import PoolAmounts
from otelspend.finance.allocation.job import AllocationBusy, AllocationJob, Allocator
from otelspend.finance.allocation.pools import CostRules, PoolsError, load_cost_rules
from otelspend.metrics import Metrics
from otelspend.pipeline.emission import Emitter
from otelspend.pipeline.errors import ErrorKind, classify, describe
from otelspend.pipeline.guard import LoopGuard
from otelspend.pipeline.memory import skip_pandas_probe, tune_allocator
from otelspend.pipeline.memory import trim as trim_allocator
from otelspend.pipeline.prepare import PreparedBatch, Preparer
from otelspend.pipeline.recovery import recover
from otelspend.pipeline.reprice import RepriceError, RepriceTarget, reprice_window
from otelspend.pipeline.resources import ResourceCache, StoredResourceAttributes, fetch_resource_attributes
from otelspend.pipeline.stage import Housekeeping, Pipeline, PipelineConfig, PipelineStopped, read_state
from otelspend.pipeline.wal import FORMAT_JSON, WalRecord, WriteAheadLog
from otelspend.pipeline.worker_wire import WorkerConfig
from otelspend.pipeline.workers import WorkerPool
from otelspend.receiver.decode import UndecodableRequest
from otelspend.receiver.grpc_server import OtlpGrpcServer
from otelspend.receiver.http_server import OtlpHttpApp
from otelspend.receiver.ingest import Ingest
from otelspend.receiver.normalize import NormalizeOptions, Normalizer
from otelspend.record import ApiOutcome
from otelspend.reloadable import Reloadable
from otelspend.settings import ConfigError, Settings, split_address

log = logging.getLogger("otelspend")
STORE_RETRY_MAX_SECONDS = 10.0
"""Longest pause between attempts to bring up a store that is not reachable."""


class StartupError(ConfigError):
    """Start-up stopped by a mistake no retry can fix (a rate card, an ownership file, a
    migration changed after it was applied): the CLI prints the message alone, exit 2."""


@dataclass(frozen=True)
class Addresses:
    """Where a started process listens (port 0 resolved to the port chosen)."""

    otlp_grpc: str
    otlp_http: str
    api: str
    sql: str = ""

    def line(self) -> str:
        """The one parseable line ``serve`` prints once it listens."""
        sql = f" sql={self.sql}" if self.sql else ""
        return f"otelspend listening otlp_grpc={self.otlp_grpc} otlp_http={self.otlp_http} api={self.api}{sql}"


class OtelSpend:
    """One otelspend process: store, pricing, pipeline, receivers and API, assembled from the
    settings; ``start()`` and ``shutdown()`` (see the module docstring).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.metrics.gauge("otelspend_python_threads_cpu_seconds", python_threads_cpu_seconds)
        self.store = Store(
            settings.clickhouse.dsn,
            settings.clickhouse.database,
            timeout_seconds=settings.clickhouse.insert_timeout_seconds,
            memory_limit_bytes=settings.clickhouse.embedded_memory_mib * 1024 * 1024,
        )
        self.addresses: Addresses | None = None
        self._http_thread: threading.Thread | None = None
        self._uvicorn: list[uvicorn.Server] = []
        self._grpc: OtlpGrpcServer | None = None
        self._otlp_http: OtlpHttpApp | None = None
        self._sql: SqlHttpApp | None = None
        self.workers: WorkerPool | None = None
        self._stopped = threading.Event()
        self._exit = threading.Event()
        """Set when the process should end: a stop, or a start-up that cannot go on."""
        self._starting: str | None = "starting"
        """Why the store is not up yet (None once the pipeline runs)."""
        self.fatal: str | None = None
        """Why start-up stopped for good (the store bootstrap found a permanent error)."""
        self._announced = False
        self._controls: Controls | None = None

    # -- start --------------------------------------------------------------------------------

    def _load_rules(self) -> None:
        """The rate card, ownership rules, cost pools and controls' files; a mistake stops the start."""
        s = self.settings
        genai = GenaiPricesCard()
        try:
            self.pricing: Reloadable[PriceBook] = Reloadable(
                "rate card", s.rate_card, lambda path: PriceBook.from_file(path, genai)
            )
            self.ownership: Reloadable[OwnershipRules] = Reloadable(
                "ownership rules", s.ownership, lambda path: load_ownership(path) if path else OwnershipRules()
            )
            self.pools_file: Reloadable[CostRules] = Reloadable("cost pools", s.cost_pools, load_cost_rules)
            if s.controls.enabled:
                self._controls = Controls(s, self.store, self.metrics, lambda: self.pricing.current)
        except (RateCardError, OwnershipError, PoolsError, ControlsConfigError) as exc:
            raise StartupError(str(exc)) from None

    def _build_allocation(self) -> None:
        """The allocator (fixed and billed pool amounts) and its job (started with the store)."""
        s = self.settings
        self.allocator = Allocator(
            self.store,
            lambda: self.pools_file.current,
            PoolAmounts(self.store),
            node=s.node_id,
            lookback_days=s.allocation.lookback_days,
        )
        self.allocation_job = AllocationJob(
            self.allocator,
            LoopGuard("allocation", self.metrics),
            interval_seconds=s.allocation.interval_seconds,
            reload=self._reload_cost_rules,
        )

    def start(self, *, wait_for_store: float = 60.0) -> Addresses:
        """Open the receivers and the API, then bring the store up.

        The receivers listen at once; until migrations and crash recovery have run against
        the store they answer UNAVAILABLE / 503 (an unreachable ClickHouse server is retried
        with backoff in the background). Waits up to ``wait_for_store`` seconds for that.
        """
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        tune_allocator()
        skip_pandas_probe()
        self._load_rules()
        self._build_allocation()
        self.resources = ResourceCache()
        self.stitcher = Stitcher(
            settle_seconds=s.runs.settle_seconds,
            root_wait_seconds=s.runs.root_wait_seconds,
            max_open_runs=s.runs.max_open_runs,
            max_spans_per_run=s.runs.max_spans_per_run,
            closed_cache_runs=s.runs.closed_cache_runs,
        )
        self.runstore = RunStore(self.store)
        self.emitter = Emitter(
            self.runstore,
            node=s.node_id,
            options=self._run_options,
            late_horizon_ns=int(s.runs.late_horizon_hours * 3600 * 10**9),
            resources=self.resources,
            fetch_resources=lambda ids: fetch_resource_attributes(self.store, ids),
        )
        self.wal = WriteAheadLog(s.wal_dir, fsync=s.wal.fsync, segment_bytes=s.wal.segment_bytes)
        pending = self.wal.open()
        self.pipeline = Pipeline(
            writer=SpanWriter(self.store),
            pricing=self.pricing,
            stitcher=self.stitcher,
            emitter=self.emitter,
            wal=self.wal,
            metrics=self.metrics,
            config=PipelineConfig(
                node=s.node_id,
                data_dir=s.data_dir,
                queue_spans=s.pipeline.queue_spans,
                batch_rows=s.clickhouse.batch_rows,
                flush_interval=s.clickhouse.flush_interval_ms / 1000,
                emit_batch_runs=s.runs.emit_batch_runs,
                emit_interval=s.runs.emit_interval_seconds,
            ),
            housekeeping=Housekeeping(
                reloadables=(self.ownership,),
                store_maintenance=self._release_memory,
            ),
        )
        self.pipeline.observer = self.pipeline.observer if self._controls is None else self._controls
        self.ingest = Ingest(
            preparer=self._start_preparing(),
            sink=self.pipeline,
            metrics=self.metrics,
            tokens=s.otlp.ingest_tokens,
            retry_after_seconds=s.pipeline.retry_after_seconds,
        )
        self._grpc = OtlpGrpcServer(
            self.ingest, s.otlp.grpc_address, max_request_bytes=s.otlp.max_request_bytes, workers=s.otlp.grpc_workers
        )
        self._grpc.start()
        self._otlp_http = OtlpHttpApp(self.ingest, max_request_bytes=s.otlp.max_request_bytes, workers=4)
        api = create_app(ApiContext(settings=s, store=self.store, metrics=self.metrics, commands=self))
        otlp_sock, otlp_address = _listen(s.otlp.http_address)
        api_sock, api_address = _listen(s.api.address)
        servers: list[tuple[Any, socket.socket]] = [(self._otlp_http, otlp_sock), (api, api_sock)]
        sql_address = ""
        if s.sql.address and self.store.path is None:
            log.info("sql endpoint off: the store is a ClickHouse server, query it directly (README, SQL)")
        elif s.sql.address and self.store.path is not None:
            self._sql = create_sql_app(s, self.store.path, self.metrics)
            sql_sock, sql_address = _listen(s.sql.address)
            servers.append((self._sql, sql_sock))
        self._start_http(servers)
        self.addresses = Addresses(self._grpc.address, otlp_address, api_address, sql_address)
        if self._controls is not None:
            self._controls.start(api_address)  # before recovery: a replayed span is watched like a new one
        self._bootstrap = threading.Thread(
            target=self._bootstrap_main, args=(pending,), name="otelspend-bootstrap", daemon=True
        )
        self._bootstrap.start()
        self._bootstrap.join(wait_for_store)
        if self.fatal is not None:
            raise StartupError(self.fatal)
        if self._bootstrap.is_alive():
            log.warning("store %s not reachable yet: answering 503 until it is", self.store.describe())
        _tune_garbage_collector()
        self._announced = True
        log.info("%s store=%s", self.addresses.line(), self.store.describe())
        return self.addresses

    def _start_preparing(self) -> Preparer | WorkerPool:
        """What prepares requests for the receivers: this process's preparer (also used for
        write-ahead-log replay), or receiver worker processes (``pipeline.workers``), started
        now so that they are ready by the time the store is."""
        s = self.settings
        self.normalizer = Normalizer(
            load_conventions(),
            NormalizeOptions(
                keep_content=s.otlp.keep_content,
                max_value_chars=s.otlp.max_attribute_value_bytes,
                max_attributes=s.otlp.max_attributes_per_span,
            ),
        )
        self.preparer = Preparer(self.normalizer, lambda: self.pricing.current, node=s.node_id)
        worker_count = s.pipeline.worker_count()
        if not worker_count:
            return self.preparer
        self.workers = WorkerPool(worker_count, self._worker_config, self.preparer, self.metrics)
        self.workers.start()
        return self.workers

    def _bootstrap_main(self, pending: list[WalRecord]) -> None:
        try:
            self._bring_up_store(pending)
        except BaseException as exc:  # a bug: say so (readiness, exit 2), never end silently
            log.exception("start-up failed")
            self._fail_start(f"start-up failed: {describe(exc)}")

    def _bring_up_store(self, pending: list[WalRecord]) -> None:
        """Migrate, recover, start the pipeline; retried with backoff while the store is down.

        A permanent error (``pipeline/errors.py``: a migration changed after it was applied)
        ends start-up instead: ``fatal`` says why, and ``wait()`` returns.
        """
        delay = 0.5
        while not self._stopped.is_set():
            try:
                self._migrate_and_recover(pending)
            except Exception as exc:
                if classify(exc) is ErrorKind.PERMANENT:
                    self._fail_start(str(exc))
                    return
                self._starting = f"starting: store not ready: {describe(exc, 300)}"
                log.warning("store not reachable (%s); retrying in %.1fs", describe(exc, 200), delay)
                self._stopped.wait(delay)
                delay = min(delay * 2, STORE_RETRY_MAX_SECONDS)
                continue
            if self._stopped.is_set():
                return
            self.pipeline.start()
            self.allocation_job.start()
            self._start_scheduled_export()
            self._starting = None
            if self._controls is not None:
                self._attach_controls(self._controls)
            return

    def _attach_controls(self, controls: Controls) -> None:
        """The pipeline runs: the controls read their API budgets and load every budget's figures."""
        try:
            controls.attach_pipeline(self.pipeline.call)
        except Exception as exc:  # the store went away again: budgets stay "loading", alerts still flow
            log.error("controls: cannot read the budgets created over the API: %s", describe(exc, 300))

    def _migrate_and_recover(self, pending: list[WalRecord]) -> None:
        s = self.settings
        applied = migrate(self.store, s.clickhouse.cluster)
        apply_spans_ttl(self.store, s.clickhouse.spans_ttl_days, s.clickhouse.cluster)
        if applied:
            log.info("applied migrations %s", ", ".join(f"{m.version:04d}_{m.name}" for m in applied))
        self.pipeline.start_store()
        recover(
            self.pipeline,
            runstore=self.runstore,
            node=s.node_id,
            late_horizon_ns=int(s.runs.late_horizon_hours * 3600 * 10**9),
            state=read_state(s.data_dir),
            pending=pending,
            replay=self._replay,
        )
        # The pipeline thread starts once what recovery queued is written (or the stop comes).
        while not self.pipeline.store.drain(timeout=1.0):
            if self._stopped.is_set():
                return
            if not self.pipeline.store.alive:
                raise RuntimeError(self.pipeline.store.problem() or "the store writer stopped during recovery")

    def _release_memory(self) -> None:
        """Every few seconds (store writer): the engine's and the C allocator's free memory back to the system."""
        if self.store.embedded:
            self.store.release_memory()
        trim_allocator()

    def _replay(self, record: WalRecord) -> PreparedBatch | None:
        try:
            prepared = self.preparer.prepare(record.payload, json_body=record.format == FORMAT_JSON, token=record.token)
        except UndecodableRequest:
            return None
        batch: PreparedBatch | None = prepared.batch
        return batch

    def _worker_config(self, index: int) -> WorkerConfig:
        s = self.settings
        return WorkerConfig(
            index=index,
            node=s.node_id,
            rate_card=str(s.rate_card) if s.rate_card else None,
            keep_content=s.otlp.keep_content,
            max_value_chars=s.otlp.max_attribute_value_bytes,
            max_attributes=s.otlp.max_attributes_per_span,
            log_level=s.log_level,
        )

    def request_reload(self) -> None:
        """SIGHUP: re-read the rate card, ownership rules and cost pools here and in every worker."""
        self.pricing.request()
        self.ownership.request()
        self.pools_file.request()
        self.allocation_job.wake()
        if self.workers is not None:
            self.workers.reload()

    def _fail_start(self, reason: str) -> None:
        self.fatal = reason
        if self._announced:  # start() has returned: nobody else will say it
            log.error("cannot start: %s", reason)
        self._exit.set()

    def _start_scheduled_export(self) -> None:
        """The optional daily FOCUS export (``export.schedule_dir``), once the store is migrated."""
        export = self.settings.export
        if export.schedule_dir is None or self._stopped.is_set():
            return
        from otelspend.finance.export.schedule import Schedule, ScheduledExport
        from otelspend.finance.export.service import request_from_settings

        schedule = Schedule(
            export.schedule_dir, export.schedule_format, export.schedule_granularity, export.schedule_days,
            export.schedule_delay_hours * 3600, export.schedule_interval_seconds,
        )  # fmt: skip
        self.scheduled_export = ScheduledExport(
            self.store,
            schedule,
            self.metrics,
            lambda start, end: request_from_settings(
                export,
                start,
                end,
                export.schedule_granularity,
                store=self.store,
                billing_settings=self.settings.billing,
            ),
        )
        self.scheduled_export.start()

    def _run_options(self) -> RunOptions:
        runs = self.settings.runs
        return RunOptions(
            retry_loop_threshold=runs.retry_loop_threshold,
            repeat_call_threshold=runs.repeat_call_threshold,
            ownership=self.ownership.current if self.ownership.current.rules else None,
        )

    def _start_http(self, apps: list[tuple[Any, socket.socket]]) -> None:
        ready = threading.Event()
        for app, _ in apps:
            config = uvicorn.Config(
                app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5
            )
            self._uvicorn.append(uvicorn.Server(config))

        async def main() -> None:
            tasks = [
                asyncio.create_task(server.serve(sockets=[sock]))
                for server, (_, sock) in zip(self._uvicorn, apps, strict=True)
            ]
            while not all(server.started for server in self._uvicorn):
                if any(task.done() for task in tasks):
                    break
                await asyncio.sleep(0.01)
            ready.set()
            await asyncio.gather(*tasks)

        self._http_thread = threading.Thread(target=lambda: asyncio.run(main()), name="otelspend-http", daemon=True)
        self._http_thread.start()
        if not ready.wait(30) or not all(server.started for server in self._uvicorn):
            raise RuntimeError("HTTP servers did not start")

    # -- commands from the API (otelspend.api.commands.Commands) ------------------------------

    def controls(self) -> Controls | None:
        """The spend controls (None when ``controls.enabled`` is off)."""
        return self._controls

    def price_book(self) -> PriceBook:
        """The rate cards in force."""
        return self.pricing.current

    def pipeline_problem(self) -> str | None:
        """None while spans are accepted; else why not (``/readyz``)."""
        if self.fatal is not None:
            return self.fatal
        if self._starting is not None:
            return self._starting
        workers = self.workers.problem() if self.workers is not None else None
        return self.pipeline.problem() or workers

    def reprice(self, start_ns: int, end_ns: int, *, dry_run: bool, timeout_seconds: float) -> dict[str, Any]:
        """Re-price a window on the pipeline thread (it owns the stitcher's open runs)."""

        def run() -> dict[str, Any]:
            self.pricing.check()  # an edit not yet picked up by the 2 s poll
            if self.pricing.last_error:
                raise CommandRefused(
                    "the rate card on disk is invalid, so the previous one is still in force: "
                    + self.pricing.last_error
                )
            # The command holds the pipeline thread with the writer drained: it owns the store here.
            resources = StoredResourceAttributes(self.store)
            options = self._run_options

            def with_resources() -> RunOptions:
                return dataclasses.replace(options(), resource_attributes=resources)

            target = RepriceTarget(self.store, self.runstore, self.settings.node_id, with_resources, live=self.stitcher)
            try:
                result = reprice_window(target, self.pricing.current, start_ns, end_ns, dry_run=dry_run).as_dict()
            except RepriceError as exc:
                raise CommandRefused(str(exc)) from None
            if self._controls is not None and not dry_run:
                self._controls.restated()  # re-priced runs were written outside emissions
            return result

        try:
            return self.pipeline.call(run, timeout=timeout_seconds)
        except PipelineStopped as exc:
            raise CommandRefused(f"the pipeline is not running: {exc}") from None

    def rebuild_rollups(self, start_s: int, end_s: int, *, timeout_seconds: float) -> int:
        """Rebuild whole UTC days of rollups on the pipeline thread (no emission interleaves)."""
        return self.pipeline.call(lambda: rebuild_window(self.store, start_s, end_s), timeout=timeout_seconds)

    def record_outcome(
        self,
        *,
        run_id: str = "",
        workflow_id: str = "",
        outcome: str,
        score: float | None = None,
        label: str = "",
        recorded_ns: int | None = None,
        note: str = "",
    ) -> list[str]:
        """Store an outcome (history kept), then re-emit the runs it applies to.

        By ``run_id``, or by ``workflow_id`` for every run of that workflow, including runs
        that have not arrived yet. Returns the run ids updated now. Durable before return.
        """
        if not run_id and not workflow_id:
            raise ValueError("give a run_id or a workflow_id")
        now = time.time_ns()
        recorded = recorded_ns or now
        self.store.insert_rows(
            outcome_queries.table(self.store.database),
            [[run_id, workflow_id if not run_id else "", outcome, score, label, "api",
              _utc(recorded), _utc(now), note]],
            outcome_queries.COLUMNS,
        )  # fmt: skip
        item = ApiOutcome(outcome, score, label, recorded)
        if run_id:
            targets = [run_id]
        else:
            targets = [row[0] for row in self.store.rows(*run_queries.of_workflow(self.store.database, workflow_id))]

        def apply() -> list[str]:
            if workflow_id and not run_id:
                self.emitter.outcome_workflows.add(workflow_id)
                targets.extend(self.stitcher.open_runs_of_workflow(workflow_id))
            else:
                self.emitter.outcome_runs.add(run_id)
            for target in dict.fromkeys(targets):
                self.stitcher.add_outcome(target, item, now)
            return list(dict.fromkeys(targets))

        return self.pipeline.call(apply)

    # -- shared costs (issue 14) ------------------------------------------------------------------

    def _reload_cost_rules(self) -> None:
        """On the allocation thread before each turn: a changed file restates by the next turn."""
        self.pools_file.check()

    def cost_rules(self) -> CostRules:
        """The cost pools and units of value in force."""
        return self.pools_file.current

    def allocate(
        self, start_ns: int, end_ns: int, *, pools: list[str], dry_run: bool, timeout_seconds: float
    ) -> dict[str, Any]:
        """Restate the pool periods overlapping a window (on the caller's thread, under the
        allocator's lock: never interleaved with the job's turn)."""
        self.pools_file.check()
        if self.pools_file.last_error:
            raise CommandRefused(
                "the cost-pools file on disk is invalid, so the previous rules are still in force: "
                + self.pools_file.last_error
            )
        try:
            report = self.allocator.allocate(
                start_ns, end_ns, pool_ids=pools, dry_run=dry_run, wait_seconds=timeout_seconds
            )
        except KeyError as exc:
            raise CommandRefused(f"no pool {exc.args[0]!r} in the cost-pools file") from None
        except AllocationBusy as exc:
            raise TimeoutError(str(exc)) from None
        return report.as_dict()

    def allocation_status(self) -> dict[str, Any]:
        """The allocation job: running or why not, the rules in force, the last turn."""
        last = self.allocator.last_turn
        return {
            "running": self.allocation_job.alive,
            "problem": self.allocation_job.problem(),
            "rules": self.pools_file.current.source or None,
            "reload_error": self.pools_file.last_error or None,
            "interval_seconds": self.settings.allocation.interval_seconds,
            "lookback_days": self.settings.allocation.lookback_days,
            "last_turn": None
            if last is None
            else {
                "at": _utc(last.started_ns).isoformat().replace("+00:00", "Z"),
                "seconds": round(last.seconds, 3),
                "periods_restated": sum(1 for p in last.periods if p.cancelled or p.inserted),
                "rows_written": last.rows_written,
            },
        }

    # -- stop -----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Graceful: stop accepting, store everything accepted, emit runs. Safe to call twice."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._exit.set()
        self._stop_listeners()
        if self.workers is not None:
            self.workers.shutdown()  # the receivers have drained: nothing is left for them
        if self._sql is not None:
            self._sql.shutdown()
        if hasattr(self, "allocation_job"):
            self.allocation_job.shutdown()
        if hasattr(self, "scheduled_export"):
            self.scheduled_export.shutdown()
        if hasattr(self, "pipeline"):
            self.pipeline.shutdown()
            self.wal.close()
        if self._controls is not None:
            self._controls.stop()  # after the pipeline: its last emissions count too
        self.store.close()
        if self._announced:
            log.info("otelspend stopped")

    def _stop_listeners(self) -> None:
        """Stop accepting: gRPC drains its calls, HTTP servers finish their requests."""
        if self._grpc is not None:
            self._grpc.shutdown(5)
        for server in self._uvicorn:
            server.should_exit = True
        if self._http_thread is not None:
            self._http_thread.join(15)
        if self._otlp_http is not None:
            self._otlp_http.shutdown()

    def wait(self) -> None:
        """Until ``stop()`` is called or start-up fails for good (``fatal``)."""
        self._exit.wait()


def _tune_garbage_collector() -> None:
    """Keep the cyclic GC off the hot path.

    The pipeline holds millions of live rows and tuples and allocates a few per span; with
    default thresholds the collector rescans them constantly (measured: ~20 of ~60 us per
    span). The code creates no reference cycles on the hot path, so collect rarely, and
    freeze everything loaded at start (genai-prices data, conventions) out of the scans.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def python_threads_cpu_seconds() -> float:
    """CPU time of this process's Python threads so far (Linux; 0 elsewhere): the rest of the
    process's CPU is the native threads of the embedded engine and gRPC (``/metrics``)."""
    hertz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    for thread in threading.enumerate():
        try:
            stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / hertz


def _utc(ns: int) -> Any:
    import datetime as dt

    return dt.datetime.fromtimestamp(ns // 10**9, tz=dt.UTC).replace(microsecond=(ns // 1000) % 10**6)


def _listen(address: str) -> tuple[socket.socket, str]:
    host, port = split_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    infos = socket.getaddrinfo(host, port, family if ":" in host else socket.AF_UNSPEC, socket.SOCK_STREAM)
    family, _, proto, _, sockaddr = infos[0]
    # The protocol number matters: asyncio disables Nagle's algorithm only on sockets whose
    # proto is IPPROTO_TCP, and a response written as headers then body otherwise waits for
    # the client's delayed ACK (measured: 44 ms per keep-alive request instead of 0.1 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, proto or socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(sockaddr)
    sock.listen(1024)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if family == socket.AF_INET6 else bound_host
    return sock, f"{shown}:{bound_port}"

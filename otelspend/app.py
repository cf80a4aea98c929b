"""Assemble and run one otelspend process: receivers, pipeline, API.

``OtelSpend.start()`` applies migrations, recovers from a previous crash (reopens runs
whose spans were stored but not yet emitted, repairs rollup hours a crash may have left
half-written, replays the write-ahead log), then opens the receivers and the API. Port 0
picks a free port; the chosen addresses are logged in one parseable line:

    otelspend listening otlp_grpc=127.0.0.1:4317 otlp_http=127.0.0.1:4318 api=127.0.0.1:8000
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvicorn

from otelspend.api.commands import CommandRefused
from otelspend.api.deps import ApiContext
from otelspend.api.main import create_app
from otelspend.clickhouse.client import Store
from otelspend.clickhouse.migrate import apply_spans_ttl, migrate
from otelspend.clickhouse.rollups import rebuild_hours, rebuild_window
from otelspend.clickhouse.runstore import RunStore
from otelspend.clickhouse.writer import SpanWriter
from otelspend.conventions import load_conventions
from otelspend.enrich.genai_prices_card import GenaiPricesCard
from otelspend.enrich.ownership import OwnershipRules, load_ownership
from otelspend.enrich.pricing import PriceBook
from otelspend.enrich.runs import RunOptions
from otelspend.enrich.stitcher import Stitcher
from otelspend.metrics import Metrics
from otelspend.pipeline.emission import Emitter
from otelspend.pipeline.reprice import RepriceError, RepriceTarget, reprice_window
from otelspend.pipeline.resources import ResourceAttributes
from otelspend.pipeline.stage import Pipeline, Submission, read_state
from otelspend.pipeline.wal import FORMAT_JSON, WriteAheadLog
from otelspend.receiver.grpc_server import OtlpGrpcServer
from otelspend.receiver.http_server import OtlpHttpApp
from otelspend.receiver.ingest import Ingest
from otelspend.receiver.normalize import NormalizeOptions, Normalizer
from otelspend.record import ApiOutcome
from otelspend.reloadable import Reloadable
from otelspend.settings import Settings, split_address

log = logging.getLogger("otelspend")
RECOVERY_MARGIN_NS = 2 * 10**9


@dataclass(frozen=True)
class Addresses:
    otlp_grpc: str
    otlp_http: str
    api: str

    def line(self) -> str:
        return f"otelspend listening otlp_grpc={self.otlp_grpc} otlp_http={self.otlp_http} api={self.api}"


class OtelSpend:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.store = Store(
            settings.clickhouse.dsn,
            settings.clickhouse.database,
            timeout_seconds=settings.clickhouse.insert_timeout_seconds,
        )
        self.addresses: Addresses | None = None
        self._http_thread: threading.Thread | None = None
        self._uvicorn: list[uvicorn.Server] = []
        self._grpc: OtlpGrpcServer | None = None
        self._otlp_http: OtlpHttpApp | None = None
        self._stopped = threading.Event()

    # -- start --------------------------------------------------------------------------------

    def start(self, *, wait_for_store: float = 60.0) -> Addresses:
        """Open the receivers and the API, then bring the store up.

        The receivers listen at once; until migrations and crash recovery have run against
        the store they answer UNAVAILABLE / 503 (an unreachable ClickHouse server is retried
        with backoff in the background). Waits up to ``wait_for_store`` seconds for that.
        """
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        genai = GenaiPricesCard()
        self.pricing: Reloadable[PriceBook] = Reloadable(
            "rate card", s.rate_card, lambda path: PriceBook.from_file(path, genai)
        )
        self.ownership: Reloadable[OwnershipRules] = Reloadable(
            "ownership rules", s.ownership, lambda path: load_ownership(path) if path else OwnershipRules()
        )
        self.resources = ResourceAttributes(self.store)
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
        )
        self.wal = WriteAheadLog(s.wal_dir, fsync=s.wal.fsync, segment_bytes=s.wal.segment_bytes)
        pending = self.wal.open()
        self.pipeline = Pipeline(
            writer=SpanWriter(self.store, on_resources=self.resources.remember),
            pricing=self.pricing,
            stitcher=self.stitcher,
            emitter=self.emitter,
            wal=self.wal,
            metrics=self.metrics,
            node=s.node_id,
            data_dir=s.data_dir,
            queue_spans=s.pipeline.queue_spans,
            batch_rows=s.clickhouse.batch_rows,
            flush_interval=s.clickhouse.flush_interval_ms / 1000,
            reloadables=(self.ownership,),
            emit_batch_runs=s.runs.emit_batch_runs,
            emit_interval=s.runs.emit_interval_seconds,
            store_maintenance=self.store.release_memory if self.store.embedded else None,
        )
        self.normalizer = Normalizer(
            load_conventions(),
            NormalizeOptions(
                keep_content=s.otlp.keep_content,
                max_value_chars=s.otlp.max_attribute_value_bytes,
                max_attributes=s.otlp.max_attributes_per_span,
            ),
        )
        self.ingest = Ingest(
            normalizer=self.normalizer,
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
        self._start_http([(self._otlp_http, otlp_sock), (api, api_sock)])
        self.addresses = Addresses(self._grpc.address, otlp_address, api_address)
        self._bootstrap = threading.Thread(
            target=self._bring_up_store, args=(pending,), name="otelspend-bootstrap", daemon=True
        )
        self._bootstrap.start()
        self._bootstrap.join(wait_for_store)
        if self._bootstrap.is_alive():
            log.warning("store %s not reachable yet: answering 503 until it is", self.store.describe())
        _tune_garbage_collector()
        log.info("%s store=%s", self.addresses.line(), self.store.describe())
        return self.addresses

    def _bring_up_store(self, pending: list[Any]) -> None:
        """Migrate, recover, start the pipeline; retried with backoff while the store is down."""
        s = self.settings
        delay = 0.5
        while not self._stopped.is_set():
            try:
                applied = migrate(self.store, s.clickhouse.cluster)
                apply_spans_ttl(self.store, s.clickhouse.spans_ttl_days, s.clickhouse.cluster)
                break
            except Exception as exc:  # the driver's connection errors vary by backend
                self.pipeline.store.healthy = False
                self.pipeline.store.last_error = f"cannot reach the store: {exc}"[:500]
                log.warning("store not reachable (%s); retrying in %.1fs", str(exc)[:200], delay)
                self._stopped.wait(delay)
                delay = min(delay * 2, 10.0)
        else:
            return
        if applied:
            log.info("applied migrations %s", ", ".join(f"{m.version:04d}_{m.name}" for m in applied))
        self.pipeline.store.healthy = True
        self.pipeline.store.last_error = ""
        self.pipeline.start_store()
        self._recover(pending)
        self.pipeline.store.drain()
        self.pipeline.start()
        self._start_scheduled_export()

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
            lambda start, end: request_from_settings(export, start, end, export.schedule_granularity),
        )
        self.scheduled_export.start()

    def _run_options(self) -> RunOptions:
        runs = self.settings.runs
        return RunOptions(
            retry_loop_threshold=runs.retry_loop_threshold,
            repeat_call_threshold=runs.repeat_call_threshold,
            ownership=self.ownership.current if self.ownership.current.rules else None,
            resource_attributes=self.resources,
        )

    def _recover(self, pending: list[Any]) -> None:
        """Bring memory back to where a crash left it, before any new span is accepted."""
        s = self.settings
        state = read_state(s.data_dir)
        now = time.time_ns()
        horizon = int(s.runs.late_horizon_hours * 3600 * 10**9)
        runs, workflows = self.runstore.outcome_keys_since(now - horizon - 3600 * 10**9)
        self.emitter.outcome_runs |= runs
        self.emitter.outcome_workflows |= workflows
        if state is not None and state.get("node") == s.node_id and not state.get("clean"):
            since = int(state["lwm_ns"]) - RECOVERY_MARGIN_NS
            traces = self.runstore.traces_ingested_since(s.node_id, since)
            for start in range(0, len(traces), 5000):
                chunk = traces[start : start + 5000]
                stored = self.runstore.spans(chunk)
                for trace_id in chunk:
                    self.stitcher.restore(trace_id, stored.get(trace_id, ()), now)
            reopened, _ = self.runstore.outcome_keys_since(since)
            for run_id in reopened:
                if self.stitcher._open(run_id) is None:
                    self.stitcher.restore(run_id, (), now)
            if not state.get("clean"):
                hours = self.runstore.hours_written_since(
                    s.node_id, int(state["emit_checkpoint_ns"]) - RECOVERY_MARGIN_NS
                )
                rebuilt = rebuild_hours(self.store, hours) if hours else 0
                log.info(
                    "recovered after an unclean stop: %d open run(s) restored, %d rollup hour(s) rebuilt "
                    "(whole days), %d logged request(s) to replay",
                    self.stitcher.open_count(),
                    rebuilt,
                    len(pending),
                )
        for record in pending:
            batch = self.ingest.replay(record.payload, json_body=record.format == FORMAT_JSON, token=record.token)
            if batch is not None and batch.rows:
                self.pipeline.claim(len(batch.rows))  # released once stored, like live traffic
                self.pipeline.process([Submission(record.seq, batch.rows, batch.resources, len(record.payload))])
            else:
                # Checkpoint in order with the inserts queued before it, never ahead of them.
                self.pipeline.store.submit(
                    lambda _attempt: None, "otelspend_insert_seconds", self._checkpointer(record)
                )

    def _checkpointer(self, record: Any) -> Callable[[Any], None]:
        return lambda _: self.wal.checkpoint(record.seq, len(record.payload))

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

    def price_book(self) -> PriceBook:
        """The rate cards in force."""
        return self.pricing.current

    def pipeline_problem(self) -> str | None:
        """None while spans are accepted; else why not (``/readyz``)."""
        if not hasattr(self, "pipeline"):
            return "starting"
        pipeline = self.pipeline
        if not pipeline.store_healthy:
            return f"store failing: {pipeline.last_store_error}"
        if pipeline.queued_spans >= pipeline.capacity:
            return "ingest queue full"
        return None

    def reprice(self, start_ns: int, end_ns: int, *, dry_run: bool, timeout_seconds: float) -> dict[str, Any]:
        """Re-price a window on the pipeline thread (it owns the stitcher's open runs)."""

        def run() -> dict[str, Any]:
            self.pricing.check()  # an edit not yet picked up by the 2 s poll
            if self.pricing.last_error:
                raise CommandRefused(
                    "the rate card on disk is invalid, so the previous one is still in force: "
                    + self.pricing.last_error
                )
            target = RepriceTarget(
                self.store, self.runstore, self.settings.node_id, self.emitter.options, live=self.stitcher
            )
            try:
                return reprice_window(target, self.pricing.current, start_ns, end_ns, dry_run=dry_run).as_dict()
            except RepriceError as exc:
                raise CommandRefused(str(exc)) from None

        return self.pipeline.call(run, timeout=timeout_seconds)

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
            f"{self.store.database}.outcomes",
            [[run_id, workflow_id if not run_id else "", outcome, score, label, "api",
              _utc(recorded), _utc(now), note]],
            ["run_id", "workflow_id", "outcome", "score", "label", "source", "recorded_at", "received_at", "note"],
        )  # fmt: skip
        item = ApiOutcome(outcome, score, label, recorded)
        if run_id:
            targets = [run_id]
        else:
            targets = [
                row[0]
                for row in self.store.rows(
                    f"SELECT run_id FROM {self.store.database}.runs WHERE workflow_id = {{w:String}} "
                    "GROUP BY run_id HAVING sum(sign) > 0",  # runs in force, without FINAL over the table
                    {"w": workflow_id},
                )
            ]

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

    # -- stop -----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Graceful: stop accepting, store everything accepted, emit runs. Safe to call twice."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._grpc is not None:
            self._grpc.shutdown(5)
        for server in self._uvicorn:
            server.should_exit = True
        if self._http_thread is not None:
            self._http_thread.join(15)
        if self._otlp_http is not None:
            self._otlp_http.shutdown()
        if hasattr(self, "scheduled_export"):
            self.scheduled_export.shutdown()
        if hasattr(self, "pipeline"):
            self.pipeline.shutdown()
            self.wal.close()
        self.store.close()
        log.info("otelspend stopped")

    def wait(self) -> None:
        self._stopped.wait()


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


def _utc(ns: int) -> Any:
    import datetime as dt

    return dt.datetime.fromtimestamp(ns // 10**9, tz=dt.UTC).replace(microsecond=(ns // 1000) % 10**6)


def _listen(address: str) -> tuple[socket.socket, str]:
    host, port = split_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    infos = socket.getaddrinfo(host, port, family if ":" in host else socket.AF_UNSPEC, socket.SOCK_STREAM)
    family, _, _, _, sockaddr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(sockaddr)
    sock.listen(1024)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if family == socket.AF_INET6 else bound_host
    return sock, f"{shown}:{bound_port}"

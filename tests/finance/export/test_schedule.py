"""The scheduled export: due days, one file per day written once and atomically, a failed pass
counted and retried by a thread that keeps running."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from otelspend.finance.export.schedule import Schedule, ScheduledExport, due_days
from otelspend.finance.export.service import ExportRequest, request_from_settings
from otelspend.finance.export.validate import validate_file
from tests.conftest import wait_for
from tests.finance.conftest import Ledger
from tests.otel import tracer_provider

DAY = 86_400
_CALL = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
         "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100}  # fmt: skip


def test_due_days_are_whole_days_that_ended_long_enough_ago() -> None:
    now = 10 * DAY + 3 * 3600  # 03:00 on day 10
    assert due_days(now, 3, 2 * 3600) == [7 * DAY, 8 * DAY, 9 * DAY]
    assert due_days(now, 2, 4 * 3600) == [7 * DAY, 8 * DAY], "day 9 ended 3 h ago: not yet"


def test_files_are_written_once_and_validate(ledger: Ledger, tmp_path: Path) -> None:
    settings = ledger.server.app.settings.export
    schedule = Schedule(tmp_path / "focus", "csv", "hour", 2, 0, 60)
    today = int(time.time()) // DAY * DAY
    exporter = ScheduledExport(
        ledger.server.store, schedule, ledger.server.app.metrics,
        lambda a, b: request_from_settings(settings, a, b, "hour"), clock=lambda: today + 2 * DAY,
    )  # fmt: skip
    schedule.directory.mkdir()
    written = exporter.run_once()
    names = [time.strftime("focus-%Y-%m-%d--", time.gmtime(d)) + time.strftime("%Y-%m-%d-hour.csv",
             time.gmtime(d + DAY)) for d in (today, today + DAY)]  # fmt: skip
    assert [p.name for p in written] == names and all(validate_file(p).ok for p in written)
    assert any(validate_file(p).rows > 0 for p in written), "today's runs are in one of them"
    before = {p.name: p.stat().st_mtime_ns for p in written}
    assert exporter.run_once() == [], "idempotent: existing files are left as they are"
    assert {p.name: p.stat().st_mtime_ns for p in written} == before
    assert not list(schedule.directory.glob(".*.tmp"))


def test_a_failed_pass_is_counted_logged_once_and_the_thread_lives_on(
    ledger: Ledger, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    def broken(start: int, end: int) -> object:
        calls.append(start)
        if len(calls) > 3:
            return ExportRequest(start, end, "day")
        raise RuntimeError("store gone")

    schedule = Schedule(tmp_path / "focus", "csv", "day", 1, 0, 0.05)
    exporter = ScheduledExport(ledger.server.store, schedule, ledger.server.app.metrics, broken)  # type: ignore[arg-type]
    exporter.start()
    try:
        wait_for(lambda: len(calls) >= 3, 20, "three failed passes")
        assert exporter._thread is not None and exporter._thread.is_alive()
        assert exporter.last_error == "RuntimeError: store gone"
        rendered = ledger.server.app.metrics.render()
        assert 'otelspend_export_scheduled_total{outcome="failed"}' in rendered
        assert 'otelspend_loop_errors_total{step="scheduled export",thread="export"}' in rendered
        wait_for(lambda: exporter.last_error == "", 20, "the pass that works again")
        assert exporter._thread.is_alive()
    finally:
        exporter.shutdown()
    assert exporter._thread is not None and not exporter._thread.is_alive()
    failures = [r for r in caplog.records if "scheduled export failed" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is not None  # once per streak, with the traceback
    assert any("works again after 3 failure(s)" in r.getMessage() for r in caplog.records)


def test_the_server_writes_the_completed_days_it_is_configured_for(start_server: Any, tmp_path: Path) -> None:
    # export.schedule_dir on a real server: yesterday's runs, sent through the SDK exporter, land
    # in yesterday's Parquet file; the day before has no runs and gets a file with no rows.
    directory = tmp_path / "scheduled"
    server = start_server(export={"schedule_dir": str(directory), "schedule_format": "parquet", "schedule_days": 2,
                                  "schedule_delay_hours": 0, "schedule_interval_seconds": 1})  # fmt: skip
    today = int(time.time()) // DAY * DAY
    yesterday = today - DAY + 12 * 3600
    with tracer_provider(server, "grpc", service="scheduled-app") as provider:
        tracer = provider.get_tracer("schedule-tests")
        for index in range(3):
            start = (yesterday + 60 * index) * 10**9
            root = tracer.start_span("handle", kind=SpanKind.SERVER, start_time=start, attributes={"team": "search"})
            call = tracer.start_span("chat gpt-4o-mini", context=trace.set_span_in_context(root), kind=SpanKind.CLIENT,
                                     start_time=start + 10**8, attributes=_CALL)  # fmt: skip
            call.end(end_time=start + 5 * 10**8)
            root.end(end_time=start + 10**9)
    server.wait_idle(timeout=60)
    # The first pass may have run before the runs were stored: delete what it wrote, the next pass
    # writes it again (as the README says to do after late data).
    wait_for(lambda: len(list(directory.glob("*.parquet"))) == 2, 30, "the first pass")
    for path in directory.glob("*.parquet"):
        path.unlink()
    wait_for(lambda: len(list(directory.glob("*.parquet"))) == 2, 30, "the pass after")
    names = sorted(p.name for p in directory.glob("*.parquet"))
    day = lambda s: time.strftime("%Y-%m-%d", time.gmtime(s))  # noqa: E731
    assert names == [f"focus-{day(d)}--{day(d + DAY)}-day.parquet" for d in (today - 2 * DAY, today - DAY)]
    reports = [validate_file(directory / name) for name in names]
    assert all(r.ok and r.warnings == 0 for r in reports), [r.summary() for r in reports]
    assert reports[0].rows == 0 and reports[1].rows > 0
    with httpx.Client(base_url=server.api_url, timeout=60) as api:
        params = {"from": f"{day(today - DAY)}T00:00:00Z", "to": f"{day(today)}T00:00:00Z", "metrics": "cost_usd"}
        cost = api.get("/v1/rollups", params=params).json()["rows"][0]["cost_usd"]
    assert reports[1].totals["BilledCost"] == Decimal(cost) > 0
    assert 'otelspend_export_scheduled_total{outcome="written"}' in server.app.metrics.render()

"""The scheduled export: due days, one file per day written once and atomically, a failed pass
counted and retried by a thread that keeps running."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from otelspend.finance.export.schedule import Schedule, ScheduledExport, due_days
from otelspend.finance.export.service import ExportRequest, request_from_settings
from otelspend.finance.export.validate import validate_file
from tests.conftest import wait_for
from tests.finance.conftest import Ledger

DAY = 86_400


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

"""``otelspend rollups rebuild``: through the running server's API, or offline on the store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest

from otelspend.api.vocabulary import METRICS
from otelspend.cli import main
from tests import canary
from tests.api.conftest import Loaded

HOUR = 3600 * 10**9


def _figures(api: httpx.Client, loaded: Loaded) -> list[dict]:
    params = {
        "group_by": "workflow_type,status",
        "metrics": ",".join(METRICS),
        "from": _iso(loaded.ledger.first_ns - HOUR),
        "limit": 1000,
    }
    response = api.get("/v1/rollups", params=params)
    assert response.status_code == 200
    return response.json()["rows"]


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns // 10**9, tz=dt.UTC).isoformat()


def _lose_hours(loaded: Loaded, hours: int) -> tuple[int, int, int]:
    """Delete some hours of the runs rollup: (start, end, hours a rebuild covers: whole days)."""
    first = loaded.ledger.runs[30].start // HOUR * HOUR // 10**9
    loaded.server.store.command(
        f"ALTER TABLE {loaded.server.db}.rollup_runs_hourly DELETE WHERE hour >= toDateTime({first}) "
        f"AND hour < toDateTime({first + hours * 3600}) SETTINGS mutations_sync = 2"
    )
    end = first + hours * 3600
    return first, end, (-(-end // 86400) - first // 86400) * 24


def test_rebuild_through_the_api(
    loaded: Loaded,
    api: httpx.Client,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # The command finds the server's token as an operator's shell would: a file only they read.
    monkeypatch.setenv("OTELSPEND_API_TOKENS_FILE", canary.secret_files(tmp_path)["OTELSPEND_API_TOKENS_FILE"])
    before = _figures(api, loaded)
    start, end, rebuilt = _lose_hours(loaded, 3)
    assert _figures(api, loaded) != before
    code = main(
        ["rollups", "rebuild", "--from", _iso(start * 10**9), "--to", _iso(end * 10**9), "--api", str(api.base_url)]
    )
    assert code == 0
    assert f"rebuilt {rebuilt} rollup hour(s)" in capsys.readouterr().out
    assert _figures(api, loaded) == before


def test_rebuild_offline_on_the_store(loaded: Loaded, api: httpx.Client, capsys: pytest.CaptureFixture[str]) -> None:
    before = _figures(api, loaded)
    start, end, rebuilt = _lose_hours(loaded, 2)
    store = loaded.server.store
    code = main(
        [
            "rollups", "rebuild", "--offline", "--from", _iso(start * 10**9), "--to", _iso(end * 10**9 - 1),
            "--clickhouse-dsn", f"chdb://{store.path}", "--database", store.database,
        ]
    )  # fmt: skip
    assert code == 0
    assert f"rebuilt {rebuilt} rollup hour(s)" in capsys.readouterr().out
    assert _figures(api, loaded) == before


def test_rebuild_refuses_an_empty_window(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rollups", "rebuild", "--from", "2025-01-02", "--to", "2025-01-01", "--offline"]) == 2
    assert "--to must be after --from" in capsys.readouterr().err

"""FOCUS export end to end: spans through the real OTLP exporter, the file over the API (CSV and
Parquet, hourly and daily), the CLI (through the server and offline). Every file passes the
validator; its costs add up to the rollups and to plain SQL over the stored spans (1e-15 USD),
its token quantities to the stored tokens."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import os
import uuid
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from otelspend.cli import main
from otelspend.finance.export.service import export, request_from_settings
from otelspend.finance.export.validate import validate_file
from otelspend.settings import ExportSettings
from tests import canary
from tests.finance.conftest import Ledger

CALL_SQL = """
SELECT s.model AS model, sum(ifNull(s.cost_usd, 0)) AS cost,
       sum(if(s.cost_usd IS NULL, 0, ifNull(s.input_tokens, 0))) AS input_tokens,
       sum(if(s.cost_usd IS NULL, 0, ifNull(s.output_tokens, 0))) AS output_tokens,
       sum(if(s.cost_cache_read_usd > 0, ifNull(s.cache_read_tokens, 0), 0)) AS cached_tokens,
       sum(if(s.cost_reasoning_usd > 0, ifNull(s.reasoning_tokens, 0), 0)) AS reasoning_tokens,
       countIf(s.cost_usd IS NULL) AS unpriced
FROM {db}.spans AS s FINAL
WHERE s.call_role = 'call' AND s.trace_id IN (
    SELECT run_id FROM {db}.runs FINAL WHERE sign = 1 AND start_time >= {a:DateTime64(9, 'UTC')}
    AND start_time < {b:DateTime64(9, 'UTC')})
GROUP BY model
"""


def _rows(data: bytes, fmt: str) -> list[dict[str, object]]:
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(data.decode())))
    return pq.read_table(io.BytesIO(data)).to_pylist()


def _download(ledger: Ledger, granularity: str, fmt: str) -> tuple[bytes, dict[str, str]]:
    with ledger.api() as api:
        response = api.get("/v1/export/focus", params={**ledger.window, "granularity": granularity, "format": fmt})
    assert response.status_code == 200, response.text
    return response.content, dict(response.headers)


def _truth(ledger: Ledger) -> dict[str, dict[str, object]]:
    rows = ledger.server.dicts(CALL_SQL, a=ledger.start, b=ledger.end)
    return {str(r["model"]): r for r in rows}


@pytest.mark.parametrize(
    ("granularity", "fmt"),
    [pytest.param("day", "csv", id="daily-csv"), pytest.param("hour", "parquet", id="hourly-parquet")],
)
def test_every_export_validates_and_adds_up_exactly(ledger: Ledger, tmp_path: Path, granularity: str, fmt: str) -> None:
    data, headers = _download(ledger, granularity, fmt)
    path = tmp_path / f"export.{fmt}"
    path.write_bytes(data)
    report = validate_file(path)
    assert report.ok and report.warnings == 0, report.summary()
    assert report.version == "1.3" and report.rows > 0
    assert headers["content-type"].startswith("text/csv" if fmt == "csv" else "application/vnd.apache.parquet")
    assert f"-{granularity}.{fmt}" in headers["content-disposition"]

    rows = _rows(data, fmt)
    truth = _truth(ledger)
    if fmt == "csv" and os.environ.get("OTELSPEND_UPDATE_SCREENSHOT"):  # the README's excerpt
        (tmp_path.parent / "focus-excerpt.csv").write_bytes(b"\r\n".join(data.split(b"\r\n")[:4]))
    # Costs: the rollups' total and plain SQL over the counted calls, to the femto-dollar.
    with ledger.api() as api:
        rollup = api.get("/v1/rollups", params={**ledger.window, "metrics": "cost_usd"}).json()["rows"][0]
    billed = sum(Decimal(str(r["BilledCost"])) for r in rows)
    assert billed == Decimal(rollup["cost_usd"]) == sum(Decimal(t["cost"]) for t in truth.values())
    assert report.totals["BilledCost"] == report.totals["ListCost"] == report.totals["EffectiveCost"] == billed
    # Tokens: every kind of a model adds up to its stored input and output tokens.
    per_model: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        assert r["ChargeCategory"] == "Usage" and r["x_CostSource"] == "calculated"
        per_model[str(r["x_Model"])][str(r["x_ChargeKind"])] += int(Decimal(str(r["ConsumedQuantity"])))
    for model, t in truth.items():
        kinds = per_model.get(model, {})
        if t["cost"] == 0:
            assert not kinds, f"{model} is unpriced: no rows"
            continue
        assert kinds["uncached_input"] + kinds["cached_input"] + kinds["cache_write"] == t["input_tokens"], model
        assert kinds["output"] + kinds["reasoning"] == t["output_tokens"], model
        assert kinds["cached_input"] == t["cached_tokens"] and kinds["reasoning"] == t["reasoning_tokens"], model
    assert headers["x-otelspend-unpriced-calls"] == str(sum(int(t["unpriced"]) for t in truth.values())) != "0"
    # The ledger's figures: cached input and cache writes priced apart, runs counted per row.
    assert per_model["claude-sonnet-4-5"]["cache_write"] > 0 and per_model["gpt-4o-mini"]["cached_input"] > 0
    assert {str(r["SubAccountId"]) for r in rows} >= {"search", "support"}
    assert all(int(str(r["x_RunCount"])) >= 1 and int(str(r["x_CallCount"])) >= 1 for r in rows)


def _daily(ledger: Ledger, start: dt.datetime, end: dt.datetime) -> list[dict[str, object]]:
    with ledger.api() as api:
        params = {"from": start.isoformat(), "to": end.isoformat(), "granularity": "day"}
        response = api.get("/v1/export/focus", params=params)
    assert response.status_code == 200, response.text
    return _rows(response.content, "csv")


def _z(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_charge_periods_stay_inside_the_window_and_adjacent_exports_never_overlap(ledger: Ledger) -> None:
    # The ledger's window starts and ends on hours, not days: daily rows hold part of a day.
    whole = _daily(ledger, ledger.start, ledger.end)
    assert whole and all(_z(ledger.start) <= str(r["ChargePeriodStart"]) for r in whole)
    assert all(str(r["ChargePeriodEnd"]) <= _z(ledger.end) for r in whole)
    day = ledger.start.replace(hour=0)
    assert {str(r["ChargePeriodStart"]) for r in whole} == {_z(max(day, ledger.start))}
    # Cut the window at a whole second inside the runs: the two files add up to the whole one and
    # the first file's periods end where the second's begin.
    first_run = ledger.server.store.scalar(f"SELECT min(start_time) FROM {ledger.server.db}.runs")
    cut = first_run.replace(microsecond=0) + dt.timedelta(seconds=1)
    before, after = _daily(ledger, ledger.start, cut), _daily(ledger, cut, ledger.end)
    assert before, "the first run started before the cut"
    assert all(str(r["ChargePeriodEnd"]) <= _z(cut) for r in before)
    assert all(_z(cut) <= str(r["ChargePeriodStart"]) for r in after)
    total = sum(Decimal(str(r["BilledCost"])) for r in whole)
    assert sum(Decimal(str(r["BilledCost"])) for r in before + after) == total
    quantity = sum(Decimal(str(r["ConsumedQuantity"])) for r in whole)
    assert sum(Decimal(str(r["ConsumedQuantity"])) for r in before + after) == quantity


@pytest.mark.parametrize("sub_account", ["team", "tenant"])
def test_rows_by_sub_account_add_up_to_the_rollups_by_that_dimension(ledger: Ledger, sub_account: str) -> None:
    if sub_account == "team":  # the default: through the API
        data, _ = _download(ledger, "day", "csv")
    else:  # export.sub_account: tenant, through the code behind the API and the CLI
        settings = ExportSettings(sub_account="tenant")
        start, end = (int(t.timestamp()) * 10**9 for t in (ledger.start, ledger.end))
        request = request_from_settings(settings, start, end, "day", store=ledger.server.store)
        data = b"".join(export(ledger.server.store, request, "csv"))
    rows = _rows(data, "csv")
    by_owner: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        by_owner[str(r["SubAccountId"])] += Decimal(str(r["BilledCost"]))
        assert r["SubAccountType"] == (sub_account.capitalize() if r["SubAccountId"] else "")
        assert r["SubAccountName"] == r["SubAccountId"]
    with ledger.api() as api:
        params = {**ledger.window, "group_by": sub_account, "metrics": "cost_usd"}
        answer = api.get("/v1/rollups", params=params).json()
    expected = {row[sub_account]: Decimal(row["cost_usd"]) for row in answer["rows"] if Decimal(row["cost_usd"])}
    assert {owner: cost for owner, cost in by_owner.items() if cost} == expected
    assert len(expected) >= 2


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(list(argv))
    return code, out.getvalue()


def test_cli_exports_through_the_server_and_offline_the_same_rows(ledger: Ledger, tmp_path: Path) -> None:
    window = ["--from", ledger.start.isoformat(), "--to", ledger.end.isoformat()]
    served = tmp_path / "served.csv"
    code, output = _cli("export", "focus", *window, "--out", str(served), "--api", ledger.server.api_url,
                        "--token", canary.API_TOKEN)  # fmt: skip
    assert code == 0, output
    assert "through the server" in output and "no price" in output
    settings = ledger.server.app.settings
    offline = tmp_path / "offline.csv"
    code, output = _cli("export", "focus", *window, "--out", str(offline), "--offline",
                        "--clickhouse-dsn", settings.clickhouse.dsn.get_secret_value(),
                        "--database", settings.clickhouse.database, "--data-dir", str(tmp_path))  # fmt: skip
    assert code == 0, output
    assert served.read_bytes() == offline.read_bytes()
    code, output = _cli("export", "validate", str(served))
    assert code == 0 and "0 error(s), 0 warning(s)" in output, output
    broken = tmp_path / "broken.csv"
    broken.write_text(served.read_text().replace(",USD,", ",usd,"))
    code, output = _cli("export", "validate", str(broken))
    assert code == 1 and "BillingCurrency-C-006-M" in output


@pytest.mark.parametrize(
    ("params", "status"),
    [
        pytest.param({"granularity": "week"}, 422, id="unknown-granularity"),
        pytest.param({"format": "xlsx"}, 422, id="unknown-format"),
        pytest.param({"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"}, 422, id="window-backwards"),
        pytest.param({"groupby": "team"}, 422, id="unknown-parameter"),
    ],
)
def test_bad_requests_are_refused(ledger: Ledger, params: dict[str, str], status: int) -> None:
    with ledger.api() as api:
        assert api.get("/v1/export/focus", params=params).status_code == status


def test_the_export_needs_the_api_token(ledger: Ledger) -> None:
    with ledger.api() as api:
        response = api.get("/v1/export/focus", headers={"Authorization": ""})
    assert response.status_code == 401


def test_an_empty_window_is_a_file_with_a_header_only(ledger: Ledger, tmp_path: Path) -> None:
    with ledger.api() as api:
        response = api.get("/v1/export/focus", params={"from": "2020-01-01T00:00:00Z", "to": "2020-01-02T00:00:00Z"})
    path = tmp_path / f"empty-{uuid.uuid4().hex}.csv"
    path.write_bytes(response.content)
    report = validate_file(path)
    assert (report.rows, report.errors) == (0, 0) and response.content.startswith(b"AllocatedMethodDetails,")


def test_an_export_that_breaks_off_in_the_server_leaves_no_file(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The store fails after the response has begun (the header line is sent): the client must not
    # take the cut body for a file.
    from otelspend.finance.export import service

    def broken(*args: object, **kwargs: object) -> list[dict[str, object]]:
        raise RuntimeError("the store went away")

    monkeypatch.setattr(service, "day_rows", broken)
    out = tmp_path / "cut.csv"
    code, output = _cli("export", "focus", "--from", ledger.start.isoformat(), "--to", ledger.end.isoformat(),
                        "--out", str(out), "--api", ledger.server.api_url, "--token", canary.API_TOKEN)  # fmt: skip
    assert code == 1, output
    assert "broke off" in output and not out.exists() and list(tmp_path.iterdir()) == []

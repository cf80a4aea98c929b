"""``otelspend billing`` offline (nothing serving): import, list, reconcile, pull."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from otelspend.cli import main
from tests import canary
from tests.finance.billing.fakes import FakeAdminApi, anthropic_results, serving
from tests.finance.billing.helpers import TESTDATA

KEY = canary.ANTHROPIC_ADMIN_KEY


@pytest.fixture
def config(tmp_path: Path, chdb_path: Path) -> Any:
    def write(**billing: Any) -> Path:
        path = tmp_path / "otelspend.yaml"
        path.write_text(yaml.safe_dump({
            "clickhouse": {"dsn": f"chdb://{chdb_path}", "database": f"t_{uuid.uuid4().hex[:12]}"},
            "data_dir": str(tmp_path / "data"), "api": {"address": "127.0.0.1:9"}, "billing": billing}))  # fmt: skip
        return path

    return write


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["billing", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_import_offline_then_list_and_reconcile(capsys, config, tmp_path: Path) -> None:
    path = config()
    code, out, err = cli(capsys, "import", str(TESTDATA / "anthropic_cost.json"), "--config", str(path))
    assert code == 0, err
    assert "no otelspend server answers at http://127.0.0.1:9; importing offline" in err
    assert "imported anthropic_cost.json into chdb://" in out and re.search(r"lines +6 \(0 skipped, 0 restate", out)
    assert "usage billed          7.535000000000000 USD" in out
    assert "reconciled 2025-06-01  billed 7.237500000000000  calculated 0.000000000000000" in out
    assert "missing_telemetry 7.237500000000000" in out  # no calls in the ledger: all billed usage unseen
    assert "variance 0.297500000000000 USD  (2 cells: 0 high, 0 medium, 2 low)" in out  # 2025-06-02

    code, out, err = cli(capsys, "imports", "--offline", "--config", str(path))
    assert code == 0 and "anthropic_cost" in out and "anthropic_cost.json" in out and "7.535000000000000 USD" in out

    code, out, err = cli(capsys, "reconcile", "--from", "2025-06-01", "--to", "2025-06-03", "--offline",
                         "--config", str(path))  # fmt: skip
    assert code == 0, err
    assert "reconciled [2025-06-01, 2025-06-03)" in out
    assert out.count("reconciled 2025-06-0") == 2


def test_a_refused_file_is_reported_and_the_others_imported(capsys, config, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text((TESTDATA / "focus_1_2.csv").read_text().replace(",USD,", ",EUR,", 1))
    code, out, err = cli(capsys, "import", str(bad), str(TESTDATA / "focus_1_3.csv"), "--offline", "--config",
                         str(config()), "--no-reconcile")  # fmt: skip
    assert code == 1
    assert "otelspend: bad.csv: row 1: BillingCurrency = 'EUR': expected USD" in err
    assert "imported focus_1_3.csv" in out and "bad.csv" not in out


def test_pull_offline_with_the_key_from_the_settings(capsys, config, tmp_path: Path) -> None:
    days = [int(dt.datetime(2025, 6, d, tzinfo=dt.UTC).timestamp()) for d in (1, 2, 3)]
    with serving(FakeAdminApi("anthropic", KEY, anthropic_results(days))) as api:
        path = config(anthropic_admin_key=KEY, anthropic_base_url=api.url)
        code, out, err = cli(capsys, "pull", "--provider", "anthropic", "--since", "2025-06-01", "--until",
                             "2025-06-04", "--offline", "--config", str(path))  # fmt: skip
    assert code == 0, err
    assert "pulled anthropic cost: 2 page(s), 3 day(s), 2 request(s), 0 retried" in out
    assert "pulled anthropic usage: 2 page(s), 3 day(s)" in out and out.count("reconciled 2025-06-0") == 6
    assert KEY not in out + err


def test_a_pull_stopping_half_way_says_how_to_resume(capsys, config) -> None:
    days = [int(dt.datetime(2025, 6, d, tzinfo=dt.UTC).timestamp()) for d in (1, 2, 3, 4, 5)]
    api = FakeAdminApi("anthropic", KEY, anthropic_results(days), fail_after_pages=1)
    with serving(api):
        path = config(anthropic_admin_key=KEY, anthropic_base_url=api.url, pull_max_attempts=1)
        code, out, err = cli(capsys, "pull", "--provider", "anthropic", "--since", "2025-06-01", "--until",
                             "2025-06-06", "--offline", "--config", str(path))  # fmt: skip
    assert code == 1
    assert "pulled anthropic cost: 1 page(s), 2 day(s)" in out and re.search(r"lines +2 ", out)
    assert "stopped: /v1/organizations/cost_report answered 503" in err
    assert "otelspend billing pull --provider anthropic --since 2025-06-01 --until 2025-06-06" in err
    assert KEY not in out + err


def test_pull_without_a_key_names_the_setting(capsys, config) -> None:
    code, _, err = cli(capsys, "pull", "--provider", "openai", "--since", "2025-06-01", "--config", str(config()))
    assert code == 2 and "set billing.openai_admin_key (OTELSPEND_BILLING_OPENAI_ADMIN_KEY)" in err


def test_import_goes_through_the_running_server(capsys, start_server) -> None:
    server = start_server()
    args = ["--api", server.api_url, "--token", canary.API_TOKEN]
    code, out, err = cli(capsys, "import", str(TESTDATA / "anthropic_usage.json"), *args)
    assert code == 0, err
    assert f"imported anthropic_usage.json through the server at {server.api_url}" in out
    assert re.search(r"lines +12 \(0 skipped", out) and "on quantities only" in out
    assert server.scalar("SELECT count() FROM {db}.billing_lines") == 12
    code, out, err = cli(capsys, "imports", *args)
    assert code == 0 and "anthropic_usage" in out
    code, out, err = cli(capsys, "reconcile", "--from", "2025-06-01", "--to", "2025-06-02", *args)
    assert code == 0 and f"through the server at {server.api_url}" in out and "reconciled 2025-06-01" in out
    bad = TESTDATA / "anthropic_cost.json"
    code, out, err = cli(capsys, "import", str(bad), "--format", "openai_costs", *args)
    assert code == 1 and "answered 422: anthropic_cost.json: page 1, bucket 1" in err
    # A wrong token is the server refusing, never a silent fall-back to offline.
    code, out, err = cli(capsys, "import", str(bad), "--api", server.api_url, "--token", canary.WRONG_TOKEN)
    assert code == 1 and "answered 401" in err

"""The Reconciliation page in headless Chromium: a bill built from the demo ledger's own OpenAI
calls (one day with a request the telemetry never saw) is imported over the REST API; the
page shows what ``GET /v1/reconciliation`` says, and drills down from a cell to its runs."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

import pytest

from tests.dashboard.conftest import Loaded, Tab

NUMBER = "number:"


def _ledger_cells(loaded: Loaded) -> list[dict[str, Any]]:
    return loaded.server.dicts(
        "SELECT toDate(start_time) AS day, model, count() AS calls, "
        "sum(ifNull(input_tokens, 0)) AS input, sum(ifNull(cache_read_tokens, 0)) AS cached, "
        "sum(ifNull(cache_write_tokens, 0)) AS written, sum(ifNull(output_tokens, 0)) AS output, "
        "sum(ifNull(cost_input_usd, 0)) AS c_input, sum(ifNull(cost_cache_read_usd, 0)) AS c_cached, "
        "sum(ifNull(cost_cache_write_usd, 0)) AS c_written, "
        "sum(ifNull(cost_output_usd, 0) + ifNull(cost_reasoning_usd, 0)) AS c_output "
        "FROM {db}.spans FINAL WHERE call_role = 'call' AND provider = 'openai' AND cost_usd IS NOT NULL "
        "GROUP BY day, model ORDER BY day, model"
    )


def _bill(cells: list[dict[str, Any]], extra: tuple[Any, str]) -> tuple[str, str]:
    """An OpenAI usage page and costs page for these cells; ``extra`` (day, model) also bills
    as many uncached input tokens again as the ledger saw (a request the telemetry missed)."""
    days = sorted({c["day"] for c in cells})
    usage, costs = [], []
    for day in days:
        start = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
        u_results, c_results = [], []
        for c in (c for c in cells if c["day"] == day):
            twice = 2 if (day, c["model"]) == extra else 1
            uncached = c["input"] - c["cached"] - c["written"]
            u_results.append({"object": "organization.usage.completions.result", "model": c["model"],
                              "project_id": "proj_demo", "input_tokens": c["input"] + (twice - 1) * uncached,
                              "input_cached_tokens": c["cached"], "input_cache_write_tokens": c["written"],
                              "output_tokens": c["output"], "num_model_requests": c["calls"] + twice - 1})  # fmt: skip
            for label, amount in (("input", c["c_input"] * twice), ("cached input", c["c_cached"]),
                                  ("cache write", c["c_written"]), ("output", c["c_output"])):  # fmt: skip
                c_results.append({"object": "organization.costs.result", "project_id": "proj_demo",
                                  "line_item": f"{c['model']}, {label}",
                                  "amount": {"value": f"{NUMBER}{Decimal(amount):f}", "currency": "usd"}})  # fmt: skip
        usage.append({"object": "bucket", "start_time": start, "end_time": start + 86_400, "results": u_results})
        costs.append({"object": "bucket", "start_time": start, "end_time": start + 86_400, "results": c_results})

    def page(buckets: list[Any]) -> str:
        text = json.dumps({"object": "page", "data": buckets, "has_more": False, "next_page": None})
        return re.sub(f'"{NUMBER}([-0-9.]+)"', r"\1", text)

    return page(usage), page(costs)


@pytest.fixture(scope="module")
def billed(loaded: Loaded) -> dict[str, Any]:
    cells = _ledger_cells(loaded)
    assert len({c["day"] for c in cells}) >= 5, "the demo spreads OpenAI calls over the week"
    extra = (cells[-1]["day"], cells[-1]["model"])
    usage, costs = _bill(cells, extra)
    with loaded.api() as api:
        for name, body in (("usage.json", usage), ("costs.json", costs)):
            response = api.post("/v1/billing/imports", params={"name": name}, content=body)
            assert response.status_code == 201, response.text
    return {"extra": extra, "missing": Decimal(cells[-1]["c_input"])}


def _api(loaded: Loaded, path: str, **params: Any) -> Any:
    with loaded.api() as api:
        response = api.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()


def _money(tab: Tab, selector: str) -> str:
    return tab.page.get_attribute(f"{selector} data.usd", "value") or tab.page.get_attribute(selector, "value") or ""


def test_the_page_shows_the_apis_reconciliation(tab: Tab, loaded: Loaded, billed: dict[str, Any]) -> None:
    tab.open("/reconciliation")
    page = tab.page
    window = {"from": page.get_attribute("#recon-from", "datetime"), "to": page.get_attribute("#recon-to", "datetime")}
    answer = _api(loaded, "/v1/reconciliation", **window)
    totals = answer["totals"]
    assert page.get_attribute("#kpi-billed", "value") == totals["billed_usd"]
    assert page.get_attribute("#kpi-calculated", "value") == totals["calculated_usd"]
    assert page.locator("#kpi-variance data.usd").get_attribute("value") == totals["variance_usd"]
    assert Decimal(totals["variance_usd"]) == billed["missing"] > 0
    assert page.locator("svg[role=img]#chart-billed-calculated").count() == 1
    assert page.locator("svg[role=img]#chart-causes").count() == 1

    by_day = _api(loaded, "/v1/reconciliation", group_by="day,provider", **window)["rows"]
    rows = page.locator("#days-table tbody tr")
    assert rows.count() == len(by_day) >= 5
    for row in by_day:
        cells = page.locator(f'#days-table tr[data-key="{row["day"]}/{row["provider"]}"] data.usd')
        assert [cells.nth(i).get_attribute("value") for i in range(3)] == [
            row["calculated_usd"], row["billed_usd"], row["variance_usd"]]  # fmt: skip

    day, model = billed["extra"]
    cells = {(r["day"], r["model"]): r for r in answer["rows"]}
    odd = cells[(day.isoformat(), model)]
    assert odd["confidence"] == "low" and Decimal(odd["causes"]["missing_telemetry"]) == billed["missing"]
    # The demo's self-hosted Llama answers as provider "openai": seen by the ledger (unpriced),
    # never on OpenAI's bill: a cell with one side only is low, with nothing to explain.
    self_hosted = {key: r for key, r in cells.items() if r["ledger"]["unpriced_calls"] == r["ledger"]["calls"]}
    assert self_hosted and all(r["confidence"] == "low" and r["billed_usd"] == "0.000000000000000"
                               for r in self_hosted.values())  # fmt: skip
    rest = {key: r for key, r in cells.items() if key not in self_hosted and key != (day.isoformat(), model)}
    assert {r["confidence"] for r in rest.values()} == {"high"} and all(r["variance_usd"] == "0.000000000000000"
                                                                        for r in rest.values())  # fmt: skip
    tab.watch.assert_clean()


def test_a_cell_drills_down_to_its_runs(tab: Tab, loaded: Loaded, billed: dict[str, Any]) -> None:
    day, model = billed["extra"]
    tab.open("/reconciliation")
    row = tab.page.locator(f'#cells-table tr[data-key^="{day.isoformat()}/openai/"]').filter(has_text=model).first
    row.get_by_role("link", name="runs").click()
    tab.page.wait_for_load_state("load")
    assert tab.page.url.startswith(f"{loaded.url}/reconciliation/cell?")
    runs = _api(loaded, "/v1/reconciliation/runs", day=day.isoformat(), provider="openai", model=model,
                limit=1000)["runs"]  # fmt: skip
    shown = tab.page.locator("#cell-runs tbody tr")
    assert shown.count() == len(runs) > 0
    assert sum(Decimal(r["billed_usd"]) for r in runs) == Decimal(tab.page.get_attribute("#cell-billed", "value"))
    assert tab.page.locator('#cause-table tr[data-key="missing_telemetry"] data.usd').get_attribute("value") == (
        f"{billed['missing']:.15f}"
    )
    tab.page.locator("#cell-runs tbody tr th a").first.click()
    tab.page.wait_for_load_state("load")
    assert re.search(r"/runs/[0-9a-f]{32}$", tab.page.url)
    tab.watch.assert_clean()


def test_bad_parameters_are_answered_with_an_error_page(tab: Tab, billed: dict[str, Any]) -> None:
    for path, status in (("/reconciliation?day=yesterday", 400), ("/reconciliation/cell?day=2025-13-01", 400),
                         ("/reconciliation/cell?day=2001-01-01&provider=openai", 404)):  # fmt: skip
        response = tab.page.goto(tab.origin + path)
        assert response is not None and response.status == status, path

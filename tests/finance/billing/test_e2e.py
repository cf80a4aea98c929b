"""End to end: spans for known calls through the real OTLP exporter, the provider's bill for the
same calls imported over the REST API, the reconciliation read back.

Five days, one case each: a bill built from the same calls (variance 0, confidence high), a
request missing from the telemetry, a stale rate-card price, an ignored cache discount, and
an untagged project. Each gives its cause and the exact amount; the true-up's billed money
reaches the rollups.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.trace import SpanKind

from otelspend.app import OtelSpend
from otelspend.clickhouse.queries import billing as sql
from tests.conftest import Running, make_settings
from tests.otel import tracer_provider

DAY1 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
GPT4O, MINI = "gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18"
CARD = {  # USD per million tokens, as the ledger's rate card has them
    GPT4O: {"input": Decimal("2.50"), "cache_read": Decimal("1.25"), "output": Decimal("10.00")},
    MINI: {"input": Decimal("0.30"), "cache_read": Decimal("0.075"), "output": Decimal("0.60")},  # stale input
}
BILLED = {**CARD, MINI: {**CARD[MINI], "input": Decimal("0.15")}}  # what the provider charged
TOKENS = {"search-prod": "search-token-0001", "batch-jobs": "batch-token-0001"}


# (day, ingest token, model, input tokens incl. cached, cached (None: not reported), output)
CALLS = [
    (0, "search-prod", GPT4O, 10_000, 2_000, 500),
    (0, "search-prod", GPT4O, 20_000, 0, 1_000),
    (0, "search-prod", GPT4O, 5_000, 1_000, 200),
    (1, "search-prod", GPT4O, 10_000, 0, 500),
    (1, "search-prod", GPT4O, 20_000, 0, 1_000),
    (2, "search-prod", MINI, 100_000, 0, 10_000),
    (2, "search-prod", MINI, 100_000, 0, 10_000),
    (3, "search-prod", GPT4O, 10_000, None, 500),  # the instrumentation reports no cached tokens
    (4, "search-prod", GPT4O, 10_000, 0, 500),
]
# What the provider's usage export says, per (day, project, model): input incl. cached, cached, output, requests.
USAGE = {
    (0, "proj_search", GPT4O): (35_000, 3_000, 1_700, 3),
    (1, "proj_search", GPT4O): (38_000, 0, 1_900, 3),  # one request more than the ledger saw
    (2, "proj_search", MINI): (200_000, 0, 20_000, 2),
    (3, "proj_search", GPT4O): (10_000, 8_000, 500, 1),  # 8,000 of the input tokens were cache hits
    (4, "proj_search", GPT4O): (10_000, 0, 500, 1),
    (4, "proj_new", GPT4O): (4_000, 0, 100, 1),  # a project the account mapping does not know
}


def _usd(tokens: int, per_mtok: Decimal) -> Decimal:
    return Decimal(tokens) * per_mtok / 1_000_000


def _day(n: int) -> int:
    return int((DAY1 + dt.timedelta(days=n)).timestamp())


def _send_calls(server: Any) -> None:
    for token_name, secret in TOKENS.items():
        calls = [c for c in CALLS if c[1] == token_name]
        if not calls:
            continue
        with tracer_provider(server, "grpc", service="search-api", headers={"authorization": f"Bearer {secret}"}) as tp:
            tracer = tp.get_tracer("e2e")
            for index, (day, _, model, inp, cached, out) in enumerate(calls):
                start = (_day(day) + 10 * 3600 + 60 * index) * 10**9
                root = tracer.start_span("answer", kind=SpanKind.SERVER, start_time=start,
                                         attributes={"workflow.type": "answer", "tenant.id": "acme"})  # fmt: skip
                context = _with(root)
                attributes = {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": model.split("-2024")[0],
                    "gen_ai.response.model": model,
                    "gen_ai.usage.input_tokens": inp,
                    "gen_ai.usage.output_tokens": out,
                }
                if cached is not None:
                    attributes["gen_ai.usage.cache_read.input_tokens"] = cached
                call = tracer.start_span("chat", context=context, kind=SpanKind.CLIENT, start_time=start + 10**6,
                                         attributes=attributes)  # fmt: skip
                call.end(end_time=start + 5 * 10**8)
                root.end(end_time=start + 6 * 10**8)


def _with(span: Any) -> Any:
    from opentelemetry import trace

    return trace.set_span_in_context(span)


def _usage_page() -> dict[str, Any]:
    buckets = []
    for day in range(5):
        results = [
            {"object": "organization.usage.completions.result", "input_tokens": inp, "input_cached_tokens": cached,
             "output_tokens": out, "num_model_requests": requests, "project_id": project, "model": model,
             "api_key_id": None, "user_id": None, "batch": False, "service_tier": "default"}
            for (d, project, model), (inp, cached, out, requests) in USAGE.items()
            if d == day
        ]  # fmt: skip
        buckets.append({"object": "bucket", "start_time": _day(day), "end_time": _day(day + 1), "results": results})
    return {"object": "page", "data": buckets, "has_more": False, "next_page": None}


def _costs_page() -> str:
    """Costs as the API renders them: dollars as JSON numbers (written from exact decimals),
    lower-case currency."""
    buckets = []
    for day in range(5):
        results = []
        for (d, project, model), (inp, cached, out, _) in USAGE.items():
            if d != day:
                continue
            price = BILLED[model]
            for label, amount in (
                ("input", _usd(inp - cached, price["input"])),
                ("cached input", _usd(cached, price["cache_read"])),
                ("output", _usd(out, price["output"])),
            ):
                results.append({"object": "organization.costs.result",
                                "amount": {"value": f"{NUMBER}{amount.normalize():f}", "currency": "usd"},
                                "line_item": f"{model}, {label}", "project_id": project})  # fmt: skip
        buckets.append({"object": "bucket", "start_time": _day(day), "end_time": _day(day + 1), "results": results})
    text = json.dumps({"object": "page", "data": buckets, "has_more": False, "next_page": None})
    return re.sub(f'"{NUMBER}([-0-9.]+)"', r"\1", text)


NUMBER = "number:"


@pytest.fixture(scope="module")
def reconciled(chdb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, httpx.Client]]:
    tmp_path = tmp_path_factory.mktemp("billing-e2e")
    card = tmp_path / "rates.yaml"
    card.write_text(yaml.safe_dump({"version": 1, "currency": "USD", "entries": [
        {"id": model, "provider": "openai", "model": model, "prices": {k: float(v) for k, v in prices.items()}}
        for model, prices in CARD.items()]}))  # fmt: skip
    mapping = tmp_path / "accounts.yaml"
    mapping.write_text(yaml.safe_dump({"version": 1, "accounts": [
        {"name": "search", "provider": "openai", "match": {"project_id": "proj_search"},
         "owner": {"ingest_token": "search-prod"}}]}))  # fmt: skip
    settings = make_settings(
        chdb_path,
        tmp_path / "data",
        f"t_bill_{uuid.uuid4().hex[:10]}",
        rate_card=str(card),
        otlp={"ingest_tokens": [{"name": n, "token": t} for n, t in TOKENS.items()]},
        billing={"accounts": str(mapping)},
    )
    app = OtelSpend(settings)
    app.start()
    try:
        server = Running(app)
        _send_calls(server)
        server.wait_idle(30)
        with httpx.Client(base_url=server.api_url, timeout=60) as api:
            usage = api.post("/v1/billing/imports", params={"name": "usage.json"}, content=json.dumps(_usage_page()))
            assert usage.status_code == 201, usage.text
            assert usage.json()["format"] == "openai_usage" and usage.json()["lines"] == 6 * 5
            costs = api.post("/v1/billing/imports", params={"name": "costs.json"}, content=_costs_page())
            assert costs.status_code == 201, costs.text
            assert costs.json()["format"] == "openai_costs" and len(costs.json()["reconciled"]) == 5
            yield server, api
    finally:
        app.stop()


def _cells(api: httpx.Client) -> dict[tuple[str, str, str], dict[str, Any]]:
    response = api.get("/v1/reconciliation", params={"from": "2025-06-01", "to": "2025-06-06"})
    assert response.status_code == 200, response.text
    return {(row["day"], row["model"], row["account"]): row for row in response.json()["rows"]}


def _causes(row: dict[str, Any]) -> dict[str, Decimal]:
    return {name: Decimal(value) for name, value in row["causes"].items() if Decimal(value)}


def test_the_bill_for_the_same_calls_reconciles_to_zero_with_high_confidence(reconciled: Any) -> None:
    _, api = reconciled
    row = _cells(api)[("2025-06-01", GPT4O, "search")]
    assert row["variance_usd"] == "0.000000000000000" and row["confidence"] == "high" and _causes(row) == {}
    assert Decimal(row["billed_usd"]) == Decimal("0.10075") == Decimal(row["calculated_usd"])
    assert row["ledger"]["uncached_input"] == 32_000 and row["billed"]["uncached_input"] == "32000"
    assert row["ledger"]["cached_input"] == 3_000 and row["billed"]["cached_input"] == "3000"
    assert row["ledger"]["calls"] == 3 and row["billed"]["requests"] == "3" and row["billed"]["web_search"] is None
    runs = api.get("/v1/reconciliation/runs", params={"day": "2025-06-01", "provider": "openai", "model": GPT4O,
                                                      "account": "search"}).json()["runs"]  # fmt: skip
    assert len(runs) == 3 and all(r["billed_usd"] == r["calculated_usd"] for r in runs)
    assert sum(Decimal(r["billed_usd"]) for r in runs) == Decimal("0.10075")


def test_a_missing_request_is_missing_telemetry(reconciled: Any) -> None:
    _, api = reconciled
    row = _cells(api)[("2025-06-02", GPT4O, "search")]
    expected = _usd(8_000, CARD[GPT4O]["input"]) + _usd(400, CARD[GPT4O]["output"])
    assert expected == Decimal("0.024")
    assert _causes(row) == {"missing_telemetry": expected} and Decimal(row["variance_usd"]) == expected
    assert row["confidence"] == "low"


def test_a_stale_rate_card_price_is_a_price_mismatch(reconciled: Any) -> None:
    _, api = reconciled
    row = _cells(api)[("2025-06-03", MINI, "search")]
    expected = _usd(200_000, BILLED[MINI]["input"] - CARD[MINI]["input"])
    assert expected == Decimal("-0.03")
    assert _causes(row) == {"price_mismatch": expected}
    assert row["prices"]["uncached_input"] == {"billed_usd_per_mtok": "0.15", "rate_card_usd_per_mtok": "0.3"}


def test_an_ignored_cache_discount_is_a_discount(reconciled: Any) -> None:
    _, api = reconciled
    row = _cells(api)[("2025-06-04", GPT4O, "search")]
    expected = _usd(8_000, CARD[GPT4O]["cache_read"] - CARD[GPT4O]["input"])
    assert expected == Decimal("-0.01")
    assert _causes(row) == {"discount": expected}
    assert row["ledger"]["uncached_input"] == 10_000 and row["billed"]["cached_input"] == "8000"


def test_an_untagged_project_is_untagged_with_its_amount(reconciled: Any) -> None:
    server, api = reconciled
    cells = _cells(api)
    assert cells[("2025-06-05", GPT4O, "search")]["variance_usd"] == "0.000000000000000"
    untagged = cells[("2025-06-05", GPT4O, "")]
    expected = _usd(4_000, CARD[GPT4O]["input"]) + _usd(100, CARD[GPT4O]["output"])
    assert expected == Decimal("0.011")
    assert _causes(untagged) == {"untagged": expected} and untagged["confidence"] == "low"
    unattributed = server.rows(
        "SELECT sum(billed_usd) FROM {db}.billing_trueup WHERE unattributed = 1 AND " + sql.current(server.db)
    )[0][0]
    assert unattributed == expected


def test_billed_money_reaches_the_rollups_exactly(reconciled: Any) -> None:
    server, api = reconciled
    window = {"from": "2025-06-01T00:00:00Z", "to": "2025-06-06T00:00:00Z"}
    metrics = "cost_usd,billed_cost_usd,variance_usd,billed_confidence"
    (total,) = api.get("/v1/rollups", params={"metrics": metrics, **window}).json()["rows"]
    billed = sum(
        (_usd(inp - cached, BILLED[m]["input"]) + _usd(cached, BILLED[m]["cache_read"]) + _usd(out, BILLED[m]["output"])
         for (_, _, m), (inp, cached, out, _) in USAGE.items()),
        Decimal(0),
    )  # fmt: skip
    assert Decimal(total["billed_cost_usd"]) == billed
    assert Decimal(total["variance_usd"]) == Decimal("0.024") - Decimal("0.03") - Decimal("0.01") + Decimal("0.011")
    assert total["billed_confidence"] == "low"
    by_tenant = {r["tenant"]: r for r in api.get("/v1/rollups", params={"metrics": metrics, "group_by": "tenant",
                                                                           **window}).json()["rows"]}  # fmt: skip
    assert set(by_tenant) == {"acme", "(unattributed)"}
    assert Decimal(by_tenant["(unattributed)"]["billed_cost_usd"]) == Decimal("0.011")
    assert by_tenant["(unattributed)"]["cost_usd"] == "0.000000000000000"
    assert Decimal(by_tenant["acme"]["billed_cost_usd"]) == billed - Decimal("0.011")
    by_model = api.get("/v1/rollups", params={"metrics": metrics, "group_by": "model", **window}).json()["rows"]
    assert {r["model"] for r in by_model} == {GPT4O, MINI}
    assert sum(Decimal(r["billed_cost_usd"]) for r in by_model) == billed
    by_agent = api.get("/v1/rollups", params={"metrics": metrics, "group_by": "agent", **window}).json()["rows"]
    assert all(r["billed_cost_usd"] is None for r in by_agent)  # bills are not matched per agent
    # Each run's share is exact: shares of a cell add up to its billed money.
    per_cell = server.rows(
        "SELECT day, model_key, account, sum(billed_usd) FROM {db}.billing_trueup WHERE "
        + sql.current(server.db) + " GROUP BY day, model_key, account ORDER BY day"
    )  # fmt: skip
    cells = server.rows(
        "SELECT day, model, account, billed_usd FROM {db}.reconciliation_cells WHERE "
        + sql.current(server.db) + " ORDER BY day"
    )  # fmt: skip
    assert sorted(per_cell) == sorted(cells)


def test_a_reimport_changes_nothing_and_the_imports_are_listed(reconciled: Any) -> None:
    _, api = reconciled
    before = _cells(api)
    again = api.post("/v1/billing/imports", params={"name": "costs.json"}, content=_costs_page())
    assert again.status_code == 201 and again.json()["replaced"] == again.json()["lines"] == 18
    assert _cells(api) == before
    listed = api.get("/v1/billing/imports").json()["imports"]
    assert [i["file_name"] for i in listed] == ["costs.json", "costs.json", "usage.json"]
    refused = api.post("/v1/billing/imports", params={"name": "bad.json"}, content=_costs_page().replace("usd", "eur"))
    assert refused.status_code == 422
    detail = refused.json()["detail"][0]
    assert detail["file"] == "bad.json" and detail["field"] == "amount.currency" and detail["value"] == "'eur'"
    assert detail["record"] == "page 1, bucket 1 (2025-06-01T00:00:00Z), result 1"
    assert len(api.get("/v1/billing/imports").json()["imports"]) == 3


def test_a_run_carries_its_billed_share_and_confidence(reconciled: Any) -> None:
    _, api = reconciled
    runs = api.get("/v1/reconciliation/runs", params={"day": "2025-06-03", "provider": "openai", "model": MINI,
                                                      "account": "search"}).json()["runs"]  # fmt: skip
    run = api.get(f"/v1/runs/{runs[0]['run_id']}").json()
    (share,) = run["billed"]
    assert share["billed_usd"] == "0.021000000000000" and share["calculated_usd"] == "0.036000000000000"
    assert share["confidence"] == "low" and share["model"] == MINI
    assert len(share["billing_lines"]) == 8  # the cell's 5 usage lines and 3 cost lines


def test_the_grafana_panel_shows_the_reconciliation(reconciled: Any) -> None:
    from tests.ecosystem.grafana_macros import TimeRange, expand

    server, api = reconciled
    dashboard = json.loads((Path(__file__).parents[3] / "grafana/dashboards/otelspend-pricing.json").read_text())
    (panel,) = [p for p in dashboard["panels"] if p["title"] == "Ledger vs bill by provider per day"]
    sql_text = expand(panel["targets"][0]["rawSql"], TimeRange(_day(0), _day(5) - 1), {"database": server.db})
    rows = {(r["day"], r["provider"]): r for r in server.store.dicts(sql_text)}
    api_rows = api.get("/v1/reconciliation", params={"from": "2025-06-01", "to": "2025-06-06",
                                                     "group_by": "day,provider"}).json()["rows"]  # fmt: skip
    assert set(rows) == {(r["day"], r["provider"]) for r in api_rows}
    for row in api_rows:
        panel_row = rows[(row["day"], row["provider"])]
        assert panel_row["billed_usd"] == float(row["billed_usd"])
        assert panel_row["calculated_usd"] == float(row["calculated_usd"])
        assert panel_row["variance_usd"] == pytest.approx(float(row["variance_usd"]), abs=1e-12)
        assert panel_row["confidence"] == row["confidence"]

"""``otelspend reprice``: after a rate-card change, stored span costs, run costs and rollup
sums change together and stay consistent (figures read back with plain SQL), through the
running server's API and offline, including runs still open and late spans afterwards."""

from __future__ import annotations

import re
import time
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from otelspend.cli import main
from otelspend.clickhouse.client import Store
from tests import canary
from tests.conftest import wait_for
from tests.otel import tracer_provider

from .helpers import figures, write_card

TOKEN = canary.OTHER_TOKEN
MINI_CALLS = [(12_000, 8_000, 400), (3_000, 0, 900), (50_000, 45_000, 1_200)]
"""(input incl. cached, cached, output) of the gpt-4o-mini calls of every run."""


def card(input_rate: str, cache_rate: str, output_rate: str) -> str:
    return (
        "entries:\n"
        "  - id: mini-negotiated\n"
        "    provider: openai\n"
        '    model: "gpt-4o-mini*"\n'
        f"    prices: {{input: {input_rate}, cache_read: {cache_rate}, output: {output_rate}}}\n"
    )


def mini_cost(rates: tuple[str, str, str], calls: list[tuple[int, int, int]] = MINI_CALLS) -> Decimal:
    """Cost of gpt-4o-mini calls under (input, cache_read, output) USD per MTok, by hand."""
    rate_in, rate_cache, rate_out = (Decimal(r) for r in rates)
    total = sum(((inp - cached) * rate_in + cached * rate_cache + out * rate_out) for inp, cached, out in calls)
    return Decimal(total) / 1_000_000


def mini(tracer: Any, inp: int, cached: int, out: int, parent: Any = None) -> None:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.usage.input_tokens": inp,
        "gen_ai.usage.cache_read.input_tokens": cached,
        "gen_ai.usage.output_tokens": out,
    }
    tracer.start_span("chat gpt-4o-mini", context=parent, kind=SpanKind.CLIENT, attributes=attributes).end()


def send_runs(server: Any, tenants: list[str]) -> None:
    """One run per tenant: the gpt-4o-mini calls, a Claude call (genai-prices), a tool."""
    with tracer_provider(server, "grpc", service="support-bot") as tp:
        tracer = tp.get_tracer("app")
        for tenant in tenants:
            with tracer.start_as_current_span("agent run", kind=SpanKind.SERVER) as root:
                root.set_attributes({"tenant.id": tenant, "workflow.type": "triage"})
                for inp, cached, out in MINI_CALLS:
                    mini(tracer, inp, cached, out)
                tracer.start_span("chat claude", kind=SpanKind.CLIENT, attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
                    "gen_ai.request.model": "claude-3-5-haiku-20241022",
                    "gen_ai.usage.input_tokens": 2_000, "gen_ai.usage.output_tokens": 150}).end()  # fmt: skip
                tracer.start_span("execute_tool search", attributes={
                    "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}).end()  # fmt: skip


def assert_consistent(found: dict[str, Decimal], expected: Decimal) -> None:
    """Every stored layer (spans, runs, run breakdown, both rollups) shows the same total."""
    assert found == dict.fromkeys(found, expected), found


def per_model(query: Any) -> dict[str, Decimal]:
    spans = dict(query("SELECT model, sum(cost_usd) FROM {db}.spans FINAL WHERE call_role = 'call' GROUP BY model"))
    rollup = dict(query("SELECT model, sum(cost_usd) FROM {db}.rollup_calls_hourly WHERE model != '' GROUP BY model"))
    assert spans == rollup, (spans, rollup)
    return spans


def reprice_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["reprice", *args])
    out, err = capsys.readouterr()
    return code, out, err


def window() -> list[str]:
    now = time.time()
    return ["--from", _iso(now - 3600), "--to", _iso(now + 3600)]


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def test_reprice_through_the_running_server(start_server, tmp_path, capsys):
    rates = tmp_path / "rates.yaml"
    write_card(rates, card("1.0", "0.1", "4.0"))
    server = start_server(rate_card=str(rates), api={"tokens": [TOKEN]}, runs={"root_wait_seconds": 60})
    send_runs(server, ["acme", "globex"])
    server.wait_idle()
    before = figures(server.scalar)
    claude = per_model(server.rows)["claude-3-5-haiku-20241022"]
    assert_consistent(before, claude + 2 * mini_cost(("1.0", "0.1", "4.0")))

    # Without the token the API refuses, and the CLI says so (it must not fall back offline).
    code, _, err = reprice_cli(capsys, *window(), "--api", server.api_url)
    assert code == 1 and "401" in err and "missing or invalid bearer token" in err

    write_card(rates, card("2.0", "0.2", "8.0"))  # not picked up yet: reprice reloads first
    code, out, _ = reprice_cli(capsys, *window(), "--api", server.api_url, "--token", TOKEN)
    assert code == 0, out

    assert "through the server" in out and re.search(r"spans changed +6 \(6 counted calls\)", out)
    assert re.search(r"runs re-emitted +2 ", out)
    after = figures(server.scalar)
    assert_consistent(after, claude + 2 * mini_cost(("2.0", "0.2", "8.0")))
    assert per_model(server.rows)["claude-3-5-haiku-20241022"] == claude
    new_source = server.app.pricing.current.card.source
    assert server.rows(
        "SELECT DISTINCT price_source, price_entry FROM {db}.spans FINAL WHERE model LIKE 'gpt-4o-mini%'"
    ) == [(new_source, "mini-negotiated")]
    assert server.scalar("SELECT min(version) FROM {db}.spans FINAL WHERE model LIKE 'gpt-4o-mini%'") > 1
    tenants = dict(server.rows("SELECT tenant, sum(cost_usd) FROM {db}.rollup_runs_hourly GROUP BY tenant"))
    assert tenants == dict.fromkeys(("acme", "globex"), (after["runs"]) / 2)

    # A late span for a re-priced run: the server diffs against what reprice stored, so
    # nothing is cancelled twice and every layer still agrees.
    run_id, root_id = server.rows("SELECT run_id, root_span_id FROM {db}.runs FINAL WHERE tenant = 'acme'")[0]
    parent = trace.set_span_in_context(NonRecordingSpan(
        SpanContext(int(run_id, 16), int(root_id, 16), is_remote=True, trace_flags=TraceFlags(1))))  # fmt: skip
    with tracer_provider(server, "http") as tp:
        mini(tp.get_tracer("late"), 10_000, 0, 100, parent=parent)
    late = mini_cost(("2.0", "0.2", "8.0"), [(10_000, 0, 100)])
    wait_for(lambda: server.scalar("SELECT count() FROM {db}.spans FINAL WHERE trace_id = {t:String}", t=run_id) == 7)
    server.wait_idle()
    assert_consistent(figures(server.scalar), after["runs"] + late)

    # A run still open in the server (root not ended) when re-priced: its spans in memory
    # are updated, and it is emitted at the new price when it closes.
    with tracer_provider(server, "grpc") as tp:
        tracer = tp.get_tracer("app")
        root = tracer.start_span("open run", kind=SpanKind.SERVER)
        mini(tracer, 100_000, 0, 0, parent=trace.set_span_in_context(root))
        trace_id = format(root.get_span_context().trace_id, "032x")
        wait_for(lambda: server.scalar("SELECT count() FROM {db}.spans WHERE trace_id = {t:String}", t=trace_id))
        assert server.app.pipeline.call(lambda: server.app.stitcher.open_count()) == 1
        write_card(rates, card("3.0", "0.3", "12.0"))
        code, out, _ = reprice_cli(capsys, *window(), "--api", server.api_url, "--token", TOKEN)
        assert code == 0 and "1 still open" in out
        root.end()
    server.wait_idle()
    open_run = server.scalar("SELECT cost_usd FROM {db}.runs FINAL WHERE run_id = {t:String}", t=trace_id)
    assert open_run == Decimal("0.3")  # 100k input tokens x $3 / MTok
    final = figures(server.scalar)
    assert_consistent(final, claude + 2 * mini_cost(("3.0", "0.3", "12.0")) + late * Decimal("1.5") + open_run)


def test_reprice_offline_dry_run_and_invalid_card(start_server, tmp_path, chdb_path, capsys):
    rates = tmp_path / "rates.yaml"
    write_card(rates, card("1.0", "0.1", "4.0"))
    database = f"t_{uuid.uuid4().hex[:12]}"
    server = start_server(database=database, rate_card=str(rates), data_dir=tmp_path / "data")
    send_runs(server, ["acme", "globex", "initech"])
    server.wait_idle()
    claude = per_model(server.rows)["claude-3-5-haiku-20241022"]
    before = figures(server.scalar)
    assert_consistent(before, claude + 3 * mini_cost(("1.0", "0.1", "4.0")))

    # Bad windows are refused before anything runs.
    url = f"{server.api_url}/v1/admin/reprice"
    for body in ({"from": "1900-01-01", "to": "2025-01-01"}, {"from": "2025-02-01", "to": "2025-01-01"},
                 {"from": "2025-01-01", "to": "2025-02-01", "dry": True}, {"to": "2025-02-01"}):  # fmt: skip
        assert httpx.post(url, json=body).status_code == 422, body

    # An invalid card on disk: the server keeps the old one and refuses to re-price with it.
    write_card(rates, "entries:\n  - id: broken\n    model: gpt-4o-mini\n    prices: {input: -1, output: 1}\n")
    code, _, err = reprice_cli(capsys, *window(), "--api", server.api_url, "--token", canary.API_TOKEN)
    assert code == 1 and "409" in err and "entry 1 (id 'broken'), prices.input = -1" in err
    assert figures(server.scalar) == before

    write_card(rates, card("0.5", "0.05", "2.0"))
    code, out, _ = reprice_cli(capsys, *window(), "--api", server.api_url, "--token", canary.API_TOKEN, "--dry-run")
    assert code == 0 and re.search(r"spans would change +9 \(9 counted calls\)", out) and "nothing was written" in out
    assert figures(server.scalar) == before
    api_url = server.api_url
    server.app.stop()

    # Offline: nothing listens at the API address any more, so the CLI opens the store itself.
    config = tmp_path / "otelspend.yaml"
    config.write_text(yaml.safe_dump({
        "clickhouse": {"dsn": f"chdb://{chdb_path}", "database": database},
        "data_dir": str(tmp_path / "data"), "node_id": "test-node", "rate_card": str(rates)}))  # fmt: skip
    code, out, err = reprice_cli(capsys, *window(), "--api", api_url, "--config", str(config))
    assert code == 0, err
    assert "re-pricing offline" in err and f"database {database}" in out and re.search(r"runs re-emitted +3 ", out)
    store = Store(f"chdb://{chdb_path}", database)
    try:

        def query(sql: str, **params: Any) -> list[tuple[Any, ...]]:
            return store.rows(sql.replace("{db}", database), params)

        assert_consistent(figures(lambda sql: query(sql)[0][0]), claude + 3 * mini_cost(("0.5", "0.05", "2.0")))
        assert per_model(query)["claude-3-5-haiku-20241022"] == claude
        # Re-pricing again with the same card changes nothing and re-emits nothing.
        code, out, _ = reprice_cli(capsys, *window(), "--offline", "--config", str(config))
        assert code == 0 and re.search(r"spans changed +0 ", out) and re.search(r"runs affected +0\n", out)
    finally:
        store.close()


def test_reprice_window_must_not_be_empty(capsys):
    code, _, err = reprice_cli(capsys, "--from", "2025-02-01", "--to", "2025-01-01", "--offline")
    assert code == 2 and "--to must be after --from" in err

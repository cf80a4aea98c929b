"""Budgets end to end: created over the API, fed by runs sent through the OTel SDK, alerting a
real webhook exactly when a threshold is crossed (not a femto-dollar before), answering the
check endpoint, surviving a restart, refusing bad input by field."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from otelspend.money import femto_to_usd, usd_to_femto
from tests.controls.conftest import api, chat, run_trace
from tests.otel import tracer_provider

ATTRIBUTES = {"workflow.type": "support_triage", "tenant.id": "acme"}


def send_run(server: Any) -> str:
    with tracer_provider(server, "http", service="support-bot") as provider:
        run_id, _ = run_trace(provider, lambda tracer: chat(tracer, "gpt-4o-mini", tokens=(12_000, 800)), **ATTRIBUTES)
    server.wait_idle()
    return run_id


def budget_alerts(hook: Any, budget_id: str) -> list[tuple[str, float]]:
    return sorted(
        (e["type"], e["details"]["share"])
        for e in hook.events()
        if e["type"].startswith("budget.") and e["details"]["budget_id"] == budget_id
    )


def test_a_budget_alerts_exactly_when_its_threshold_is_crossed(controlled, hook):
    server = controlled()
    first = send_run(server)
    cost = server.scalar("SELECT cost_usd FROM {db}.runs FINAL WHERE run_id = {r:String}", r=first)
    assert cost > 0
    femto = usd_to_femto(cost)
    exact = str(femto_to_usd(3 * femto))  # three such runs spend it exactly
    one_femto_more = str(femto_to_usd(3 * femto + 1))
    with api(server) as client:
        for budget_id, amount in (("exact", exact), ("one-femto-more", one_femto_more)):
            # forecast off: the pace has its own tests (test_spend); these budgets are about crossings
            created = client.post("/v1/budgets", json={"id": budget_id, "filter": {"tenant": "acme"}, "period": "day",
                                                       "amount_usd": amount, "thresholds": [0.5, 1.0],
                                                       "forecast": False})  # fmt: skip
            assert created.status_code == 201, created.text
            body = created.json()
            # figures read from the store: the first run, spent before the budget existed
            assert (body["status"], body["spent"], body["runs"]) == ("ok", str(femto_to_usd(femto)), 1)
        tokens = client.post("/v1/budgets", json={"id": "tokens", "period": "week", "amount_tokens": 25_600,
                                                  "thresholds": [1], "action": "warn", "forecast": False})  # fmt: skip
        assert tokens.status_code == 201 and tokens.json()["spent"] == "12800"

        send_run(server)  # 2/3 of the amount: half crossed, not the whole
        hook.wait_for(lambda _: len(budget_alerts(hook, "exact")) == 1, 10)
        assert budget_alerts(hook, "exact") == [("budget.threshold_crossed", 0.5)]
        assert budget_alerts(hook, "tokens") == [("budget.threshold_crossed", 1.0)]  # 25,600 tokens: exactly spent
        state = client.get("/v1/budgets/exact").json()
        assert state["spent"] == str(femto_to_usd(2 * femto)) and state["status"] == "warning"
        assert Decimal(state["remaining"]) == femto_to_usd(femto)

        send_run(server)  # exactly the amount
        hook.wait_for(lambda _: len(budget_alerts(hook, "exact")) == 2, 10)
        (half, whole) = [e for e in hook.events() if e["type"] == "budget.threshold_crossed" and
                         e["details"]["budget_id"] == "exact"]  # fmt: skip
        assert whole["details"]["share"] == 1.0 and whole["severity"] == "critical"
        assert whole["observed"] == whole["threshold"] == {"value": exact, "unit": "USD"}
        assert half["threshold"]["value"] == str(femto_to_usd(-(-3 * femto // 2)))
        server.wait_idle()
        assert budget_alerts(hook, "one-femto-more") == [("budget.threshold_crossed", 0.5)]  # one femto short
        assert client.get("/v1/budgets/exact").json()["status"] == "exceeded"

        check = client.get("/v1/controls/check", params={"tenant": "acme"}).json()
        actions = {r.get("budget"): r["action"] for r in check["reasons"]}
        assert check["action"] == "deny" and actions["exact"] == "deny" and actions["one-femto-more"] == "warn"
        assert client.get("/v1/controls/check", params={"tenant": "beta"}).json()["action"] == "warn"  # tokens: all
        listed = client.get("/v1/budgets").json()["budgets"]
        assert [b["id"] for b in listed] == ["exact", "one-femto-more", "tokens"]

        # A change takes effect at once (and is loaded from the store); a deletion resolves its alerts.
        changed = client.put("/v1/budgets/exact", json={"filter": {"tenant": "acme"}, "period": "day",
                                                       "amount_usd": "1000", "thresholds": [0.5, 1.0]})  # fmt: skip
        assert changed.status_code == 200 and changed.json()["status"] == "ok"
        assert client.delete("/v1/budgets/tokens").status_code == 204
        assert client.get("/v1/budgets/tokens").status_code == 404
        hook.wait_for(lambda events: [e for e in events if e["type"] == "budget.threshold_crossed.resolved"
                                      and e["details"]["budget_id"] == "tokens"], 10)  # fmt: skip
        resolved = [e for e in hook.events() if e["type"] == "budget.threshold_crossed.resolved"]
        reasons = {(e["details"]["budget_id"], e["details"]["resolution"]) for e in resolved}
        assert ("tokens", "budget deleted") in reasons
        hook.wait_for(lambda events: [e for e in events if e["type"] == "budget.threshold_crossed.resolved"
                                      and e["details"]["budget_id"] == "exact"], 10)  # fmt: skip
        resolved = [e for e in hook.events() if e["type"] == "budget.threshold_crossed.resolved"]
        assert {(e["details"]["budget_id"], e["details"]["resolution"]) for e in resolved} == {
            ("tokens", "budget deleted"), ("exact", "budget changed"),
        }  # fmt: skip


def test_api_budgets_survive_a_restart(start_server, hook, tmp_path):
    alerts = {"webhooks": [{"name": "ops", "url": hook.url}]}
    server = start_server(data_dir=tmp_path / "data", alerts=alerts)
    with api(server) as client:
        assert client.post("/v1/budgets", json={"id": "kept", "period": "month", "amount_usd": "5"}).status_code == 201
    database = server.db
    server.app.stop()
    again = start_server(database=database, data_dir=tmp_path / "data", alerts=alerts)
    with api(again) as client:
        kept = client.get("/v1/budgets/kept")
        assert kept.status_code == 200 and kept.json()["amount"] == "5.000000000000000"


def test_bad_budgets_are_refused_naming_field_value_and_expectation(controlled, tmp_path):
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text("budgets:\n  - {id: from-file, period: day, amount_usd: '10'}\n")
    server = controlled(budgets={"path": str(budgets)})
    with api(server) as client:
        bad = client.post("/v1/budgets", json={"id": "x", "period": "fortnight", "amount_usd": "1.5",
                                               "filter": {"tenat": "acme"}, "thresholds": [2, 20]})  # fmt: skip
        assert bad.status_code == 422
        problems = {tuple(item["loc"][1:]): item for item in bad.json()["detail"]}
        assert (
            problems[("period",)]["input"] == "fortnight" and "'day', 'week' or 'month'" in problems[("period",)]["msg"]
        )
        assert "unknown dimension tenat" in problems[("filter",)]["msg"]
        assert "thresholds.1 = 20: Input should be less than or equal to 10" in problems[("thresholds", "1")]["msg"]
        assert client.post("/v1/budgets", json={"id": "x", "period": "day"}).status_code == 422
        assert client.post("/v1/budgets", content=b"{not json").status_code == 422
        assert (
            client.post("/v1/budgets", json={"id": "from-file", "period": "day", "amount_usd": "1"}).status_code == 409
        )
        assert client.put("/v1/budgets/from-file", json={"period": "day", "amount_usd": "1"}).status_code == 409
        assert client.delete("/v1/budgets/from-file").status_code == 409
        assert client.put("/v1/budgets/nope", json={"period": "day", "amount_usd": "1"}).status_code == 404
        mismatch = client.put("/v1/budgets/from-file", json={"id": "other", "period": "day", "amount_usd": "1"})
        assert mismatch.status_code == 422 and "the id in the path" in mismatch.text
        assert client.post("/v1/budgets", content=b"x" * 70_000).status_code == 413
        assert client.get("/v1/budgets/from-file").json()["source"] == f"file:{budgets}"
        # An invalid edit of the file keeps the previous budgets in force, and says why.
        budgets.write_text("budgets:\n  - {id: from-file, period: fortnight, amount_usd: '10'}\n")
        import os
        import time

        os.utime(budgets, (time.time() + 5, time.time() + 5))
        deadline = time.monotonic() + 10
        while client.get("/v1/controls/status").json()["budgets"]["last_error"] is None:
            assert time.monotonic() < deadline, "the reload error is reported"
            time.sleep(0.1)
        status = client.get("/v1/controls/status").json()["budgets"]
        assert "budget 1 (id 'from-file'), period = 'fortnight'" in status["last_error"]
        assert client.get("/v1/budgets/from-file").json()["definition"]["period"] == "day"

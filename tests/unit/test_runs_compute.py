"""compute_run: a pure function of a trace's spans (no server)."""

from __future__ import annotations

from itertools import combinations

from otelspend.enrich.runs import RunOptions, compute_run, payload_band
from otelspend.record import CALL_DIMENSIONS, LITE_FIELDS, ApiOutcome, L

DEFAULTS = {
    "trace_id": "t1",
    "parent_span_id": "",
    "name": "span",
    "start_time": 1_000_000_000,
    "end_time": 1_100_000_000,
    "duration_ns": 100_000_000,
    "status_code": "UNSET",
    "status_message": "",
    "service_name": "svc",
    "span_class": "other",
    "resend_count": 0,
    "retry_count": 0,
    "payload_bytes": 0,
    "version": 1,
    "resource_id": 0,
    "attributes": ((), ()),
    "call_role": "",
}


def lite(span_id: str, parent: str = "", **fields) -> tuple:
    values = {name: DEFAULTS.get(name, "" if name not in _NULLABLE else None) for name in LITE_FIELDS}
    values.update(span_id=span_id, parent_span_id=parent, **fields)
    return tuple(values[name] for name in LITE_FIELDS)


_NULLABLE = {
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens",
    "reported_cost_usd", "outcome_score", "cost_usd",
}  # fmt: skip


def call(span_id: str, parent: str, model: str = "gpt-4o", tokens: int = 100, cost: int | None = 1000, **fields):
    return lite(
        span_id,
        parent,
        span_class="llm",
        operation="chat",
        provider="openai",
        model=model,
        input_tokens=tokens,
        output_tokens=10,
        cost_usd=cost,
        **fields,
    )


def test_root_wins_attribution_and_others_fill_gaps():
    result = compute_run(
        [
            lite("root", tenant="acme", workflow_type="triage", start_time=0),
            call("c1", "root", tenant="other", feature="search", start_time=5),
            call("c2", "root", feature="billing", start_time=9),
        ]
    )
    run = result.run
    assert (run.tenant, run.workflow_type, run.feature) == ("acme", "triage", "search")
    assert (run.status, run.complete, run.llm_calls, run.cost_usd) == ("success", 1, 2, 2000)


def test_status_follows_the_root_and_a_rootless_run_is_unknown():
    assert compute_run([lite("r", status_code="ERROR")]).run.status == "error"
    assert compute_run([lite("r", status_code="OK")]).run.status == "success"
    rootless = compute_run([call("c", "missing")]).run
    assert (rootless.status, rootless.complete) == ("unknown", 0)


def test_cost_is_null_only_when_every_call_is_unpriced():
    all_unpriced = compute_run([lite("r"), call("c", "r", cost=None, unpriced_reason="unknown_model")]).run
    assert all_unpriced.cost_usd is None and all_unpriced.unpriced_calls == 1
    partly = compute_run([lite("r"), call("a", "r"), call("b", "r", cost=None, unpriced_reason="unknown_model")]).run
    assert (partly.cost_usd, partly.priced_calls, partly.unpriced_calls) == (1000, 1, 1)
    failed = compute_run(
        [lite("r"), call("f", "r", tokens=None, cost=None, unpriced_reason="no_usage", status_code="ERROR")]
    ).run
    assert (failed.unpriced_calls, failed.cost_usd, failed.errors) == (
        0,
        0,
        1,
    )  # nothing billed, nothing missing


def test_breakdown_masks_count_each_run_once_per_grouping():
    result = compute_run(
        [
            lite("root"),
            lite("agent", "root", span_class="agent", agent_name="planner"),
            call("c1", "agent", model="gpt-4o", tokens=500),
            call("c2", "agent", model="gpt-4o", tokens=50_000),
            call("c3", "root", model="gpt-4o-mini", tokens=10),
            lite("t1", "agent", span_class="tool", tool_name="search", operation="execute_tool"),
        ]
    )
    rows = result.calls
    assert len(rows) == 4  # (gpt-4o, <1k), (gpt-4o, 16k-64k), (gpt-4o-mini, <1k), tool row
    for size in range(len(CALL_DIMENSIONS) + 1):
        for dims in combinations(range(len(CALL_DIMENSIONS)), size):
            subset = sum(1 << d for d in dims)
            projections = {tuple(getattr(row, CALL_DIMENSIONS[d]) for d in dims) for row in rows}
            flagged = [row for row in rows if row.run_mask >> subset & 1]
            assert len(flagged) == len(projections), (dims, flagged)
    by_model = {}
    for row in rows:
        by_model.setdefault(row.model, []).append(row)
    assert {row.agent for row in by_model["gpt-4o"]} == {"planner"}
    assert by_model["gpt-4o-mini"][0].agent == ""  # called outside the agent
    assert sum(row.calls for row in rows) == 3 and sum(row.tool_calls for row in rows) == 1
    assert sorted(row.payload_band for row in by_model["gpt-4o"]) == ["16k-64k", "<1k"]


def test_a_run_without_calls_still_has_one_breakdown_row():
    rows = compute_run([lite("root")]).calls
    assert len(rows) == 1 and rows[0].run_mask == 2**64 - 1 and rows[0].calls == 0


def test_latest_outcome_wins_between_spans_and_api():
    spans = [lite("root", outcome="edited", outcome_time=100), call("c", "root")]
    assert compute_run(spans).run.outcome == "edited"
    later = compute_run(spans, [ApiOutcome("accepted", 1.0, "ok", 200)]).run
    earlier = compute_run(spans, [ApiOutcome("accepted", 1.0, "ok", 50)]).run
    assert (later.outcome, later.outcome_source) == ("accepted", "api")
    assert earlier.outcome == "edited"


def test_ownership_hook_sees_resource_and_root_attributes():
    seen = {}

    def rules(context):
        seen.update(context)
        return {
            **{
                k: context.get(k, "")
                for k in ("team", "cost_center", "product", "owner", "feature", "tenant", "customer")
            },
            "team": "search",
        }

    root = lite("root", attributes=(["k8s.namespace.name"], ["search-prod"]), resource_id=7)
    run = compute_run(
        [root], options=RunOptions(ownership=rules, resource_attributes=lambda rid: {"cloud.region": f"r{rid}"})
    ).run
    assert run.team == "search"
    assert (seen["k8s.namespace.name"], seen["cloud.region"], seen["service.name"]) == ("search-prod", "r7", "svc")


def test_payload_bands():
    assert [payload_band(n) for n in (None, 0, 999, 1000, 70_000, 500_000)] == [
        "none", "<1k", "<1k", "1k-4k", "64k-128k", "128k+",
    ]  # fmt: skip


def test_duplicate_span_versions_keep_the_newest():
    old = call("c", "r", cost=5, version=1)
    new = call("c", "r", cost=9, version=2)
    assert compute_run([lite("r"), new, old]).run.cost_usd == 9
    assert L.version >= 0


def test_a_failed_call_retried_against_a_dated_snapshot_counts_as_a_retry():
    run = compute_run(
        [
            lite("r"),
            call("f", "r", model="gpt-5", tokens=None, cost=None, unpriced_reason="no_usage", status_code="ERROR"),
            call("ok", "r", model="gpt-5-2025-08-07", start_time=2_000_000_000),
            call("other", "r", model="gpt-4o", start_time=3_000_000_000),
        ]
    ).run
    assert (run.retries, run.llm_calls, run.errors) == (1, 3, 1)


def test_per_attempt_http_errors_are_retries_not_run_errors():
    run = compute_run(
        [
            lite("r"),
            call("c", "r"),
            lite("a1", "c", span_class="http", http_method="POST", status_code="ERROR"),
            lite("a2", "c", span_class="http", http_method="POST", status_code="ERROR"),
            lite("a3", "c", span_class="http", http_method="POST"),
            lite("t", "r", span_class="tool", tool_name="search", status_code="ERROR"),
        ]
    )
    assert (run.run.retries, run.run.errors, run.run.tool_failures) == (2, 1, 1)
    assert sum(row.errors for row in run.calls) == run.run.errors

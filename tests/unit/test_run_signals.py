"""compute_run with charges, retrieval queries and GPU time: every cost counted once."""

from __future__ import annotations

from typing import Any

import pytest

from otelspend.enrich.runs import compute_run, initial_role
from tests.unit.test_runs_compute import call, lite


def charge(span_id: str, parent: str, kind: str, cost: int, **fields: Any) -> tuple[Any, ...]:
    fields.setdefault("span_class", "other")
    return lite(span_id, parent, cost_kind=kind, cost_usd=cost, **fields)


def test_nested_charges_of_one_kind_count_once_and_every_cost_is_counted_once() -> None:
    spans = [
        lite("root", span_class="workflow", operation="invoke_workflow"),
        call("llm", "root", cost=1000),
        # an OpenInference RETRIEVER span around the vector-DB client span, both priced
        charge("retriever", "root", "retrieval", 20, span_class="retrieval", operation="retrieval"),
        charge("pinecone", "retriever", "retrieval", 20, span_class="retrieval"),
        # a fee on a tool, and an HTTP request fee below it (another kind: counted too)
        charge("search", "root", "tool", 900, span_class="tool", operation="execute_tool", tool_name="web_search"),
        charge("ocr", "search", "request", 1500, span_class="http"),
    ]
    result = compute_run(spans)
    run = result.run
    assert run.cost_usd == 1000 + 20 + 900 + 1500
    assert (run.llm_calls, run.charges, run.retrieval_queries, run.tool_calls) == (1, 3, 1, 1)
    roles = {sid: result.roles.get(sid) for sid in ("llm", "retriever", "pinecone", "search", "ocr")}
    assert roles == {"llm": "call", "retriever": "charge", "pinecone": "view", "search": "charge", "ocr": "charge"}
    # breakdown: each counted cost on exactly one row, rows say what the money is
    by_kind: dict[str, int] = {}
    for row in result.calls:
        by_kind[row.cost_kind] = by_kind.get(row.cost_kind, 0) + row.cost_usd
    assert by_kind == {"model": 1000, "retrieval": 20, "tool": 900, "request": 1500}
    assert sum(row.cost_usd for row in result.calls) == run.cost_usd
    tool_row = next(row for row in result.calls if row.tool == "web_search")
    assert (tool_row.tool_calls, tool_row.cost_kind, tool_row.operation) == (1, "tool", "execute_tool")
    retrieval_row = next(row for row in result.calls if row.cost_kind == "retrieval")
    assert (retrieval_row.operation, retrieval_row.calls) == ("retrieval", 0)
    request_row = next(row for row in result.calls if row.cost_kind == "request")
    assert request_row.operation == "request"  # named by its kind: it has no operation of its own


def test_a_run_whose_model_calls_are_unpriced_still_carries_its_charges() -> None:
    spans = [lite("root"), call("llm", "root", cost=None), charge("q", "root", "retrieval", 7, span_class="retrieval")]
    run = compute_run(spans).run
    assert (run.cost_usd, run.unpriced_calls, run.charges) == (7, 1, 1)
    only_unpriced = compute_run([lite("root"), call("llm", "root", cost=None)]).run
    assert only_unpriced.cost_usd is None


def test_retrieval_queries_and_gpu_time_count_nested_reports_once() -> None:
    spans = [
        lite("root", gpu_count=2.0, duration_ns=4 * 10**9),  # 8 GPU-seconds of the server span
        lite("inner", "root", compute_seconds=3.0),  # nested: part of the 8
        lite("batch", "", trace_id="t1", compute_seconds=0.25),  # another root-level report
        lite("r1", "root", span_class="retrieval"),
        lite("r1child", "r1", span_class="retrieval"),
        lite("r2", "root", span_class="retrieval"),
    ]
    run = compute_run(spans).run
    assert run.retrieval_queries == 2
    assert run.gpu_us == 8_250_000


@pytest.mark.parametrize(
    ("span_class", "kind", "role"),
    [
        pytest.param("llm", "model", "call", id="model-call"),
        pytest.param("llm", "compute", "call", id="self-hosted-model-call"),
        pytest.param("tool", "", "tool", id="tool-without-fee"),
        pytest.param("tool", "tool", "charge", id="tool-with-fee"),
        pytest.param("retrieval", "retrieval", "charge", id="priced-retrieval"),
        pytest.param("other", "", "other", id="nothing"),
    ],
)
def test_initial_roles(span_class: str, kind: str, role: str) -> None:
    assert initial_role(span_class, kind) == role

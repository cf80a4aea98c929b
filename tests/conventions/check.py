"""Replay a run through a running otelspend and assert that every stored figure equals the
provider's ledger: calls, tokens by kind, cost and retries, in the run, its breakdown, the
counted spans and the hourly rollup; then send the same spans again and assert nothing
moved."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from tests.conventions import stored
from tests.conventions.capture import Capture, call_groups
from tests.conventions.ledger import Expected, Seen, Tokens
from tests.conventions.replay import export_spans, shift_to_now

COST_TOLERANCE_FEMTO = 10**6
"""1e-9 USD."""
REPORTED_COST_KEYS = ("gen_ai.usage.cost", "operation.cost", "llm.cost.total", "gen_ai.cost.total_cost")


def replay_and_check(server: Any, capture: Capture, seen: list[Seen]) -> Expected:
    """Send ``capture`` over OTLP/gRPC, check it, re-send it over OTLP/HTTP, check again."""
    shift = shift_to_now(capture.spans)
    seen = [replace(s, call=replace(s.call, at=s.call.at + timedelta(microseconds=shift // 1000))) for s in seen]
    expected = Expected.of(seen)
    trace_id = capture.trace_ids[0]

    # The run's trace only: LiteLLM exports its streamed calls as traces of their own, which
    # would be runs of their own under the same service (the rollup check is per service).
    spans = [s for s in capture.spans if s["trace_id"] in capture.trace_ids]
    export_spans(server, spans, capture.resource, shift, "grpc")
    server.wait_idle()
    first = check_stored(server, capture, seen, expected)

    export_spans(server, spans, capture.resource, shift, "http")
    server.wait_idle()
    again = check_stored(server, capture, seen, expected)
    assert again == first, "re-sent spans changed stored figures"
    assert server.scalar("SELECT sum(sign) FROM {db}.runs WHERE run_id = {t:String}", t=trace_id) == 1
    return expected


def check_stored(server: Any, capture: Capture, seen: list[Seen], expected: Expected) -> dict[str, Any]:
    trace_id = capture.trace_ids[0]
    run = stored.run_row(server, trace_id)
    figures = {
        "runs": stored.from_run(server, trace_id),
        "run_calls": stored.from_run_calls(server, trace_id),
        "spans": stored.from_spans(server, trace_id),
        "rollup_calls_hourly": stored.from_rollup(server, capture.service),
    }
    want_tokens = expected.tokens.by_kind()
    for where, got in figures.items():
        assert got.calls == expected.calls, f"{where}: calls {got.calls} != ledger {expected.calls}"
        assert got.tokens == want_tokens, f"{where}: tokens {got.tokens} != ledger {want_tokens}"
        assert abs(got.cost_femto - expected.cost_femto) <= COST_TOLERANCE_FEMTO, (
            f"{where}: cost {Decimal(got.cost_femto) / 10**15} != ledger {Decimal(expected.cost_femto) / 10**15}"
        )
        if got.retries is not None:
            assert got.retries == expected.retries, f"{where}: retries {got.retries} != {expected.retries}"
        if got.failed_calls is not None:
            assert got.failed_calls == expected.failed_calls, f"{where}: failed calls"

    _check_each_call(stored.counted_calls(server, trace_id), seen)
    _check_views(server, trace_id, run)
    assert run["unpriced_calls"] == expected.unpriced, (
        f"unpriced calls {run['unpriced_calls']} != {expected.unpriced} (successful calls reported without usage)"
    )
    reported = _reported_cost(capture)
    got_reported = None if run["reported_cost_usd"] is None else stored.femto(run["reported_cost_usd"])
    assert got_reported == reported, f"reported cost {got_reported} != what the library reported {reported}"
    return {**{k: v for k, v in figures.items()}, "roles": stored.roles(server, trace_id)}


def _check_each_call(calls: list[stored.StoredCall], seen: list[Seen]) -> None:
    """Each counted span is one ledger call: same tokens by kind, cost, model, failure."""

    def key(tokens: Tokens | None, failed: bool) -> tuple[Any, ...]:
        return (failed, (0, 0, 0, 0, 0) if tokens is None else stored.tokens_tuple(tokens))

    want = Counter(key(s.reported.tokens, s.call.failed) for s in seen)
    got = Counter((c.failed, c.tokens) for c in calls)
    assert got == want, f"counted calls differ from the ledger:\n stored {sorted(got)}\n ledger {sorted(want)}"
    by_key: dict[tuple[Any, ...], list[Seen]] = {}
    for item in seen:
        by_key.setdefault(key(item.reported.tokens, item.call.failed), []).append(item)
    for call in calls:
        candidates = by_key[(call.failed, call.tokens)]
        # The Agents SDK's failed response span names no model.
        named = call.model or not call.failed
        assert not named or any(_same_model(call.model, s.call.model) for s in candidates), (
            f"{call.model}: no such ledger call"
        )
        expected_costs = {
            None if s.visibility.unpriced_success(s.call) else s.reported.cost_femto() for s in candidates
        }
        if call.failed or expected_costs == {None}:  # failed, without usage, or no provider: nothing priced
            assert call.cost_femto is None and expected_costs == {None}
        else:
            assert call.cost_femto is not None
            assert any(abs(call.cost_femto - c) <= COST_TOLERANCE_FEMTO for c in expected_costs if c is not None)


def _same_model(stored_model: str, ledger_model: str) -> bool:
    # logfire reports a stream's response model as the request model (undated alias).
    return stored_model == ledger_model or ledger_model.startswith(stored_model + "-")


def _check_views(server: Any, trace_id: str, run: dict[str, Any]) -> None:
    """Every inference span not counted stays stored and queryable as a view of a call."""
    rows = server.rows(
        "SELECT call_role, count() FROM {db}.spans FINAL WHERE trace_id = {t:String} AND span_class = 'llm' "
        "GROUP BY call_role",
        t=trace_id,
    )
    roles = dict(rows)
    assert set(roles) <= {"call", "view"}, roles
    assert roles.get("view", 0) == run["duplicate_views"]


def _reported_cost(capture: Capture) -> int | None:
    """Sum over calls of the cost the library itself put on the call's spans (a 0 from a
    library that could not price is no report at all)."""
    total = None
    for group in call_groups(capture):
        for span in group:
            value = next((span["attributes"][k] for k in REPORTED_COST_KEYS if k in span["attributes"]), None)
            if value is None or (value == 0 and _has_usage(span)):
                continue
            total = (total or 0) + int(Decimal(repr(float(value))) * 10**15)
            break
    return total


def _has_usage(span: dict[str, Any]) -> bool:
    return any("usage" in key and "token" in key for key in span["attributes"])

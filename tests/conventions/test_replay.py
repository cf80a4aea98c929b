"""Every real instrumentation's calls land once, with the ledger's tokens and cost.

For each library: its captured run goes through the real OTLP path (official exporter ->
receiver -> normaliser -> pricing -> chDB -> stitcher -> runs and rollups) and the stored
calls, tokens by kind, cost and retries must equal the fake provider's ledger, projected
onto what the library reports (its gaps are exact shortfalls, each named in the README);
then the same spans are re-sent and nothing may move. The second test puts two libraries'
spans in one trace (see ``mixing.py`` for how and why).
"""

from __future__ import annotations

import pytest

from tests.conventions import stored
from tests.conventions.check import replay_and_check
from tests.conventions.ledger import logical_calls, seen_by
from tests.conventions.libraries import LIBRARIES, visible_calls
from tests.conventions.mixing import mix
from tests.conventions.replay import export_spans, shift_to_now

ALL = [pytest.param(name, id=name) for name in LIBRARIES]


@pytest.mark.parametrize("library", ALL)
def test_each_call_is_stored_once_with_the_ledgers_tokens_and_cost(shared_server, library):
    lib = LIBRARIES[library]
    capture = lib.capture()
    seen = seen_by(visible_calls(lib, capture), lib.visibility)
    expected = replay_and_check(shared_server, capture, seen)
    if lib.select is None:  # the scenario itself is what we think (the LiteLLM proxy's failures: unrecognisable)
        assert expected.calls >= 5 and (
            expected.failed_calls >= 1 or "openai.chat" in lib.visibility.unrecognisable_failures
        )


@pytest.mark.parametrize("library", ALL)
def test_two_libraries_reporting_the_same_calls_count_them_once(shared_server, library):
    mixed = mix(library)
    alone = LIBRARIES[library].capture()
    views_added = len(mixed.capture.spans) - sum(s["trace_id"] in alone.trace_ids for s in alone.spans)
    assert views_added > 0, f"{mixed.description}: the partner added no spans"
    replay_and_check(shared_server, mixed.capture, mixed.seen)


def test_litellm_streams_land_as_runs_of_their_own_without_cache_tokens(shared_server):
    # LiteLLM's callback gives each streamed call a root span in a trace of its own: each is
    # stored as a run with that one call, its cached tokens priced as uncached input.
    lib = LIBRARIES["litellm"]
    capture = lib.capture()
    streams = [c for c in logical_calls(capture.ledger, capture.runs) if c.stream]
    spans = [s for s in capture.spans if s["trace_id"] not in capture.trace_ids]
    traces = sorted(
        {s["trace_id"] for s in spans}, key=lambda t: min(s["start_unix_nano"] for s in spans if s["trace_id"] == t)
    )
    assert len(traces) == len(streams) == 2
    shift = shift_to_now(capture.spans)
    export_spans(shared_server, spans, {**capture.resource, "service.name": "rc-litellm-streams"}, shift, "grpc")
    shared_server.wait_idle()
    for trace_id, call in zip(traces, streams, strict=True):
        run = stored.run_row(shared_server, trace_id)
        want = lib.visibility.project(call).tokens
        assert want is not None and want.cache_read == 0 < call.tokens.cache_read
        assert (run["llm_calls"], run["input_tokens"], run["output_tokens"], run["cache_read_tokens"]) == (
            1,
            want.input,
            want.output,
            0,
        )


def test_the_litellm_proxy_shortfall_is_exactly_its_cache_tokens_and_failed_attempts():
    # Through the proxy every call has its own span in the application's trace, but cache
    # reads and writes are only in a Python-repr string, and a failed attempt's span is not a
    # call: the stored run is the ledger minus exactly these (README "Known gaps").
    lib = LIBRARIES["litellm-proxy"]
    capture = lib.capture()
    calls = logical_calls(capture.ledger, capture.runs)
    seen = seen_by(visible_calls(lib, capture), lib.visibility)
    assert (len(calls), sum(c.failed for c in calls), len(capture.ledger)) == (11, 1, 21)
    assert [s.call for s in seen] == [c for c in calls if not c.failed]
    billed = [c.tokens for c in calls if c.tokens is not None]
    assert sum(t.cache_read for t in billed) == 14_192 and sum(t.cache_write for t in billed) == 1_000
    assert sum(t.reasoning for t in billed) == 256
    reported = [s.reported.tokens for s in seen if s.reported.tokens is not None]
    assert sum(t.input for t in reported) == sum(t.input for t in billed) == 16_904
    assert all((t.cache_read, t.cache_write, t.reasoning) == (0, 0, 0) for t in reported)

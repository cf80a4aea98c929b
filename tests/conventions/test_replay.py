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

from tests.conventions.check import replay_and_check
from tests.conventions.ledger import seen_by
from tests.conventions.libraries import LIBRARIES, visible_calls
from tests.conventions.mixing import mix

ALL = [pytest.param(name, id=name) for name in LIBRARIES]


@pytest.mark.parametrize("library", ALL)
def test_each_call_is_stored_once_with_the_ledgers_tokens_and_cost(shared_server, library):
    lib = LIBRARIES[library]
    capture = lib.capture()
    seen = seen_by(visible_calls(lib, capture), lib.visibility)
    expected = replay_and_check(shared_server, capture, seen)
    if lib.select is None:
        assert expected.calls >= 5 and expected.failed_calls >= 1  # the scenario itself is what we think


@pytest.mark.parametrize("library", ALL)
def test_two_libraries_reporting_the_same_calls_count_them_once(shared_server, library):
    mixed = mix(library)
    alone = LIBRARIES[library].capture()
    views_added = len(mixed.capture.spans) - sum(s["trace_id"] in alone.trace_ids for s in alone.spans)
    assert views_added > 0, f"{mixed.description}: the partner added no spans"
    replay_and_check(shared_server, mixed.capture, mixed.seen)

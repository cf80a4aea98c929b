from __future__ import annotations

from otelspend.enrich.stitcher import UNKNOWN, Stitcher
from otelspend.record import LITE_FIELDS, L


def lite(trace: str, span: str, parent: str = "") -> tuple:
    values = [None] * len(LITE_FIELDS)
    values[L.trace_id], values[L.span_id], values[L.parent_span_id] = trace, span, parent
    return tuple(values)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_rooted_runs_wait_to_settle_and_rootless_runs_wait_longer():
    clock = Clock()
    stitcher = Stitcher(settle_seconds=3, root_wait_seconds=60, clock=clock)
    stitcher.add([lite("a", "1", "0"), lite("a", "0")], ingested_ns=5)
    stitcher.add([lite("b", "1", "x")], ingested_ns=7)
    clock.now = 2
    assert stitcher.due() == []
    clock.now = 3
    assert [run.run_id for run in stitcher.due()] == ["a"]
    clock.now = 59
    assert stitcher.due() == []
    clock.now = 61
    (late,) = stitcher.due()
    assert late.run_id == "b"
    assert stitcher.low_water_mark_ns() == 5  # handed out, not yet reported stored
    for run in stitcher.emitting.copy().values():
        stitcher.emitted(run, previous=None)
    assert stitcher.low_water_mark_ns() is None


def test_activity_postpones_closing():
    clock = Clock()
    stitcher = Stitcher(settle_seconds=3, clock=clock)
    stitcher.add([lite("a", "0")], ingested_ns=1)
    clock.now = 2
    stitcher.add([lite("a", "1", "0")], ingested_ns=2)
    clock.now = 4
    assert stitcher.due() == []
    clock.now = 5
    assert len(stitcher.due()) == 1


def test_open_runs_are_capped_oldest_first_and_counted():
    stitcher = Stitcher(max_open_runs=10, clock=Clock())
    for i in range(15):
        stitcher.add([lite(f"t{i}", "1", "p")], ingested_ns=i)
    assert stitcher.open_count() == 15  # 10 open + 5 forced out, emitted at the next due()
    forced = stitcher.due()
    assert [run.run_id for run in forced] == [f"t{i}" for i in range(5)]
    assert stitcher.stats.evicted_open == 5 and stitcher.open_count() == 10


def test_duplicates_are_dropped_and_emitted_runs_reopen_for_late_spans():
    clock = Clock()
    stitcher = Stitcher(settle_seconds=0, clock=clock)
    stitcher.add([lite("a", "0"), lite("a", "0")], ingested_ns=1)
    assert stitcher.stats.duplicates_dropped == 1
    (run,) = stitcher.due()
    assert run.previous is UNKNOWN  # emission must ask the store
    stitcher.emitted(run, previous="stored-rows")
    assert stitcher.is_known("a", "0") and not stitcher.is_known("a", "9")
    stitcher.add([lite("a", "9", "0")], ingested_ns=9)
    (reopened,) = stitcher.due()
    assert reopened.previous == "stored-rows" and reopened.partial and set(reopened.spans) == {"9"}
    assert stitcher.stats.reopened == 1


def test_low_water_mark_is_the_oldest_unemitted_ingest():
    stitcher = Stitcher(clock=Clock())
    stitcher.add([lite("a", "1", "p")], ingested_ns=100)
    stitcher.add([lite("b", "1", "p")], ingested_ns=50)
    stitcher.add([lite("a", "2", "p")], ingested_ns=200)
    assert stitcher.low_water_mark_ns() == 50


def test_closed_cache_is_bounded():
    stitcher = Stitcher(settle_seconds=0, closed_cache_runs=3, clock=Clock())
    for i in range(5):
        stitcher.add([lite(f"t{i}", "0")], ingested_ns=i)
    for run in stitcher.due():
        stitcher.emitted(run, previous=None)
    assert list(stitcher.closed) == ["t2", "t3", "t4"] and stitcher.stats.evicted_closed == 2


def test_a_straggler_for_a_run_being_written_reopens_as_rooted_and_reads_the_store():
    clock = Clock()
    stitcher = Stitcher(settle_seconds=1, root_wait_seconds=300, clock=clock)
    stitcher.add([lite("a", "1", "0"), lite("a", "0")], ingested_ns=1)
    clock.now = 1
    (writing,) = stitcher.due()
    assert stitcher.emitting == {"a": writing} and stitcher.low_water_mark_ns() == 1
    stitcher.add([lite("a", "2", "0")], ingested_ns=5)  # arrives while "a" is being written
    assert stitcher.is_known("a", "0")
    clock.now = 2
    (straggler,) = stitcher.due()
    assert straggler is not writing and straggler.previous is UNKNOWN and straggler.partial
    stitcher.emitted(writing, previous="rows")  # the earlier write finishes
    assert stitcher.emitting == {"a": straggler}
    stitcher.emitted(straggler, previous="rows v2")
    assert stitcher.emitting == {} and stitcher.low_water_mark_ns() is None

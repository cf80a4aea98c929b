"""The ingest benchmark runs end to end (small) and records a verified result."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from bench.server import REPO


def test_ingest_benchmark_verifies_and_records(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    run = subprocess.run(
        [sys.executable, "-m", "bench.ingest", "--spans", "2000", "--batch", "200", "--settle-seconds", "0.3",
         "--results", str(results), "--note", "suite smoke run"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    text = results.read_text()
    assert text.startswith("# Ingest benchmark results")
    assert "| spans/s end to end |" in text and "| decode floor, same requests |" in text
    assert "| ground truth | exact:" in text
    assert "suite smoke run" in text


def test_ground_truth_covers_exactly_the_acknowledged_requests() -> None:
    from bench.traces import ROOT, SPAN_BITS, generate
    from bench.truth import expected

    workload = generate(seed=3, spans=1_500, batch_spans=50)
    acked = [n % 3 != 0 for n in range(len(workload.requests))]
    truth = expected(workload, acked)
    refs = [ref for request, ok in zip(workload.requests, acked, strict=True) if ok for ref in request.refs]
    traces = {ref >> SPAN_BITS for ref in refs}
    mask = (1 << SPAN_BITS) - 1
    rooted = {ref >> SPAN_BITS for ref in refs if workload.traces[ref >> SPAN_BITS].spans[ref & mask][0] == ROOT}
    assert truth["spans"] == len(refs) < workload.spans
    assert truth["runs"] == len(traces) and truth["complete_runs"] == len(rooted)
    assert truth["runs_by_workflow_type"].get("", 0) == len(traces - rooted)
    everything = expected(workload)
    assert everything["spans"] == workload.spans and everything["runs"] == len(workload.traces)
    assert Decimal(truth["cost_usd"]) < Decimal(everything["cost_usd"])
    assert truth["llm_calls"] < everything["llm_calls"]

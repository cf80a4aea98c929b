"""Weeks of seasonal traffic written straight through the store writer path (runs and run
breakdown rows, as emission writes them), so the materialized views fill the hourly rollups
exactly as live ingest would, without sending weeks of OTLP.

Runs are copies of a few templates computed by the real ``compute_run`` from spans priced
with the real rate card; each copy gets its own id, start time and attribution. Traffic has
a weekly shape: weekday working hours three times the night level, weekends half of the
weekday level, with +-20 % noise per hour.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from otelspend.clickhouse.client import Store
from otelspend.clickhouse.runstore import RunStore
from otelspend.enrich.pricing import PriceBook
from otelspend.enrich.runs import CALL_FIELD_NAMES, RUN_FIELD_NAMES, call_row_of, compute_run, run_row_of
from tests.controls.spans import lite

HOUR_NS = 3600 * 10**9
TENANTS = {"tenant-a": 12, "tenant-b": 6, "tenant-c": 4, "tenant-d": 2}
"""Runs per night hour on weekdays (working hours x3, weekends x0.5)."""
WORKFLOWS = {"support_triage": ("anthropic", "claude-haiku-4-5"), "research": ("openai", "gpt-4o")}
FEATURES = {"support_triage": "inbox", "research": "deep-research"}


@dataclass(frozen=True)
class _Template:
    run: dict[str, Any]
    calls: list[dict[str, Any]]


def _templates(
    workflow: str, rng: random.Random, book: PriceBook, at_ns: int, input_factor: int = 1
) -> list[_Template]:
    provider, model = WORKFLOWS[workflow]
    quote = book.quote(provider, model, model, at_ns).compiled
    made = []
    for _ in range(8):
        root = lite(trace_id="0" * 32, duration_ms=20_000, status_code="OK")
        spans = [root]
        for index in range(rng.choice((1, 2))):
            usage = (rng.randint(18_000, 26_000) * input_factor, 0, 0, 0, rng.randint(600, 1_000), 0)
            call = lite(
                trace_id="0" * 32, parent_span_id=root[1], span_class="llm", operation="chat", provider=provider,
                model=model, input_tokens=usage[0], output_tokens=usage[4], cache_read_tokens=0,
                cache_write_tokens=0, reasoning_tokens=0, cost_usd=sum(quote.cost(usage)), call_role="call",
                start_ms=100 + index * 5_000, duration_ms=4_000,
            )  # fmt: skip
            spans.append(call)
        result = compute_run(spans)
        made.append(_Template(result.run, result.calls))
    return made


def hourly_runs(tenant_level: int, hour_ns: int, rng: random.Random) -> int:
    """Runs of one tenant in one hour: the weekly shape with +-20 % noise."""
    hour = hour_ns // HOUR_NS
    weekday = (hour // 24 + 3) % 7 < 5  # 1970-01-01 was a Thursday
    level = tenant_level * (3 if 9 <= hour % 24 < 18 else 1) * (1 if weekday else 0.5)
    return max(0, round(level * rng.uniform(0.8, 1.2)))


def seed(
    store: Store,
    start_ns: int,
    end_ns: int,
    *,
    seed_value: int = 15,
    only_tenant: str | None = None,
    extra_factor: int = 0,
    level: int = 1,
    inflated: str | None = None,
    input_factor: int = 4,
) -> int:
    """Write the traffic of ``[start_ns, end_ns)`` (whole hours); returns the runs written.

    With ``only_tenant`` and ``extra_factor``, write ``extra_factor`` times that tenant's usual
    runs instead (added on top of the traffic already there: 4 makes it 5x). ``level``
    multiplies every tenant's traffic; the calls of the ``inflated`` workflow type send
    ``input_factor`` times their usual input tokens (a prompt that grew)."""
    rng = random.Random(seed_value)
    book = PriceBook()
    templates = {
        workflow: _templates(workflow, rng, book, start_ns, input_factor if workflow == inflated else 1)
        for workflow in WORKFLOWS
    }
    runs: list[list[Any]] = []
    calls: list[list[Any]] = []
    written = 0
    writer = RunStore(store)
    levels = {tenant: runs_per_hour * level for tenant, runs_per_hour in TENANTS.items()}
    for run, breakdown in _runs(templates, levels, (start_ns, end_ns), rng, only_tenant, extra_factor):
        runs.append(run)
        calls.extend(breakdown)
        if len(runs) >= 5_000:
            writer.insert_runs(runs)
            writer.insert_run_calls(calls)
            written += len(runs)
            runs, calls = [], []
    if runs:
        writer.insert_runs(runs)
        writer.insert_run_calls(calls)
        written += len(runs)
    return written


_RUN_INDEX = {name: i for i, name in enumerate(RUN_FIELD_NAMES)}
_CALL_INDEX = {name: i for i, name in enumerate(CALL_FIELD_NAMES)}


def _runs(
    templates: dict[str, list[_Template]],
    levels: dict[str, int],
    span: tuple[int, int],
    rng: random.Random,
    only_tenant: str | None,
    extra_factor: int,
) -> Iterator[tuple[list[Any], list[list[Any]]]]:
    for hour_ns in range(*span, HOUR_NS):
        for tenant, level in levels.items():
            count = hourly_runs(level, hour_ns, rng)
            if only_tenant is not None:
                if tenant != only_tenant:
                    continue
                count *= extra_factor
            for _ in range(count):
                workflow = "support_triage" if rng.random() < 0.7 else "research"
                template = rng.choice(templates[workflow])
                started = hour_ns + rng.randrange(HOUR_NS - 60 * 10**9)
                yield _stamp(template, started, tenant, workflow, rng)


def _stamp(
    template: _Template, started: int, tenant: str, workflow: str, rng: random.Random
) -> tuple[list[Any], list[list[Any]]]:
    run_id = f"{rng.getrandbits(128):032x}"
    fields = {"run_id": run_id, "tenant": tenant, "workflow_type": workflow, "feature": FEATURES[workflow],
              "customer": f"cust-{tenant}", "environment": "production", "start_time": started}  # fmt: skip
    run = list(run_row_of(template.run))
    for name, value in {**fields, "end_time": started + 20 * 10**9, "version": 1, "sign": 1,
                        "written_at": started, "node": "seed"}.items():  # fmt: skip
        run[_RUN_INDEX[name]] = value
    calls = []
    for call in template.calls:
        row = list(call_row_of(call))
        for name, value in {**fields, "version": 1, "sign": 1, "written_at": started, "node": "seed"}.items():
            row[_CALL_INDEX[name]] = value
        calls.append(row)
    return run, calls

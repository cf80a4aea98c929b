"""What each dashboard page shows: plain data and charts for its template, no FastAPI.

Every figure comes from the read side's query functions, called in-process
(``otelspend.api.query.rollup`` / ``timeseries``, ``runs.list_runs`` / ``get_run``,
``outliers.outliers``, ``prices.unpriced``), so the dashboard and ``GET /v1/...`` agree by
construction. A page covers a ``Period``: the last 24 hours, 7 days or 30 days, ending at
the end of the current UTC hour, so its window is whole rollup hours and stays the same
for an hour.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlencode

from otelspend.api import display, svg
from otelspend.api.errors import QueryError
from otelspend.api.outliers import OutliersRequest, outliers
from otelspend.api.prices import unpriced
from otelspend.api.query import rollup, timeseries
from otelspend.api.requests import RollupRequest, TimeseriesRequest
from otelspend.api.runs import RUN_ORDER_COLUMNS, RunsRequest, get_run, list_runs
from otelspend.api.vocabulary import Filters
from otelspend.api.window import DAY_NS, HOUR_NS, Window
from otelspend.clickhouse.client import Store

Bucket = Literal["hour", "day"]


@dataclass(frozen=True)
class Range:
    """A dashboard period choice: its key, label, length and the bucket its charts use."""

    key: str
    label: str
    span_ns: int
    bucket: Bucket


RANGES: dict[str, Range] = {
    r.key: r
    for r in (
        Range("24h", "Last 24 hours", DAY_NS, "hour"),
        Range("7d", "Last 7 days", 7 * DAY_NS, "hour"),
        Range("30d", "Last 30 days", 30 * DAY_NS, "day"),
    )
}
DEFAULT_RANGE = "7d"
TOP_N = 8
RUNS_PAGE = 50
TABLE_ROWS = 100
"""Rows of a page's table; with more groups the table says how many it left out (``Cut``)."""


@dataclass(frozen=True)
class Period:
    """The window a page covers and its previous window of the same length."""

    range: Range
    window: Window
    previous: Window

    @property
    def key(self) -> str:
        """The range's key (``24h``, ``7d``, ``30d``), for links."""
        return self.range.key

    @property
    def bucket(self) -> Bucket:
        """The chart bucket of this period (``hour`` or ``day``)."""
        return self.range.bucket


def period(key: str | None, now_ns: int) -> Period:
    """The period named ``key`` (``24h``, ``7d``, ``30d``; default 7d) ending at the end of the current hour."""
    chosen = RANGES.get(key or DEFAULT_RANGE)
    if chosen is None:
        raise QueryError("range", f"unknown range {key!r}", RANGES)
    end = -(-now_ns // HOUR_NS) * HOUR_NS
    if end == now_ns:  # exactly on the hour: still include the hour that starts now
        end += HOUR_NS
    window = Window(end - chosen.span_ns, end)
    return Period(chosen, window, Window(window.start_ns - chosen.span_ns, window.start_ns))


# -- query helpers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cut:
    """A table its row limit cut: how many groups it shows of how many, and what all of them
    add up to (``figures``: (kind ``usd`` or ``int``, value, label)), from the rollup's totals."""

    shown: int
    groups: int
    noun: str
    figures: list[tuple[str, Any, str]]
    unpriced_calls: int


_CUT_FIGURES = (
    ("cost_usd", "usd", "spend"),
    ("runs", "int", "runs"),
    ("calls", "int", "model calls"),
    ("tool_calls", "int", "tool executions"),
)


def _table(
    store: Store, request: RollupRequest, *, noun: str, nonempty: bool = False
) -> tuple[list[dict[str, Any]], Cut | None]:
    """``query.rollup`` rows, and a ``Cut`` when the request's limit (``TABLE_ROWS`` on every page)
    left groups out; ``nonempty`` drops groups with an empty dimension value (at call level a
    tool execution has no model and a model call no tool)."""
    result = rollup(store, request)
    rows: list[dict[str, Any]] = result["rows"]
    if nonempty:
        rows = [r for r in rows if all(r[d] for d in request.group_by)]
    if not result["truncated"]:
        return rows, None
    totals = result["totals"]
    figures = [(kind, totals[name], label) for name, kind, label in _CUT_FIGURES if name in totals]
    return rows, Cut(len(rows), result["total_groups"], noun, figures, totals.get("unpriced_calls") or 0)


def _rows(store: Store, request: RollupRequest, *, nonempty: bool = False) -> list[dict[str, Any]]:
    """``query.rollup`` rows of a ranking (top N: its limit is the point, not a cut);
    ``nonempty`` drops groups with an empty dimension value (at call level a tool execution has
    no model and a model call no tool)."""
    rows: list[dict[str, Any]] = rollup(store, request)["rows"]
    if nonempty:
        rows = [r for r in rows if all(r[d] for d in request.group_by)]
    return rows


def _totals(store: Store, window: Window, metrics: Sequence[str]) -> dict[str, Any]:
    rows = _rows(store, RollupRequest(window, (), tuple(metrics)))
    return rows[0] if rows else dict.fromkeys(metrics)


def _money(value: str | int | None) -> float:
    """A money string as a float, for chart geometry only (the page shows the exact string)."""
    return float(Decimal(value)) if value is not None else 0.0


def _series(ts: Mapping[str, Any], metric: str) -> list[list[Any]]:
    """Each series' values aligned on every bucket of the window (absent buckets are 0)."""
    out = []
    for series in ts["series"]:
        by_time = {point["t"]: point.get(metric) for point in series["points"]}
        out.append([by_time.get(bucket, 0) for bucket in ts["buckets"]])
    return out


def _labels(ts: Mapping[str, Any], bucket: Bucket) -> tuple[list[str], list[str]]:
    """Tooltip names of the buckets and their axis labels: hours of a single day, else one label per day."""
    buckets = [display.parse_time(b) for b in ts["buckets"]]
    long = [b.strftime("%b %d %H:%M UTC" if bucket == "hour" else "%b %d (UTC)") for b in buckets]
    if bucket == "hour" and len(buckets) <= 36:
        short = [b.strftime("%H:%M") if b.hour % 3 == 0 else "" for b in buckets]
    else:
        short = [b.strftime("%b %d") if b.hour == 0 else "" for b in buckets]
    return long, short


def _money_series(name: str, costs: Sequence[Any], unpriced: Sequence[Any], *, gaps: bool = False) -> svg.Series:
    """Spend per bucket; a bucket whose calls are all unpriced says so (and, with ``gaps``, draws no point)."""
    values: list[float | None] = []
    texts = []
    for cost, calls in zip(costs, unpriced, strict=True):
        amount = _money(cost)
        if calls and amount == 0:
            values.append(None if gaps else 0.0)
            texts.append(f"unpriced ({calls:,} calls)")
        else:
            values.append(amount)
            texts.append(display.usd(cost) + (f" + {calls:,} unpriced calls" if calls else ""))
    return svg.Series(name, values, texts)


def _usd_axis(value: float) -> str:
    return display.usd(Decimal(repr(value)))


def _count_axis(value: float) -> str:
    return display.compact(value)


Row = Mapping[str, Any]


def _money_bars(rows: Sequence[Row], label: Callable[[Row], str], href: Callable[[Row], str]) -> list[svg.Bar]:
    bars = []
    for row in rows:
        unpriced_calls = row.get("unpriced_calls") or 0
        value = row["cost_usd"]
        text = display.UNPRICED if unpriced_calls and _money(value) == 0 else display.usd(value)
        note = f"{unpriced_calls:,} unpriced call(s) not included" if unpriced_calls else ""
        bars.append(svg.Bar(label(row), _money(value), text, href(row), note))
    return bars


def link(path: str, period: Period, **params: Any) -> str:
    """A dashboard URL keeping the page's range: ``link("/runs", p, **{"filter.tenant": "acme"})``."""
    query = {"range": period.key, **{k: v for k, v in params.items() if v is not None}}
    return f"{path}?{urlencode(query, doseq=True)}"


def _runs_link(p: Period, dimension: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda row: link("/runs", p, **{f"filter.{dimension}": row[dimension]})


# -- pages --------------------------------------------------------------------------------------

OVERVIEW_METRICS = (
    "cost_usd", "runs", "successful_runs", "success_rate", "cost_per_success_usd", "accepted_runs",
    "cost_per_accepted_usd", "calls", "unpriced_calls", "retries", "retry_rate", "tool_calls", "latency_p95_ms",
)  # fmt: skip


def overview(store: Store, p: Period) -> dict[str, Any]:
    """Spend, runs, success rate, cost per success, their trend, and the top workflows, tenants and models."""
    totals = _totals(store, p.window, OVERVIEW_METRICS)
    previous = _totals(store, p.previous, ("cost_usd", "runs"))
    ts = timeseries(
        store, TimeseriesRequest(p.window, p.bucket, (), ("cost_usd", "runs", "successful_runs", "unpriced_calls"))
    )
    long, short = _labels(ts, p.bucket)
    (cost,) = _series(ts, "cost_usd")
    (runs,) = _series(ts, "runs")
    (successful,) = _series(ts, "successful_runs")
    (unpriced_calls,) = _series(ts, "unpriced_calls")
    spend_chart = svg.time_chart(
        svg.Chart(
            "chart-spend",
            f"Spend per {p.bucket}",
            f"Calculated cost of the runs that started in each {p.bucket}, {p.range.label.lower()}.",
        ),
        long,
        short,
        [_money_series("Spend", cost, unpriced_calls)],
        _usd_axis,
    )
    failed = [r - s for r, s in zip(runs, successful, strict=True)]
    runs_chart = svg.time_chart(
        svg.Chart(
            "chart-runs",
            f"Runs per {p.bucket}",
            f"Runs that started in each {p.bucket}: successful, and failed or without a root span.",
        ),
        long,
        short,
        [
            svg.Series("Successful", successful, [display.count(v) for v in successful]),
            svg.Series("Failed or unknown", failed, [display.count(v) for v in failed]),
        ],
        _count_axis,
        kind="columns",
    )
    workflows = _rows(
        store, RollupRequest(p.window, ("workflow_type",), ("cost_usd", "runs", "unpriced_calls"), limit=TOP_N)
    )
    tenants = _rows(store, RollupRequest(p.window, ("tenant",), ("cost_usd", "runs", "unpriced_calls"), limit=TOP_N))
    top_models = RollupRequest(p.window, ("model",), ("cost_usd", "calls", "unpriced_calls"), limit=TOP_N + 1)
    models = _rows(store, top_models, nonempty=True)
    return {
        "totals": totals,
        "previous": previous,
        "spend_change": display.change(_decimal(totals["cost_usd"]), _decimal(previous["cost_usd"])),
        "runs_change": display.change(totals["runs"], previous["runs"]),
        "spend_chart": spend_chart,
        "runs_chart": runs_chart,
        "trend": [
            {"t": t, "cost_usd": c, "runs": r, "successful_runs": s}
            for t, c, r, s in zip(ts["buckets"], cost, runs, successful, strict=True)
            if r
        ],
        "workflows_chart": svg.bar_chart(
            svg.Chart("chart-top-workflows", "Top workflows by spend", "Workflow types ranked by calculated cost."),
            _money_bars(workflows, lambda r: r["workflow_type"] or "(not set)", _runs_link(p, "workflow_type")),
        ),
        "tenants_chart": svg.bar_chart(
            svg.Chart("chart-top-tenants", "Top tenants by spend", "Tenants ranked by calculated cost."),
            _money_bars(tenants, lambda r: r["tenant"] or "(not set)", _runs_link(p, "tenant")),
        ),
        "models_chart": svg.bar_chart(
            svg.Chart(
                "chart-top-models", "Top models by spend", "Models ranked by the calculated cost of their calls."
            ),
            _money_bars(models[:TOP_N], lambda r: r["model"], _runs_link(p, "model")),
        ),
    }


def _decimal(value: str | None) -> Decimal | None:
    return Decimal(value) if value is not None else None


WORKFLOW_METRICS = (
    "cost_usd", "runs", "success_rate", "cost_per_success_usd", "acceptance_rate", "cost_per_accepted_usd",
    "calls", "retry_rate", "latency_p50_ms", "latency_p95_ms", "unpriced_calls",
)  # fmt: skip
PROMPT_METRICS = ("runs", "cost_usd", "cost_per_success_usd", "acceptance_rate", "rated_runs", "unpriced_calls")


def workflows(store: Store, p: Period) -> dict[str, Any]:
    """Workflow types: cost, success, cost per success / accepted output, latency, retries; prompt versions."""
    rows, rows_cut = _table(
        store, RollupRequest(p.window, ("workflow_type",), WORKFLOW_METRICS, limit=TABLE_ROWS), noun="workflow types"
    )
    # Six lines of hourly spikes are unreadable: days from a week up.
    bucket: Bucket = "hour" if p.range.span_ns <= DAY_NS else "day"
    ts = timeseries(
        store, TimeseriesRequest(p.window, bucket, ("workflow_type",), ("cost_usd", "unpriced_calls"), limit=6)
    )
    long, short = _labels(ts, bucket)
    values = _series(ts, "cost_usd")
    unpriced_calls = _series(ts, "unpriced_calls")
    per_success = sorted(
        (r for r in rows if r["cost_per_success_usd"] is not None and not r["unpriced_calls"]),
        key=lambda r: Decimal(r["cost_per_success_usd"]),
        reverse=True,
    )
    by_prompt = RollupRequest(
        p.window,
        ("workflow_type", "prompt_version"),
        PROMPT_METRICS,
        order_by="workflow_type",
        descending=False,
        limit=TABLE_ROWS,
    )
    prompts, prompts_cut = _table(store, by_prompt, noun="workflow × prompt version pairs")
    return {
        "rows": rows,
        "rows_cut": rows_cut,
        "prompts": prompts,
        "prompts_cut": prompts_cut,
        "trend_bucket": bucket,
        "trend_chart": svg.time_chart(
            svg.Chart(
                "chart-workflow-spend",
                f"Spend per workflow per {bucket}",
                "Calculated cost of the six costliest workflow types over time.",
            ),
            long,
            short,
            [
                _money_series(s["workflow_type"] or "(not set)", costs, unpriced, gaps=True)
                for s, costs, unpriced in zip(ts["series"], values, unpriced_calls, strict=True)
            ],
            _usd_axis,
            width=1300,
            height=260,
        ),
        "cost_chart": svg.bar_chart(
            svg.Chart("chart-workflow-cost", "Spend by workflow", "Workflow types ranked by calculated cost."),
            _money_bars(rows[:TOP_N], lambda r: r["workflow_type"] or "(not set)", _runs_link(p, "workflow_type")),
            width=600,
            label_width=170,
        ),
        "per_success_chart": svg.bar_chart(
            svg.Chart(
                "chart-cost-per-success",
                "Cost per successful run",
                "What one successful run of each workflow type costs, failed runs included (fully priced workflows).",
            ),
            [
                svg.Bar(
                    r["workflow_type"] or "(not set)",
                    _money(r["cost_per_success_usd"]),
                    display.usd(r["cost_per_success_usd"]),
                    _runs_link(p, "workflow_type")(r),
                )
                for r in per_success[:TOP_N]
            ],
            width=600,
            label_width=170,
        ),
    }


ATTRIBUTION_METRICS = (
    "cost_usd", "runs", "success_rate", "cost_per_success_usd", "calls", "input_tokens", "output_tokens",
    "unpriced_calls",
)  # fmt: skip


def tenants(store: Store, p: Period) -> dict[str, Any]:
    """Tenants and features: spend, runs, cost per success; tenant x model."""
    tenant_rows, tenants_cut = _table(
        store, RollupRequest(p.window, ("tenant",), ATTRIBUTION_METRICS, limit=TABLE_ROWS), noun="tenants"
    )
    feature_rows, features_cut = _table(
        store, RollupRequest(p.window, ("feature",), ATTRIBUTION_METRICS, limit=TABLE_ROWS), noun="features"
    )
    tenant_models = RollupRequest(
        p.window, ("tenant", "model"), ("cost_usd", "calls", "runs", "unpriced_calls"), limit=40
    )
    by_model = _rows(store, tenant_models, nonempty=True)
    return {
        "tenants": tenant_rows,
        "tenants_cut": tenants_cut,
        "features": feature_rows,
        "features_cut": features_cut,
        "tenant_models": by_model[:20],
        "tenants_chart": svg.bar_chart(
            svg.Chart("chart-tenants", "Spend by tenant", "Tenants ranked by calculated cost."),
            _money_bars(tenant_rows[:TOP_N], lambda r: r["tenant"] or "(not set)", _runs_link(p, "tenant")),
            width=600,
            label_width=170,
        ),
        "features_chart": svg.bar_chart(
            svg.Chart("chart-features", "Spend by feature", "Features ranked by calculated cost."),
            _money_bars(feature_rows[:TOP_N], lambda r: r["feature"] or "(not set)", _runs_link(p, "feature")),
            width=600,
            label_width=170,
        ),
    }


AGENT_METRICS = (
    "cost_usd", "calls", "runs", "retries", "retry_rate", "tool_calls", "latency_p50_ms", "latency_p95_ms",
    "workflows_touched", "unpriced_calls",
)  # fmt: skip
TOOL_METRICS = ("tool_calls", "tool_failure_rate", "latency_p50_ms", "latency_p95_ms", "runs", "workflows_touched")
MODEL_METRICS = (
    "cost_usd", "calls", "input_tokens", "output_tokens", "cache_read_tokens", "reasoning_tokens", "retries",
    "latency_p50_ms", "unpriced_calls",
)  # fmt: skip


def agents(store: Store, p: Period) -> dict[str, Any]:
    """Agents (cost, calls, retries, latency), tools (executions, failures, latency) and models."""
    agent_rows, agents_cut = _table(
        store, RollupRequest(p.window, ("agent",), AGENT_METRICS, limit=TABLE_ROWS), noun="agents", nonempty=True
    )
    tool_rows, tools_cut = _table(
        store,
        RollupRequest(p.window, ("tool",), TOOL_METRICS, order_by="tool_calls", limit=TABLE_ROWS),
        noun="tools",
        nonempty=True,
    )
    model_rows, models_cut = _table(
        store,
        RollupRequest(p.window, ("provider", "model"), MODEL_METRICS, limit=TABLE_ROWS),
        noun="provider × model pairs",
        nonempty=True,
    )
    return {
        "agents": agent_rows,
        "agents_cut": agents_cut,
        "tools": tool_rows,
        "tools_cut": tools_cut,
        "models": model_rows,
        "models_cut": models_cut,
        "agents_chart": svg.bar_chart(
            svg.Chart("chart-agents", "Spend by agent", "Agents ranked by the calculated cost of their model calls."),
            _money_bars(agent_rows[:TOP_N], lambda r: r["agent"], _runs_link(p, "agent")),
        ),
        "tools_chart": svg.bar_chart(
            svg.Chart(
                "chart-tools", "Tool executions", "Tools ranked by executions; the tooltip gives the failure rate."
            ),
            [
                svg.Bar(
                    r["tool"],
                    float(r["tool_calls"]),
                    display.count(r["tool_calls"]),
                    _runs_link(p, "tool")(r),
                    f"failure rate {display.percent(r['tool_failure_rate'])}, "
                    f"p95 {display.duration_ms(r['latency_p95_ms'])}",
                )
                for r in tool_rows[:TOP_N]
            ],
        ),
        "models_chart": svg.bar_chart(
            svg.Chart("chart-models", "Spend by model", "Models ranked by the calculated cost of their calls."),
            _money_bars(model_rows[:TOP_N], lambda r: r["model"], _runs_link(p, "model")),
        ),
    }


def outliers_page(store: Store, p: Period) -> dict[str, Any]:
    """Where to look first: the ``GET /v1/outliers`` sections over the period."""
    found = outliers(store, OutliersRequest(p.window, limit=10))
    # The sections rank priced cost; say which groups also have calls no rate card prices.
    for section, dimension in (("costliest_workflows", "workflow_type"), ("costliest_agents", "agent")):
        counts = _unpriced_calls(store, p.window, dimension, {row[dimension] for row in found[section]})
        for row in found[section]:
            row["unpriced_calls"] = counts.get(row[dimension], 0)
    return {"outliers": found}


def _unpriced_calls(store: Store, window: Window, dimension: str, values: set[str]) -> dict[str, int]:
    """Unpriced calls of these groups only (a top N of every group by unpriced calls could miss some)."""
    if not values:
        return {}
    only: Filters = ((dimension, tuple(sorted(values))),)
    rows = _rows(store, RollupRequest(window, (dimension,), ("unpriced_calls",), only, limit=len(values)))
    return {row[dimension]: row["unpriced_calls"] for row in rows}


def unpriced_page(store: Store, p: Period) -> dict[str, Any]:
    """Calls the ledger could not price, by provider, model and reason, with token volume."""
    found = unpriced(store, p.window, TABLE_ROWS)
    cut = None
    if found["truncated"]:
        totals = found["totals"]
        figures = [("int", totals[name], label) for name, label in _UNPRICED_FIGURES]
        cut = Cut(len(found["unpriced"]), found["total_groups"], "(provider, model, reason) groups", figures, 0)
    return {"unpriced": found["unpriced"], "unpriced_cut": cut}


_UNPRICED_FIGURES = (("calls", "unpriced calls"), ("input_tokens", "input tokens"), ("output_tokens", "output tokens"))


def runs_page(
    store: Store, p: Period, *, filters: Filters, order_by: str, descending: bool, offset: int
) -> dict[str, Any]:
    """One page of runs (``GET /v1/runs``), sorted and filtered."""
    if order_by not in RUN_ORDER_COLUMNS:
        raise QueryError("order_by", f"unknown order {order_by!r}", RUN_ORDER_COLUMNS)
    page = list_runs(store, RunsRequest(p.window, filters, order_by, descending, RUNS_PAGE, offset))  # type: ignore[arg-type]
    return {
        "runs": page["runs"],
        "next_offset": page["next_offset"],
        "offset": offset,
        "previous_offset": max(offset - RUNS_PAGE, 0) if offset else None,
        "filters": filters,
        "filter_params": {f"filter.{name}": list(values) for name, values in filters},
        "order_by": order_by,
        "descending": descending,
        "orders": list(RUN_ORDER_COLUMNS),
    }


ROLE_NOTES: dict[str, str] = {
    "call": "model call, counted",
    "charge": "priced by a rate-card entry matched on its attributes (retrieval, tool fee, compute, ...), counted",
    "view": "another span of a call already counted: not counted",
    "aggregate": "usage summed over the calls below: not counted",
    "tool": "tool execution",
    "agent": "agent invocation",
    "other": "",
}
UNCOUNTED_ROLES = frozenset({"view", "aggregate"})


def run_page(store: Store, run_id: str) -> dict[str, Any] | None:
    """A run in full: totals, outcome, attribution, breakdown and the span tree as indented rows."""
    found = get_run(store, run_id)
    if found is None:
        return None
    rows = flatten(found["spans"])
    starts = [display.parse_time(r["start_time"]).timestamp() for r in rows if r["start_time"]]
    ends = [display.parse_time(r["end_time"]).timestamp() for r in rows if r["end_time"]]
    first, last = (min(starts), max(ends)) if starts and ends else (0.0, 0.0)
    total = max(last - first, 1e-9)
    for row in rows:
        start = display.parse_time(row["start_time"]).timestamp() - first if row["start_time"] else 0.0
        row["bar"] = svg.span_bar(start / total, row["duration_ms"] / 1000 / total, f"bar-{row['call_role']}")
        row["role_note"] = ROLE_NOTES.get(row["call_role"], "")
        row["counted"] = row["call_role"] not in UNCOUNTED_ROLES
    return {**found, "rows": rows, "run_id": run_id}


def flatten(tree: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The span tree as rows in display order (parents before children), each with its ``depth``
    and whether it is a ``leaf``."""
    rows: list[dict[str, Any]] = []
    stack: list[tuple[Mapping[str, Any], int]] = [(node, 0) for node in reversed(tree)]
    while stack:  # iterative: deep agent trees must not hit the recursion limit
        node, depth = stack.pop()
        rows.append({k: v for k, v in node.items() if k != "children"} | {"depth": depth, "leaf": not node["children"]})
        stack.extend((child, depth + 1) for child in reversed(node["children"]))
    return rows

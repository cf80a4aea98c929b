"""The query vocabulary: every dimension and metric the ledger can be cut by, in one table.

Names are part of the public API (``otelspend.api.vocabulary`` publishes this table with
its OpenAPI enums and descriptions); the SQL of each figure lives beside its name, so the
query builder (``otelspend.clickhouse.queries.rollups``) takes identifiers from here only.

Where a figure comes from
-------------------------
A dimension lives at one of three levels:

* ``run``: a column of ``runs`` and of both hourly rollups (tenant, status, ...);
* ``call``: a column of the run breakdown ``run_calls`` and of ``rollup_calls_hourly``
  only (model, provider, agent, tool, operation, payload_band);
* ``raw``: on ``runs`` / ``run_calls`` but in no rollup (workflow_id, user).

A query touching no call dimension reads ``rollup_runs_hourly``; one with a call dimension
in ``group_by`` or the filters reads ``rollup_calls_hourly``; one with a raw dimension
reads ``runs`` (or ``run_calls``) directly. Each metric is a SQL expression over
*partials*: additive pieces (signed sums, quantile states, distinct-key maps) that every
source can produce. ``Partial`` says how, per source; ``Metric.expr`` combines the merged
partials (placeholders ``{<partial>}``) into the figure. Because every source produces the same
partials, a figure does not depend on which source answered it.

Fragments use the package's placeholders only (``otelspend.clickhouse.queries``):
``{value}`` the column an outer aggregate reads, ``{call_dimension}`` the one call
dimension of a single-dimension call-level query, ``{<partial>}`` a merged partial in a
metric's expression, ``{subset:UInt8}`` the bound call-dimension subset id (a ``run_mask``
bit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from otelspend.record import CALL_DIMENSIONS

Level = Literal["run", "call", "raw"]
Kind = Literal["usd", "int", "float", "str"]
"""How a metric value is serialised: ``usd`` a decimal string, ``int`` and ``float`` JSON numbers,
``str`` a string (``billed_confidence``)."""
Source = Literal[
    "runs_rollup", "calls_rollup", "runs_daily", "calls_daily", "runs", "run_calls",
    "alloc_hourly", "alloc_daily", "allocations", "revenue", "billing",
]  # fmt: skip
"""Where partials come from: the hourly rollups, the daily rollups (migration 0005), raw rows;
for billed money the true-up shares (migration 0006); for allocated money its rollups and rows,
for revenue its days (migration 0007)."""
Family = Literal["ledger", "billing", "allocation", "revenue"]
"""Which tables a partial is read from: the ledger's (runs, breakdown rows and their rollups), the
billing true-up's (billed money shared over runs, migration 0006), the allocations' (shared costs,
migration 0007) or revenue's. The families are read separately and joined by group."""


@dataclass(frozen=True)
class Dimension:
    """A name to group and filter by, the level it lives at, and what it means."""

    name: str
    level: Level
    description: str

    @property
    def column(self) -> str:
        """The column holding it: the same name in runs, run_calls and both rollups."""
        return self.name


@dataclass(frozen=True)
class Partial:
    """An additive piece of a metric, as each source computes it.

    ``runs_rollup`` / ``calls_rollup`` are row expressions over hourly rollup rows (summed or
    merged by ``outer``); ``runs_daily`` / ``calls_daily`` the same over the daily rollups,
    where they differ (None: as hourly); ``runs`` / ``run_calls`` are aggregate expressions
    over the signed raw rows. Placeholders: ``{subset:UInt8}`` (bound: the call-dimension
    subset id, a run_mask bit) and ``{call_dimension}`` (the call dimension of a
    single-dimension call-level query).
    """

    name: str
    outer: str
    """Aggregate applied to the union of sources, over ``{value}``: ``sum({value})``, ``...Merge({value})``."""
    runs_rollup: str
    calls_rollup: str
    runs: str
    run_calls: str
    runs_daily: str | None = None
    calls_daily: str | None = None
    group_state: str | None = None
    """How a group keeps the partial when a table's totals are asked (``{value}``): a state the
    totals merge again (quantiles). None: the group's value itself adds up with ``outer``."""
    family: Family = "ledger"
    """``billing`` / ``allocation`` / ``revenue``: read from those tables only, the ledger
    fragments above unused."""
    joined_rollup: str = ""
    """Allocation partials: the row expression over ``rollup_alloc_hourly`` / ``_daily``."""
    joined_raw: str = ""
    """The aggregate over the family's raw rows: signed ``allocations`` rows, ``revenue`` days, or
    the current true-up shares of ``billing_trueup`` (a group no share reaches reads 0 there, the
    join's default, hence billed metrics test ``billed_shares``)."""

    def expression(self, source: Source) -> str:
        """The fragment this source computes the partial with."""
        return {
            "runs_rollup": self.runs_rollup,
            "calls_rollup": self.calls_rollup,
            "runs_daily": self.runs_daily or self.runs_rollup,
            "calls_daily": self.calls_daily or self.calls_rollup,
            "runs": self.runs,
            "run_calls": self.run_calls,
            "alloc_hourly": self.joined_rollup,
            "alloc_daily": self.joined_rollup,
            "allocations": self.joined_raw,
            "revenue": self.joined_raw,
            "billing": self.joined_raw,
        }[source]


_SUM = "sum({value})"
# Distinct runs at call level: rollup_calls_hourly has runs_by_<dim>, successful_by_<dim>,
# accepted_by_<dim> and rated_by_<dim> per call dimension (clickhouse/migrations/0004, 0005);
# {call_dimension} is the one call dimension a query involves (queries over two or more
# count distinct runs from raw rows). Raw breakdown rows count a run in the row that is its
# first for the subset of call dimensions involved (run_mask bit {subset:UInt8}).
_USD = "Decimal(38, 15)"


def _signed_sum(run_column: str, call_column: str | None = None) -> Partial:
    """A count or token total: plain column in both rollups, signed sum over raw rows."""
    call_column = call_column or run_column
    return Partial(
        name=call_column,
        outer=_SUM,
        runs_rollup=f"toInt64({call_column})",
        calls_rollup=f"toInt64({call_column})",
        runs=f"sum(toInt64(sign) * toInt64({run_column}))",
        run_calls=f"sum(toInt64(sign) * toInt64({call_column}))",
    )


PARTIALS: dict[str, Partial] = {
    p.name: p
    for p in (
        Partial(
            "runs",
            _SUM,
            "toInt64(runs)",
            "toInt64(runs_by_{call_dimension})",
            "sum(toInt64(sign))",
            "sum(toInt64(sign) * bitTest(run_mask, {subset:UInt8}))",
        ),
        Partial(
            "successful_runs",
            _SUM,
            "toInt64(successful_runs)",
            "toInt64(successful_by_{call_dimension})",
            "sum(toInt64(sign) * (status = 'success'))",
            "sum(toInt64(sign) * bitTest(run_mask, {subset:UInt8}) * successful)",
        ),
        Partial(
            "accepted_runs",
            _SUM,
            "toInt64(accepted_runs)",
            "toInt64(accepted_by_{call_dimension})",
            "sum(toInt64(sign) * (outcome = 'accepted'))",
            "sum(toInt64(sign) * bitTest(run_mask, {subset:UInt8}) * accepted)",
        ),
        Partial(
            "rated_runs",
            _SUM,
            "if(outcome != '', toInt64(runs), 0)",
            "if(outcome != '', toInt64(runs_by_{call_dimension}), 0)",
            "sum(toInt64(sign) * (outcome != ''))",
            "sum(toInt64(sign) * bitTest(run_mask, {subset:UInt8}) * (outcome != ''))",
            runs_daily="toInt64(rated_runs)",  # outcome is not a daily dimension
            calls_daily="toInt64(rated_by_{call_dimension})",
        ),
        _signed_sum("llm_calls", "calls"),
        _signed_sum("tool_calls"),
        _signed_sum("tool_failures"),
        _signed_sum("retries"),
        _signed_sum("unpriced_calls"),
        _signed_sum("input_tokens"),
        _signed_sum("output_tokens"),
        _signed_sum("cache_read_tokens"),
        _signed_sum("cache_write_tokens"),
        _signed_sum("reasoning_tokens"),
        Partial(
            "cost_usd",
            _SUM,
            f"CAST(cost_usd AS {_USD})",
            f"CAST(cost_usd AS {_USD})",
            f"CAST(sum(sign * ifNull(cost_usd, toDecimal128(0, 15))) AS {_USD})",
            f"CAST(sum(sign * cost_usd) AS {_USD})",
        ),
        Partial(
            "reported_cost_usd",
            _SUM,
            f"CAST(reported_cost_usd AS {_USD})",
            f"CAST(reported_cost_usd AS {_USD})",
            f"CAST(sum(sign * ifNull(reported_cost_usd, toDecimal128(0, 15))) AS {_USD})",
            f"CAST(sum(sign * reported_cost_usd) AS {_USD})",
        ),
        Partial(
            "latency_ms_sum",
            _SUM,
            "toInt64(latency_ms_sum)",
            "toInt64(latency_ms_sum)",
            "sum(toInt64(sign) * toInt64(duration_ms))",
            "sum(toInt64(sign) * toInt64(arraySum(latencies_ms)))",
        ),
        Partial(
            "latency_count",
            _SUM,
            "toInt64(latency_count)",
            "toInt64(latency_count)",
            "sum(toInt64(sign))",
            "sum(toInt64(sign) * length(latencies_ms))",
        ),
        # Quantile states: the rollups' own columns, or the same -State over raw rows with
        # the sign as a UInt64 weight (-1 wraps to 2^64-1 and cancels on merge).
        Partial(
            "latency_q_run",
            "quantilesExactWeightedMerge(0.5, 0.95)({value})",
            "latency_ms_q",
            "",
            "quantilesExactWeightedState(0.5, 0.95)(duration_ms, toUInt64(sign))",
            "",
            group_state="quantilesExactWeightedMergeState(0.5, 0.95)({value})",
        ),
        Partial(
            "latency_q_call",
            "quantilesExactWeightedArrayMerge(0.5, 0.95)({value})",
            "",
            "latency_ms_q",
            "",
            "quantilesExactWeightedArrayState(0.5, 0.95)"
            "(latencies_ms, arrayWithConstant(length(latencies_ms), toUInt64(sign)))",
            group_state="quantilesExactWeightedArrayMergeState(0.5, 0.95)({value})",
        ),
        # Billed money shared over runs (the billing true-up, migration 0006): read from
        # billing_trueup, per group.
        *(
            Partial(name, outer, "", "", "", "", family="billing", joined_raw=aggregate)
            for name, outer, aggregate in (
                ("billed_shares", _SUM, "toInt64(count())"),
                ("billed_usd", _SUM, f"CAST(sum(billed_usd) AS {_USD})"),
                ("billed_calculated_usd", _SUM, f"CAST(sum(calculated_usd) AS {_USD})"),
                (
                    "billed_confidence",
                    "min(nullIf({value}, 0))",
                    "min(multiIf(confidence = 'high', 3, confidence = 'medium', 2, 1))",
                ),
            )
        ),
        # Shared costs allocated to runs (migration 0007): signed sums, whatever the source.
        Partial(
            "allocated_usd",
            _SUM,
            "",
            "",
            "",
            "",
            family="allocation",
            joined_rollup=f"CAST(allocated_usd AS {_USD})",
            joined_raw=f"CAST(sum(sign * amount_usd) AS {_USD})",
        ),
        Partial(
            "allocation_rows",
            _SUM,
            "",
            "",
            "",
            "",
            family="allocation",
            joined_rollup="toInt64(allocation_rows)",
            joined_raw="sum(toInt64(sign))",
        ),
        Partial("revenue_usd", _SUM, "", "", "", "", family="revenue", joined_raw=f"CAST(sum(amount_usd) AS {_USD})"),
        Partial("revenue_days", _SUM, "", "", "", "", family="revenue", joined_raw="toInt64(count())"),
        Partial(
            "workflow_types",
            "sumMap({value})",
            "workflow_types",
            "workflow_types",
            "sumMap([toString(workflow_type)], [toInt64(sign)])",
            "sumMap([toString(workflow_type)], [toInt64(sign)])",
        ),
    )
}


BILLING_UNSUPPORTED_DIMENSIONS = frozenset({"agent", "tool", "operation", "payload_band"})
"""Bills are matched per model and provider: billed metrics are null when grouped or filtered by these."""


@dataclass(frozen=True)
class Metric:
    """A figure: how it is serialised, its unit and meaning, the partials it needs and the SQL
    combining them."""

    name: str
    kind: Kind
    unit: str
    description: str
    partials: tuple[str, ...]
    expr: str
    """SQL over the merged partials, each written ``{partial}`` (``{latency_q}``: the level's
    quantile pair): a group's columns, or the window aggregates giving a table's totals."""


def _ratio(numerator: str, denominator: str) -> str:
    n, d = "{" + numerator + "}", "{" + denominator + "}"
    return f"if({d} <= 0, NULL, {n} / {d})"


def _total(name: str, unit: str, description: str, kind: Kind = "int") -> Metric:
    return Metric(name, kind, unit, description, (name,), "{" + name + "}")


_AT_CALL_LEVEL = (
    " With a call-level dimension (model, provider, agent, tool, operation, payload_band) in "
    "group_by or the filters, it covers only the calls in that group."
)
_RUNS_AT_CALL_LEVEL = (
    " With a call-level dimension in group_by or the filters, a run counts once in every "
    "group in which it has at least one call or tool execution."
)
_LATENCY = (
    " Run level: the run's duration (root span). Call level (a call dimension in group_by or "
    "the filters): the duration of each model call and tool execution."
)

METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "cost_usd",
            "usd",
            "USD",
            "Calculated cost of the counted model calls (rate card in force when each call "
            "started); unpriced calls add nothing." + _AT_CALL_LEVEL,
            ("cost_usd",),
            "{cost_usd}",
        ),
        Metric(
            "reported_cost_usd",
            "usd",
            "USD",
            "Cost that instrumentation libraries or gateways reported on the spans (a hint to "
            "compare with cost_usd, never the ledger)." + _AT_CALL_LEVEL,
            ("reported_cost_usd",),
            "{reported_cost_usd}",
        ),
        Metric(
            "billed_cost_usd",
            "usd",
            "USD",
            "Billed money from imported provider bills, shared over the runs behind each reconciled "
            "cell in proportion to their calculated cost (exact to 1e-15 USD; see GET /v1/reconciliation). "
            "Money no run takes is in a group whose run dimensions are '(unattributed)'. Never changes "
            "cost_usd. Null where no bill was reconciled, and with agent, tool, operation or payload_band "
            "(bills are matched per model and provider).",
            ("billed_usd", "billed_shares"),
            "if({billed_shares} = 0, NULL, {billed_usd})",
        ),
        Metric(
            "variance_usd",
            "usd",
            "USD",
            "billed_cost_usd minus the calculated cost of the same calls (those in reconciled cells): "
            "positive when the bill is higher than the ledger. Null as billed_cost_usd.",
            ("billed_usd", "billed_calculated_usd", "billed_shares"),
            "if({billed_shares} = 0, NULL, {billed_usd} - {billed_calculated_usd})",
        ),
        Metric(
            "billed_confidence",
            "str",
            "high | medium | low",
            "The weakest reconciliation confidence among the cells behind billed_cost_usd; null without billed money.",
            ("billed_confidence",),
            "multiIf({billed_confidence} = 3, 'high', {billed_confidence} = 2, 'medium', "
            "{billed_confidence} = 1, 'low', NULL)",
        ),
        Metric(
            "runs",
            "int",
            "runs",
            "Runs (traces) that started in the window." + _RUNS_AT_CALL_LEVEL,
            ("runs",),
            "{runs}",
        ),
        _total("calls", "calls", "Model calls, each counted once (call_role = 'call')." + _AT_CALL_LEVEL),
        Metric(
            "successful_runs",
            "int",
            "runs",
            "Runs whose root span did not end in error." + _RUNS_AT_CALL_LEVEL,
            ("successful_runs",),
            "{successful_runs}",
        ),
        Metric(
            "success_rate",
            "float",
            "ratio 0..1",
            "successful_runs / runs; null without runs.",
            ("successful_runs", "runs"),
            _ratio("successful_runs", "runs"),
        ),
        Metric(
            "cost_per_success_usd",
            "usd",
            "USD per run",
            "cost_usd / successful_runs: what one successful completion costs, failures "
            "included (truncated to 1e-15 USD); null without successful runs.",
            ("cost_usd", "successful_runs"),
            _ratio("cost_usd", "successful_runs"),
        ),
        Metric(
            "accepted_runs",
            "int",
            "runs",
            "Runs whose latest outcome is 'accepted' (span attribute, span event or POST .../outcome)."
            + _RUNS_AT_CALL_LEVEL,
            ("accepted_runs",),
            "{accepted_runs}",
        ),
        Metric(
            "cost_per_accepted_usd",
            "usd",
            "USD per run",
            "cost_usd / accepted_runs: what one accepted output costs, everything else included "
            "(truncated to 1e-15 USD); null without accepted runs.",
            ("cost_usd", "accepted_runs"),
            _ratio("cost_usd", "accepted_runs"),
        ),
        Metric(
            "rated_runs",
            "int",
            "runs",
            "Runs with any outcome (accepted, edited, rejected, escalated)." + _RUNS_AT_CALL_LEVEL,
            ("rated_runs",),
            "{rated_runs}",
        ),
        Metric(
            "acceptance_rate",
            "float",
            "ratio 0..1",
            "accepted_runs / rated_runs: the share of runs with an outcome that were accepted; "
            "null without rated runs.",
            ("accepted_runs", "rated_runs"),
            _ratio("accepted_runs", "rated_runs"),
        ),
        Metric(
            "latency_avg_ms",
            "float",
            "ms",
            "Mean latency; null without data." + _LATENCY,
            ("latency_ms_sum", "latency_count"),
            _ratio("latency_ms_sum", "latency_count"),
        ),
        Metric(
            "latency_p50_ms",
            "int",
            "ms",
            "Median latency (exact, quantilesExactWeighted); null without data." + _LATENCY,
            ("latency_q", "latency_count"),
            "if({latency_count} <= 0, NULL, arrayElement({latency_q}, 1))",
        ),
        Metric(
            "latency_p95_ms",
            "int",
            "ms",
            "95th percentile latency (exact, quantilesExactWeighted); null without data." + _LATENCY,
            ("latency_q", "latency_count"),
            "if({latency_count} <= 0, NULL, arrayElement({latency_q}, 2))",
        ),
        _total(
            "retries",
            "retries",
            "Retried attempts: http.request.resend_count, explicit retry attributes, per-attempt HTTP "
            "child spans, and failed calls followed by a successful call of the same operation and model."
            + _AT_CALL_LEVEL,
        ),
        Metric(
            "retry_rate",
            "float",
            "retries per call",
            "retries / calls; null without calls.",
            ("retries", "calls"),
            _ratio("retries", "calls"),
        ),
        _total("input_tokens", "tokens", "Input tokens, cache reads and writes included." + _AT_CALL_LEVEL),
        _total("output_tokens", "tokens", "Output tokens, reasoning included." + _AT_CALL_LEVEL),
        _total("cache_read_tokens", "tokens", "Input tokens read from a prompt cache." + _AT_CALL_LEVEL),
        _total("cache_write_tokens", "tokens", "Input tokens written to a prompt cache." + _AT_CALL_LEVEL),
        _total("reasoning_tokens", "tokens", "Output tokens spent reasoning." + _AT_CALL_LEVEL),
        Metric(
            "input_tokens_avg",
            "float",
            "tokens per call",
            "input_tokens / calls; null without calls.",
            ("input_tokens", "calls"),
            _ratio("input_tokens", "calls"),
        ),
        Metric(
            "output_tokens_avg",
            "float",
            "tokens per call",
            "output_tokens / calls; null without calls.",
            ("output_tokens", "calls"),
            _ratio("output_tokens", "calls"),
        ),
        Metric(
            "cache_read_tokens_avg",
            "float",
            "tokens per call",
            "cache_read_tokens / calls; null without calls.",
            ("cache_read_tokens", "calls"),
            _ratio("cache_read_tokens", "calls"),
        ),
        _total("tool_calls", "executions", "Tool executions (execute_tool spans)." + _AT_CALL_LEVEL),
        Metric(
            "tool_failure_rate",
            "float",
            "ratio 0..1",
            "Tool executions that ended in error / tool_calls; null without tool executions.",
            ("tool_failures", "tool_calls"),
            _ratio("tool_failures", "tool_calls"),
        ),
        Metric(
            "workflows_touched",
            "int",
            "workflow types",
            "Distinct non-empty workflow_type values among the runs (or, at call level, the calls) in the group.",
            ("workflow_types",),
            "length(arrayFilter((k, v) -> k != '' AND v > 0, tupleElement({workflow_types}, 1), "
            "tupleElement({workflow_types}, 2)))",
        ),
        Metric(
            "direct_cost_usd",
            "usd",
            "USD",
            "Direct cost: the counted model calls and priced charges (retrieval, tool fees, compute, request "
            "fees) of the group, as cost_usd." + _AT_CALL_LEVEL,
            ("cost_usd",),
            "{cost_usd}",
        ),
        Metric(
            "allocated_cost_usd",
            "usd",
            "USD",
            "Shared costs allocated to the group's runs by the cost pools (GET /v1/allocations): exact, the "
            "shares of a pool's period add up to its amount; money a period had no consumer for is in the "
            "'(unallocated)' value of the pool's by dimension. Null at a cut allocations do not carry "
            "(model, provider, agent, tool, operation, payload_band).",
            ("allocated_usd",),
            "{allocated_usd}",
        ),
        Metric(
            "loaded_cost_usd",
            "usd",
            "USD",
            "Fully loaded cost: direct_cost_usd + allocated_cost_usd. Null where allocated_cost_usd is.",
            ("cost_usd", "allocated_usd"),
            "{cost_usd} + {allocated_usd}",
        ),
        Metric(
            "loaded_cost_per_success_usd",
            "usd",
            "USD per run",
            "loaded_cost_usd / successful_runs: what one successful completion costs with its share of shared "
            "costs (truncated to 1e-15 USD); null without successful runs.",
            ("cost_usd", "allocated_usd", "successful_runs"),
            "if({successful_runs} <= 0, NULL, ({cost_usd} + {allocated_usd}) / {successful_runs})",
        ),
        Metric(
            "revenue_usd",
            "usd",
            "USD",
            "Imported revenue (POST /v1/revenue) of the days starting in the window. Only by tenant, customer "
            "and feature (null at any other cut); null for a group without revenue on record.",
            ("revenue_usd", "revenue_days"),
            "if({revenue_days} = 0, NULL, {revenue_usd})",
        ),
        Metric(
            "margin_usd",
            "usd",
            "USD",
            "revenue_usd - loaded_cost_usd; null without revenue (or where loaded cost is null).",
            ("revenue_usd", "revenue_days", "cost_usd", "allocated_usd"),
            "if({revenue_days} = 0, NULL, {revenue_usd} - ({cost_usd} + {allocated_usd}))",
        ),
        Metric(
            "margin_pct",
            "float",
            "percent",
            "100 x margin_usd / revenue_usd; null without revenue or with revenue of zero.",
            ("revenue_usd", "revenue_days", "cost_usd", "allocated_usd"),
            "if({revenue_days} = 0 OR {revenue_usd} = 0, NULL, 100 * toFloat64({revenue_usd} - ({cost_usd} + "
            "{allocated_usd})) / toFloat64({revenue_usd}))",
        ),
        _total(
            "unpriced_calls",
            "calls",
            "Counted calls without a price (cost NULL, reason stored; see GET /v1/unpriced). A failed "
            "call that reported no usage was not billed and is not unpriced." + _AT_CALL_LEVEL,
        ),
    )
}

DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        Dimension(
            "workflow_type", "run", "Kind of workflow (workflow.type / workflow.name / traceloop.workflow.name)."
        ),
        Dimension("workflow_id", "raw", "One workflow execution's business id (workflow.id); read from raw runs."),
        Dimension("agent", "call", "Agent that made the call (gen_ai.agent.name on the span or an ancestor)."),
        Dimension("model", "call", "Model that answered (response model, else request model)."),
        Dimension("provider", "call", "Provider (gen_ai.provider.name, semconv names: openai, anthropic, ...)."),
        Dimension("tool", "call", "Tool executed (gen_ai.tool.name); empty on model calls."),
        Dimension("operation", "call", "gen_ai.operation.name: chat, embeddings, execute_tool, ..."),
        Dimension(
            "payload_band",
            "call",
            "Input-token band of a call: <1k, 1k-4k, 4k-16k, 16k-64k, 64k-128k, 128k+ (none for tools).",
        ),
        Dimension("tenant", "run", "tenant.id of the run."),
        Dimension("customer", "run", "customer.id of the run."),
        Dimension("feature", "run", "feature.id of the run (or set by ownership rules)."),
        Dimension("user", "raw", "user.id / enduser.id of the run; read from raw runs."),
        Dimension("team", "run", "Team (ownership rules)."),
        Dimension("cost_center", "run", "Cost center (ownership rules)."),
        Dimension("product", "run", "Product (ownership rules)."),
        Dimension("environment", "run", "deployment.environment.name of the run."),
        Dimension("prompt_version", "run", "prompt.version of the run."),
        Dimension("service", "run", "service.name of the run's root span."),
        Dimension("status", "run", "Run status from the root span: success, error, unknown (no root seen)."),
        Dimension("outcome", "run", "Latest outcome: accepted, edited, rejected, escalated, or empty."),
        Dimension(
            "cost_kind",
            "call",
            "What the money is: model (model calls), retrieval, tool, compute, request (spans priced by rate-card "
            "entries matched on attributes), or an allocated pool's cost_kind.",
        ),
        Dimension(
            "pool",
            "run",
            "Shared-cost pool of allocated money (cost-pools file); direct cost is in no pool (empty value).",
        ),
    )
}

assert {d.name for d in DIMENSIONS.values() if d.level == "call"} == {*CALL_DIMENSIONS, "cost_kind"}
CALL_BITS: dict[str, int] = {name: 1 << index for index, name in enumerate(CALL_DIMENSIONS)}
"""Bit of each call dimension in a subset id (bit 0 = model ... bit 5 = payload_band); run_mask
has one bit per subset id."""

Filters = tuple[tuple[str, tuple[str, ...]], ...]
"""``((dimension, values), ...)``: values of one dimension are OR-ed, dimensions AND-ed."""


def metric_partials(metric: Metric, level: Literal["run", "call"]) -> tuple[str, ...]:
    """Partial names a metric needs at a level (the quantile state differs per level)."""
    return tuple((f"latency_q_{level}" if p == "latency_q" else p) for p in metric.partials)


FAMILY_DIMENSIONS: dict[Family, frozenset[str]] = {
    "ledger": frozenset(DIMENSIONS),
    "billing": frozenset(DIMENSIONS) - BILLING_UNSUPPORTED_DIMENSIONS - {"cost_kind", "pool"},
    "allocation": frozenset(
        name for name, d in DIMENSIONS.items() if d.level in ("run", "raw") or name in ("cost_kind", "pool")
    ),
    "revenue": frozenset({"tenant", "customer", "feature"}),
}
"""Dimensions each family's tables hold; a metric of a family is null at a cut touching any other."""
LEDGER_CONSTANTS: dict[str, str] = {"pool": "''"}
"""Ledger values that are constant: direct cost is in no pool."""
ALLOCATION_HOURLY_DIMENSIONS = frozenset(
    name for name, d in DIMENSIONS.items() if d.level == "run" or name == "cost_kind"
)
"""Dimensions of ``rollup_alloc_hourly`` (raw dimensions read ``allocations`` itself)."""
ALLOCATION_DAILY_DIMENSIONS = frozenset({"pool", "cost_kind", "tenant", "customer", "feature", "workflow_type"})
"""Dimensions of ``rollup_alloc_daily``: whole days come from it when a query touches no other."""


def column_sql(name: str, family: Family) -> str:
    """The SQL giving dimension ``name`` in a family's tables (a constant where the family's value is
    known without a column: direct cost's pool)."""
    if family == "ledger" and name in LEDGER_CONSTANTS:
        return LEDGER_CONSTANTS[name]
    return DIMENSIONS[name].column

"""SQL of the FOCUS export: the ledger's priced calls as charges, per charge kind and exact rate.

One query per export period batch (a UTC day): the runs that started in it (the rows in force,
``runs.in_force``), joined to their counted spans (the latest version of each span, ``call_role``
``call`` or ``charge``: views are not counted, duplicates collapse), each split into its cost
components. A charge (a span a rate-card entry priced on attributes, issue 14) has a request fee
and/or compute time: its fee is a ``tool`` or ``retrieval`` row by its ``cost_kind`` (any other
kind a ``request_fee`` row), its compute time a ``compute`` row; its provider is the span's own,
else its database system, else the price entry that priced it.
A component's quantity is the leaf the rate card priced it by: cache reads, cache writes and
reasoning tokens are their own kinds only where the call paid a separate price for them (a
positive component); otherwise they were billed at the input / output rate and stay in those
kinds, as on the bill; cost the components do not itemize (a span written without them) is one
more kind, so the charges always add up to the calls' cost. Each (call, kind) also gets its exact
rate, cost / quantity reduced by their gcd, so calls charged different prices never share a row
and a row's cost is always rate x quantity. Money is Int128 femto-USD throughout: Int64 holds
9,223.37 USD, less than one busy team's day on one model, and ClickHouse's sum wraps silently.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from otelspend.clickhouse.queries import billing
from otelspend.clickhouse.queries.allocation import IN_FORCE as ALLOCATIONS_IN_FORCE
from otelspend.clickhouse.queries.runs import RUNS_IN_FORCE
from otelspend.clickhouse.queries.spans import UNPRICED_CALL
from otelspend.clickhouse.queries.sql import Fragment, Query, render

Granularity = Literal["hour", "day"]
BUCKET: dict[str, str] = {"hour": "toStartOfHour", "day": "toStartOfDay"}
"""Whitelisted bucket functions (identifiers never come from a request)."""

_CHARGES = """
WITH r AS (
    SELECT run_id, argMax(start_time, version) AS run_start, argMax(team, version) AS team,
           argMax(cost_center, version) AS cost_center, argMax(tenant, version) AS tenant,
           argMax(feature, version) AS feature, argMax(workflow_type, version) AS workflow_type,
           argMax(environment, version) AS environment, argMax(ingest_token, version) AS ingest_token,
           argMax(service, version) AS service
    FROM {db}.runs
    WHERE start_time >= {start:DateTime64(9, 'UTC')} AND start_time < {end:DateTime64(9, 'UTC')}
    {in_force}
)
SELECT
    toUnixTimestamp({bucket}(r.run_start)) AS period,
    k.provider AS provider, k.model AS model, k.price_source AS price_source, k.price_entry AS price_entry,
    k.price_effective_from AS price_effective_from,
    r.workflow_type, r.tenant, r.feature, r.team, r.cost_center, r.environment, {owner},
    k.kind AS kind, k.rate_num AS rate_num, k.rate_den AS rate_den,
    sum(k.q) AS quantity,
    sum(k.c) AS cost,
    uniqExact(k.trace_id) AS runs,
    count() AS calls
FROM
(
    SELECT trace_id, charge_provider AS provider, model, price_source, price_entry, price_effective_from, kind, q, c,
        -- gcd() refuses a zero argument (every branch is evaluated): keep both sides positive in it.
        if(c = 0, greatest(q, 1), if(q = 0, c, gcd(greatest(c, 1), greatest(q, 1)))) AS g,
        intDiv(c, g) AS rate_num,
        intDiv(q, g) AS rate_den
    FROM
    (
        SELECT trace_id, model, price_source, price_entry, price_effective_from,
            multiIf(call_role != 'charge' OR provider != '', provider, db_system != '', db_system, price_entry)
                AS charge_provider,
            -- A charge's fee is what its cost_kind says (LEDGER_KINDS: 9 tool, 10 retrieval).
            multiIf(call_role != 'charge', 6, cost_kind = 'tool', 9, cost_kind = 'retrieval', 10, 6) AS k_request,
            toInt128(ifNull(cost_input_usd, 0) * 1000000000000000) AS c_input,
            toInt128(ifNull(cost_cache_read_usd, 0) * 1000000000000000) AS c_cached,
            toInt128(ifNull(cost_cache_write_usd, 0) * 1000000000000000) AS c_write,
            toInt128(ifNull(cost_output_usd, 0) * 1000000000000000) AS c_output,
            toInt128(ifNull(cost_reasoning_usd, 0) * 1000000000000000) AS c_reasoning,
            toInt128(ifNull(cost_request_usd, 0) * 1000000000000000) AS c_request,
            toInt128(ifNull(cost_compute_usd, 0) * 1000000000000000) AS c_compute,
            -- Cost the components do not itemize (none when the pricer wrote the span: its cost is
            -- their sum): kept as its own kind, so the export still adds up to the ledger.
            toInt128(assumeNotNull(cost_usd) * 1000000000000000)
                - c_input - c_cached - c_write - c_output - c_reasoning - c_request - c_compute AS c_rest,
            toInt64(if(c_cached > 0, ifNull(cache_read_tokens, 0), 0)) AS q_cached,
            toInt64(if(c_write > 0, ifNull(cache_write_tokens, 0), 0)) AS q_write,
            toInt64(if(c_reasoning > 0, ifNull(reasoning_tokens, 0), 0)) AS q_reasoning,
            toInt64(ifNull(input_tokens, 0)) - q_cached - q_write AS q_input,
            toInt64(ifNull(output_tokens, 0)) - q_reasoning AS q_output,
            toInt64(c_request > 0) AS q_request,
            toInt64(if(c_compute > 0,
                greatest(1, round(ifNull(compute_seconds, duration_ns / 1e9 * ifNull(gpu_count, 1)) * 1e6)), 0))
                AS q_compute,
            toInt64(c_rest != 0) AS q_rest
        FROM ({latest_spans})
        WHERE call_role IN ('call', 'charge') AND cost_usd IS NOT NULL
    )
    ARRAY JOIN
        [1, 2, 3, 4, 5, k_request, 7, 8] AS kind,
        [q_input, q_cached, q_write, q_output, q_reasoning, q_request, q_compute, q_rest] AS q,
        [c_input, c_cached, c_write, c_output, c_reasoning, c_request, c_compute, c_rest] AS c
    WHERE q != 0 OR c != 0
) AS k
INNER JOIN r ON k.trace_id = r.run_id
GROUP BY period, provider, model, price_source, price_entry, price_effective_from, r.workflow_type, r.tenant,
         r.feature, r.team, r.cost_center, r.environment, {owner_group} kind, rate_num, rate_den
-- Every grouping column, so a re-export writes its rows in the same order.
ORDER BY period, provider, model, r.team, r.tenant, kind, price_entry, rate_num, rate_den, price_source,
         price_effective_from, r.workflow_type, r.feature, r.cost_center, r.environment, {owner_order}
"""

# The stored version of each span of the window's runs: the highest version of every (trace_id,
# span_id), as FINAL would merge it (a re-priced or re-classified span is a newer version), found
# by a sort of the window's spans instead: FINAL on the time-filtered spans of a 10M-span ledger
# merges every part's range (measured: 2.6x slower for a day of 330k spans).
_LATEST_SPANS = """
SELECT trace_id, span_id, version, call_role, status_code, unpriced_reason, cost_kind, db_system,
       provider, model, price_source, price_entry, price_effective_from,
       cost_usd, cost_input_usd, cost_cache_read_usd, cost_cache_write_usd, cost_output_usd, cost_reasoning_usd,
       cost_request_usd, cost_compute_usd, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
       reasoning_tokens, compute_seconds, duration_ns, gpu_count
FROM {db}.spans
WHERE start_time >= {start:DateTime64(9, 'UTC')} AND start_time <= {span_end:DateTime64(9, 'UTC')}
  AND trace_id IN (SELECT run_id FROM {db}.runs
                   WHERE start_time >= {start:DateTime64(9, 'UTC')} AND start_time < {end:DateTime64(9, 'UTC')}
                   {in_force})
ORDER BY trace_id, span_id, version DESC
LIMIT 1 BY trace_id, span_id
"""

_LAST_END = """
SELECT max(run_end) FROM (
    SELECT argMax(end_time, version) AS run_end FROM {db}.runs
    WHERE start_time >= {start:DateTime64(9, 'UTC')} AND start_time < {end:DateTime64(9, 'UTC')}
    {in_force}
)
"""

_UNPRICED = """
SELECT count() AS calls, sum(toInt64(ifNull(input_tokens, 0))) AS input_tokens,
       sum(toInt64(ifNull(output_tokens, 0))) AS output_tokens
FROM ({latest_spans})
WHERE {unpriced}
"""

# Days with any run row (a cancelled one included): a superset of the days with runs in force,
# enough to skip the queries of empty days.
_RUN_DAYS = """
SELECT DISTINCT toUnixTimestamp(toStartOfDay(start_time)) AS day FROM {db}.runs
WHERE start_time >= {start:DateTime64(9, 'UTC')} AND start_time < {end:DateTime64(9, 'UTC')}
ORDER BY day
"""

# Billed money of the runs that started in the window (the current true-up shares of issue 13),
# per charge period x provider x model x billing account, with the weakest confidence of the
# cells behind it; money the true-up placed on no run comes apart (unattributed = 1). Shares
# carry the run's start, so billed money falls in the same charge period as the run's charges.
_BILLED_CELLS = """
SELECT toUnixTimestamp({bucket}(run_start)) AS period, provider, model, account, unattributed,
       sum(billed_usd) AS billed_usd,
       min(multiIf(confidence = 'high', 3, confidence = 'medium', 2, 1)) AS confidence_rank
FROM {db}.billing_trueup
WHERE run_start >= {start:DateTime64(9, 'UTC')} AND run_start < {end:DateTime64(9, 'UTC')} AND {current}
GROUP BY period, provider, model, account, unattributed
ORDER BY period, provider, model, account, unattributed
"""

CHARGE_COLUMNS: tuple[str, ...] = (
    "period", "provider", "model", "price_source", "price_entry", "price_effective_from", "workflow_type", "tenant",
    "feature", "team", "cost_center", "environment", "ingest_token", "service", "kind", "rate_num", "rate_den",
    "quantity", "cost", "runs", "calls",
)  # fmt: skip


def _ts(ns: int) -> dt.datetime:
    seconds, rest = divmod(ns, 10**9)
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).replace(microsecond=rest // 1000)


def _window(start_ns: int, end_ns: int) -> dict[str, Any]:
    return {"start": _ts(start_ns), "end": _ts(end_ns)}


def _latest_spans(database: str) -> Fragment:
    return Fragment(render(_LATEST_SPANS, db=database, in_force=RUNS_IN_FORCE))


def run_days(database: str, start_ns: int, end_ns: int) -> Query:
    """UTC days (unix seconds) on which some run of the window started (others need no query)."""
    return Query(render(_RUN_DAYS, db=database), _window(start_ns, end_ns))


def last_run_end(database: str, start_ns: int, end_ns: int) -> Query:
    """The latest end of the runs in force that started in the window (None or the epoch when there
    are none): the spans of those runs started no later, so it bounds the span scan."""
    return Query(render(_LAST_END, db=database, in_force=RUNS_IN_FORCE), _window(start_ns, end_ns))


def has_runs(span_end: Any) -> bool:
    """Whether ``last_run_end`` found runs (an empty max is NULL or the epoch)."""
    return span_end is not None and span_end.timestamp() != 0


def charges(
    database: str, start_ns: int, end_ns: int, granularity: Granularity, span_end: dt.datetime, *, owner_fields: bool
) -> Query:
    """Charge rows (``CHARGE_COLUMNS``) of the runs that started in ``[start_ns, end_ns)``;
    ``span_end``: their ``last_run_end``.

    ``owner_fields``: also split by the runs' ingest token and service (what a billing account
    mapping matches on); otherwise both columns are ''.
    """
    sql = render(
        _CHARGES,
        db=database,
        in_force=RUNS_IN_FORCE,
        latest_spans=_latest_spans(database),
        bucket=BUCKET[granularity],
        owner=Fragment("r.ingest_token, r.service" if owner_fields else "'' AS ingest_token, '' AS service"),
        owner_group=Fragment("r.ingest_token, r.service," if owner_fields else ""),
        owner_order=Fragment("r.ingest_token, r.service" if owner_fields else "1"),
    )
    return Query(sql, {**_window(start_ns, end_ns), "span_end": span_end})


def unpriced(database: str, start_ns: int, end_ns: int, span_end: dt.datetime) -> Query:
    """Counted calls with no price among the window's runs (``spans.UNPRICED_CALL``), with their
    tokens: ``calls``, ``input_tokens``, ``output_tokens``; ``span_end``: the runs' ``last_run_end``."""
    sql = render(_UNPRICED, latest_spans=_latest_spans(database), unpriced=UNPRICED_CALL)
    return Query(sql, {**_window(start_ns, end_ns), "span_end": span_end})


def billed_cells(database: str, start_ns: int, end_ns: int, granularity: Granularity) -> Query:
    """Billed money of the runs that started in ``[start_ns, end_ns)`` (current true-up):
    ``period``, ``provider``, ``model``, ``account``, ``unattributed``, ``billed_usd`` (Decimal),
    ``confidence_rank`` (1 low, 2 medium, 3 high: the weakest cell behind the figure)."""
    sql = render(_BILLED_CELLS, db=database, bucket=BUCKET[granularity], current=billing.current(database))
    return Query(sql, _window(start_ns, end_ns))


# Allocated money (issue 14's allocations in force, netted by sign as ``allocation.IN_FORCE`` does)
# placed by the start of the run it was allocated to, as rollup_alloc_hourly places it (a
# consumer's share no run carries, and money no consumer took, start at their pool period), per
# charge period x pool period x rule version x sub-account; money a pool could not allocate
# (unallocated = 1) stays apart, with no owner.
_ALLOCATED = """
SELECT toUnixTimestamp({bucket}(placed_at)) AS period, pool, period_start_s AS pool_period,
       rule AS rule_version, pool_signal AS signal, left_over AS unallocated, owner,
       CAST(sum(share_usd) AS Decimal(38, 15)) AS amount_usd,
       CAST(sum(share_quantity) AS Decimal(38, 15)) AS quantity,
       toInt64(countIf(run_id != '')) AS runs
FROM
(
    SELECT pool, toUnixTimestamp(period_start) AS period_start_s, run_id, any(rule_version) AS rule,
           any(signal) AS pool_signal, any(unallocated) AS left_over, any(start_time) AS placed_at,
           any(amount_usd) AS share_usd, any(run_quantity) AS share_quantity,
           if(any(unallocated) = 1, '', any({sub})) AS owner
    FROM {db}.allocations
    WHERE start_time >= {start:DateTime64(9, 'UTC')} AND start_time < {end:DateTime64(9, 'UTC')}
    {in_force}
)
GROUP BY period, pool, pool_period, rule_version, signal, unallocated, owner
ORDER BY period, pool, pool_period, unallocated, owner
"""

# The whole amount in force of pool periods (wherever their runs started): the base of a share's
# ratio. Pools and period starts are bound as lists; the caller keeps the pairs it asked for.
_POOL_AMOUNTS = """
SELECT pool, period_start_s, CAST(sum(row_usd) AS Decimal(38, 15)) AS pool_usd
FROM (
    SELECT pool, toUnixTimestamp(period_start) AS period_start_s, any(amount_usd) AS row_usd
    FROM {db}.allocations
    WHERE pool IN {pools:Array(String)}
      AND period_start >= toDateTime({first:Int64}, 'UTC') AND period_start <= toDateTime({last:Int64}, 'UTC')
    {in_force}
)
GROUP BY pool, period_start_s
"""

SUB_ACCOUNTS: tuple[str, ...] = ("team", "tenant")
"""Run attributions an export's sub-account may be (whitelisted identifiers)."""


def allocated(database: str, start_ns: int, end_ns: int, granularity: Granularity, sub_account: str) -> Query:
    """Allocated money placed in ``[start_ns, end_ns)``: ``period``, ``pool``, ``pool_period`` (unix
    seconds), ``rule_version``, ``signal``, ``unallocated``, ``owner`` (the ``sub_account`` value,
    '' when unallocated or unset), ``amount_usd``, ``quantity`` (signal units), ``runs``."""
    if sub_account not in SUB_ACCOUNTS:
        raise ValueError(f"sub-account {sub_account!r} is not one of {', '.join(SUB_ACCOUNTS)}")
    sql = render(
        _ALLOCATED,
        db=database,
        bucket=BUCKET[granularity],
        sub=Fragment(sub_account),
        in_force=ALLOCATIONS_IN_FORCE,
    )
    return Query(sql, _window(start_ns, end_ns))


def pool_amounts(database: str, pools: list[str], first_s: int, last_s: int) -> Query:
    """``pool``, ``period_start_s``, ``pool_usd``: the amount in force of the periods of ``pools``
    starting from ``first_s`` to ``last_s`` (inclusive)."""
    sql = render(_POOL_AMOUNTS, db=database, in_force=ALLOCATIONS_IN_FORCE)
    return Query(sql, {"pools": pools, "first": first_s, "last": last_s})


# Days with any allocation row (a cancelled one included): a superset of the days with allocated
# money in force, which the export reads even when no run started on them (an unallocated period).
_ALLOCATION_DAYS = """
SELECT DISTINCT toUnixTimestamp(toStartOfDay(start_time)) AS day FROM {db}.allocations
WHERE start_time >= {start:DateTime64(9, 'UTC')} AND start_time < {end:DateTime64(9, 'UTC')}
ORDER BY day
"""


def allocation_days(database: str, start_ns: int, end_ns: int) -> Query:
    """UTC days (unix seconds) on which some allocation row of the window is placed."""
    return Query(render(_ALLOCATION_DAYS, db=database), _window(start_ns, end_ns))

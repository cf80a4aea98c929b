-- Daily rollups over a few dimensions, for month-long windows: the hourly rollups carry
-- every run (and call) dimension in their key, so on a ledger whose runs spread over many
-- combinations they hold about one row per run and a 30-day grouping reads millions of
-- rows. These keep only the cuts asked for over long windows: workflow type x tenant for
-- runs, tenant x model x provider for calls. Each is filled by a view on its hourly rollup
-- (an insert into the hourly rollup is summed per day, so they always hold the same
-- partials, merged) and backfilled once from the hourly rows already stored; the view's
-- SELECT and the backfill's are the same text. Runs with an outcome, which the hourly
-- rollups keep as a dimension, become rated_* counts here (the vocabulary's daily sources
-- read them; h.x is the hourly column x, not the sum aliased x). The API answers whole UTC
-- days of a window from these when a query touches only their dimensions; rollup rebuilds
-- work on whole days so both stay in step.


CREATE TABLE IF NOT EXISTS {db}.rollup_runs_daily
(
    day DateTime('UTC'),
    workflow_type LowCardinality(String),
    tenant LowCardinality(String),
    runs SimpleAggregateFunction(sum, Int64),
    successful_runs SimpleAggregateFunction(sum, Int64),
    accepted_runs SimpleAggregateFunction(sum, Int64),
    retry_loop_runs SimpleAggregateFunction(sum, Int64),
    rated_runs SimpleAggregateFunction(sum, Int64),
    calls SimpleAggregateFunction(sum, Int64),
    tool_calls SimpleAggregateFunction(sum, Int64),
    tool_failures SimpleAggregateFunction(sum, Int64),
    errors SimpleAggregateFunction(sum, Int64),
    retries SimpleAggregateFunction(sum, Int64),
    unpriced_calls SimpleAggregateFunction(sum, Int64),
    input_tokens SimpleAggregateFunction(sum, Int64),
    output_tokens SimpleAggregateFunction(sum, Int64),
    cache_read_tokens SimpleAggregateFunction(sum, Int64),
    cache_write_tokens SimpleAggregateFunction(sum, Int64),
    reasoning_tokens SimpleAggregateFunction(sum, Int64),
    payload_bytes SimpleAggregateFunction(sum, Int64),
    latency_ms_sum SimpleAggregateFunction(sum, Int64),
    latency_count SimpleAggregateFunction(sum, Int64),
    cost_usd SimpleAggregateFunction(sum, Decimal(38, 15)),
    reported_cost_usd SimpleAggregateFunction(sum, Decimal(38, 15)),
    latency_ms_q AggregateFunction(quantilesExactWeighted(0.5, 0.95), UInt64, UInt64),
    workflow_types SimpleAggregateFunction(sumMap, Tuple(Array(String), Array(Int64)))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, workflow_type, tenant);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mv_rollup_runs_daily TO {db}.rollup_runs_daily AS
SELECT
    toStartOfDay(hour) AS day, workflow_type, tenant,
    sum(runs) AS runs,
    sum(successful_runs) AS successful_runs,
    sum(accepted_runs) AS accepted_runs,
    sum(retry_loop_runs) AS retry_loop_runs,
    sum(if(outcome != '', h.runs, 0)) AS rated_runs,
    sum(calls) AS calls,
    sum(tool_calls) AS tool_calls,
    sum(tool_failures) AS tool_failures,
    sum(errors) AS errors,
    sum(retries) AS retries,
    sum(unpriced_calls) AS unpriced_calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(payload_bytes) AS payload_bytes,
    sum(latency_ms_sum) AS latency_ms_sum,
    sum(latency_count) AS latency_count,
    CAST(sum(cost_usd) AS Decimal(38, 15)) AS cost_usd,
    CAST(sum(reported_cost_usd) AS Decimal(38, 15)) AS reported_cost_usd,
    quantilesExactWeightedMergeState(0.5, 0.95)(latency_ms_q) AS latency_ms_q,
    sumMap(workflow_types) AS workflow_types
FROM {db}.rollup_runs_hourly AS h
GROUP BY day, workflow_type, tenant;

TRUNCATE TABLE IF EXISTS {db}.rollup_runs_daily;

INSERT INTO {db}.rollup_runs_daily
SELECT
    toStartOfDay(hour) AS day, workflow_type, tenant,
    sum(runs) AS runs,
    sum(successful_runs) AS successful_runs,
    sum(accepted_runs) AS accepted_runs,
    sum(retry_loop_runs) AS retry_loop_runs,
    sum(if(outcome != '', h.runs, 0)) AS rated_runs,
    sum(calls) AS calls,
    sum(tool_calls) AS tool_calls,
    sum(tool_failures) AS tool_failures,
    sum(errors) AS errors,
    sum(retries) AS retries,
    sum(unpriced_calls) AS unpriced_calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(payload_bytes) AS payload_bytes,
    sum(latency_ms_sum) AS latency_ms_sum,
    sum(latency_count) AS latency_count,
    CAST(sum(cost_usd) AS Decimal(38, 15)) AS cost_usd,
    CAST(sum(reported_cost_usd) AS Decimal(38, 15)) AS reported_cost_usd,
    quantilesExactWeightedMergeState(0.5, 0.95)(latency_ms_q) AS latency_ms_q,
    sumMap(workflow_types) AS workflow_types
FROM {db}.rollup_runs_hourly AS h
GROUP BY day, workflow_type, tenant;

CREATE TABLE IF NOT EXISTS {db}.rollup_calls_daily
(
    day DateTime('UTC'),
    tenant LowCardinality(String),
    model LowCardinality(String),
    provider LowCardinality(String),
    runs SimpleAggregateFunction(sum, Int64),
    runs_by_model SimpleAggregateFunction(sum, Int64),
    runs_by_provider SimpleAggregateFunction(sum, Int64),
    runs_by_agent SimpleAggregateFunction(sum, Int64),
    runs_by_tool SimpleAggregateFunction(sum, Int64),
    runs_by_operation SimpleAggregateFunction(sum, Int64),
    runs_by_payload_band SimpleAggregateFunction(sum, Int64),
    successful_by_model SimpleAggregateFunction(sum, Int64),
    successful_by_provider SimpleAggregateFunction(sum, Int64),
    successful_by_agent SimpleAggregateFunction(sum, Int64),
    successful_by_tool SimpleAggregateFunction(sum, Int64),
    successful_by_operation SimpleAggregateFunction(sum, Int64),
    successful_by_payload_band SimpleAggregateFunction(sum, Int64),
    accepted_by_model SimpleAggregateFunction(sum, Int64),
    accepted_by_provider SimpleAggregateFunction(sum, Int64),
    accepted_by_agent SimpleAggregateFunction(sum, Int64),
    accepted_by_tool SimpleAggregateFunction(sum, Int64),
    accepted_by_operation SimpleAggregateFunction(sum, Int64),
    accepted_by_payload_band SimpleAggregateFunction(sum, Int64),
    rated_by_model SimpleAggregateFunction(sum, Int64),
    rated_by_provider SimpleAggregateFunction(sum, Int64),
    calls SimpleAggregateFunction(sum, Int64),
    tool_calls SimpleAggregateFunction(sum, Int64),
    tool_failures SimpleAggregateFunction(sum, Int64),
    errors SimpleAggregateFunction(sum, Int64),
    retries SimpleAggregateFunction(sum, Int64),
    unpriced_calls SimpleAggregateFunction(sum, Int64),
    input_tokens SimpleAggregateFunction(sum, Int64),
    output_tokens SimpleAggregateFunction(sum, Int64),
    cache_read_tokens SimpleAggregateFunction(sum, Int64),
    cache_write_tokens SimpleAggregateFunction(sum, Int64),
    reasoning_tokens SimpleAggregateFunction(sum, Int64),
    payload_bytes SimpleAggregateFunction(sum, Int64),
    latency_ms_sum SimpleAggregateFunction(sum, Int64),
    latency_count SimpleAggregateFunction(sum, Int64),
    cost_usd SimpleAggregateFunction(sum, Decimal(38, 15)),
    reported_cost_usd SimpleAggregateFunction(sum, Decimal(38, 15)),
    latency_ms_q AggregateFunction(quantilesExactWeightedArray(0.5, 0.95), Array(UInt32), Array(UInt64)),
    workflow_types SimpleAggregateFunction(sumMap, Tuple(Array(String), Array(Int64)))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, tenant, model, provider);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mv_rollup_calls_daily TO {db}.rollup_calls_daily AS
SELECT
    toStartOfDay(hour) AS day, tenant, model, provider,
    sum(runs) AS runs,
    sum(runs_by_model) AS runs_by_model,
    sum(runs_by_provider) AS runs_by_provider,
    sum(runs_by_agent) AS runs_by_agent,
    sum(runs_by_tool) AS runs_by_tool,
    sum(runs_by_operation) AS runs_by_operation,
    sum(runs_by_payload_band) AS runs_by_payload_band,
    sum(successful_by_model) AS successful_by_model,
    sum(successful_by_provider) AS successful_by_provider,
    sum(successful_by_agent) AS successful_by_agent,
    sum(successful_by_tool) AS successful_by_tool,
    sum(successful_by_operation) AS successful_by_operation,
    sum(successful_by_payload_band) AS successful_by_payload_band,
    sum(accepted_by_model) AS accepted_by_model,
    sum(accepted_by_provider) AS accepted_by_provider,
    sum(accepted_by_agent) AS accepted_by_agent,
    sum(accepted_by_tool) AS accepted_by_tool,
    sum(accepted_by_operation) AS accepted_by_operation,
    sum(accepted_by_payload_band) AS accepted_by_payload_band,
    sum(if(outcome != '', h.runs_by_model, 0)) AS rated_by_model,
    sum(if(outcome != '', h.runs_by_provider, 0)) AS rated_by_provider,
    sum(calls) AS calls,
    sum(tool_calls) AS tool_calls,
    sum(tool_failures) AS tool_failures,
    sum(errors) AS errors,
    sum(retries) AS retries,
    sum(unpriced_calls) AS unpriced_calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(payload_bytes) AS payload_bytes,
    sum(latency_ms_sum) AS latency_ms_sum,
    sum(latency_count) AS latency_count,
    CAST(sum(cost_usd) AS Decimal(38, 15)) AS cost_usd,
    CAST(sum(reported_cost_usd) AS Decimal(38, 15)) AS reported_cost_usd,
    quantilesExactWeightedArrayMergeState(0.5, 0.95)(latency_ms_q) AS latency_ms_q,
    sumMap(workflow_types) AS workflow_types
FROM {db}.rollup_calls_hourly AS h
GROUP BY day, tenant, model, provider;

TRUNCATE TABLE IF EXISTS {db}.rollup_calls_daily;

INSERT INTO {db}.rollup_calls_daily
SELECT
    toStartOfDay(hour) AS day, tenant, model, provider,
    sum(runs) AS runs,
    sum(runs_by_model) AS runs_by_model,
    sum(runs_by_provider) AS runs_by_provider,
    sum(runs_by_agent) AS runs_by_agent,
    sum(runs_by_tool) AS runs_by_tool,
    sum(runs_by_operation) AS runs_by_operation,
    sum(runs_by_payload_band) AS runs_by_payload_band,
    sum(successful_by_model) AS successful_by_model,
    sum(successful_by_provider) AS successful_by_provider,
    sum(successful_by_agent) AS successful_by_agent,
    sum(successful_by_tool) AS successful_by_tool,
    sum(successful_by_operation) AS successful_by_operation,
    sum(successful_by_payload_band) AS successful_by_payload_band,
    sum(accepted_by_model) AS accepted_by_model,
    sum(accepted_by_provider) AS accepted_by_provider,
    sum(accepted_by_agent) AS accepted_by_agent,
    sum(accepted_by_tool) AS accepted_by_tool,
    sum(accepted_by_operation) AS accepted_by_operation,
    sum(accepted_by_payload_band) AS accepted_by_payload_band,
    sum(if(outcome != '', h.runs_by_model, 0)) AS rated_by_model,
    sum(if(outcome != '', h.runs_by_provider, 0)) AS rated_by_provider,
    sum(calls) AS calls,
    sum(tool_calls) AS tool_calls,
    sum(tool_failures) AS tool_failures,
    sum(errors) AS errors,
    sum(retries) AS retries,
    sum(unpriced_calls) AS unpriced_calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(payload_bytes) AS payload_bytes,
    sum(latency_ms_sum) AS latency_ms_sum,
    sum(latency_count) AS latency_count,
    CAST(sum(cost_usd) AS Decimal(38, 15)) AS cost_usd,
    CAST(sum(reported_cost_usd) AS Decimal(38, 15)) AS reported_cost_usd,
    quantilesExactWeightedArrayMergeState(0.5, 0.95)(latency_ms_q) AS latency_ms_q,
    sumMap(workflow_types) AS workflow_types
FROM {db}.rollup_calls_hourly AS h
GROUP BY day, tenant, model, provider;

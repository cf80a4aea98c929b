-- Distinct runs at call level as plain sums, one column per call dimension (and the
-- successful / accepted ones), instead of 0003's run_counts map with up to 192 keys a row:
-- that map was most of the ingest cost of the calls rollup and of call-level query time.
-- runs_by_<dim> counts, per rollup row, the runs for which the row is the first breakdown row
-- with its value of <dim> (run_mask bit 2^i for dimension i); grouping by a single call
-- dimension sums it; runs (bit 0) counts each run once. Groupings over two or more call
-- dimensions count distinct runs from the
-- raw run_calls rows instead (exact, slower). The rollup is rebuilt from the stored runs.

ALTER TABLE {db}.rollup_calls_hourly
    ADD COLUMN IF NOT EXISTS runs SimpleAggregateFunction(sum, Int64),
    ADD COLUMN IF NOT EXISTS runs_by_model SimpleAggregateFunction(sum, Int64),
    ADD COLUMN IF NOT EXISTS runs_by_provider SimpleAggregateFunction(sum, Int64),
    ADD COLUMN IF NOT EXISTS runs_by_agent SimpleAggregateFunction(sum, Int64),
    ADD COLUMN IF NOT EXISTS runs_by_tool SimpleAggregateFunction(sum, Int64),
    ADD COLUMN IF NOT EXISTS runs_by_operation SimpleAggregateFunction(sum, Int64),
    ADD COLUMN IF NOT EXISTS runs_by_payload_band SimpleAggregateFunction(sum, Int64),
    ADD COLUMN IF NOT EXISTS successful_by_model SimpleAggregateFunction(sum, Int64),
    ADD COLUMN IF NOT EXISTS successful_by_provider SimpleAggregateFunction(sum, Int64),
    ADD COLUMN IF NOT EXISTS successful_by_agent SimpleAggregateFunction(sum, Int64),
    ADD COLUMN IF NOT EXISTS successful_by_tool SimpleAggregateFunction(sum, Int64),
    ADD COLUMN IF NOT EXISTS successful_by_operation SimpleAggregateFunction(sum, Int64),
    ADD COLUMN IF NOT EXISTS successful_by_payload_band SimpleAggregateFunction(sum, Int64),
    ADD COLUMN IF NOT EXISTS accepted_by_model SimpleAggregateFunction(sum, Int64),
    ADD COLUMN IF NOT EXISTS accepted_by_provider SimpleAggregateFunction(sum, Int64),
    ADD COLUMN IF NOT EXISTS accepted_by_agent SimpleAggregateFunction(sum, Int64),
    ADD COLUMN IF NOT EXISTS accepted_by_tool SimpleAggregateFunction(sum, Int64),
    ADD COLUMN IF NOT EXISTS accepted_by_operation SimpleAggregateFunction(sum, Int64),
    ADD COLUMN IF NOT EXISTS accepted_by_payload_band SimpleAggregateFunction(sum, Int64);

DROP VIEW IF EXISTS {db}.mv_rollup_calls;

ALTER TABLE {db}.rollup_calls_hourly DROP COLUMN IF EXISTS run_counts;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mv_rollup_calls_v2 TO {db}.rollup_calls_hourly AS
SELECT
    toStartOfHour(start_time) AS hour,
    model, provider, agent, tool, operation, payload_band,
    workflow_type, service, environment, tenant, customer, feature, team, cost_center, product,
    prompt_version, status, outcome,
    sum(toInt64(sign) * bitTest(run_mask, 0)) AS runs,
    sum(toInt64(sign) * bitTest(run_mask, 1)) AS runs_by_model,
    sum(toInt64(sign) * bitTest(run_mask, 2)) AS runs_by_provider,
    sum(toInt64(sign) * bitTest(run_mask, 4)) AS runs_by_agent,
    sum(toInt64(sign) * bitTest(run_mask, 8)) AS runs_by_tool,
    sum(toInt64(sign) * bitTest(run_mask, 16)) AS runs_by_operation,
    sum(toInt64(sign) * bitTest(run_mask, 32)) AS runs_by_payload_band,
    sum(toInt64(sign) * bitTest(run_mask, 1) * successful) AS successful_by_model,
    sum(toInt64(sign) * bitTest(run_mask, 2) * successful) AS successful_by_provider,
    sum(toInt64(sign) * bitTest(run_mask, 4) * successful) AS successful_by_agent,
    sum(toInt64(sign) * bitTest(run_mask, 8) * successful) AS successful_by_tool,
    sum(toInt64(sign) * bitTest(run_mask, 16) * successful) AS successful_by_operation,
    sum(toInt64(sign) * bitTest(run_mask, 32) * successful) AS successful_by_payload_band,
    sum(toInt64(sign) * bitTest(run_mask, 1) * accepted) AS accepted_by_model,
    sum(toInt64(sign) * bitTest(run_mask, 2) * accepted) AS accepted_by_provider,
    sum(toInt64(sign) * bitTest(run_mask, 4) * accepted) AS accepted_by_agent,
    sum(toInt64(sign) * bitTest(run_mask, 8) * accepted) AS accepted_by_tool,
    sum(toInt64(sign) * bitTest(run_mask, 16) * accepted) AS accepted_by_operation,
    sum(toInt64(sign) * bitTest(run_mask, 32) * accepted) AS accepted_by_payload_band,
    sum(toInt64(sign) * calls) AS calls,
    sum(toInt64(sign) * tool_calls) AS tool_calls,
    sum(toInt64(sign) * tool_failures) AS tool_failures,
    sum(toInt64(sign) * errors) AS errors,
    sum(toInt64(sign) * retries) AS retries,
    sum(toInt64(sign) * unpriced_calls) AS unpriced_calls,
    sum(toInt64(sign) * input_tokens) AS input_tokens,
    sum(toInt64(sign) * output_tokens) AS output_tokens,
    sum(toInt64(sign) * cache_read_tokens) AS cache_read_tokens,
    sum(toInt64(sign) * cache_write_tokens) AS cache_write_tokens,
    sum(toInt64(sign) * reasoning_tokens) AS reasoning_tokens,
    sum(toInt64(sign) * payload_bytes) AS payload_bytes,
    CAST(sum(sign * cost_usd) AS Decimal(38, 15)) AS cost_usd,
    CAST(sum(sign * reported_cost_usd) AS Decimal(38, 15)) AS reported_cost_usd,
    sum(toInt64(sign) * toInt64(arraySum(latencies_ms))) AS latency_ms_sum,
    sum(toInt64(sign) * length(latencies_ms)) AS latency_count,
    quantilesExactWeightedArrayState(0.5, 0.95)(
        latencies_ms, arrayWithConstant(length(latencies_ms), toUInt64(sign))) AS latency_ms_q,
    sumMap([toString(workflow_type)], [toInt64(sign)]) AS workflow_types
FROM {db}.run_calls_feed
GROUP BY hour, model, provider, agent, tool, operation, payload_band, workflow_type, service,
         environment, tenant, customer, feature, team, cost_center, product, prompt_version,
         status, outcome;

TRUNCATE TABLE IF EXISTS {db}.rollup_calls_hourly;

INSERT INTO {db}.run_calls_feed SELECT * FROM {db}.run_calls;

-- Hourly rollups maintained by materialized views from run-level data only (never from
-- raw span inserts): a run enters a rollup when it is emitted, and a re-emission enters
-- as (-1 old, +1 new), so duplicates and late spans stay exact. Sums are signed;
-- quantiles use quantilesExactWeighted with the sign as a UInt64 weight (-1 wraps to
-- 2^64-1 and cancels exactly); distinct counts use signed sumMap keys.
--
-- Each rollup reads a Null-engine "feed" table that an MV copies every runs/run_calls
-- insert into, so a rollup window can be rebuilt by re-inserting stored rows into the
-- feed (otelspend rollups rebuild) without touching the stored runs.

CREATE TABLE IF NOT EXISTS {db}.runs_feed AS {db}.runs ENGINE = Null;
CREATE TABLE IF NOT EXISTS {db}.run_calls_feed AS {db}.run_calls ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mv_runs_feed TO {db}.runs_feed AS
SELECT * FROM {db}.runs;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mv_run_calls_feed TO {db}.run_calls_feed AS
SELECT * FROM {db}.run_calls;

CREATE TABLE IF NOT EXISTS {db}.rollup_runs_hourly
(
    hour DateTime('UTC'),
    workflow_type LowCardinality(String),
    service LowCardinality(String),
    environment LowCardinality(String),
    tenant LowCardinality(String),
    customer LowCardinality(String),
    feature LowCardinality(String),
    team LowCardinality(String),
    cost_center LowCardinality(String),
    product LowCardinality(String),
    prompt_version LowCardinality(String),
    status LowCardinality(String),
    outcome LowCardinality(String),
    runs SimpleAggregateFunction(sum, Int64),
    successful_runs SimpleAggregateFunction(sum, Int64),
    accepted_runs SimpleAggregateFunction(sum, Int64),
    retry_loop_runs SimpleAggregateFunction(sum, Int64),
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
    cost_usd SimpleAggregateFunction(sum, Decimal(38, 15)),
    reported_cost_usd SimpleAggregateFunction(sum, Decimal(38, 15)),
    latency_ms_sum SimpleAggregateFunction(sum, Int64),
    latency_count SimpleAggregateFunction(sum, Int64),
    latency_ms_q AggregateFunction(quantilesExactWeighted(0.5, 0.95), UInt64, UInt64),
    workflow_types SimpleAggregateFunction(sumMap, Tuple(Array(String), Array(Int64)))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, workflow_type, tenant, feature, customer, environment, service, team, cost_center,
          product, prompt_version, status, outcome);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mv_rollup_runs TO {db}.rollup_runs_hourly AS
SELECT
    toStartOfHour(start_time) AS hour,
    workflow_type, service, environment, tenant, customer, feature, team, cost_center, product,
    prompt_version, status, outcome,
    sum(toInt64(sign)) AS runs,
    sum(toInt64(sign) * (status = 'success')) AS successful_runs,
    sum(toInt64(sign) * (outcome = 'accepted')) AS accepted_runs,
    sum(toInt64(sign) * retry_loop) AS retry_loop_runs,
    sum(toInt64(sign) * llm_calls) AS calls,
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
    CAST(sum(sign * ifNull(cost_usd, toDecimal128(0, 15))) AS Decimal(38, 15)) AS cost_usd,
    CAST(sum(sign * ifNull(reported_cost_usd, toDecimal128(0, 15))) AS Decimal(38, 15)) AS reported_cost_usd,
    sum(toInt64(sign) * toInt64(duration_ms)) AS latency_ms_sum,
    sum(toInt64(sign)) AS latency_count,
    quantilesExactWeightedState(0.5, 0.95)(duration_ms, toUInt64(sign)) AS latency_ms_q,
    sumMap([toString(workflow_type)], [toInt64(sign)]) AS workflow_types
FROM {db}.runs_feed
GROUP BY hour, workflow_type, service, environment, tenant, customer, feature, team, cost_center,
         product, prompt_version, status, outcome;

CREATE TABLE IF NOT EXISTS {db}.rollup_calls_hourly
(
    hour DateTime('UTC'),
    model LowCardinality(String),
    provider LowCardinality(String),
    agent LowCardinality(String),
    tool LowCardinality(String),
    operation LowCardinality(String),
    payload_band LowCardinality(String),
    workflow_type LowCardinality(String),
    service LowCardinality(String),
    environment LowCardinality(String),
    tenant LowCardinality(String),
    customer LowCardinality(String),
    feature LowCardinality(String),
    team LowCardinality(String),
    cost_center LowCardinality(String),
    product LowCardinality(String),
    prompt_version LowCardinality(String),
    status LowCardinality(String),
    outcome LowCardinality(String),
    run_counts SimpleAggregateFunction(sumMap, Tuple(Array(UInt8), Array(Int64))),
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
    cost_usd SimpleAggregateFunction(sum, Decimal(38, 15)),
    reported_cost_usd SimpleAggregateFunction(sum, Decimal(38, 15)),
    latency_ms_sum SimpleAggregateFunction(sum, Int64),
    latency_count SimpleAggregateFunction(sum, Int64),
    latency_ms_q AggregateFunction(quantilesExactWeightedArray(0.5, 0.95), Array(UInt32), Array(UInt64)),
    workflow_types SimpleAggregateFunction(sumMap, Tuple(Array(String), Array(Int64)))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, model, provider, agent, tool, operation, payload_band, workflow_type, tenant, feature,
          customer, environment, service, team, cost_center, product, prompt_version, status, outcome);

-- run_counts keys: subset id s (0..63) counts runs, s+64 successful runs, s+128 accepted runs.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mv_rollup_calls TO {db}.rollup_calls_hourly AS
SELECT
    toStartOfHour(start_time) AS hour,
    model, provider, agent, tool, operation, payload_band,
    workflow_type, service, environment, tenant, customer, feature, team, cost_center, product,
    prompt_version, status, outcome,
    sumMap(run_keys, arrayWithConstant(length(run_keys), toInt64(sign))) AS run_counts,
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
FROM
(
    SELECT
        *,
        arrayFilter(i -> bitTest(run_mask, i), range(toUInt8(64))) AS subsets,
        arrayConcat(subsets,
                    if(successful = 1, arrayMap(i -> i + 64, subsets), []),
                    if(accepted = 1, arrayMap(i -> i + 128, subsets), [])) AS run_keys
    FROM {db}.run_calls_feed
)
GROUP BY hour, model, provider, agent, tool, operation, payload_band, workflow_type, service,
         environment, tenant, customer, feature, team, cost_center, product, prompt_version,
         status, outcome;

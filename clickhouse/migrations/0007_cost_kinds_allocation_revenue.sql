-- Every cost signal priced, shared costs allocated, revenue beside them (issue 14).
--
-- 1. Spans gain what the normaliser reads for retrieval (db.system.name, db.operation.name)
--    and each priced span's cost_kind (model, retrieval, tool, compute, request, ...). Spans
--    stored before have none: those with a model-call role were model usage.
-- 2. Runs count their priced non-model spans (charges), retrieval queries and GPU time (the
--    allocation signals); breakdown rows carry their cost_kind, and rollup_calls_hourly keys
--    on it, so cost_kind is a call-level dimension of the rollups. Breakdown rows stored
--    before were model calls (calls > 0) or tool executions; the calls rollup is rebuilt from
--    them, as 0004 did.
-- 3. allocations: one row per run (or consumer, or unallocated remainder) per pool and
--    period, VersionedCollapsingMergeTree like runs: a restatement cancels the stored row
--    (sign -1, same version) and writes the new one, so the rollups below move by exact
--    deltas. Rows carry the run's attribution, so allocated money cuts like direct cost.
-- 4. revenue: imported per tenant and/or customer (optionally feature), spread exactly over
--    the days of each line's period; the latest import of a (tenant, customer, feature, day)
--    wins.

ALTER TABLE {db}.spans
    ADD COLUMN IF NOT EXISTS db_system LowCardinality(String),
    ADD COLUMN IF NOT EXISTS db_operation LowCardinality(String),
    ADD COLUMN IF NOT EXISTS cost_kind LowCardinality(String)
        DEFAULT if(call_role IN ('call', 'view', 'aggregate'), 'model', '');

ALTER TABLE {db}.runs
    ADD COLUMN IF NOT EXISTS charges UInt32,
    ADD COLUMN IF NOT EXISTS retrieval_queries UInt32,
    ADD COLUMN IF NOT EXISTS gpu_us UInt64;

ALTER TABLE {db}.runs_feed
    ADD COLUMN IF NOT EXISTS charges UInt32,
    ADD COLUMN IF NOT EXISTS retrieval_queries UInt32,
    ADD COLUMN IF NOT EXISTS gpu_us UInt64;

ALTER TABLE {db}.run_calls
    ADD COLUMN IF NOT EXISTS cost_kind LowCardinality(String) DEFAULT if(calls > 0, 'model', '');

ALTER TABLE {db}.run_calls_feed
    ADD COLUMN IF NOT EXISTS cost_kind LowCardinality(String);

ALTER TABLE {db}.rollup_calls_hourly
    ADD COLUMN IF NOT EXISTS cost_kind LowCardinality(String),
    MODIFY ORDER BY (hour, model, provider, agent, tool, operation, payload_band, workflow_type, tenant, feature,
                     customer, environment, service, team, cost_center, product, prompt_version, status, outcome,
                     cost_kind);

DROP VIEW IF EXISTS {db}.mv_rollup_calls_v2;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mv_rollup_calls_v3 TO {db}.rollup_calls_hourly AS
SELECT
    toStartOfHour(start_time) AS hour,
    model, provider, agent, tool, operation, payload_band,
    workflow_type, service, environment, tenant, customer, feature, team, cost_center, product,
    prompt_version, status, outcome, cost_kind,
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
         status, outcome, cost_kind;

TRUNCATE TABLE IF EXISTS {db}.rollup_calls_hourly;

TRUNCATE TABLE IF EXISTS {db}.rollup_calls_daily;

INSERT INTO {db}.run_calls_feed SELECT * FROM {db}.run_calls;

CREATE TABLE IF NOT EXISTS {db}.allocations
(
    pool LowCardinality(String),
    period_start DateTime('UTC'),
    consumer String,
    run_id String,
    version UInt64,
    sign Int8,
    rule_version LowCardinality(String),
    period LowCardinality(String),
    period_end DateTime('UTC'),
    by LowCardinality(String),
    method LowCardinality(String),
    signal LowCardinality(String),
    cost_kind LowCardinality(String),
    unallocated UInt8,
    start_time DateTime64(9, 'UTC'),
    amount_usd Decimal(38, 15),
    run_quantity Decimal(38, 15),
    consumer_quantity Decimal(38, 15),
    pool_quantity Decimal(38, 15),
    consumer_ratio Decimal(38, 18),
    workflow_type LowCardinality(String),
    workflow_id String CODEC(ZSTD(1)),
    service LowCardinality(String),
    environment LowCardinality(String),
    tenant LowCardinality(String),
    customer LowCardinality(String),
    feature LowCardinality(String),
    user String CODEC(ZSTD(1)),
    team LowCardinality(String),
    cost_center LowCardinality(String),
    product LowCardinality(String),
    prompt_version LowCardinality(String),
    status LowCardinality(String),
    outcome LowCardinality(String),
    written_at DateTime64(3, 'UTC'),
    node LowCardinality(String),
    INDEX idx_start start_time TYPE minmax GRANULARITY 4
)
ENGINE = VersionedCollapsingMergeTree(sign, version)
PARTITION BY toYYYYMM(period_start)
ORDER BY (pool, period_start, consumer, run_id);

CREATE TABLE IF NOT EXISTS {db}.allocations_feed AS {db}.allocations ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mv_allocations_feed TO {db}.allocations_feed AS
SELECT * FROM {db}.allocations;

CREATE TABLE IF NOT EXISTS {db}.rollup_alloc_hourly
(
    hour DateTime('UTC'),
    pool LowCardinality(String),
    cost_kind LowCardinality(String),
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
    allocation_rows SimpleAggregateFunction(sum, Int64),
    allocated_usd SimpleAggregateFunction(sum, Decimal(38, 15)),
    unallocated_usd SimpleAggregateFunction(sum, Decimal(38, 15))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, pool, cost_kind, tenant, customer, feature, workflow_type, environment, service, team,
          cost_center, product, prompt_version, status, outcome);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mv_rollup_alloc TO {db}.rollup_alloc_hourly AS
SELECT
    toStartOfHour(start_time) AS hour,
    pool, cost_kind, workflow_type, service, environment, tenant, customer, feature, team, cost_center,
    product, prompt_version, status, outcome,
    sum(toInt64(sign)) AS allocation_rows,
    CAST(sum(sign * amount_usd) AS Decimal(38, 15)) AS allocated_usd,
    CAST(sum(sign * unallocated * amount_usd) AS Decimal(38, 15)) AS unallocated_usd
FROM {db}.allocations_feed
GROUP BY hour, pool, cost_kind, workflow_type, service, environment, tenant, customer, feature, team,
         cost_center, product, prompt_version, status, outcome;

CREATE TABLE IF NOT EXISTS {db}.rollup_alloc_daily
(
    day DateTime('UTC'),
    pool LowCardinality(String),
    cost_kind LowCardinality(String),
    tenant LowCardinality(String),
    customer LowCardinality(String),
    feature LowCardinality(String),
    workflow_type LowCardinality(String),
    allocation_rows SimpleAggregateFunction(sum, Int64),
    allocated_usd SimpleAggregateFunction(sum, Decimal(38, 15)),
    unallocated_usd SimpleAggregateFunction(sum, Decimal(38, 15))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, pool, cost_kind, tenant, customer, feature, workflow_type);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mv_rollup_alloc_daily TO {db}.rollup_alloc_daily AS
SELECT
    toStartOfDay(hour) AS day, pool, cost_kind, tenant, customer, feature, workflow_type,
    sum(allocation_rows) AS allocation_rows,
    CAST(sum(allocated_usd) AS Decimal(38, 15)) AS allocated_usd,
    CAST(sum(unallocated_usd) AS Decimal(38, 15)) AS unallocated_usd
FROM {db}.rollup_alloc_hourly
GROUP BY day, pool, cost_kind, tenant, customer, feature, workflow_type;

CREATE TABLE IF NOT EXISTS {db}.revenue
(
    day Date,
    tenant LowCardinality(String),
    customer LowCardinality(String),
    feature LowCardinality(String),
    amount_usd Decimal(38, 15),
    line_start Date,
    line_end Date,
    line_amount_usd Decimal(38, 15),
    source String,
    imported_at DateTime64(3, 'UTC'),
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, customer, feature, day);

-- Runs: one per trace. Emitted when a run closes and re-emitted when a late span, a
-- duplicate view or an outcome changes it: the previous row is cancelled (sign = -1, same
-- version) and the new one inserted (sign = +1, newer version) in one block. Every
-- materialized view therefore sees exact deltas, and FINAL shows the current run.
CREATE TABLE IF NOT EXISTS {db}.runs
(
    run_id String,
    version UInt64,
    sign Int8,
    start_time DateTime64(9, 'UTC'),
    end_time DateTime64(9, 'UTC'),
    duration_ms UInt64,
    complete UInt8,
    status LowCardinality(String),
    status_message String CODEC(ZSTD(3)),
    root_span_id String,
    root_name LowCardinality(String),
    service LowCardinality(String),
    workflow_id String CODEC(ZSTD(1)),
    workflow_type LowCardinality(String),
    tenant LowCardinality(String),
    customer LowCardinality(String),
    feature LowCardinality(String),
    user String CODEC(ZSTD(1)),
    environment LowCardinality(String),
    prompt_version LowCardinality(String),
    team LowCardinality(String),
    cost_center LowCardinality(String),
    product LowCardinality(String),
    owner LowCardinality(String),
    ingest_token LowCardinality(String),
    outcome LowCardinality(String),
    outcome_score Nullable(Float64),
    outcome_label String,
    outcome_source LowCardinality(String),
    spans UInt32,
    llm_calls UInt32,
    duplicate_views UInt32,
    tool_calls UInt32,
    tool_failures UInt32,
    agent_invocations UInt32,
    errors UInt32,
    retries UInt32,
    retry_loop UInt8,
    input_tokens UInt64,
    output_tokens UInt64,
    cache_read_tokens UInt64,
    cache_write_tokens UInt64,
    reasoning_tokens UInt64,
    payload_bytes UInt64,
    cost_usd Nullable(Decimal(38, 15)),
    reported_cost_usd Nullable(Decimal(38, 15)),
    priced_calls UInt32,
    unpriced_calls UInt32,
    models Array(LowCardinality(String)),
    providers Array(LowCardinality(String)),
    agents Array(LowCardinality(String)),
    tools Array(LowCardinality(String)),
    written_at DateTime64(3, 'UTC'),
    node LowCardinality(String),
    INDEX idx_start start_time TYPE minmax GRANULARITY 4,
    INDEX idx_written written_at TYPE minmax GRANULARITY 4
)
ENGINE = VersionedCollapsingMergeTree(sign, version)
PARTITION BY toYYYYMM(start_time)
ORDER BY run_id;

-- The exact breakdown of each run by (model, provider, agent, tool, operation, payload
-- band), carrying the run's attribution so cross-dimension rollups (tenant x model,
-- tool x workflow, ...) are sums, not estimates. run_mask bit s marks the first row of
-- the run among rows sharing the same projection onto call-dimension subset s, so the
-- number of distinct runs of any grouping is a plain sum.
CREATE TABLE IF NOT EXISTS {db}.run_calls
(
    run_id String,
    version UInt64,
    sign Int8,
    start_time DateTime64(9, 'UTC'),
    model LowCardinality(String),
    provider LowCardinality(String),
    agent LowCardinality(String),
    tool LowCardinality(String),
    operation LowCardinality(String),
    payload_band LowCardinality(String),
    workflow_id String CODEC(ZSTD(1)),
    workflow_type LowCardinality(String),
    service LowCardinality(String),
    environment LowCardinality(String),
    tenant LowCardinality(String),
    customer LowCardinality(String),
    feature LowCardinality(String),
    user String CODEC(ZSTD(1)),
    prompt_version LowCardinality(String),
    team LowCardinality(String),
    cost_center LowCardinality(String),
    product LowCardinality(String),
    owner LowCardinality(String),
    status LowCardinality(String),
    outcome LowCardinality(String),
    run_mask UInt64,
    successful UInt8,
    accepted UInt8,
    calls UInt32,
    errors UInt32,
    retries UInt32,
    tool_calls UInt32,
    tool_failures UInt32,
    unpriced_calls UInt32,
    input_tokens UInt64,
    output_tokens UInt64,
    cache_read_tokens UInt64,
    cache_write_tokens UInt64,
    reasoning_tokens UInt64,
    payload_bytes UInt64,
    cost_usd Decimal(38, 15),
    reported_cost_usd Decimal(38, 15),
    latencies_ms Array(UInt32),
    written_at DateTime64(3, 'UTC'),
    node LowCardinality(String),
    INDEX idx_start start_time TYPE minmax GRANULARITY 4
)
ENGINE = VersionedCollapsingMergeTree(sign, version)
PARTITION BY toYYYYMM(start_time)
ORDER BY (run_id, model, provider, agent, tool, operation, payload_band);

-- Outcomes posted over the API (history kept; the latest by recorded_at wins on the run).
-- Outcomes carried by spans stay on the spans.
CREATE TABLE IF NOT EXISTS {db}.outcomes
(
    run_id String,
    workflow_id String,
    outcome LowCardinality(String),
    score Nullable(Float64),
    label String,
    source LowCardinality(String),
    recorded_at DateTime64(9, 'UTC'),
    received_at DateTime64(3, 'UTC'),
    note String
)
ENGINE = MergeTree
ORDER BY (run_id, recorded_at);

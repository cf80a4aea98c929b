-- Raw spans, one row per (trace_id, span_id). Duplicate deliveries and re-priced rows
-- collapse on merge (ReplacingMergeTree keeps the highest version); read with FINAL.
-- Ordered by trace so a run's spans are one range read; the minmax indexes keep
-- time-window scans (unpriced calls, reprice) to the parts that matter.
CREATE TABLE IF NOT EXISTS {db}.spans
(
    trace_id String CODEC(ZSTD(1)),
    span_id String CODEC(ZSTD(1)),
    parent_span_id String CODEC(ZSTD(1)),
    name LowCardinality(String),
    kind LowCardinality(String),
    start_time DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    end_time DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    duration_ns UInt64 CODEC(T64, ZSTD(1)),
    status_code LowCardinality(String),
    status_message String CODEC(ZSTD(3)),
    service_name LowCardinality(String),
    scope_name LowCardinality(String),
    scope_version LowCardinality(String),
    resource_id UInt64,
    span_class LowCardinality(String),
    operation LowCardinality(String),
    provider LowCardinality(String),
    request_model LowCardinality(String),
    response_model LowCardinality(String),
    model LowCardinality(String),
    input_tokens Nullable(UInt64),
    output_tokens Nullable(UInt64),
    cache_read_tokens Nullable(UInt64),
    cache_write_tokens Nullable(UInt64),
    cache_write_1h_tokens Nullable(UInt64),
    reasoning_tokens Nullable(UInt64),
    total_tokens Nullable(UInt64),
    agent_name LowCardinality(String),
    agent_id String CODEC(ZSTD(1)),
    tool_name LowCardinality(String),
    conversation_id String CODEC(ZSTD(1)),
    response_id String CODEC(ZSTD(1)),
    error_type LowCardinality(String),
    resend_count UInt32,
    retry_count UInt32,
    http_method LowCardinality(String),
    service_tier LowCardinality(String),
    processing LowCardinality(String),
    gpu_count Nullable(Float64),
    compute_seconds Nullable(Float64),
    reported_cost_usd Nullable(Decimal(38, 15)),
    outcome LowCardinality(String),
    outcome_score Nullable(Float64),
    outcome_label String CODEC(ZSTD(1)),
    outcome_time DateTime64(9, 'UTC'),
    workflow_id String CODEC(ZSTD(1)),
    workflow_type LowCardinality(String),
    tenant LowCardinality(String),
    customer LowCardinality(String),
    feature LowCardinality(String),
    user String CODEC(ZSTD(1)),
    environment LowCardinality(String),
    prompt_version LowCardinality(String),
    payload_bytes UInt64,
    ingest_token LowCardinality(String),
    token_note LowCardinality(String),
    cost_usd Nullable(Decimal(38, 15)),
    cost_input_usd Nullable(Decimal(38, 15)),
    cost_output_usd Nullable(Decimal(38, 15)),
    cost_cache_read_usd Nullable(Decimal(38, 15)),
    cost_cache_write_usd Nullable(Decimal(38, 15)),
    cost_reasoning_usd Nullable(Decimal(38, 15)),
    cost_request_usd Nullable(Decimal(38, 15)),
    cost_compute_usd Nullable(Decimal(38, 15)),
    price_source LowCardinality(String),
    price_entry LowCardinality(String),
    price_effective_from LowCardinality(String),
    unpriced_reason LowCardinality(String),
    call_role LowCardinality(String),
    attributes Map(LowCardinality(String), String) CODEC(ZSTD(3)),
    ingested_at DateTime64(3, 'UTC'),
    ingest_node LowCardinality(String),
    version UInt64,
    INDEX idx_start start_time TYPE minmax GRANULARITY 4,
    INDEX idx_ingested ingested_at TYPE minmax GRANULARITY 4
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(start_time)
ORDER BY (trace_id, span_id);

-- Resource attributes are the same for every span of a process: stored once, keyed by hash.
CREATE TABLE IF NOT EXISTS {db}.resources
(
    resource_id UInt64,
    service_name LowCardinality(String),
    attributes Map(LowCardinality(String), String),
    first_seen DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY resource_id;

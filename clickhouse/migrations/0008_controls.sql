-- Spend controls (issue 15): alert history, delivery state, and budgets created over the API.
--
-- alerts: one row per alert event (a firing alert or its resolve event), keyed by the
-- event id the webhooks carry; the same event written again after a restart replaces
-- itself (read with FINAL). payload is the JSON event exactly as delivered.
CREATE TABLE IF NOT EXISTS {db}.alerts
(
    id String,
    incident_id String,
    type LowCardinality(String),
    status LowCardinality(String),
    severity LowCardinality(String),
    control LowCardinality(String),
    time DateTime64(3, 'UTC'),
    title String,
    dimensions Map(LowCardinality(String), String),
    run_id String,
    budget_id String,
    observed String,
    observed_unit LowCardinality(String),
    payload String CODEC(ZSTD(3)),
    node LowCardinality(String),
    recorded_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(recorded_at)
PARTITION BY toYYYYMM(time)
ORDER BY (time, id);

-- alert_deliveries: the latest state of each event x webhook sink (pending, retrying,
-- delivered, failed), one row per attempt; ReplacingMergeTree keeps the newest.
CREATE TABLE IF NOT EXISTS {db}.alert_deliveries
(
    event_id String,
    sink LowCardinality(String),
    status LowCardinality(String),
    attempts UInt32,
    http_status UInt16,
    last_error String,
    next_attempt_at Nullable(DateTime64(3, 'UTC')),
    delivered_at Nullable(DateTime64(3, 'UTC')),
    updated_at DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (event_id, sink);

-- budgets: budgets created, changed (a new version) or deleted (deleted = 1) over
-- /v1/budgets. Budgets from the YAML file are not stored here.
CREATE TABLE IF NOT EXISTS {db}.budgets
(
    id String,
    version UInt64,
    deleted UInt8,
    definition String,
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY id;

-- Provider bills beside the ledger (issue 13): imported billing lines, reconciliation of
-- each day against the ledger, and the optional true-up of billed money over runs.
--
-- billing_lines is append-only and keeps every version of every line: a re-imported file or
-- an export of an overlapping period adds rows with the same identity and a higher
-- import_seq, and readers take the latest version of each identity (LIMIT 1 BY identity),
-- so nothing is counted twice and the restated versions stay as history. A line counts only
-- once its import is recorded in billing_imports, which is written after the last line: a
-- file refused or interrupted half-way is never seen (its rows are deleted, and would be
-- invisible if a crash left them). Bills hold few lines next to spans (per day x model x
-- kind x account), so reading the latest version at query time is cheap and needs no merge
-- to be correct; a ReplacingMergeTree would lose the history on merge.

CREATE TABLE IF NOT EXISTS {db}.billing_imports
(
    import_id String,
    seq UInt64,
    format LowCardinality(String),
    source LowCardinality(String),
    file_name String,
    file_sha256 String,
    account_id String,
    lines UInt64,
    skipped UInt64,
    replaced UInt64,
    period_start DateTime('UTC'),
    period_end DateTime('UTC'),
    billed_usd Decimal(38, 15),
    imported_at DateTime64(3, 'UTC'),
    note String
)
ENGINE = ReplacingMergeTree
ORDER BY import_id;

CREATE TABLE IF NOT EXISTS {db}.billing_lines
(
    identity String,
    import_id String,
    import_seq UInt64,
    format LowCardinality(String),
    provider LowCardinality(String),
    account_id LowCardinality(String),
    project_id LowCardinality(String),
    workspace_id LowCardinality(String),
    api_key_id LowCardinality(String),
    model_billed LowCardinality(String),
    model LowCardinality(String),
    kind LowCardinality(String),
    charge LowCardinality(String),
    period_start DateTime('UTC'),
    period_end DateTime('UTC'),
    quantity Nullable(Decimal(38, 12)),
    unit LowCardinality(String),
    amount Nullable(Decimal(38, 15)),
    currency LowCardinality(String),
    list_amount Nullable(Decimal(38, 15)),
    service_tier LowCardinality(String),
    description String CODEC(ZSTD(1)),
    record String CODEC(ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(period_start)
ORDER BY (provider, period_start, identity, import_seq);

-- Reconciliation results. A day is reconciled as a whole: its cells and true-up shares are
-- written under a new version, then reconciliation_days records that version (written last,
-- the switch readers follow). Older versions are deleted afterwards.
CREATE TABLE IF NOT EXISTS {db}.reconciliation_days
(
    day Date,
    version UInt64,
    computed_at DateTime64(3, 'UTC'),
    cells UInt32,
    trueup UInt8,
    settings String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY day;

-- One row per reconciled cell: period (a day, or an hour where both sides have hours) x
-- provider x model (match key) x mapped account. Ledger tokens by kind beside billed
-- quantities (NULL where the bill states none), calculated and billed money, the variance
-- split by cause (the cause columns add up to variance_usd exactly) and the confidence. A
-- cell whose bill lines state no money (a usage report alone) has NULL billed, variance and
-- causes: it is compared on quantities only.
CREATE TABLE IF NOT EXISTS {db}.reconciliation_cells
(
    day Date,
    version UInt64,
    period_start DateTime('UTC'),
    period_end DateTime('UTC'),
    provider LowCardinality(String),
    model LowCardinality(String),
    model_name LowCardinality(String),
    account LowCardinality(String),
    mapped UInt8,
    allocated UInt8,
    ledger_calls UInt64,
    unpriced_calls UInt64,
    ledger_uncached_input UInt64,
    ledger_cached_input UInt64,
    ledger_cache_write_5m UInt64,
    ledger_cache_write_1h UInt64,
    ledger_output UInt64,
    ledger_requests UInt64,
    billed_uncached_input Nullable(Decimal(38, 12)),
    billed_cached_input Nullable(Decimal(38, 12)),
    billed_cache_write_5m Nullable(Decimal(38, 12)),
    billed_cache_write_1h Nullable(Decimal(38, 12)),
    billed_output Nullable(Decimal(38, 12)),
    billed_requests Nullable(Decimal(38, 12)),
    billed_web_search Nullable(Decimal(38, 12)),
    calculated_usd Decimal(38, 15),
    billed_usd Nullable(Decimal(38, 15)),
    list_usd Nullable(Decimal(38, 15)),
    variance_usd Nullable(Decimal(38, 15)),
    missing_telemetry_usd Nullable(Decimal(38, 15)),
    not_in_bill_usd Nullable(Decimal(38, 15)),
    price_mismatch_usd Nullable(Decimal(38, 15)),
    discount_usd Nullable(Decimal(38, 15)),
    unpriced_in_ledger_usd Nullable(Decimal(38, 15)),
    untagged_usd Nullable(Decimal(38, 15)),
    confidence LowCardinality(String),
    prices String CODEC(ZSTD(1)),
    line_ids Array(String) CODEC(ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, version, provider, model, account, period_start);

-- Charges that are not usage (tax, credits, purchases, adjustments) per day x provider:
-- part of the bill, never of a variance against the ledger.
CREATE TABLE IF NOT EXISTS {db}.reconciliation_other_charges
(
    day Date,
    version UInt64,
    provider LowCardinality(String),
    charge LowCardinality(String),
    billed_usd Decimal(38, 15),
    line_ids Array(String) CODEC(ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, version, provider, charge);

-- The true-up: each matched cell's billed money over the runs behind it, in proportion to
-- their calculated cost in that cell, exact to 1e-15 USD (largest remainder; the shares of a
-- cell add up to its billed amount). Money that matches no run is a row with run_id '' and
-- unattributed = 1. Shares are per run and model as the ledger names it (model; the cell's
-- match key is model_key), and carry the run's attribution, so billed money can be cut by
-- any run dimension, model and provider; run_start places it in the window of the run, as
-- every rollup does.
CREATE TABLE IF NOT EXISTS {db}.billing_trueup
(
    day Date,
    version UInt64,
    run_id String,
    run_start DateTime64(9, 'UTC'),
    period_start DateTime('UTC'),
    provider LowCardinality(String),
    model LowCardinality(String),
    model_key LowCardinality(String),
    account LowCardinality(String),
    unattributed UInt8,
    billed_usd Decimal(38, 15),
    calculated_usd Decimal(38, 15),
    confidence LowCardinality(String),
    line_ids Array(String) CODEC(ZSTD(1)),
    workflow_id String CODEC(ZSTD(1)),
    workflow_type LowCardinality(String),
    tenant LowCardinality(String),
    customer LowCardinality(String),
    feature LowCardinality(String),
    user String CODEC(ZSTD(1)),
    team LowCardinality(String),
    cost_center LowCardinality(String),
    product LowCardinality(String),
    environment LowCardinality(String),
    prompt_version LowCardinality(String),
    service LowCardinality(String),
    status LowCardinality(String),
    outcome LowCardinality(String),
    INDEX idx_run_start run_start TYPE minmax GRANULARITY 4
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, version, run_id, provider, model, account);

"""A read-only subset of the ClickHouse HTTP interface over otelspend's embedded store."""

"""FOCUS export: the ledger's priced calls as FinOps FOCUS 1.2 rows (plus the FOCUS 1.3 columns
that apply), written as CSV or Parquet with bounded memory, and a validator for any FOCUS file."""

"""Provider bills beside the ledger: normalised billing lines (``lines``), one importer per
export format (``importers``), admin-API pulls (``pull``), the account mapping
(``accounts``), reconciliation (``reconcile``, pure) and the optional true-up of billed
money over runs (``trueup``, pure). ``store`` and ``service`` are the I/O edges."""

"""The finance layer: reads the ledger and adds figures beside it, each with its source.

It may import the kernel (``otelspend`` root modules), ``otelspend.enrich`` and
``otelspend.clickhouse``; never the API or the composition root.
"""

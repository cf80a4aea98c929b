"""The pipeline stage: accepted batches -> durable log -> priced rows -> ClickHouse -> runs.

``stage.Pipeline`` owns the bounded ingest queue and the pipeline thread (pricing,
stitching, run emission planning); ``store_writer.StoreWriter`` owns the one thread that
performs store calls in order; ``wal.WriteAheadLog`` makes a request durable before it is
acknowledged; ``emission`` writes runs as exact deltas; ``reprice`` restates history after
a rate-card change; ``recovery`` brings memory back after a crash; ``errors`` classifies a
write-side failure as permanent or retryable, ``quarantine`` keeps what the store refused
for good, ``guard`` keeps a loop alive through one step's error.
"""

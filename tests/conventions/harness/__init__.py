"""The capture harness: run each real GenAI instrumentation against a loopback fake provider
and record what it exports (``make captures``; not part of ``make test``)."""

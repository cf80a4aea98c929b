"""otelspend: an OpenTelemetry-native AI spend ledger."""

__version__ = "0.1.0"

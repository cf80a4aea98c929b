"""Receiver stage: OTLP gRPC/HTTP servers, decoding, normalisation to the canonical span record."""

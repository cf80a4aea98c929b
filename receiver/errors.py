"""One error taxonomy for both transports: permanent vs retryable, mapped to gRPC and HTTP.

https://opentelemetry.io/docs/specs/otlp/#failures — permanent errors are not retried by
exporters; UNAVAILABLE / 503 (with a retry delay) are.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc


@dataclass
class ExportError(Exception):
    """A whole export request refused: the message, and the gRPC status and HTTP code (plus
    Retry-After seconds when retrying helps) each transport answers with.
    """

    message: str
    grpc_code: grpc.StatusCode
    http_status: int
    retry_after_seconds: int | None = None

    def __str__(self) -> str:
        return self.message


def undecodable(message: str) -> ExportError:
    """The body is not an OTLP trace request (INVALID_ARGUMENT / 400): permanent, do not retry."""
    return ExportError(f"undecodable OTLP request: {message}", grpc.StatusCode.INVALID_ARGUMENT, 400)


def too_large(size: int, limit: int) -> ExportError:
    """The body exceeds ``otlp.max_request_bytes`` (RESOURCE_EXHAUSTED / 413)."""
    return ExportError(
        f"request of {size} bytes exceeds the {limit}-byte limit (otlp.max_request_bytes)",
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        413,
    )


def unsupported_media(content_type: str) -> ExportError:
    """Neither protobuf nor JSON (INVALID_ARGUMENT / 415)."""
    return ExportError(
        f"unsupported Content-Type {content_type!r}: use application/x-protobuf or application/json",
        grpc.StatusCode.INVALID_ARGUMENT,
        415,
    )


def unauthenticated() -> ExportError:
    """No valid ingest bearer token (UNAUTHENTICATED / 401)."""
    return ExportError(
        "missing or unknown bearer token (Authorization: Bearer <ingest token>)",
        grpc.StatusCode.UNAUTHENTICATED,
        401,
    )


def unavailable(reason: str, retry_after: int) -> ExportError:
    """Cannot take spans now (queue full, store not ready): UNAVAILABLE / 503 with Retry-After, retryable."""
    return ExportError(
        f"temporarily unable to accept spans ({reason}); retry after {retry_after}s",
        grpc.StatusCode.UNAVAILABLE,
        503,
        retry_after,
    )

"""One error taxonomy for both transports: permanent vs retryable, mapped to gRPC and HTTP.

https://opentelemetry.io/docs/specs/otlp/#failures — permanent errors are not retried by
exporters; UNAVAILABLE / 503 (with a retry delay) are.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc


@dataclass
class ExportError(Exception):
    message: str
    grpc_code: grpc.StatusCode
    http_status: int
    retry_after_seconds: int | None = None

    def __str__(self) -> str:
        return self.message


def undecodable(message: str) -> ExportError:
    return ExportError(f"undecodable OTLP request: {message}", grpc.StatusCode.INVALID_ARGUMENT, 400)


def too_large(size: int, limit: int) -> ExportError:
    return ExportError(
        f"request of {size} bytes exceeds the {limit}-byte limit (otlp.max_request_bytes)",
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        413,
    )


def unsupported_media(content_type: str) -> ExportError:
    return ExportError(
        f"unsupported Content-Type {content_type!r}: use application/x-protobuf or application/json",
        grpc.StatusCode.INVALID_ARGUMENT,
        415,
    )


def unauthenticated() -> ExportError:
    return ExportError(
        "missing or unknown bearer token (Authorization: Bearer <ingest token>)",
        grpc.StatusCode.UNAUTHENTICATED,
        401,
    )


def unavailable(reason: str, retry_after: int) -> ExportError:
    return ExportError(
        f"temporarily unable to accept spans ({reason}); retry after {retry_after}s",
        grpc.StatusCode.UNAVAILABLE,
        503,
        retry_after,
    )

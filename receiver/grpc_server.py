"""OTLP/gRPC: ``opentelemetry.proto.collector.trace.v1.TraceService/Export``.

The method is registered with no request deserializer, so the handler gets the raw
(already gzip-decoded) bytes: they go to the write-ahead log as received and are decoded
once. grpcio enforces ``max_receive_message_length`` (RESOURCE_EXHAUSTED above it).
UNAVAILABLE carries a ``google.rpc.RetryInfo`` so OTLP exporters wait as told.
"""

from __future__ import annotations

import collections
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from otelspend.receiver.errors import ExportError
from otelspend.receiver.ingest import Ingest

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


class _Status(collections.namedtuple("_Status", ("code", "details", "trailing_metadata")), grpc.Status):
    pass


class OtlpGrpcServer:
    """The OTLP/gRPC trace service (``TraceService/Export``) over one :class:`Ingest`; raw request
    bytes go to the ingest (decoded there, salvaging what the protobuf parser refuses).
    """

    def __init__(self, ingest: Ingest, address: str, *, max_request_bytes: int, workers: int) -> None:
        self.ingest = ingest
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="otlp-grpc"),
            options=[
                ("grpc.max_receive_message_length", max_request_bytes),
                ("grpc.max_send_message_length", 4 * 1024 * 1024),
                ("grpc.so_reuseport", 0),
            ],
            maximum_concurrent_rpcs=workers * 4,
        )
        handler: grpc.RpcMethodHandler[bytes, ExportTraceServiceResponse] = grpc.unary_unary_rpc_method_handler(
            self._export,
            request_deserializer=None,
            response_serializer=ExportTraceServiceResponse.SerializeToString,
        )
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),))
        host = address.rpartition(":")[0]
        self.port = self._server.add_insecure_port(address)
        if self.port == 0:
            raise OSError(f"cannot listen on {address} for OTLP/gRPC")
        self.address = f"{host}:{self.port}"

    def start(self) -> None:
        """Start serving on the bound port."""
        self._server.start()

    def shutdown(self, grace_seconds: float = 5.0) -> None:
        """Stop taking requests, let in-flight ones finish. Safe to call twice."""
        self._server.stop(grace_seconds).wait()

    def _export(self, request: bytes, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        metadata = dict(context.invocation_metadata())
        try:
            authorization = metadata.get("authorization")  # bytes only for "-bin" keys
            token = self.ingest.authenticate(authorization if isinstance(authorization, str) else None)
            result = self.ingest.export(request, json_body=False, token=token, transport="grpc")
        except ExportError as exc:
            context.abort_with_status(_status(exc))
            raise AssertionError("unreachable") from None
        response = ExportTraceServiceResponse()
        if result.rejected:
            response.partial_success.rejected_spans = result.rejected
            response.partial_success.error_message = result.message
        return response


def _status(exc: ExportError) -> Any:
    trailing: tuple[tuple[str, bytes], ...] = ()
    if exc.retry_after_seconds is not None:
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=exc.retry_after_seconds)))
        status = status_pb2.Status(code=exc.grpc_code.value[0], message=exc.message, details=[detail])
        trailing = (("grpc-status-details-bin", status.SerializeToString()),)
    return _Status(exc.grpc_code, exc.message, trailing)

"""The OTLP contract, both transports, against the real server and real chDB."""

from __future__ import annotations

import gzip
import json

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otelspend.clickhouse.migrate import load_migrations
from tests import canary
from tests.conftest import wait_for
from tests.otlp import request, span

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PROTOBUF = {"content-type": "application/x-protobuf"}


def grpc_export(server, payload: bytes, metadata=None):
    """``metadata`` None: the server's own ingest token (the canary), if it takes one."""
    metadata = tuple(server.ingest_headers.items()) if metadata is None else metadata
    with grpc.insecure_channel(server.grpc_endpoint) as channel:
        call = channel.unary_unary(
            EXPORT, request_serializer=None, response_deserializer=ExportTraceServiceResponse.FromString
        )
        return call(payload, metadata=metadata, timeout=10)


def chat(tokens: int = 100, **attrs):
    return span(
        attrs={
            "gen_ai.provider.name": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": tokens,
            "gen_ai.usage.output_tokens": 10,
            **attrs,
        }
    )


def stored(server) -> int:
    server.wait_idle()
    return server.scalar("SELECT count() FROM {db}.spans FINAL")


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_gzip_with_the_official_exporters(server, transport):
    if transport == "grpc":
        exporter = GrpcExporter(endpoint=server.grpc_endpoint, insecure=True, compression=grpc.Compression.Gzip)
    else:
        exporter = HttpExporter(endpoint=f"{server.http_url}/v1/traces", compression=HttpCompression.Gzip)
    provider = TracerProvider(resource=Resource.create({"service.name": "gz"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("chat") as current:
        current.set_attributes(
            {"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 5, "gen_ai.usage.output_tokens": 1}
        )
    provider.shutdown()
    assert stored(server) == 1
    assert server.scalar("SELECT cost_usd > 0 FROM {db}.spans FINAL") == 1


def test_otlp_json_over_http(server):
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "manual"},
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "chat gpt-4o",
                                "kind": "SPAN_KIND_CLIENT",
                                "startTimeUnixNano": str(__import__("time").time_ns()),
                                "endTimeUnixNano": str(__import__("time").time_ns() + 1_000_000),
                                "attributes": [
                                    {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "2000"}},
                                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 100}},
                                ],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    response = httpx.post(
        f"{server.http_url}/v1/traces", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}
    assert stored(server) == 1
    row = server.dicts("SELECT trace_id, span_id, kind, service_name, input_tokens, cost_usd FROM {db}.spans FINAL")[0]
    assert row["trace_id"] == "5b8efff798038103d269b633813fc60c" and row["span_id"] == "eee19b7ec3c1b174"
    assert (row["kind"], row["service_name"], row["input_tokens"]) == ("CLIENT", "json-svc", 2000)
    assert str(row["cost_usd"]) == "0.006000000000000"  # gpt-4o: 2000 x $2.50 + 100 x $10 per MTok


def test_partial_success_keeps_the_valid_spans_http(server):
    payload = request([chat(), chat(tokens=-3), chat()]).SerializeToString()
    response = httpx.post(f"{server.http_url}/v1/traces", content=payload, headers=PROTOBUF)
    assert response.status_code == 200
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert "gen_ai.usage.input_tokens=-3" in answer.partial_success.error_message
    assert stored(server) == 2


def test_partial_success_keeps_the_valid_spans_grpc(server):
    payload = request([chat(), span(trace_id=b"\x00" * 16)]).SerializeToString()
    answer = grpc_export(server, payload)
    assert answer.partial_success.rejected_spans == 1
    assert "trace_id" in answer.partial_success.error_message
    assert stored(server) == 1


def test_undecodable_body(server):
    response = httpx.post(f"{server.http_url}/v1/traces", content=b"\xff" * 32, headers=PROTOBUF)
    assert response.status_code == 400
    status = status_pb2.Status.FromString(response.content)
    assert "undecodable" in status.message
    with pytest.raises(grpc.RpcError) as info:
        grpc_export(server, b"\xff" * 32)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    json_response = httpx.post(
        f"{server.http_url}/v1/traces", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert json_response.status_code == 400 and "undecodable" in json_response.json()["message"]


def test_corrupt_gzip_is_a_400(server):
    response = httpx.post(
        f"{server.http_url}/v1/traces",
        content=b"\x1f\x8b\x08\x00garbage",
        headers={**PROTOBUF, "content-encoding": "gzip"},
    )
    assert response.status_code == 400


def test_oversized_body(start_server):
    server = start_server(otlp={"max_request_bytes": 4096})
    big = request([chat(**{"note": "x" * 10_000})]).SerializeToString()
    response = httpx.post(f"{server.http_url}/v1/traces", content=big, headers=PROTOBUF)
    assert response.status_code == 413
    bomb = gzip.compress(b"\x00" * 100_000)  # small on the wire, large once inflated
    response = httpx.post(
        f"{server.http_url}/v1/traces", content=bomb, headers={**PROTOBUF, "content-encoding": "gzip"}
    )
    assert response.status_code == 413
    with pytest.raises(grpc.RpcError) as info:
        grpc_export(server, big)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert stored(server) == 0


def test_unsupported_media_type_and_wrong_method_and_path(server):
    assert (
        httpx.post(f"{server.http_url}/v1/traces", content=b"x", headers={"content-type": "text/plain"}).status_code
        == 415
    )
    assert httpx.get(f"{server.http_url}/v1/traces").status_code == 405
    assert httpx.post(f"{server.http_url}/v1/logs", content=b"", headers=PROTOBUF).status_code == 404


def test_langfuse_style_path(server):
    payload = request([chat()]).SerializeToString()
    response = httpx.post(f"{server.http_url}/api/public/otel/v1/traces", content=payload, headers=PROTOBUF)
    assert response.status_code == 200
    assert stored(server) == 1


def test_duplicate_deliveries_are_counted_once(server):
    root = span(name="root", attrs={"workflow.type": "dup"})
    child = chat(tokens=1000)
    child.trace_id = root.trace_id
    child.parent_span_id = root.span_id
    payload = request([child, root]).SerializeToString()
    for _ in range(3):
        httpx.post(f"{server.http_url}/v1/traces", content=payload, headers=PROTOBUF).raise_for_status()
        grpc_export(server, payload)
    assert stored(server) == 2
    assert server.scalar("SELECT count() FROM {db}.runs FINAL") == 1
    assert server.rows("SELECT sum(runs), sum(calls), sum(input_tokens) FROM {db}.rollup_runs_hourly") == [(1, 1, 1000)]
    assert server.rows("SELECT sum(calls), sum(input_tokens) FROM {db}.rollup_calls_hourly") == [(1, 1000)]
    assert server.app.metrics.total("otelspend_spans_duplicate_total") >= 8


def test_store_unavailable_answers_retryable_with_a_delay(server):
    writer = server.app.pipeline.writer
    real_write = writer.write

    def failing_write(*args, **kwargs):
        raise RuntimeError("injected: store down")

    writer.write = failing_write
    try:
        accepted = request([chat()]).SerializeToString()
        assert httpx.post(f"{server.http_url}/v1/traces", content=accepted, headers=PROTOBUF).status_code == 200
        wait_for(lambda: not server.app.pipeline.store_healthy, what="the write to fail")
        payload = request([chat()]).SerializeToString()
        response = httpx.post(f"{server.http_url}/v1/traces", content=payload, headers=PROTOBUF)
        assert response.status_code == 503 and response.headers["retry-after"] == "2"
        assert "store unavailable" in status_pb2.Status.FromString(response.content).message
        with pytest.raises(grpc.RpcError) as info:
            grpc_export(server, payload)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        details = dict(info.value.trailing_metadata())["grpc-status-details-bin"]
        status = status_pb2.Status.FromString(details)
        retry = error_details_pb2.RetryInfo()
        assert status.details[0].Unpack(retry) and retry.retry_delay.seconds == 2
        assert httpx.get(f"{server.api_url}/readyz").status_code == 503
    finally:
        writer.write = real_write
    assert stored(server) == 1  # the span acknowledged before the failure is stored once it recovers


def test_ingest_tokens_authenticate_and_are_recorded(start_server):
    server = start_server(otlp={"ingest_tokens": [{"name": "acme-prod", "token": canary.OTHER_TOKEN}]})
    payload = request([chat()]).SerializeToString()
    assert httpx.post(f"{server.http_url}/v1/traces", content=payload, headers=PROTOBUF).status_code == 401
    wrong = {**PROTOBUF, "authorization": f"Bearer {canary.WRONG_TOKEN}"}
    assert httpx.post(f"{server.http_url}/v1/traces", content=payload, headers=wrong).status_code == 401
    with pytest.raises(grpc.RpcError) as info:
        grpc_export(server, payload)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    good = {**PROTOBUF, "authorization": f"Bearer {canary.OTHER_TOKEN}"}
    assert httpx.post(f"{server.http_url}/v1/traces", content=payload, headers=good).status_code == 200
    grpc_export(
        server, request([chat()]).SerializeToString(), metadata=(("authorization", f"Bearer {canary.OTHER_TOKEN}"),)
    )
    assert stored(server) == 2
    assert server.rows("SELECT DISTINCT ingest_token FROM {db}.spans FINAL") == [("acme-prod",)]


def test_restart_on_the_same_data_keeps_data_and_applies_no_migration_twice(start_server, tmp_path):
    first = start_server(database="restart_db", data_dir=tmp_path / "data")
    httpx.post(f"{first.http_url}/v1/traces", content=request([chat()]).SerializeToString(), headers=PROTOBUF)
    assert stored(first) == 1
    first.app.stop()
    second = start_server(database="restart_db", data_dir=tmp_path / "data")
    assert second.scalar("SELECT count() FROM {db}.spans FINAL") == 1
    versions = [m.version for m in load_migrations()]
    assert second.rows("SELECT version, count() FROM {db}.schema_migrations GROUP BY version ORDER BY version") == [
        (version, 1) for version in versions
    ]
    httpx.post(f"{second.http_url}/v1/traces", content=request([chat()]).SerializeToString(), headers=PROTOBUF)
    assert stored(second) == 2


def test_a_batch_the_pipeline_fails_on_stays_in_the_log_and_is_stored_on_the_next_start(start_server, tmp_path):
    first = start_server(database="failed_batch_db", data_dir=tmp_path / "data")
    book = first.app.pipeline.pricing.current
    real = book.price_rows
    calls: list[int] = []

    def fail_once(rows, resources=None):  # a bug in the pipeline, injected once
        calls.append(len(rows))
        if len(calls) == 1:
            raise RuntimeError("injected")
        return real(rows, resources)

    book.price_rows = fail_once
    lost = chat(tokens=7)
    post = httpx.post(f"{first.http_url}/v1/traces", content=request([lost]).SerializeToString(), headers=PROTOBUF)
    assert post.status_code == 200  # durable in the log before the pipeline saw it
    wait_for(lambda: first.app.metrics.total("otelspend_pipeline_errors_total") == 1, 10, "the failure")
    httpx.post(f"{first.http_url}/v1/traces", content=request([chat(tokens=9)]).SerializeToString(), headers=PROTOBUF)
    assert stored(first) == 1  # the server kept serving
    assert first.app.wal.checkpointed < 1  # but never checkpointed past the failed batch
    first.app.stop()

    second = start_server(database="failed_batch_db", data_dir=tmp_path / "data")
    second.wait_idle()
    assert sorted(r[0] for r in second.rows("SELECT input_tokens FROM {db}.spans FINAL")) == [7, 9]

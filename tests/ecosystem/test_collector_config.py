"""The OpenTelemetry Collector configurations, validated structurally (no otelcol-contrib
binary can be installed here: it is on none of the package registries this machine
reaches), plus the one thing that can run: otelspend accepting what the Collector's OTLP
exporter sends (gzip-compressed OTLP/gRPC, with headers).

The key lists below are the documented configuration keys of the components used, as of
otelcol-contrib 0.148.0 (exporterhelper, otlp_grpc exporter, loadbalancing exporter,
memory_limiter and batch processors, file_storage and health_check extensions). A typo in
a config file is an unknown key here, as it is for the Collector, which refuses to start.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otelspend.settings import OtlpSettings, split_address
from tests.ecosystem.conftest import REPO

MAIN = REPO / "otel-collector-config.yaml"
LOADBALANCING = REPO / "otel-collector-loadbalancing.yaml"
CONFIGS = [pytest.param(MAIN, id="main"), pytest.param(LOADBALANCING, id="loadbalancing")]

GRPC_PORT = split_address(OtlpSettings().grpc_address)[1]
HTTP_PORT = split_address(OtlpSettings().http_address)[1]

_RETRY = {"enabled", "initial_interval", "max_interval", "max_elapsed_time", "multiplier", "randomization_factor"}
_QUEUE = {"enabled", "num_consumers", "queue_size", "storage", "sizer", "block_on_overflow", "wait_for_result", "batch"}
_TLS = {"insecure", "insecure_skip_verify", "ca_file", "cert_file", "key_file", "server_name_override"}
_OTLP_GRPC_PLAIN = ("endpoint", "headers", "compression", "timeout", "keepalive", "balancer_name", "auth",
                    "write_buffer_size", "read_buffer_size", "wait_for_ready")  # fmt: skip


def _otlp_grpc_keys(*, with_endpoint: bool) -> dict[str, Any]:
    keys: dict[str, Any] = dict.fromkeys(_OTLP_GRPC_PLAIN)
    keys.update({"tls": _TLS, "retry_on_failure": _RETRY, "sending_queue": _QUEUE})
    if not with_endpoint:
        del keys["endpoint"]  # the loadbalancing exporter sets it from the resolver
    return keys


KNOWN_KEYS: dict[tuple[str, str], Any] = {
    ("receivers", "otlp"): {
        "protocols": {
            "grpc": {"endpoint", "max_recv_msg_size_mib", "tls", "keepalive"},
            "http": {"endpoint", "cors", "tls", "traces_url_path"},
        }
    },
    ("processors", "memory_limiter"): {
        "check_interval", "limit_mib", "spike_limit_mib", "limit_percentage", "spike_limit_percentage"
    },
    ("processors", "batch"): {
        "timeout", "send_batch_size", "send_batch_max_size", "metadata_keys", "metadata_cardinality_limit"
    },
    ("exporters", "otlp_grpc"): _otlp_grpc_keys(with_endpoint=True),
    ("exporters", "loadbalancing"): {
        "routing_key": None,
        "timeout": None,
        "retry_on_failure": _RETRY,
        "sending_queue": _QUEUE,
        "protocol": {"otlp": _otlp_grpc_keys(with_endpoint=False)},
        "resolver": {
            "static": {"hostnames"},
            "dns": {"hostname", "port", "interval", "timeout"},
            "k8s": {"service", "ports", "timeout", "return_hostnames"},
        },
    },
    ("extensions", "health_check"): {"endpoint", "path", "check_collector_pipeline", "tls"},
    ("extensions", "file_storage"): {
        **dict.fromkeys(("directory", "timeout", "create_directory", "fsync", "directory_permissions")),
        "compaction": {
            "on_start", "on_rebound", "directory", "max_transaction_size", "rebound_needed_threshold_mib",
            "rebound_trigger_threshold_mib", "check_interval", "cleanup_on_start",
        },
    },
}  # fmt: skip


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def _type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def _unknown_keys(config: Any, schema: Any, where: str) -> list[str]:
    if schema is None or not isinstance(config, dict):
        return []
    allowed = schema if isinstance(schema, dict) else dict.fromkeys(schema)
    problems = [f"{where}.{key}" for key in config if key not in allowed]
    for key, value in config.items():
        if key in allowed:
            problems += _unknown_keys(value, allowed[key], f"{where}.{key}")
    return problems


@pytest.mark.parametrize("path", CONFIGS)
def test_every_component_is_known_and_spelled_right(path):
    config = _load(path)
    problems = []
    for kind in ("receivers", "processors", "exporters", "extensions"):
        for component_id, body in (config.get(kind) or {}).items():
            schema = KNOWN_KEYS.get((kind, _type(component_id)))
            if schema is None:
                problems.append(f"{kind}.{component_id}: component not used by otelspend's configs")
                continue
            problems += _unknown_keys(body or {}, schema, f"{kind}.{component_id}")
    assert problems == []


@pytest.mark.parametrize("path", CONFIGS)
def test_pipelines_reference_defined_components_in_a_safe_order(path):
    config = _load(path)
    service = config["service"]
    for extension in service["extensions"]:
        assert extension in config["extensions"], extension
    (name,) = service["pipelines"]
    assert name == "traces", "otelspend ingests traces only"
    pipeline = service["pipelines"]["traces"]
    for kind in ("receivers", "processors", "exporters"):
        for component in pipeline[kind]:
            assert component in (config.get(kind) or {}), f"{kind}: {component} is not defined"
    assert pipeline["processors"][0] == "memory_limiter", "memory_limiter must come first"
    assert pipeline["processors"][-1] == "batch"
    # Every defined component is used somewhere (a defined-but-unlisted exporter sends nothing).
    used = set(service["extensions"]) | {c for kind in ("receivers", "processors", "exporters") for c in pipeline[kind]}
    defined = {c for kind in ("receivers", "processors", "exporters", "extensions") for c in config.get(kind) or {}}
    assert defined == used


@pytest.mark.parametrize("path", CONFIGS)
def test_receivers_listen_on_the_otlp_ports_applications_use(path):
    protocols = _load(path)["receivers"]["otlp"]["protocols"]
    assert split_address(protocols["grpc"]["endpoint"]) == ("0.0.0.0", GRPC_PORT)
    assert split_address(protocols["http"]["endpoint"]) == ("0.0.0.0", HTTP_PORT)


@pytest.mark.parametrize("path", CONFIGS)
def test_export_is_retried_from_a_persistent_queue(path):
    config = _load(path)
    pipeline = config["service"]["pipelines"]["traces"]
    (exporter_id,) = pipeline["exporters"]
    exporter = config["exporters"][exporter_id]
    queue, retry = exporter["sending_queue"], exporter["retry_on_failure"]
    assert queue["enabled"] and retry["enabled"]
    assert retry["max_elapsed_time"] == 0, "never drop: retry until otelspend accepts"
    storage = queue["storage"]
    assert _type(storage) == "file_storage" and storage in config["service"]["extensions"]
    assert config["extensions"][storage]["directory"].startswith("/var/lib/otelcol/")


def test_main_config_exports_to_otelspend_grpc_receiver():
    config = _load(MAIN)
    (exporter_id,) = config["service"]["pipelines"]["traces"]["exporters"]
    assert _type(exporter_id) == "otlp_grpc"
    exporter = config["exporters"][exporter_id]
    host, port = split_address(exporter["endpoint"])
    assert (host, port) == ("otelspend", GRPC_PORT)
    assert exporter["tls"]["insecure"] is True and exporter["compression"] == "gzip"


def test_loadbalancing_config_routes_by_trace_id_to_otelspend_replicas():
    config = _load(LOADBALANCING)
    (exporter_id,) = config["service"]["pipelines"]["traces"]["exporters"]
    assert _type(exporter_id) == "loadbalancing"
    exporter = config["exporters"][exporter_id]
    assert exporter["routing_key"] == "traceID"
    assert exporter["protocol"]["otlp"]["sending_queue"]["enabled"] is False, "one queue, in front of the router"
    hostnames = exporter["resolver"]["static"]["hostnames"]
    assert len(hostnames) >= 2 and all(split_address(h)[1] == GRPC_PORT for h in hostnames)
    # The documented DNS alternative names the same port.
    text = LOADBALANCING.read_text()
    assert f"#   port: {GRPC_PORT}" in text and "# dns:" in text


def test_docs_explain_keeping_an_existing_backend():
    for path in (MAIN, LOADBALANCING):
        assert "existing backend" in path.read_text().lower(), path.name
    assert "otel-collector-loadbalancing.yaml" in MAIN.read_text()


def test_otelspend_accepts_what_the_collector_exporter_sends(server):
    """The otlp_grpc exporter's wire format: gzip-compressed OTLP/gRPC, custom headers."""
    from opentelemetry.exporter.otlp.proto.grpc.exporter import Compression

    exporter = OTLPSpanExporter(
        endpoint=server.grpc_endpoint,
        insecure=True,
        compression=Compression.Gzip,
        headers={"x-collector": "otelcol", **server.ingest_headers},
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "via-collector"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("collector-compat")
    with tracer.start_as_current_span("POST /ask") as root:
        root.set_attribute("workflow.type", "collector_check")
        with tracer.start_as_current_span("chat gpt-4o-mini") as call:
            call.set_attributes({"gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat",
                                 "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 1000,
                                 "gen_ai.usage.output_tokens": 10})  # fmt: skip
    provider.force_flush()
    provider.shutdown()
    deadline = time.monotonic() + 30
    while server.scalar("SELECT count() FROM {db}.runs FINAL WHERE service = 'via-collector'") != 1:
        assert time.monotonic() < deadline, "the gzip-compressed export was not stored"
        time.sleep(0.1)
    cost = server.scalar("SELECT cost_usd FROM {db}.runs FINAL WHERE service = 'via-collector'")
    assert str(cost) == "0.000156000000000"  # 1000 x $0.15 + 10 x $0.60 per MTok

"""Send a planned demo through the official OpenTelemetry SDK, then report what was sent.

``send`` replays ``otelspend.demo`` plans through ``TracerProvider`` +
``BatchSpanProcessor`` + the OTLP exporter (gRPC or HTTP), one provider per service, with
the planned start and end times. Spans are ended children first, so, as with a real SDK,
a run's children reach the receiver before its root. ``post_outcomes`` sends the outcomes
kept off the spans over the REST API, as a review tool would after the fact.

The SDK is imported inside ``send``: it is needed only when a demo actually runs.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from otelspend import __version__
from otelspend.demo import MODELS, PlannedRun, PlannedSpan

OUTCOME_PATHS = ("/v1/runs/{run_id}/outcome",)
"""REST routes ``--api`` posts outcomes to, when the running API publishes one of them."""
QUERY_POLL_SECONDS = 0.25
"""How often ``wait_until_queryable`` asks the API."""
QUERY_WINDOW_DAYS = 365
"""Widest window asked at once (the API caps a window at 400 days)."""
SECOND_NS = 10**9
SDK_PACKAGES = "opentelemetry-sdk opentelemetry-exporter-otlp-proto-grpc opentelemetry-exporter-otlp-proto-http"


@dataclass
class SendResult:
    """What the exporters reported: spans the receiver acknowledged, and failed exports."""

    exported_spans: int = 0
    failed_spans: int = 0
    failed_batches: int = 0


def grpc_target(endpoint: str) -> str:
    """``http://host:4317`` or ``host:4317`` -> ``host:4317`` (what the gRPC exporter dials)."""
    return endpoint.split("://", 1)[-1].rstrip("/")


def http_traces_url(endpoint: str) -> str:
    """``host:4318`` or ``http://host:4318`` -> ``http://host:4318/v1/traces``."""
    url = endpoint if "://" in endpoint else f"http://{endpoint}"
    url = url.rstrip("/")
    return url if url.endswith("/v1/traces") else f"{url}/v1/traces"


def send(
    plans: Sequence[PlannedRun],
    endpoint: str,
    protocol: str = "grpc",
    *,
    headers: Mapping[str, str] | None = None,
    timeout_seconds: float = 10.0,
) -> SendResult:
    """Emit every planned span through the OpenTelemetry SDK and flush.

    One TracerProvider per service (its ``service.name`` resource), each with a
    BatchSpanProcessor sized to hold the whole plan so nothing is dropped, and the OTLP
    exporter of ``protocol``. Returns once every processor has flushed and shut down.
    """
    sdk = _load_sdk()
    result = SendResult()
    total = sum(len(plan.spans()) for plan in plans)
    providers: dict[str, Any] = {}
    for plan in plans:
        provider = providers.get(plan.service)
        if provider is None:
            exporter = _counting_exporter(_exporter(protocol, endpoint, headers, timeout_seconds), result)
            provider = providers[plan.service] = _provider(sdk, plan.service, exporter, queue_size=max(2048, total + 1))
        tracer = provider.get_tracer("otelspend.demo", __version__)
        root = _emit(sdk, tracer, plan.root, None)
        plan.run_id = format(root.get_span_context().trace_id, "032x")
    for provider in providers.values():
        provider.force_flush()
        provider.shutdown()
    return result


@dataclass(frozen=True)
class _Sdk:
    """The OpenTelemetry SDK pieces a demo uses, imported when one runs."""

    trace: Any
    resource: Any
    tracer_provider: Any
    batch_processor: Any
    kinds: Mapping[str, Any]
    status: Any
    error: Any


def _load_sdk() -> _Sdk:
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.trace import SpanKind, Status, StatusCode
    except ImportError as exc:  # the SDK is an optional dependency of the server
        raise RuntimeError(
            f"otelspend demo needs the OpenTelemetry SDK and OTLP exporters: pip install {SDK_PACKAGES}"
        ) from exc
    kinds = {"server": SpanKind.SERVER, "client": SpanKind.CLIENT, "internal": SpanKind.INTERNAL}
    return _Sdk(trace, Resource, TracerProvider, BatchSpanProcessor, kinds, Status, StatusCode.ERROR)


def _exporter(protocol: str, endpoint: str, headers: Mapping[str, str] | None, timeout_seconds: float) -> Any:
    """The SDK's OTLP exporter for ``protocol`` (grpc or http)."""
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter(
            endpoint=grpc_target(endpoint), insecure=True, headers=dict(headers or {}), timeout=timeout_seconds
        )
    if protocol == "http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        return HttpExporter(endpoint=http_traces_url(endpoint), headers=dict(headers or {}), timeout=timeout_seconds)
    raise ValueError(f"protocol must be grpc or http, not {protocol!r}")


def _counting_exporter(inner: Any, result: SendResult) -> Any:
    """``inner`` wrapped to count what it reports into ``result``: the demo's exit status depends on it."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class CountingExporter(SpanExporter):
        def export(self, spans: Sequence[Any]) -> Any:
            outcome = inner.export(spans)
            if outcome == SpanExportResult.SUCCESS:
                result.exported_spans += len(spans)
            else:
                result.failed_spans += len(spans)
                result.failed_batches += 1
            return outcome

        def shutdown(self) -> None:
            inner.shutdown()

        def force_flush(self, timeout_millis: int = 30_000) -> bool:
            flushed: bool = inner.force_flush(timeout_millis)
            return flushed

    return CountingExporter()


def _provider(sdk: _Sdk, service: str, exporter: Any, *, queue_size: int) -> Any:
    """A TracerProvider for one service, batching into ``exporter`` with room for the whole plan."""
    resource = sdk.resource.create(
        {"service.name": service, "service.version": "2026.11.0", "telemetry.sdk.name": "opentelemetry"}
    )
    provider = sdk.tracer_provider(resource=resource)
    provider.add_span_processor(
        sdk.batch_processor(exporter, max_queue_size=queue_size, max_export_batch_size=512, schedule_delay_millis=200)
    )
    return provider


def _emit(sdk: _Sdk, tracer: Any, node: PlannedSpan, parent: Any) -> Any:
    """Start ``node``, emit its children inside it, add its events and status, end it (children
    end first, so they are exported before their parent, as with a real SDK)."""
    span = tracer.start_span(
        node.name, context=parent, kind=sdk.kinds[node.kind], attributes=node.attributes, start_time=node.start_ns
    )
    context = sdk.trace.set_span_in_context(span)
    for child in node.children:
        _emit(sdk, tracer, child, context)
    for name, attributes, at_ns in node.events:
        span.add_event(name, attributes, timestamp=at_ns)
    if node.error_type:
        span.set_attribute("error.type", node.error_type)
        span.set_status(sdk.status(sdk.error, node.error_type))
    span.end(end_time=node.end_ns)
    return span


def outcome_route(api_url: str, token: str = "", timeout_seconds: float = 5.0) -> str | None:
    """The outcome route the running API publishes in its OpenAPI document, or None."""
    try:
        document = _request("GET", f"{api_url.rstrip('/')}/openapi.json", token, None, timeout_seconds)
    except (OSError, ValueError):
        return None
    paths = document.get("paths", {}) if isinstance(document, dict) else {}
    return next((path for path in OUTCOME_PATHS if "post" in paths.get(path, {})), None)


def post_outcomes(
    plans: Sequence[PlannedRun], api_url: str, route: str, token: str = "", timeout_seconds: float = 10.0
) -> tuple[int, int]:
    """POST the outcomes that were kept off the spans; returns (accepted, failed)."""
    accepted = failed = 0
    for plan in plans:
        if plan.outcome is None or plan.outcome_on_spans:
            continue
        outcome, score = plan.outcome
        if not plan.run_id:
            raise ValueError("post_outcomes needs runs that send() has emitted")
        url = api_url.rstrip("/") + route.replace("{run_id}", plan.run_id)
        body = {"outcome": outcome, "score": score, "label": "human_review"}
        try:
            _request("POST", url, token, body, timeout_seconds)
            accepted += 1
        except (OSError, ValueError):
            failed += 1
    return accepted, failed


@dataclass(frozen=True)
class Queryable:
    """How many of the sent runs the API counted, and how long that took to happen."""

    found: int
    expected: int
    seconds: float

    @property
    def complete(self) -> bool:
        """Whether the API counted every run that was sent."""
        return self.found >= self.expected


def run_window(plans: Sequence[PlannedRun]) -> tuple[int, int]:
    """``[from, to)`` in whole seconds (ns) holding every planned run's start."""
    first = min(plan.root.start_ns for plan in plans) // SECOND_NS * SECOND_NS
    last = max(plan.root.start_ns for plan in plans) // SECOND_NS * SECOND_NS + SECOND_NS
    return first, last


def runs_in_api(api_url: str, window: tuple[int, int], token: str = "", timeout_seconds: float = 5.0) -> int:
    """Runs the API counts as started in ``window`` (``GET /v1/rollups?metrics=runs``).

    Raises ``OSError`` / ``ValueError`` when the API cannot be asked (down, 401, ...).
    """
    total = 0
    start, end = window
    step = QUERY_WINDOW_DAYS * 86_400 * SECOND_NS
    for lo in range(start, end, step):
        query = urllib.parse.urlencode({"metrics": "runs", "from": _rfc3339(lo), "to": _rfc3339(min(lo + step, end))})
        document = _request("GET", f"{api_url.rstrip('/')}/v1/rollups?{query}", token, None, timeout_seconds)
        rows = document.get("rows", []) if isinstance(document, dict) else []
        total += sum(int(row.get("runs") or 0) for row in rows if isinstance(row, dict))
    return total


def wait_until_queryable(
    api_url: str,
    window: tuple[int, int],
    *,
    expected: int,
    before: int,
    token: str = "",
    timeout_seconds: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Queryable:
    """Poll until the API counts ``expected`` more runs in ``window`` than ``before``, or
    ``timeout_seconds`` pass (runs are stored once they settle: ``runs.settle_seconds``)."""
    started = clock()
    while True:
        found = runs_in_api(api_url, window, token) - before
        waited = clock() - started
        if found >= expected or waited >= timeout_seconds:
            return Queryable(min(found, expected), expected, waited)
        sleep(QUERY_POLL_SECONDS)


def _rfc3339(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns // SECOND_NS, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _request(method: str, url: str, token: str, body: Any, timeout_seconds: float) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:
            payload = response.read()
    except urllib.error.HTTPError as exc:
        raise ValueError(f"{method} {url}: HTTP {exc.code}") from exc
    return json.loads(payload) if payload else None


# -- summary --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanSummary:
    """Facts about a plan, counted the way otelspend counts them."""

    runs: int
    spans: int
    services: int
    calls: int
    failed_calls: int
    unpriced_calls: int
    resends: int
    tool_calls: int
    failed_runs: int
    outcomes: int
    outcomes_for_api: int
    first_start_ns: int
    last_end_ns: int


def summarize(plans: Sequence[PlannedRun]) -> PlanSummary:
    """Count what a plan will send (for the command's report and for tests)."""
    calls = failed = unpriced = resends = tools = 0
    unpriced_models = {m.request_model for m in MODELS.values() if not m.public_price}
    for plan in plans:
        for span in plan.spans():
            operation = span.attributes.get("gen_ai.operation.name")
            if operation == "execute_tool":
                tools += 1
            elif span.kind == "client":
                calls += 1
                failed += bool(span.error_type)
                # Failed attempts on an unpriceable model count too: otelspend cannot tell they were free.
                unpriced += span.attributes.get("gen_ai.request.model") in unpriced_models
                resends += bool(span.attributes.get("http.request.resend_count"))
    return PlanSummary(
        runs=len(plans),
        spans=sum(len(plan.spans()) for plan in plans),
        services=len({plan.service for plan in plans}),
        calls=calls,
        failed_calls=failed,
        unpriced_calls=unpriced,
        resends=resends,
        tool_calls=tools,
        failed_runs=sum(1 for plan in plans if plan.root.error_type),
        outcomes=sum(1 for plan in plans if plan.outcome is not None),
        outcomes_for_api=sum(1 for plan in plans if plan.outcome is not None and not plan.outcome_on_spans),
        first_start_ns=min(plan.root.start_ns for plan in plans),
        last_end_ns=max(plan.root.end_ns for plan in plans),
    )

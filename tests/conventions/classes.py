"""How otelspend's normaliser classifies each captured span (``llm``, ``http``, ``agent``,
``workflow``, ``tool``, ``other``), for test bookkeeping: grouping a library's spans per
provider call needs to know which spans are calls, and frameworks (LangChain chains,
LlamaIndex workflow steps, agent spans) wrap calls in spans that are not."""

from __future__ import annotations

from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource

from otelspend.conventions import load_conventions
from otelspend.receiver.normalize import Normalizer
from otelspend.record import F
from tests.conventions.replay import readable_span, shift_to_now

NORMALIZER = Normalizer(load_conventions())


def normalized(spans: tuple[dict[str, Any], ...], resource: dict[str, Any]) -> dict[str, list[Any]]:
    """span_id -> the normalised row, every span encoded as the OTLP exporter encodes it."""
    shift = shift_to_now(spans)
    sdk_resource = Resource(resource)
    batch = NORMALIZER.normalize(encode_spans([readable_span(s, sdk_resource, shift) for s in spans]))
    assert batch.rejected == 0, batch.error_message
    return {row[F.span_id]: row for row in batch.rows}


def span_classes(spans: tuple[dict[str, Any], ...], resource: dict[str, Any]) -> dict[str, str]:
    return {span_id: row[F.span_class] for span_id, row in normalized(spans, resource).items()}

"""Captured GenAI instrumentation traffic: the spans a library really exported for one scripted
agent run, and the fake provider's ledger of what it really answered.

Eight files in ``captures/`` are verbatim copies of ``shared/conventions/captures/*.json``
(see ``shared/conventions/README.md`` for how they were recorded); the others were taken by
the capture harness in ``harness/`` (``make captures``), in the same format. Each holds
every span (ids, parent, kind, status, scope, attributes, events, start, duration), the
resource, the ledger (one entry per HTTP request the provider received, failed attempts and
retries included), the package versions and the business keys of each run's root span.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CAPTURES_DIR = Path(__file__).parent / "captures"
APP_SCOPE = "rc.app"
"""Instrumentation scope of the harness's own spans (the agent root and the tool span)."""


@dataclass(frozen=True)
class Capture:
    """One library's captured run."""

    library: str
    family: str
    """Provider client the library instruments: ``openai`` or ``anthropic`` (or ``both``)."""
    versions: dict[str, str]
    resource: dict[str, Any]
    spans: tuple[dict[str, Any], ...]
    ledger: tuple[dict[str, Any], ...]
    runs: tuple[dict[str, Any], ...]

    @property
    def trace_ids(self) -> tuple[str, ...]:
        return tuple(run["trace_id"] for run in self.runs)

    @property
    def service(self) -> str:
        return str(self.resource["service.name"])

    def library_spans(self) -> list[dict[str, Any]]:
        """Spans emitted by instrumentation (not by the application itself), by start time."""
        return sorted((s for s in self.spans if s["scope"]["name"] != APP_SCOPE), key=_start)


def captured_libraries() -> list[str]:
    return sorted(path.stem for path in CAPTURES_DIR.glob("*.json"))


@cache
def load_capture(library: str) -> Capture:
    doc = json.loads((CAPTURES_DIR / f"{library}.json").read_text())
    return Capture(
        library=doc["library"],
        family=doc["family"],
        versions=dict(doc["versions"]),
        resource=dict(doc["resource"]),
        spans=tuple(doc["spans"]),
        ledger=tuple(doc["provider_ledger"]),
        runs=tuple(doc["runs"]),
    )


def end_ns(span: dict[str, Any]) -> int:
    return span["start_unix_nano"] + round(span["duration_ms"] * 1_000_000)


def _start(span: dict[str, Any]) -> int:
    return span["start_unix_nano"]


def call_groups(capture: Capture) -> list[list[dict[str, Any]]]:
    """The library's spans grouped per provider call, in call order.

    A call is seen as one outer library span plus its descendants, another library's
    sibling inside it in time (the provider SDK's span next to Traceloop's) and logfire's
    streaming log-span. Only spans of the run's trace that otelspend classifies as model
    calls or HTTP requests take part: a framework's chain, workflow-step, agent and tool
    spans wrap calls without being one (and LiteLLM writes a call onto the application's own
    span). The scripted runs make calls one after another, so this is unambiguous here; it
    is test bookkeeping, not the product's rule.
    """
    from tests.conventions.classes import span_classes  # imports replay, which imports this module

    classes = span_classes(capture.spans, capture.resource)
    traces = set(capture.trace_ids)
    candidates = sorted(
        (
            s
            for s in capture.spans
            if s["trace_id"] in traces
            and classes[s["span_id"]] in CALL_CLASSES
            and (s["scope"]["name"] != APP_SCOPE or classes[s["span_id"]] == "llm")
        ),
        key=lambda s: (s["start_unix_nano"], -s["duration_ms"]),  # an enclosing span first on a tie
    )
    groups: list[list[dict[str, Any]]] = []
    for span in candidates:
        if span["attributes"].get("gen_ai.operation.name") in NOT_CALLS:
            continue
        if groups and _same_call(groups[-1], span):
            groups[-1].append(span)
        elif classes[span["span_id"]] == "llm":  # an HTTP attempt belongs to a call, never is one
            groups.append([span])
    return groups


def _same_call(group: list[dict[str, Any]], span: dict[str, Any]) -> bool:
    outer = group[0]
    if span["parent_span_id"] in {s["span_id"] for s in group}:
        return True  # nested: the SDK's span, per-attempt HTTP spans
    if any(s["parent_span_id"] == span["span_id"] for s in group):
        return True  # it encloses the group (started in the same clock tick)
    if _is_log_span(span):
        # logfire's streaming summary is a log-span emitted once the stream has been read,
        # after the request span closed: it belongs to that call.
        return True
    # Another library's sibling span within the outer span's time (Traceloop + the SDK).
    return span["scope"]["name"] != outer["scope"]["name"] and end_ns(span) <= end_ns(outer)


CALL_CLASSES = frozenset({"llm", "http"})
NOT_CALLS = frozenset({"invoke_agent", "execute_tool"})
"""Library spans that are not provider calls (a framework's agent and tool spans)."""


def _is_log_span(span: dict[str, Any]) -> bool:
    return span["attributes"].get("logfire.span_type") == "log"

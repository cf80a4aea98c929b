"""Turn decoded OTLP spans into canonical span rows (see ``otelspend.record``).

One pass over each span's attributes, one dict lookup per key against the compiled
convention table; no per-library code and nothing decided by span name or kind. A span
that cannot be stored (bad ids, impossible times, unusable token counts) is rejected on
its own with a reason; the rest of the request is kept (OTLP partial success).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from otelspend.conventions import ConventionTable
from otelspend.receiver.values import MAX_TOKENS as MAX_TOKENS  # re-exported: the limits callers test against
from otelspend.receiver.values import SpanRejected, as_text, attribute_text, content_bytes, convert
from otelspend.record import COLUMN_NAMES, NCOLS, ROW_TEMPLATE, F, SpanRow

MIN_START_NS = 946_684_800 * 10**9  # 2000-01-01T00:00:00Z
MAX_DURATION_NS = 30 * 86_400 * 10**9
FUTURE_SLACK_NS = 86_400 * 10**9
MAX_REPORTED_ERRORS = 5

_KIND_NAMES = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
_STATUS_NAMES = ("UNSET", "OK", "ERROR")
_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
_NO_PRIORITY = 1 << 30
_CONTENT, _JSON, _PLAIN = object(), object(), object()
_MAX_REMEMBERED_KEYS = 20_000
_OUTCOME_COLUMNS = (F.outcome, F.outcome_score, F.outcome_label)

ResourceFacts = tuple[int, str, dict[int, str]]
"""What a span takes from its resource: (resource_id, service.name, business column -> value)."""


@dataclass
class NormalizedBatch:
    """Rows of one export request, ready for pricing and storage."""

    rows: list[SpanRow] = field(default_factory=list)
    resources: dict[int, tuple[str, list[tuple[str, str]]]] = field(default_factory=dict)
    """resource_id -> (service.name, attributes) for resources seen in this batch."""
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, span_id: bytes, reason: str) -> None:
        """Count one span as rejected for ``reason`` (the first few reasons are kept for the answer)."""
        self.rejected += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(f"span {span_id.hex() or '<no id>'}: {reason}")

    @property
    def error_message(self) -> str:
        """The partial-success message: how many spans were rejected and the first reasons ("" if none)."""
        if not self.rejected:
            return ""
        more = self.rejected - len(self.errors)
        tail = f"; and {more} more" if more > 0 else ""
        return f"rejected {self.rejected} span(s): " + "; ".join(self.errors) + tail


@dataclass(frozen=True)
class NormalizeOptions:
    """What the normaliser keeps of each span beyond the mapped columns (see ``otlp`` settings)."""

    keep_content: bool = False
    max_value_chars: int = 4096
    max_attributes: int = 256


class Normalizer:
    """Stateless apart from its compiled table; safe to share between threads."""

    def __init__(self, table: ConventionTable, options: NormalizeOptions | None = None) -> None:
        self.table = table
        self.options = options or NormalizeOptions()
        self._business = frozenset(table.business_columns)
        self._prio_template = [_NO_PRIORITY] * NCOLS
        self._key_kinds: dict[str, tuple[object, str]] = {}
        # Operation -> span class; an operation listed twice takes the first class in this order.
        self._class_of_operation: dict[str, str] = {}
        for operations, span_class in (
            (table.inference_operations, "llm"),
            (table.tool_operations, "tool"),
            (table.agent_operations, "agent"),
            (table.workflow_operations, "workflow"),
        ):
            for operation in operations:
                self._class_of_operation.setdefault(operation, span_class)

    def _key_kind(self, key: str) -> tuple[object, str]:
        """Content, JSON document or plain attribute, and one shared string for the key:
        remembered per key (keys repeat in every span; one copy of each saves memory)."""
        table = self.table
        if key in table.content_keys or key.startswith(table.content_prefixes):
            kind = _CONTENT
        elif key in table.json_fields:
            kind = _JSON
        else:
            kind = _PLAIN
        entry = (kind, key)
        if len(self._key_kinds) < _MAX_REMEMBERED_KEYS:  # bounded: keys may be unbounded (ids in keys)
            self._key_kinds[key] = entry
        return entry

    def normalize(
        self,
        request: ExportTraceServiceRequest,
        *,
        ingest_token: str = "",
        now_ns: int | None = None,
    ) -> NormalizedBatch:
        """Rows for every span of the request; a span that cannot be stored is rejected alone, with
        its reason, and never fails the request. ``now_ns`` fixes the clock (tests).

        """
        batch = NormalizedBatch()
        max_start = (now_ns or time.time_ns()) + FUTURE_SLACK_NS
        for resource_spans in request.resource_spans:
            resource = self._resource(resource_spans.resource, batch)
            for scope_spans in resource_spans.scope_spans:
                scope = scope_spans.scope
                for span in scope_spans.spans:
                    try:
                        row = self._span(span, scope.name, scope.version, resource, max_start)
                    except SpanRejected as exc:
                        batch.reject(bytes(span.span_id), str(exc))
                        continue
                    except Exception as exc:  # never let one span fail the request
                        batch.reject(bytes(span.span_id), f"could not be normalised ({type(exc).__name__})")
                        continue
                    row[F.ingest_token] = ingest_token
                    batch.rows.append(row)
        return batch

    # -- resource -------------------------------------------------------------------------

    def _resource(self, resource: Resource, batch: NormalizedBatch) -> ResourceFacts:
        serialized = resource.SerializeToString(deterministic=True)
        resource_id = int.from_bytes(hashlib.blake2b(serialized, digest_size=8).digest(), "little")
        service = ""
        business: dict[int, tuple[int, str]] = {}
        pairs: list[tuple[str, str]] = []
        rules = self.table.rules
        for kv in resource.attributes:
            text = as_text(kv.value, self.options.max_value_chars)
            if kv.key == "service.name":
                service = text
            for rule in rules.get(kv.key, ()):
                if rule.column in self._business and text:
                    known = business.get(rule.column)
                    if known is None or rule.priority < known[0]:
                        business[rule.column] = (rule.priority, text)
            pairs.append((kv.key, text))
        batch.resources.setdefault(resource_id, (service, pairs))
        return resource_id, service, {col: value for col, (_, value) in business.items()}

    # -- span -----------------------------------------------------------------------------

    def _span(
        self,
        span: Span,
        scope_name: str,
        scope_version: str,
        resource: ResourceFacts,
        max_start: int,
    ) -> SpanRow:
        """One span as a row, in phases: check ids and times, map the attributes through the
        convention table, read events, links and embedded JSON documents, fill the columns the
        span itself carries, then derive model, token normalisation and span class."""
        trace_id, span_id, parent = _checked_ids(span)
        start, end = _checked_times(span, max_start)
        row = ROW_TEMPLATE.copy()
        prio = self._prio_template.copy()
        keys, values, json_docs, payload = self._read_attributes(span.attributes, row, prio)
        if span.events:
            payload += self._events(span, row)
        if span.links:
            self._links(span, row)
        if not row[F.outcome_time] and (row[F.outcome] or row[F.outcome_score] is not None or row[F.outcome_label]):
            row[F.outcome_time] = end  # an outcome attribute is recorded when its span ends
        if json_docs:
            self._json_fields(json_docs, row)
        resource_id, service, resource_business = resource
        for column, value in resource_business.items():
            if not row[column]:
                row[column] = value
        self._own_columns(row, span, start, end)
        row[F.trace_id] = trace_id.hex()
        row[F.span_id] = span_id.hex()
        row[F.parent_span_id] = parent.hex()
        row[F.service_name] = service
        row[F.scope_name] = scope_name
        row[F.scope_version] = scope_version
        row[F.resource_id] = resource_id
        row[F.payload_bytes] = payload
        row[F.attributes] = (keys, values)
        self._derived_columns(row, scope_name, keys, values)
        return row

    def _read_attributes(
        self, attributes: Iterable[KeyValue], row: SpanRow, prio: list[int]
    ) -> tuple[list[str], list[str], list[tuple[str, str]], int]:
        """Map every attribute the convention table knows into its column (the best-ranked key
        wins) and keep the others as text: (kept keys, kept values, JSON documents, content bytes).

        The one loop every attribute of every span goes through: mapped keys, nearly all of
        them, are converted inline; only kept attributes call out (for their text).
        """
        rules_by_key = self.table.rules
        key_kinds = self._key_kinds
        max_chars = self.options.max_value_chars
        max_attributes = self.options.max_attributes
        keep_content = self.options.keep_content
        keys_out: list[str] = []
        values_out: list[str] = []
        json_docs: list[tuple[str, str]] = []
        payload = 0
        rejected: dict[int, tuple[int, SpanRejected]] | None = None
        for kv in attributes:
            key = kv.key
            rules = rules_by_key.get(key)
            if rules is not None:
                value = kv.value
                for rule in rules:
                    column = rule.column
                    if rule.priority < prio[column]:
                        try:
                            converted = convert(value, rule, key)
                        except SpanRejected as exc:
                            # Rejects the span only if no better-ranked key gives the value
                            # (decided after the loop, so attribute order does not matter).
                            rejected = rejected or {}
                            rejected.setdefault(column, (rule.priority, exc))
                            continue
                        if converted is not None:
                            row[column] = converted
                            prio[column] = rule.priority
                continue
            kind, key = key_kinds.get(key) or self._key_kind(key)
            value = kv.value
            if kind is _CONTENT:
                payload += content_bytes(value)
                if not keep_content:
                    continue
            text = attribute_text(value, max_chars)
            if kind is _JSON:
                json_docs.append((key, text))
            if len(keys_out) < max_attributes:
                keys_out.append(key)
                values_out.append(text)
        if rejected:
            _raise_unless_superseded(rejected, prio)
        return keys_out, values_out, json_docs, payload

    def _own_columns(self, row: SpanRow, span: Span, start: int, end: int) -> None:
        """The columns the span carries itself: name, kind, times, status."""
        row[F.name] = span.name
        kind = span.kind
        row[F.kind] = _KIND_NAMES[kind] if 0 <= kind < len(_KIND_NAMES) else "UNSPECIFIED"
        row[F.start_time] = start
        row[F.end_time] = end
        row[F.duration_ns] = end - start
        status = span.status
        code = status.code
        row[F.status_code] = _STATUS_NAMES[code] if 0 <= code < 3 else "UNSET"
        if status.message:
            row[F.status_message] = status.message[: self.options.max_value_chars]

    def _derived_columns(self, row: SpanRow, scope_name: str, keys: list[str], values: list[str]) -> None:
        """Columns decided from the others: model, normalised token counts, error type, span
        class, and a reported cost that cannot be trusted dropped."""
        row[F.model] = row[F.response_model] or row[F.request_model]
        self._normalise_tokens(row, scope_name, keys, values)
        if row[F.error_type].startswith("<class '"):
            row[F.error_type] = _unwrap_class_repr(row[F.error_type])
        row[F.span_class] = self._classify(row)
        if row[F.span_class] == "llm" and self._without_evidence(row, scope_name, keys):
            row[F.span_class] = "other"  # labelled a model call, but nothing was sent (see conventions.yaml)
        reported = row[F.reported_cost_usd]
        if reported is not None and reported == 0 and (row[F.input_tokens] or row[F.output_tokens]):
            # A library without prices reports 0 (openlit offline): a hint we cannot trust.
            row[F.reported_cost_usd] = None

    def _without_evidence(self, row: SpanRow, scope_name: str, keys: list[str]) -> bool:
        """An inference span of a library listed under ``inference_evidence`` that shows no
        provider call (no usage, no failure, none of the evidence keys)."""
        evidence = self.table.inference_evidence.get(scope_name)
        return evidence is not None and row[F.operation] in evidence[0] and not _answered(row, keys, evidence[1])

    def _events(self, span: Span, row: SpanRow) -> int:
        """Read the span's events: an exception's type and message, an evaluation result's
        outcome, and the size of content events; returns the content bytes."""
        payload = 0
        content_events = self.table.content_events
        for event in span.events:
            name = event.name
            if name == "exception":
                self._exception_event(event, row)
            elif name == "gen_ai.evaluation.result":
                self._evaluation_event(event, span.end_time_unix_nano, row)
            elif name in content_events:
                for kv in event.attributes:
                    payload += content_bytes(kv.value)
        if (row[F.outcome] or row[F.outcome_score] is not None) and not row[F.outcome_time]:
            row[F.outcome_time] = span.end_time_unix_nano
        return payload

    def _exception_event(self, event: Span.Event, row: SpanRow) -> None:
        for kv in event.attributes:
            if kv.key == "exception.type" and not row[F.error_type]:
                row[F.error_type] = as_text(kv.value, 256)
            elif kv.key == "exception.message" and not row[F.status_message]:
                row[F.status_message] = as_text(kv.value, self.options.max_value_chars)

    def _evaluation_event(self, event: Span.Event, end: int, row: SpanRow) -> None:
        for kv in event.attributes:
            for rule in self.table.rules.get(kv.key, ()):
                if rule.column in _OUTCOME_COLUMNS:
                    converted = convert(kv.value, rule, kv.key)
                    if converted is not None:
                        row[rule.column] = converted
        at = event.time_unix_nano
        # An event outside its span's life (give or take a day) is a clock error: use the end.
        row[F.outcome_time] = at if MIN_START_NS <= at <= end + FUTURE_SLACK_NS else end

    def _links(self, span: Span, row: SpanRow) -> None:
        """Business keys carried on links fill the ones the span lacks."""
        business = self._business
        for link in span.links:
            for kv in link.attributes:
                for rule in self.table.rules.get(kv.key, ()):
                    if rule.column in business and not row[rule.column]:
                        text = as_text(kv.value, 256)
                        if text:
                            row[rule.column] = text

    def _json_fields(self, docs: list[tuple[str, str]], row: SpanRow) -> None:
        for key, text in docs:
            try:
                doc = json.loads(text)
            except ValueError:
                continue
            if not isinstance(doc, dict):
                continue
            for column, paths in self.table.json_fields[key]:
                if row[column] not in (None, ""):
                    continue
                for path in paths:
                    value: Any = doc
                    for part in path:
                        value = value.get(part) if isinstance(value, dict) else None
                    if value is None or isinstance(value, dict | list):
                        continue
                    if COLUMN_NAMES[column].endswith("_tokens"):
                        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKENS:
                            row[column] = value
                            break
                    elif isinstance(value, str) and value:
                        row[column] = value
                        break

    def _normalise_tokens(self, row: SpanRow, scope: str, keys: list[str], values: list[str]) -> None:
        inp = row[F.input_tokens]
        cache = (row[F.cache_read_tokens] or 0) + (row[F.cache_write_tokens] or 0)
        if inp is not None and cache:
            if scope in self.table.input_excludes_cache_scopes:
                row[F.input_tokens] = inp + cache
                row[F.token_note] = "input excluded cache (library semantics): added cache tokens"
            elif cache > inp:
                row[F.input_tokens] = inp + cache
                row[F.token_note] = "input smaller than cached tokens: treated as excluding cache"
        corrections = self.table.output_corrections.get(scope)
        if corrections and row[F.output_tokens]:
            for attribute, delta in corrections:
                if attribute in keys and values[keys.index(attribute)].lower() in ("true", "1"):
                    row[F.output_tokens] = max(0, row[F.output_tokens] + delta)
                    row[F.token_note] = f"output corrected by {delta} ({scope} {attribute})"
        out = row[F.output_tokens]
        reasoning = row[F.reasoning_tokens]
        if out is not None and reasoning and reasoning > out:
            row[F.output_tokens] = out + reasoning
            row[F.token_note] = "output smaller than reasoning tokens: treated as excluding reasoning"
        write_1h = row[F.cache_write_1h_tokens]
        if write_1h and write_1h > (row[F.cache_write_tokens] or 0):
            row[F.cache_write_tokens] = write_1h

    def _classify(self, row: SpanRow) -> str:
        """The span's class: by its operation, else by what it carries (usage, a tool, HTTP)."""
        span_class = self._class_of_operation.get(row[F.operation])
        if span_class is not None:
            return span_class
        if self.table.retrieval.matches(row[F.operation], row[F.db_system], row[F.db_operation]):
            return "retrieval"  # issue 14: counted once per run as a retrieval query
        if row[F.input_tokens] is not None or row[F.output_tokens] is not None:
            return "llm"
        if row[F.tool_name]:
            return "tool"
        return "http" if row[F.http_method] else "other"


def _answered(row: SpanRow, keys: list[str], evidence: frozenset[str]) -> bool:
    """Whether an inference span shows a provider call: usage, a failure, or an evidence key."""
    if row[F.input_tokens] is not None or row[F.output_tokens] is not None or row[F.status_code] == "ERROR":
        return True
    return any(key in evidence for key in keys)


def _unwrap_class_repr(text: str) -> str:
    """``<class 'openai.RateLimitError'>`` (openai-v2 puts ``str(type(exc))`` in error.type)
    -> ``openai.RateLimitError``, the form the other libraries send."""
    inner = text[len("<class '") :]
    return inner[: -len("'>")] if inner.endswith("'>") else text


def _checked_ids(span: Span) -> tuple[bytes, bytes, bytes]:
    """(trace id, span id, parent id) as bytes, or SpanRejected; an all-zero parent means none."""
    trace_id = span.trace_id
    span_id = span.span_id
    parent = span.parent_span_id
    if len(trace_id) != 16 or trace_id == _ZERO_TRACE:
        raise SpanRejected(f"trace_id must be 16 non-zero bytes (got {len(trace_id)} bytes)")
    if len(span_id) != 8 or span_id == _ZERO_SPAN:
        raise SpanRejected(f"span_id must be 8 non-zero bytes (got {len(span_id)} bytes)")
    if parent and (len(parent) != 8 or parent == _ZERO_SPAN):
        if len(parent) != 8:
            raise SpanRejected(f"parent_span_id must be empty or 8 bytes (got {len(parent)} bytes)")
        parent = b""
    return trace_id, span_id, parent


def _checked_times(span: Span, max_start: int) -> tuple[int, int]:
    """(start, end) in ns, or SpanRejected when they are not a plausible span's."""
    start: int = span.start_time_unix_nano
    end: int = span.end_time_unix_nano
    if start < MIN_START_NS or start > max_start:
        raise SpanRejected(f"start_time_unix_nano {start} is not between year 2000 and tomorrow")
    if end < start:
        raise SpanRejected(f"end_time_unix_nano {end} is before start_time_unix_nano {start}")
    if end - start > MAX_DURATION_NS:
        raise SpanRejected(f"end_time_unix_nano {end} is more than 30 days after start_time_unix_nano {start}")
    return start, end


def _raise_unless_superseded(rejected: Mapping[int, tuple[int, SpanRejected]], prio: list[int]) -> None:
    """A value that could not be converted rejects the span, unless a better-ranked key set its column."""
    for column, (priority, exc) in rejected.items():
        if priority < prio[column]:
            raise exc

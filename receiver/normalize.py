"""Turn decoded OTLP spans into canonical span rows (see ``otelspend.record``).

One pass over each span's attributes, one dict lookup per key against the compiled
convention table; no per-library code and nothing decided by span name or kind. A span
that cannot be stored (bad ids, impossible times, unusable token counts) is rejected on
its own with a reason; the rest of the request is kept (OTLP partial success).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otelspend.conventions import ConventionTable, KeyRule
from otelspend.record import COLUMN_NAMES, FEMTO_PER_USD, NCOLS, ROW_TEMPLATE, F

MAX_TOKENS = 10**9
"""A token count above this in one call is treated as corrupt, not as usage."""
MAX_COUNT = 10**6
MIN_START_NS = 946_684_800 * 10**9  # 2000-01-01T00:00:00Z
MAX_DURATION_NS = 30 * 86_400 * 10**9
MAX_REPORTED_USD = 10**9
"""A reported cost above this for one call is corrupt, not spend (and would not fit the column)."""
MAX_NUMBER_CHARS = 32
FUTURE_SLACK_NS = 86_400 * 10**9
MAX_REPORTED_ERRORS = 5
MAX_NESTING = 8

_KIND_NAMES = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
_STATUS_NAMES = ("UNSET", "OK", "ERROR")
_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
_NO_PRIORITY = 1 << 30
_CONTENT, _JSON, _PLAIN = object(), object(), object()
_MAX_REMEMBERED_KEYS = 20_000


class SpanRejected(ValueError):
    """This span cannot be stored; the message says why."""


@dataclass
class NormalizedBatch:
    """Rows of one export request, ready for pricing and storage."""

    rows: list[list[Any]] = field(default_factory=list)
    resources: dict[int, tuple[str, list[tuple[str, str]]]] = field(default_factory=dict)
    """resource_id -> (service.name, attributes) for resources seen in this batch."""
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, span_id: bytes, reason: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(f"span {span_id.hex() or '<no id>'}: {reason}")

    @property
    def error_message(self) -> str:
        if not self.rejected:
            return ""
        more = self.rejected - len(self.errors)
        tail = f"; and {more} more" if more > 0 else ""
        return f"rejected {self.rejected} span(s): " + "; ".join(self.errors) + tail


@dataclass(frozen=True)
class NormalizeOptions:
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

    def _resource(self, resource: Any, batch: NormalizedBatch) -> tuple[int, str, dict[int, str]]:
        serialized = resource.SerializeToString(deterministic=True)
        resource_id = int.from_bytes(hashlib.blake2b(serialized, digest_size=8).digest(), "little")
        service = ""
        business: dict[int, tuple[int, str]] = {}
        pairs: list[tuple[str, str]] = []
        rules = self.table.rules
        for kv in resource.attributes:
            text = _as_text(kv.value, self.options.max_value_chars)
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
        span: Any,
        scope_name: str,
        scope_version: str,
        resource: tuple[int, str, dict[int, str]],
        max_start: int,
    ) -> list[Any]:
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
        start = span.start_time_unix_nano
        end = span.end_time_unix_nano
        if start < MIN_START_NS or start > max_start:
            raise SpanRejected(f"start_time_unix_nano {start} is not between year 2000 and tomorrow")
        if end < start:
            raise SpanRejected(f"end_time_unix_nano {end} is before start_time_unix_nano {start}")
        if end - start > MAX_DURATION_NS:
            raise SpanRejected(f"end_time_unix_nano {end} is more than 30 days after start_time_unix_nano {start}")

        row = ROW_TEMPLATE.copy()
        prio = self._prio_template.copy()
        rules_by_key = self.table.rules
        key_kinds = self._key_kinds
        max_chars = self.options.max_value_chars
        max_attributes = self.options.max_attributes
        keys_out: list[str] = []
        values_out: list[str] = []
        json_docs: list[tuple[str, str]] = []
        payload = 0
        rejected: dict[int, tuple[int, SpanRejected]] | None = None

        for kv in span.attributes:
            key = kv.key
            rules = rules_by_key.get(key)
            if rules is not None:
                value = kv.value
                for rule in rules:
                    column = rule.column
                    if rule.priority < prio[column]:
                        try:
                            converted = _convert(value, rule, key)
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
            known = key_kinds.get(key)
            kind, key = known if known is not None else self._key_kind(key)
            value = kv.value
            if kind is _CONTENT:
                payload += _content_bytes(value)
                if not self.options.keep_content:
                    continue
            which = value.WhichOneof("value")
            if which == "string_value":
                text = value.string_value
                if len(text) > max_chars:
                    text = text[:max_chars]
            elif which == "int_value":
                text = str(value.int_value)
            else:
                text = _as_text(value, max_chars)
            if kind is _JSON:
                json_docs.append((key, text))
            if len(keys_out) < max_attributes:
                keys_out.append(key)
                values_out.append(text)

        if rejected:
            for column, (priority, exc) in rejected.items():
                if priority < prio[column]:
                    raise exc
        if span.events:
            payload += self._events(span, row, prio)
        if span.links:
            self._links(span, row, prio)
        if not row[F.outcome_time] and (row[F.outcome] or row[F.outcome_score] is not None or row[F.outcome_label]):
            row[F.outcome_time] = end  # an outcome attribute is recorded when its span ends
        if json_docs:
            self._json_fields(json_docs, row)

        resource_id, service, resource_business = resource
        for column, value in resource_business.items():
            if not row[column]:
                row[column] = value

        row[F.trace_id] = trace_id.hex()
        row[F.span_id] = span_id.hex()
        row[F.parent_span_id] = parent.hex()
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
            row[F.status_message] = status.message[:max_chars]
        row[F.service_name] = service
        row[F.scope_name] = scope_name
        row[F.scope_version] = scope_version
        row[F.resource_id] = resource_id
        row[F.payload_bytes] = payload
        row[F.model] = row[F.response_model] or row[F.request_model]
        row[F.attributes] = (keys_out, values_out)
        self._normalise_tokens(row, scope_name, keys_out, values_out)
        if row[F.error_type].startswith("<class '"):
            row[F.error_type] = _unwrap_class_repr(row[F.error_type])
        row[F.span_class] = self._classify(row)
        evidence = self.table.inference_evidence.get(scope_name)
        if (
            evidence is not None
            and row[F.span_class] == "llm"
            and row[F.operation] in evidence[0]
            and not _answered(row, keys_out, evidence[1])
        ):
            row[F.span_class] = "other"  # labelled a model call, but nothing was sent (see conventions.yaml)
        reported = row[F.reported_cost_usd]
        if reported is not None and reported == 0 and (row[F.input_tokens] or row[F.output_tokens]):
            # A library without prices reports 0 (openlit offline): a hint we cannot trust.
            row[F.reported_cost_usd] = None
        return row

    def _events(self, span: Any, row: list[Any], prio: list[int]) -> int:
        payload = 0
        content_events = self.table.content_events
        for event in span.events:
            name = event.name
            if name == "exception":
                for kv in event.attributes:
                    if kv.key == "exception.type" and not row[F.error_type]:
                        row[F.error_type] = _as_text(kv.value, 256)
                    elif kv.key == "exception.message" and not row[F.status_message]:
                        row[F.status_message] = _as_text(kv.value, self.options.max_value_chars)
            elif name == "gen_ai.evaluation.result":
                for kv in event.attributes:
                    for rule in self.table.rules.get(kv.key, ()):
                        if rule.column in (F.outcome, F.outcome_score, F.outcome_label):
                            converted = _convert(kv.value, rule, kv.key)
                            if converted is not None:
                                row[rule.column] = converted
                at = event.time_unix_nano
                end = span.end_time_unix_nano
                # An event outside its span's life (give or take a day) is a clock error: use the end.
                row[F.outcome_time] = at if MIN_START_NS <= at <= end + FUTURE_SLACK_NS else end
            elif name in content_events:
                for kv in event.attributes:
                    payload += _content_bytes(kv.value)
        if (row[F.outcome] or row[F.outcome_score] is not None) and not row[F.outcome_time]:
            row[F.outcome_time] = span.end_time_unix_nano
        return payload

    def _links(self, span: Any, row: list[Any], prio: list[int]) -> None:
        business = self._business
        for link in span.links:
            for kv in link.attributes:
                for rule in self.table.rules.get(kv.key, ()):
                    if rule.column in business and not row[rule.column]:
                        text = _as_text(kv.value, 256)
                        if text:
                            row[rule.column] = text

    def _json_fields(self, docs: list[tuple[str, str]], row: list[Any]) -> None:
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

    def _normalise_tokens(self, row: list[Any], scope: str, keys: list[str], values: list[str]) -> None:
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

    def _classify(self, row: list[Any]) -> str:
        table = self.table
        operation = row[F.operation]
        if operation in table.inference_operations:
            return "llm"
        if operation in table.tool_operations:
            return "tool"
        if operation in table.agent_operations:
            return "agent"
        if operation in table.workflow_operations:
            return "workflow"
        if row[F.input_tokens] is not None or row[F.output_tokens] is not None:
            return "llm"
        if row[F.tool_name]:
            return "tool"
        if row[F.http_method]:
            return "http"
        return "other"


def _answered(row: list[Any], keys: list[str], evidence: frozenset[str]) -> bool:
    """Whether an inference span shows a provider call: usage, a failure, or an evidence key."""
    if row[F.input_tokens] is not None or row[F.output_tokens] is not None or row[F.status_code] == "ERROR":
        return True
    return any(key in evidence for key in keys)


def _unwrap_class_repr(text: str) -> str:
    """``<class 'openai.RateLimitError'>`` (openai-v2 puts ``str(type(exc))`` in error.type)
    -> ``openai.RateLimitError``, the form the other libraries send."""
    inner = text[len("<class '") :]
    return inner[: -len("'>")] if inner.endswith("'>") else text


# -- value conversion ---------------------------------------------------------------------


def _convert(value: Any, rule: KeyRule, key: str) -> Any:
    which = value.WhichOneof("value")
    kind = rule.kind
    # The two cases that make up nearly every mapped attribute, first.
    if which == "int_value" and kind == "tokens":
        number = value.int_value
        if 0 <= number <= MAX_TOKENS:
            return number
    elif which == "string_value" and kind == "str" and rule.values is None:
        return value.string_value or None
    if kind == "str":
        if which == "string_value":
            text = value.string_value
        elif which in ("int_value", "double_value", "bool_value"):
            text = str(getattr(value, which))
        else:
            return None
        if not text:
            return None
        if rule.values is not None:
            mapped = rule.values.get(text.lower(), _MISSING)
            if mapped is _MISSING:
                return text.lower() if rule.passthrough else None
            return mapped
        return text
    if kind == "tokens":
        return _tokens(value, which, key)
    if kind == "count":
        try:
            number = _tokens(value, which, key)
        except SpanRejected:
            return None
        return min(number, MAX_COUNT) if number is not None else None
    if kind == "float":
        number = _number(value, which)
        if number is None or not math.isfinite(number):
            return None
        if rule.column == F.reported_cost_usd:
            return None if number < 0 or number > MAX_REPORTED_USD else int(Decimal(repr(number)) * FEMTO_PER_USD)
        return number
    if kind == "bool":
        if which == "bool_value":
            return value.bool_value
        if which == "string_value":
            return value.string_value.lower() in ("true", "1")
    return None


_MISSING = object()


def _number(value: Any, which: str | None) -> float | None:
    if which == "int_value":
        return float(value.int_value)
    if which == "double_value":
        return value.double_value
    if which == "string_value":
        try:
            return float(value.string_value.strip())
        except ValueError:
            return None
    return None


def _tokens(value: Any, which: str | None, key: str) -> int | None:
    if which == "int_value":
        number = value.int_value
    elif which == "double_value":
        raw = value.double_value
        if not math.isfinite(raw) or raw != int(raw):
            raise SpanRejected(f"{key}={raw!r}: token counts must be whole numbers")
        number = int(raw)
    elif which == "string_value":
        text = value.string_value.strip()
        if len(text) > MAX_NUMBER_CHARS:
            raise SpanRejected(f"{key}={text[:40]!r}…: not a plausible token count")
        try:
            number = int(text)
        except ValueError:
            try:
                parsed = Decimal(text)
            except InvalidOperation:
                raise SpanRejected(f"{key}={text[:40]!r}: token counts must be numbers") from None
            if not parsed.is_finite() or parsed != parsed.to_integral_value():
                raise SpanRejected(f"{key}={text[:40]!r}: token counts must be whole numbers") from None
            if not 0 <= parsed <= MAX_TOKENS:
                raise SpanRejected(f"{key}={text[:40]!r}: token counts must be between 0 and {MAX_TOKENS}") from None
            number = int(parsed)
    elif which is None:
        return None
    else:
        raise SpanRejected(f"{key}: token counts must be numbers (got {which})")
    if number < 0 or number > MAX_TOKENS:
        raise SpanRejected(f"{key}={number}: token counts must be between 0 and {MAX_TOKENS}")
    return number


def _as_text(value: Any, max_chars: int, depth: int = 0) -> str:
    """Any AnyValue as a string: scalars plainly, arrays and maps as JSON, bytes as base64."""
    which = value.WhichOneof("value")
    if which == "string_value":
        text = value.string_value
    elif which == "int_value":
        return str(value.int_value)
    elif which == "bool_value":
        return "true" if value.bool_value else "false"
    elif which == "double_value":
        return repr(value.double_value)
    elif which is None:
        return ""
    elif depth == 0:
        # Arrays and maps repeat (finish_reasons ["stop"] on every call): encode each distinct
        # value once, keyed by its wire bytes.
        wire = value.SerializeToString()
        text = _ENCODED.get(wire)
        if text is None:
            text = _ENCODE(_plain(value, depth))
            if len(_ENCODED) < _MAX_ENCODED and len(wire) <= 256:
                _ENCODED[wire] = text
    else:
        text = _ENCODE(_plain(value, depth))
    return text if len(text) <= max_chars else text[:max_chars]


_ENCODED: dict[bytes, str] = {}
_MAX_ENCODED = 10_000
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=True).encode
"""One encoder for every array / map value (json.dumps with options builds one per call)."""


def _plain(value: Any, depth: int) -> Any:
    which = value.WhichOneof("value")
    if depth >= MAX_NESTING and which in ("array_value", "kvlist_value"):
        return "…"
    if which == "array_value":
        return [_plain(item, depth + 1) for item in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _plain(kv.value, depth + 1) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if which is None:
        return None
    return getattr(value, which)


def _content_bytes(value: Any) -> int:
    """UTF-8 size of a content value without materialising it (wire size minus framing)."""
    which = value.WhichOneof("value")
    if which == "string_value":
        total = value.ByteSize()  # tag (1 byte) + varint length + the UTF-8 bytes
        for width in range(1, 6):
            length = total - 1 - width
            if length >= 0 and _varint_width(length) == width:
                return length
        return max(total - 2, 0)
    return value.ByteSize()


def _varint_width(number: int) -> int:
    width = 1
    while number >= 0x80:
        number >>= 7
        width += 1
    return width


def resource_attributes_of(batch: NormalizedBatch) -> Mapping[int, tuple[str, list[tuple[str, str]]]]:
    return batch.resources

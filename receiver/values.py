"""OTLP ``AnyValue`` conversion for the normaliser: column values, text, content sizes.

Every function reads the protobuf value in place (``WhichOneof``) and never builds more than
the result: these run once per attribute of every span.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from otelspend.conventions import KeyRule, ValueKind
from otelspend.record import FEMTO_PER_USD, F

MAX_TOKENS = 10**9
"""A token count above this in one call is treated as corrupt, not as usage."""
MAX_COUNT = 10**6
MAX_REPORTED_USD = 10**9
"""A reported cost above this for one call is corrupt, not spend (and would not fit the column)."""
MAX_NUMBER_CHARS = 32
MAX_NESTING = 8


class SpanRejected(ValueError):
    """This span cannot be stored; the message says why."""


def attribute_text(value: AnyValue, max_chars: int) -> str:
    """A kept attribute's value as text (strings and integers, nearly all of them, first)."""
    which = value.WhichOneof("value")
    if which == "string_value":
        text: str = value.string_value
        return text[:max_chars] if len(text) > max_chars else text
    if which == "int_value":
        return str(value.int_value)
    return as_text(value, max_chars)


# -- value conversion ---------------------------------------------------------------------


Converted = str | int | float | bool | None
"""A column value from an attribute: text, a count, a number, a flag, or nothing usable."""


def convert(value: AnyValue, rule: KeyRule, key: str) -> Converted:
    """An attribute value converted to its column's kind (None: nothing usable); raises
    SpanRejected for token counts no call could have."""
    which = value.WhichOneof("value")
    kind = rule.kind
    # The two cases that make up nearly every mapped attribute, first.
    if which == "int_value" and kind == "tokens":
        number: int = value.int_value
        if 0 <= number <= MAX_TOKENS:
            return number
    elif which == "string_value" and kind == "str" and rule.values is None:
        return value.string_value or None
    return _CONVERTERS[kind](value, which, rule, key)


def _to_str(value: AnyValue, which: str | None, rule: KeyRule, key: str) -> str | None:
    if which == "string_value":
        text: str = value.string_value
    elif which in ("int_value", "double_value", "bool_value"):
        text = str(getattr(value, which))
    else:
        return None
    if not text:
        return None
    if rule.values is not None:
        lowered = text.lower()
        if lowered in rule.values:
            return rule.values[lowered]
        return lowered if rule.passthrough else None
    return text


def _to_tokens(value: AnyValue, which: str | None, rule: KeyRule, key: str) -> int | None:
    return _tokens(value, which, key)


def _to_count(value: AnyValue, which: str | None, rule: KeyRule, key: str) -> int | None:
    """A count (retries): like tokens, but an unusable value is dropped, not a rejection."""
    try:
        number = _tokens(value, which, key)
    except SpanRejected:
        return None
    return min(number, MAX_COUNT) if number is not None else None


def _to_float(value: AnyValue, which: str | None, rule: KeyRule, key: str) -> float | int | None:
    """A finite number; a reported cost becomes integer femto-USD (None when implausible)."""
    number = _number(value, which)
    if number is None or not math.isfinite(number):
        return None
    if rule.column == F.reported_cost_usd:
        return None if number < 0 or number > MAX_REPORTED_USD else int(Decimal(repr(number)) * FEMTO_PER_USD)
    return number


def _to_bool(value: AnyValue, which: str | None, rule: KeyRule, key: str) -> bool | None:
    if which == "bool_value":
        return bool(value.bool_value)
    if which == "string_value":
        return value.string_value.lower() in ("true", "1")
    return None


_CONVERTERS: Mapping[ValueKind, Callable[[Any, str | None, KeyRule, str], Converted]] = {
    "str": _to_str,
    "tokens": _to_tokens,
    "count": _to_count,
    "float": _to_float,
    "bool": _to_bool,
}


def _number(value: AnyValue, which: str | None) -> float | None:
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


def _tokens(value: AnyValue, which: str | None, key: str) -> int | None:
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


def as_text(value: AnyValue, max_chars: int, depth: int = 0) -> str:
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
        known = _ENCODED.get(wire)
        if known is None:
            text = _ENCODE(_plain(value, depth))
            if len(_ENCODED) < _MAX_ENCODED and len(wire) <= 256:
                _ENCODED[wire] = text
        else:
            text = known
    else:
        text = _ENCODE(_plain(value, depth))
    return text if len(text) <= max_chars else text[:max_chars]


_ENCODED: dict[bytes, str] = {}
_MAX_ENCODED = 10_000
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=True).encode
"""One encoder for every array / map value (json.dumps with options builds one per call)."""


def _plain(value: AnyValue, depth: int) -> Any:
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


def content_bytes(value: AnyValue) -> int:
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

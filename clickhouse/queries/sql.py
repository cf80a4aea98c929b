"""What every query module shares: the two placeholders, bound parameters, select lists.

Placeholders (see the package docstring):

* ``{name}`` is an identifier or a fragment written into the text before it is sent:
  ``{db}`` (the database name, validated by the settings), a column of the vocabulary
  (``{call_dimension}``), the column an aggregate reads (``{value}``). ``render`` fills
  them; a value that is not a plain identifier must come wrapped in ``Fragment`` (SQL the
  caller assembled from whitelisted names), so nothing else can reach the text.
* ``{name:Type}`` is a ClickHouse query parameter: sent beside the text and bound by the
  server (``clickhouse_connect`` ``parameters=``). Every value from a request, a file or
  the pipeline travels this way. ``render`` leaves these alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, NamedTuple

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""``{name}``: substituted by ``render``. ``{name:Type}`` (with a colon) never matches."""
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Fragment(str):
    """SQL assembled by the caller from whitelisted names (a select list, WHERE terms):
    ``render`` accepts it where a placeholder needs more than one identifier."""

    __slots__ = ()


class Query(NamedTuple):
    """SQL text and the values its ``{name:Type}`` parameters bind: ``store.rows(*query)``."""

    sql: str
    parameters: dict[str, Any]


def render(template: str, **values: str) -> str:
    """Fill the ``{name}`` placeholders of ``template``; ``{name:Type}`` parameters stay.

    A value must be an identifier or a ``Fragment``; a placeholder without a value, or a
    value that is neither, raises ``ValueError`` (a bug in the caller, never a request).
    """

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise ValueError(f"placeholder {{{name}}} has no value in: {template.strip()[:200]}")
        value = values[name]
        if not isinstance(value, Fragment) and not IDENTIFIER.match(value):
            raise ValueError(f"placeholder {{{name}}}: {value!r} is not an identifier")
        return value

    return PLACEHOLDER.sub(fill, template)


class Params:
    """Collects bound parameters under generated names (``<prefix><n>``) for SQL assembled
    piece by piece; ``bind`` returns the ``{name:Type}`` placeholder to write.

    Templates with fixed parameter names use names without digits, so both can share one query.
    """

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def bind(self, prefix: str, value: Any, type_: str) -> str:
        """Bind ``value`` as ClickHouse type ``type_``; the placeholder for it."""
        name = f"{prefix}{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{type_}}}"


def checked_columns(names: Iterable[str], allowed: Iterable[str]) -> list[str]:
    """``names`` if every one is a column in ``allowed``, else ``ValueError`` (a bug, not a request)."""
    known = set(allowed)
    found = list(names)
    unknown = [name for name in found if name not in known]
    if unknown:
        raise ValueError(f"not columns of the table: {unknown}")
    return found


def select_list(
    names: Iterable[str], timestamps: Iterable[str], *, suffix: str = "", attributes_as_arrays: bool = False
) -> Fragment:
    """Columns to select: timestamps as ns since the epoch (``toUnixTimestamp64Nano(x) AS x<suffix>``),
    every other name quoted; with ``attributes_as_arrays`` the attribute map as two arrays
    (``attr_keys``, ``attr_values``).

    With a ``suffix`` the ns aliases do not shadow the columns (ClickHouse would substitute
    an alias named like a column in WHERE and ORDER BY)."""
    stamps = set(timestamps)
    parts = []
    for name in names:
        if name in stamps:
            parts.append(f"toUnixTimestamp64Nano({name}) AS {name}{suffix}")
        elif name == "attributes" and attributes_as_arrays:
            parts.append("mapKeys(attributes) AS attr_keys, mapValues(attributes) AS attr_values")
        else:
            parts.append(f"`{name}`")
    return Fragment(", ".join(parts))


def time_range(column: str, params: Params, start_ns: int, end_ns: int) -> Fragment:
    """``column`` (a DateTime64 in ns) in ``[start_ns, end_ns)``, both bound."""
    return Fragment(
        f"({column} >= fromUnixTimestamp64Nano({params.bind('t', start_ns, 'Int64')}) "
        f"AND {column} < fromUnixTimestamp64Nano({params.bind('t', end_ns, 'Int64')}))"
    )

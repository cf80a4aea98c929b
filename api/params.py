"""FastAPI parameters generated from the vocabulary, and strict query-string checking.

``filter.<dimension>`` parameters are declared one per dimension (so the OpenAPI lists
them and clients can discover them); ``strict_query`` rejects any query parameter a route
does not declare, so a typo (``groupby=``, ``filter.tenat=``) is a 422 naming the allowed
parameters instead of a silently unfiltered answer.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Query, Request

from otelspend.api.errors import QueryError
from otelspend.api.vocabulary import DIMENSIONS, METRICS, describe_dimensions, describe_metrics

FILTER_PREFIX = "filter."


def _filter_parameters() -> list[inspect.Parameter]:
    return [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=Query(
                None,
                alias=f"{FILTER_PREFIX}{name}",
                description=f"Only {name} equal to one of these values (repeat for several). {dim.description}",
            ),
            annotation=list[str] | None,
        )
        for name, dim in DIMENSIONS.items()
    ]


def _filters(**values: list[str] | None) -> dict[str, list[str]]:
    return {name: found for name, found in values.items() if found}


_filters.__signature__ = inspect.Signature(_filter_parameters())  # type: ignore[attr-defined]
filters_dependency: Callable[..., dict[str, list[str]]] = _filters
"""``Depends(filters_dependency)`` -> ``{dimension: [values]}`` from ``filter.<dimension>``."""


def _names_schema(names: list[str]) -> dict[str, Any]:
    return {"items": {"type": "string", "enum": names}}


GroupBy = Annotated[
    list[str],
    Query(
        description="Dimensions to group by: repeat the parameter (`group_by=tenant&group_by=model`) or "
        "separate names with commas. Empty: one row over everything.\n\n" + describe_dimensions(),
        json_schema_extra=_names_schema(list(DIMENSIONS)),
    ),
]
Metrics = Annotated[
    list[str],
    Query(
        description="Metrics to compute (repeat or comma-separate). Default: cost_usd, runs, calls. Money is a "
        "decimal string with 15 decimals (exact); counts are integers; rates and averages are numbers; "
        "a ratio without a denominator is null.\n\n" + describe_metrics(),
        json_schema_extra=_names_schema(list(METRICS)),
    ),
]
From = Annotated[
    dt.datetime | None,
    Query(
        alias="from",
        description="Window start, inclusive (RFC 3339, e.g. 2025-01-31T00:00:00Z; no offset = UTC). "
        "Runs count in the window they started in. Default: `to` minus 24 hours.",
    ),
]
To = Annotated[
    dt.datetime | None,
    Query(description="Window end, exclusive (RFC 3339). Default: now."),
]
OrderBy = Annotated[
    str | None,
    Query(
        description="A requested metric or group_by dimension to sort by. Default: the first metric. "
        "The ordering metric is computed and returned even when not listed in `metrics`.",
        json_schema_extra={"enum": [*METRICS, *DIMENSIONS]},
    ),
]


def strict_query(request: Request) -> None:
    """Reject query parameters the route does not declare (router-level dependency)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    allowed = _declared(dependant)
    for key in request.query_params:
        if key not in allowed:
            if key.startswith(FILTER_PREFIX):
                allowed_filters = sorted(a for a in allowed if a.startswith(FILTER_PREFIX))
                raise QueryError(key, f"unknown dimension {key[len(FILTER_PREFIX) :]!r}", allowed_filters)
            raise QueryError(key, "unknown query parameter", sorted(allowed))


_DECLARED: dict[int, frozenset[str]] = {}


def _declared(dependant: Any) -> frozenset[str]:
    found = _DECLARED.get(id(dependant))
    if found is None:
        names: set[str] = set()
        pending = [dependant]
        while pending:  # the route's own parameters and those of its dependencies
            current = pending.pop()
            names.update(field.alias for field in current.query_params)
            pending.extend(current.dependencies)
        found = frozenset(names)
        _DECLARED[id(dependant)] = found
    return found

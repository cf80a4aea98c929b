"""Resources: the attributes of each distinct OTel resource, stored once (``resource_id``)."""

from __future__ import annotations

from collections.abc import Sequence

from otelspend.clickhouse.queries.sql import Query, render

_ATTRIBUTES = (
    "SELECT resource_id, any(attributes) FROM {db}.resources "
    "WHERE resource_id IN {ids:Array(UInt64)} GROUP BY resource_id"
)


def attributes(database: str, resource_ids: Sequence[int]) -> Query:
    """(resource_id, attribute map) of these resources; unknown ids have no row."""
    return Query(render(_ATTRIBUTES, db=database), {"ids": list(resource_ids)})

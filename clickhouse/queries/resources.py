"""Resources: the attributes of each distinct OTel resource, stored once (``resource_id``)."""

from __future__ import annotations

from otelspend.clickhouse.queries.sql import Query, render

_ATTRIBUTES = "SELECT attributes FROM {db}.resources WHERE resource_id = {resource_id:UInt64} LIMIT 1"


def attributes(database: str, resource_id: int) -> Query:
    """The attribute map of one resource (no row when it is unknown)."""
    return Query(render(_ATTRIBUTES, db=database), {"resource_id": resource_id})

"""Request bodies and response shapes, for validation and the OpenAPI document.

Query responses are built as plain dicts by ``otelspend.api.query`` (and friends) and
returned as JSON directly; these models describe them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from otelspend.api.vocabulary import OUTCOMES

Value = str | int | float | None
"""A dimension value (string) or a metric value (money as a decimal string, counts, rates)."""


class Source(BaseModel):
    """Which level and tables answered a query."""

    level: Literal["run", "call"] = Field(description="Run level or call level (a call dimension is involved).")
    tables: list[str] = Field(description="Tables that answered (informational).")


class RollupResponse(BaseModel):
    """`GET /v1/rollups`: one row per group with the metrics asked for, over runs that started in the window."""

    group_by: list[str]
    metrics: list[str]
    from_: str = Field(alias="from", description="Window start (RFC 3339, inclusive).")
    to: str = Field(description="Window end (RFC 3339, exclusive).")
    filters: dict[str, list[str]]
    order_by: str
    order: Literal["asc", "desc"]
    source: Source
    rows: list[dict[str, Value]] = Field(
        description="One object per group, the first `limit` groups by `order_by`: each group_by dimension, "
        "then each metric. Money is a decimal string with 15 decimals."
    )
    totals: dict[str, Value] = Field(
        description="Each metric over every group in the window, listed or not (the partials of all groups "
        "merged, exact): money columns add up to it, ratios and quantiles are those of the whole table. At "
        "call level a run counts once in each group it has calls in, so `runs` adds up the column."
    )
    total_groups: int = Field(description="Groups in the window before `limit` (1 without group_by).")
    truncated: bool = Field(description="True when `limit` cut the table: `rows` holds fewer than `total_groups`.")


class Series(BaseModel):
    """One group's points in a timeseries (the group's dimension values are extra keys)."""

    model_config = ConfigDict(extra="allow")
    points: list[dict[str, Value]] = Field(description="`t` (bucket start, RFC 3339) and each metric.")


class TimeseriesResponse(BaseModel):
    """`GET /v1/timeseries`: metrics per hour or day, per group."""

    group_by: list[str]
    metrics: list[str]
    bucket: Literal["hour", "day"]
    from_: str = Field(alias="from")
    to: str
    filters: dict[str, list[str]]
    source: Source
    buckets: list[str] = Field(description="Every bucket start in the window (fill gaps with these).")
    series: list[Series] = Field(description="One per group (its group_by values plus `points`).")
    total_groups: int = Field(description="Groups in the window (1 without group_by); `limit` of them get a series.")
    truncated: bool = Field(
        description="True when some groups got no series: summing the series gives less than the window "
        "(`GET /v1/rollups` has the totals)."
    )


class VocabularyItem(BaseModel):
    """A dimension or metric: its name, meaning, level, kind and unit."""

    name: str
    description: str
    level: Literal["run", "call", "raw"] | None = None
    kind: Literal["usd", "int", "float", "str"] | None = None
    unit: str | None = None


class VocabularyResponse(BaseModel):
    """`GET /v1/vocabulary`: every dimension and metric the query endpoints accept."""

    dimensions: list[VocabularyItem]
    metrics: list[VocabularyItem]


class OutcomeIn(BaseModel):
    """An outcome for a run or a workflow (history is kept; the latest ``recorded_at`` wins)."""

    model_config = ConfigDict(extra="forbid")
    outcome: Literal[OUTCOMES] = Field(description="accepted, edited, rejected or escalated.")  # type: ignore[valid-type]
    score: float | None = Field(None, allow_inf_nan=False, description="Optional evaluation score.")
    label: str = Field("", max_length=500, description="Optional evaluation label.")
    recorded_at: dt.datetime | None = Field(
        None, description="When the outcome happened (RFC 3339). Default: now. The latest one wins on the run."
    )
    note: str = Field("", max_length=2000, description="Free text kept with the outcome history.")


class OutcomeAccepted(BaseModel):
    """The outcome recorded, and the runs it updated now."""

    run_id: str | None = None
    workflow_id: str | None = None
    outcome: str
    recorded_at: str
    updated_runs: list[str] = Field(
        description="Runs updated now; runs still open or not arrived yet pick the outcome up when they close."
    )


class RebuildIn(BaseModel):
    """The window of rollups to rebuild."""

    model_config = ConfigDict(extra="forbid")
    from_: dt.datetime = Field(alias="from", description="Window start (RFC 3339), widened to the hour.")
    to: dt.datetime = Field(description="Window end (RFC 3339), widened to the hour.")


class RebuildDone(BaseModel):
    """The rebuilt window (whole UTC days) and how many hours it spans."""

    from_: str = Field(alias="from")
    to: str
    hours: int


class Page(BaseModel):
    """One page of runs, with the window, filters, order and offsets echoed (extra keys)."""

    model_config = ConfigDict(extra="allow")
    runs: list[dict[str, Any]]
    next_offset: int | None = Field(description="Offset of the next page, null on the last page.")

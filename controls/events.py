"""The alert event: one JSON schema for every control, delivered to webhooks and kept as history.

A detector reports a ``Detection`` (pure data: what, where, how much, against what). The
incident book turns the first detection of an incident into a firing event and its end
into a ``<type>.resolved`` event; both share the ``incident_id``. Every event has its own
``id``, assigned once and kept through retries and restarts: receivers deduplicate on it.
Money is an exact decimal string (15 decimals, USD), never a float.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from otelspend.money import femto_to_usd

SCHEMA = "otelspend.alert.v1"

BUDGET_THRESHOLD = "budget.threshold_crossed"
BUDGET_FORECAST = "budget.forecast_exceeded"
RETRY_LOOP = "run.retry_loop"
POLICY_VIOLATION = "policy.model_violation"
WORKFLOW_SPIKE = "anomaly.workflow_cost_spike"
TENANT_ANOMALY = "anomaly.tenant_cost"
RESOLVED_SUFFIX = ".resolved"

CONTROL_OF: dict[str, str] = {
    BUDGET_THRESHOLD: "budget",
    BUDGET_FORECAST: "budget",
    RETRY_LOOP: "retry_loop",
    POLICY_VIOLATION: "model_policy",
    WORKFLOW_SPIKE: "workflow_cost_spike",
    TENANT_ANOMALY: "tenant_anomaly",
}
"""Firing event type -> the control that raises it."""
FIRING_TYPES: tuple[str, ...] = tuple(CONTROL_OF)
EVENT_TYPES: tuple[str, ...] = (*FIRING_TYPES, *(t + RESOLVED_SUFFIX for t in FIRING_TYPES))
Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")


@dataclass(frozen=True)
class Measure:
    """A figure with its unit: ``value`` is an exact decimal string (USD) or an integer string."""

    value: str
    unit: str

    def as_dict(self) -> dict[str, str]:
        """The JSON form."""
        return {"value": self.value, "unit": self.unit}


def usd(femto: int) -> Measure:
    """Integer femto-USD as an exact USD measure."""
    return Measure(str(femto_to_usd(femto)), "USD")


def count(value: int, unit: str) -> Measure:
    """An integer measure (tokens, retries, calls)."""
    return Measure(str(value), unit)


def decimal(value: Decimal, unit: str) -> Measure:
    """A decimal measure (prices per million tokens, ratios)."""
    return Measure(format(value, "f"), unit)


@dataclass(frozen=True)
class Detection:
    """What a detector found. ``key`` identifies the incident: detections with the same key
    while it is open are one incident, one alert."""

    type: str
    key: str
    severity: Severity
    title: str
    dimensions: Mapping[str, str]
    observed: Measure
    threshold: Measure | None = None
    expected: Measure | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    auto_resolve: bool = True
    """Event-like (a loop, a violation): resolved after a quiet spell. False: the detector says when it ends."""
    run_id: str = ""
    """A run to flag for review (retry loops): ``GET /v1/controls/runs/{run_id}`` answers stop."""
    links: Mapping[str, str] = field(default_factory=dict)
    """Extra links (a budget, a run), relative to the server's public URL."""


def new_id(prefix: str) -> str:
    """A fresh random identifier (``evt_...``, ``inc_...``)."""
    return f"{prefix}_{uuid.uuid4().hex}"


def rfc3339_ms(ns: int) -> str:
    """``2026-12-05T10:00:00.123Z``."""
    moment = dt.datetime.fromtimestamp(ns // 10**9, tz=dt.UTC).replace(microsecond=(ns // 10**6 % 1000) * 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def event_payload(
    detection: Detection, *, event_id: str, incident_id: str, now_ns: int, node: str, base_url: str
) -> dict[str, Any]:
    """The firing JSON event (schema ``otelspend.alert.v1``) of a new incident."""
    base = base_url.rstrip("/")
    links = {"dashboard": f"{base}/alerts#{incident_id}", "api": f"{base}/v1/alerts/{event_id}"}
    links.update({name: base + path for name, path in detection.links.items()})
    return {
        "schema": SCHEMA,
        "id": event_id,
        "incident_id": incident_id,
        "type": detection.type,
        "status": "firing",
        "severity": detection.severity,
        "time": rfc3339_ms(now_ns),
        "control": CONTROL_OF[detection.type],
        "title": detection.title,
        "dimensions": dict(detection.dimensions),
        "observed": detection.observed.as_dict(),
        "threshold": detection.threshold.as_dict() if detection.threshold else None,
        "expected": detection.expected.as_dict() if detection.expected else None,
        "details": dict(detection.details),
        "links": links,
        "node": node,
    }


def resolved_payload(firing: Mapping[str, Any], *, event_id: str, now_ns: int, resolution: str) -> dict[str, Any]:
    """The ``<type>.resolved`` event closing the incident ``firing`` opened (same ``incident_id``)."""
    api = str(firing["links"]["api"])
    links = {**firing["links"], "api": api[: api.rfind("/") + 1] + event_id}
    return {
        **firing,
        "id": event_id,
        "type": str(firing["type"]) + RESOLVED_SUFFIX,
        "status": "resolved",
        "severity": "info",
        "time": rfc3339_ms(now_ns),
        "title": f"Resolved: {firing['title']}",
        "details": {**firing["details"], "resolution": resolution, "fired_at": firing["time"]},
        "links": links,
    }

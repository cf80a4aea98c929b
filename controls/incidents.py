"""One alert per incident: open on the first detection, stay quiet while it lasts, resolve
once, and keep a cool-down against flapping.

States of an incident key::

    (none) --detect--> open --detect--> open            (no new alert: same incident)
                        |  resolve (detector: back to normal, or budget period over)
                        |  quiet for resolve_after (event-like incidents: loops, violations)
                        v
                     resolved --detect within cooldown--> suppressed (counted, no alert)
                        |      --detect after cooldown--> a new incident

Pure state, no clock of its own and no I/O: the engine passes ``now_ns`` and journals
what changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Seen = Literal["new", "ongoing", "suppressed"]


@dataclass
class Incident:
    """An incident and the firing event that opened it."""

    key: str
    incident_id: str
    type: str
    firing: dict[str, Any]
    """The firing event's payload (the resolve event is made from it)."""
    opened_ns: int
    last_seen_ns: int
    auto_resolve: bool
    detections: int = 1
    resolved_ns: int | None = None

    def as_record(self) -> dict[str, Any]:
        """The journal form."""
        return {
            "key": self.key,
            "incident_id": self.incident_id,
            "type": self.type,
            "firing": self.firing,
            "opened_ns": self.opened_ns,
            "last_seen_ns": self.last_seen_ns,
            "auto_resolve": self.auto_resolve,
            "detections": self.detections,
            "resolved_ns": self.resolved_ns,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Incident:
        """Back from the journal form."""
        return cls(**record)


class IncidentBook:
    """Open incidents by key, and recently resolved ones (for the cool-down)."""

    def __init__(self, *, cooldown_ns: int, resolve_after_ns: int) -> None:
        self.cooldown_ns = cooldown_ns
        self.resolve_after_ns = resolve_after_ns
        self.open: dict[str, Incident] = {}
        self.resolved: dict[str, Incident] = {}

    def seen(self, key: str, now_ns: int) -> Seen:
        """A detection of ``key`` at ``now_ns``: part of an open incident, suppressed by the
        cool-down after the last one, or a new incident (the caller then calls ``opened``)."""
        incident = self.open.get(key)
        if incident is not None:
            incident.last_seen_ns = max(incident.last_seen_ns, now_ns)
            incident.detections += 1
            return "ongoing"
        before = self.resolved.get(key)
        if before is not None and before.resolved_ns is not None and now_ns - before.resolved_ns < self.cooldown_ns:
            return "suppressed"
        return "new"

    def opened(self, incident: Incident) -> None:
        """Record a new incident (after ``seen`` said ``new``)."""
        self.resolved.pop(incident.key, None)
        self.open[incident.key] = incident

    def resolve(self, key: str, now_ns: int) -> Incident | None:
        """Close the open incident of ``key``; None when none is open."""
        incident = self.open.pop(key, None)
        if incident is None:
            return None
        incident.resolved_ns = now_ns
        self.resolved[key] = incident
        return incident

    def quiet(self, now_ns: int) -> list[str]:
        """Keys of event-like incidents with no detection for ``resolve_after``: due to resolve."""
        return [
            key
            for key, incident in self.open.items()
            if incident.auto_resolve and now_ns - incident.last_seen_ns >= self.resolve_after_ns
        ]

    def prune(self, now_ns: int) -> None:
        """Forget resolved incidents whose cool-down is over."""
        over = [
            key
            for key, incident in self.resolved.items()
            if incident.resolved_ns is None or now_ns - incident.resolved_ns >= self.cooldown_ns
        ]
        for key in over:
            del self.resolved[key]

    def restore(self, incident: Incident) -> None:
        """Put back an incident read from the journal."""
        if incident.resolved_ns is None:
            self.resolved.pop(incident.key, None)
            self.open[incident.key] = incident
        else:
            self.open.pop(incident.key, None)
            self.resolved[incident.key] = incident

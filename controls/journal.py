"""The durable outbox: alert events, their deliveries, incidents and flagged runs, on local disk.

An event is appended (and fsync'd) before anyone is told about it, so an alert raised
before a crash or a restart is delivered after it, with the same ``id``. A delivery is
acknowledged only after the receiver answered 2xx (or failed for good): a crash between
the two delivers again, at least once, never with a new id. Incidents and flagged runs
are journaled too, so a restart neither alerts twice for one incident nor forgets which
runs must stop.

One JSON object per line in ``<data_dir>/controls/journal.jsonl``:

    {"k": "event", "event": {...}, "sinks": ["ops", "slack"]}
    {"k": "done", "id": "evt_...", "sink": "ops", "status": "delivered", "at": <ns>}
    {"k": "recorded", "id": "evt_..."}          # written to ClickHouse (alert history)
    {"k": "incident", ...Incident.as_record()}   # latest record of a key wins
    {"k": "flag", "run_id": "...", "reason": "...", "at": <ns>, "incident_id": "..."}

On open the file is read (a torn last line from a crash is skipped) and rewritten
compactly: pending events, incidents still open or cooling down, flags younger than
``flag_ttl``. Local disk, not the store: alerts must leave while ClickHouse is down.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otelspend.controls.decision import Flag
from otelspend.controls.incidents import Incident

log = logging.getLogger("otelspend")
FILE_NAME = "journal.jsonl"
COMPACT_AFTER_RECORDS = 20_000


@dataclass
class JournalState:
    """What the journal says after a restart."""

    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Events not yet delivered to every sink or not yet recorded, by id."""
    pending: dict[str, list[str]] = field(default_factory=dict)
    """Event id -> sinks still to deliver to."""
    unrecorded: set[str] = field(default_factory=set)
    incidents: dict[str, Incident] = field(default_factory=dict)
    flags: dict[str, Flag] = field(default_factory=dict)
    skipped_lines: int = 0


class Journal:
    """Append-only, fsync'd, compacted on open; safe to call from several threads."""

    def __init__(self, directory: Path, *, fsync: bool = True) -> None:
        self.directory = directory
        self.path = directory / FILE_NAME
        self.fsync = fsync
        self._lock = threading.Lock()
        self._handle: Any = None
        self._records = 0
        self.state = JournalState()
        """What the journal holds now (updated by every append)."""

    def open(self, *, keep_incidents_after_ns: int, keep_flags_after_ns: int) -> JournalState:
        """Read what is there, rewrite it compactly, and open for appending."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.state = self._read()
        self._rewrite(self.state, keep_incidents_after_ns, keep_flags_after_ns)
        return self.state

    def append(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Write records durably (fsync before returning)."""
        records = list(records)
        lines = "".join(json.dumps(record, separators=(",", ":")) + "\n" for record in records)
        if not lines:
            return
        with self._lock:
            if self._handle is None:
                raise RuntimeError("journal is not open")
            for record in records:
                _apply(self.state, record)
            self._handle.write(lines)
            self._handle.flush()
            if self.fsync:
                os.fsync(self._handle.fileno())
            self._records += lines.count("\n")

    @property
    def records(self) -> int:
        """Records appended since the last rewrite (the engine compacts past COMPACT_AFTER_RECORDS)."""
        return self._records

    def compact(self, keep_incidents_after_ns: int, keep_flags_after_ns: int) -> None:
        """Rewrite the journal as what it holds now, dropping settled and expired records."""
        with self._lock:
            state = self.state
            for key in [
                k for k, i in state.incidents.items() if i.resolved_ns and i.resolved_ns < keep_incidents_after_ns
            ]:
                del state.incidents[key]
            for run_id in [r for r, f in state.flags.items() if f.flagged_ns < keep_flags_after_ns]:
                del state.flags[run_id]
        self._rewrite(self.state, keep_incidents_after_ns, keep_flags_after_ns)

    def close(self) -> None:
        """Close the file; safe to call twice."""
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None

    # -- internals ---------------------------------------------------------------------------

    def _read(self) -> JournalState:
        state = JournalState()
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return state
        for line in text.splitlines():
            try:
                record = json.loads(line)
                _apply(state, record)
            except (ValueError, KeyError, TypeError):
                state.skipped_lines += 1  # a torn write at a crash: the record never counted
        if state.skipped_lines:
            log.warning("alert journal %s: skipped %d unreadable line(s)", self.path, state.skipped_lines)
        return state

    def _rewrite(self, state: JournalState, keep_incidents_after_ns: int, keep_flags_after_ns: int) -> None:
        with self._lock:
            records: list[dict[str, Any]] = []
            for event_id, event in state.events.items():
                if event_id in state.pending or event_id in state.unrecorded:
                    records.append({"k": "event", "event": event, "sinks": state.pending.get(event_id, [])})
                    if event_id not in state.unrecorded:
                        records.append({"k": "recorded", "id": event_id})
            for incident in state.incidents.values():
                if incident.resolved_ns is None or incident.resolved_ns >= keep_incidents_after_ns:
                    records.append({"k": "incident", **incident.as_record()})
            for flag in state.flags.values():
                if flag.flagged_ns >= keep_flags_after_ns:
                    records.append(_flag_record(flag))
            if self._handle is not None:
                self._handle.close()
            tmp = self.path.with_suffix(".tmp")
            with tmp.open("w") as handle:
                handle.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))
                handle.flush()
                os.fsync(handle.fileno())
            tmp.replace(self.path)
            _fsync_dir(self.directory)
            self._handle = self.path.open("a")
            self._records = 0


def _apply(state: JournalState, record: Mapping[str, Any]) -> None:
    kind = record["k"]
    if kind == "event":
        event = record["event"]
        state.events[event["id"]] = event
        sinks = list(record.get("sinks") or [])
        if sinks:
            state.pending[event["id"]] = sinks
        state.unrecorded.add(event["id"])
    elif kind == "done":
        waiting = state.pending.get(record["id"])
        if waiting is not None and record["sink"] in waiting:
            waiting.remove(record["sink"])
            if not waiting:
                del state.pending[record["id"]]
        _forget_if_settled(state, record["id"])
    elif kind == "recorded":
        state.unrecorded.discard(record["id"])
        _forget_if_settled(state, record["id"])
    elif kind == "incident":
        incident = Incident.from_record({k: v for k, v in record.items() if k != "k"})
        state.incidents[incident.key] = incident
    elif kind == "flag":
        state.flags[record["run_id"]] = Flag(record["run_id"], record["reason"], record["at"], record["incident_id"])
    else:
        raise KeyError(kind)


def _forget_if_settled(state: JournalState, event_id: str) -> None:
    if event_id not in state.pending and event_id not in state.unrecorded:
        state.events.pop(event_id, None)


def event_record(event: Mapping[str, Any], sinks: list[str]) -> dict[str, Any]:
    """An event to deliver to ``sinks`` (and to record)."""
    return {"k": "event", "event": event, "sinks": sinks}


def done_record(event_id: str, sink: str, status: str, at_ns: int) -> dict[str, Any]:
    """A delivery finished (delivered, or failed for good)."""
    return {"k": "done", "id": event_id, "sink": sink, "status": status, "at": at_ns}


def recorded_record(event_id: str) -> dict[str, Any]:
    """An event is in the alert history table."""
    return {"k": "recorded", "id": event_id}


def incident_record(incident: Incident) -> dict[str, Any]:
    """An incident opened, seen again or resolved."""
    return {"k": "incident", **incident.as_record()}


def _flag_record(flag: Flag) -> dict[str, Any]:
    return {
        "k": "flag",
        "run_id": flag.run_id,
        "reason": flag.reason,
        "at": flag.flagged_ns,
        "incident_id": flag.incident_id,
    }


def flag_record(flag: Flag) -> dict[str, Any]:
    """A run flagged for review."""
    return _flag_record(flag)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

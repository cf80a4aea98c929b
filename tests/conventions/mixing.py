"""Two instrumentations reporting the same provider calls in one trace (a double
instrumentation), built from two libraries' runs of the same scripted calls.

Both runs made the same calls against a deterministic fake provider: the same models, the
same usage, the same failures; only ids and clock differ. For every call of library A, the
call of library B with the same signature (API, request model, stream, attempts, outcome) is
the same call, and B's spans for it are moved into A's trace exactly as a process with both
libraries installed emits them:

* **same trace, same resource**: one process, one TracerProvider;
* **nested** mode: B's wrapper runs inside A's (both patch the same SDK method, A's span is
  current when B starts its own), so B's outer span is a child of A's outer span; in
  **sibling** mode B does not make its span current (as Traceloop does next to the Anthropic
  SDK's span) or reports from elsewhere, so B's span is a sibling of A's;
* **time**: B's spans keep their own durations, placed at A's call (offset by the two
  providers' receive times of the first attempt) and kept inside A's outer span, since both
  wrappers surround the same request;
* **the same provider answer**: B's ``gen_ai.response.id`` becomes A's, the response the
  provider gave once;
* **one SDK span**: a span of a scope A already has for that call (the Anthropic SDK's own
  span) is emitted once per call by the SDK, whatever wraps it: B's copy is dropped;
* **the application once**: B's application spans (root, tool) are not moved.

The mixed trace gets a trace id and ``service.name`` of its own (nothing else changes), so it
can share a server with A's single-library run.

A call only B instruments (v2 has no span for the Responses API) gets B's spans alone,
under A's root, at A's call time.

In **alongside** mode B reports *other* calls of the same trace (another client or service
of the same request: Bedrock next to Gemini, a Node front end next to a Python back end):
each of B's calls, with its spans, goes under A's root after A's last call, and the trace's
ledger is A's calls plus B's.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from tests.conventions.capture import Capture, call_groups, end_ns
from tests.conventions.ledger import LedgerCall, Seen, Visibility, logical_calls
from tests.conventions.libraries import LIBRARIES, Library, Mode, visible_calls

US = 1_000


@dataclass(frozen=True)
class Mixed:
    capture: Capture
    seen: list[Seen]
    """A's ledger calls, each with what the trace's libraries together let the store see."""
    description: str


def signature(call: LedgerCall) -> tuple[Any, ...]:
    # A stream sent without include_usage got no usage back: a library that asked for it
    # made a different request.
    return (call.api, call.request_model, call.stream, call.attempts, call.failed, call.usage_withheld)


def _visible_groups(library: Library, capture: Capture) -> list[tuple[LedgerCall, list[dict[str, Any]]]]:
    """(ledger call, the library's spans for it) for every call the library reports."""
    calls = visible_calls(library, capture)
    groups = call_groups(capture)
    assert len(calls) == len(groups), f"{library.name}: {len(calls)} visible calls, {len(groups)} span groups"
    for call, group in zip(calls, groups, strict=True):
        ids = {s["attributes"].get("gen_ai.response.id") for s in group} - {None}
        assert ids <= {call.response_id} if call.response_id else not ids, f"{library.name}: group/call mismatch"
    return list(zip(calls, groups, strict=True))


def mix(a_name: str, partners: Sequence[tuple[str, Mode]] | None = None) -> Mixed:
    """Library A's run with each partner's spans for the same calls added (see module doc)."""
    a = LIBRARIES[a_name]
    a_capture = a.capture()
    partners = partners if partners is not None else a.partners
    root = next(s for s in a_capture.spans if not s["parent_span_id"])
    a_visible = visible_calls(a, a_capture)
    a_calls = logical_calls(a_capture.ledger, a_capture.runs)
    if a.select is not None:
        a_calls = a.select(a_calls)
    needs_groups = any(mode != "alongside" for _, mode in partners)
    a_group_of = {call: group for call, group in _visible_groups(a, a_capture)} if needs_groups else {}
    visibility: dict[LedgerCall, Visibility | None] = {
        call: a.visibility if call in a_visible else None for call in a_calls
    }
    spans = list(a_capture.spans)
    extra: list[Seen] = []
    for b_name, mode in partners:
        b = LIBRARIES[b_name]
        if mode == "alongside":
            moved, seen_b = _alongside(b, a_capture, root)
            spans.extend(moved)
            extra.extend(seen_b)
            continue
        pending: dict[tuple[Any, ...], deque[tuple[LedgerCall, list[dict[str, Any]]]]] = defaultdict(deque)
        for b_call, b_group in _visible_groups(b, b.capture()):
            pending[signature(b_call)].append((b_call, b_group))
        for call in a_calls:
            queue = pending.get(signature(call))
            if not queue:
                continue  # B does not report this call
            b_call, b_group = queue.popleft()
            spans.extend(_move(b_group, b_call, call, a_group_of.get(call), root, a_capture.trace_ids[0], mode))
            known = visibility[call]
            visibility[call] = b.visibility if known is None else known.union(b.visibility)
    seen = [Seen(call, vis) for call in a_calls if (vis := visibility[call]) is not None] + extra
    names = " + ".join(f"{b} ({mode})" for b, mode in partners)
    return Mixed(_relabel(a_capture, spans), seen, f"{a_name} + {names}")


def _alongside(b: Library, a_capture: Capture, root: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Seen]]:
    """B's calls, each with its spans, under A's root after A's last span (see module doc)."""
    b_capture = b.capture()
    groups = _visible_groups(b, b_capture)
    a_end = max(end_ns(s) for s in a_capture.spans if s is not root)
    offset = a_end + 20_000 * US - min(s["start_unix_nano"] for _, group in groups for s in group)
    trace_id = a_capture.trace_ids[0]
    moved, seen = [], []
    for call, group in groups:
        ids = {s["span_id"] for s in group}
        for span in group:
            parent = span["parent_span_id"] if span["parent_span_id"] in ids else root["span_id"]
            start = span["start_unix_nano"] + offset
            moved.append({**span, "trace_id": trace_id, "parent_span_id": parent, "start_unix_nano": start})
        at = call.at + timedelta(microseconds=offset // US)
        seen.append(Seen(replace(call, at=at, first_attempt_ns=call.first_attempt_ns + offset), b.visibility))
    return moved, seen


def _relabel(capture: Capture, spans: list[dict[str, Any]]) -> Capture:
    """The mixed trace under its own trace id and service name, so it can share a server
    with library A's own run without either seeing the other's figures."""
    trace_id = hashlib.blake2b(f"mixed/{capture.library}".encode(), digest_size=16).hexdigest()
    (run,) = capture.runs
    spans = [s for s in spans if s["trace_id"] in capture.trace_ids]  # LiteLLM's stream traces stay out
    # The root ends after every call (B's calls alongside go after A's last one).
    root_id = run["root_span_id"]
    last = max(end_ns(s) for s in spans)
    spans = [
        {**s, "duration_ms": max(s["duration_ms"], (last - s["start_unix_nano"]) / 1e6 + 1)}
        if s["span_id"] == root_id
        else s
        for s in spans
    ]
    return replace(
        capture,
        spans=tuple({**span, "trace_id": trace_id} for span in spans),
        runs=({**run, "trace_id": trace_id},),
        resource={**capture.resource, "service.name": f"{capture.service}+mixed"},
    )


def _move(
    b_group: list[dict[str, Any]],
    b_call: LedgerCall,
    call: LedgerCall,
    a_group: list[dict[str, Any]] | None,
    root: dict[str, Any],
    trace_id: str,
    mode: Mode,
) -> list[dict[str, Any]]:
    """B's spans for one call, as the double-instrumented process would have emitted them."""
    offset = call.first_attempt_ns - b_call.first_attempt_ns
    a_scopes = {s["scope"]["name"] for s in a_group or ()}
    kept = [s for s in b_group if s["scope"]["name"] not in a_scopes]
    kept_ids = {s["span_id"] for s in kept}
    outer = a_group[0] if a_group else None
    moved = []
    for span in kept:
        start = span["start_unix_nano"] + offset
        end = end_ns(span) + offset
        parent = span["parent_span_id"]
        if parent not in kept_ids:  # B's outermost span for this call
            if outer is None:
                parent = root["span_id"]
            else:
                parent = outer["span_id"] if mode == "nested" else outer["parent_span_id"]
        if outer is not None:  # both wrappers surround the same request
            start = min(max(start, outer["start_unix_nano"] + US), end_ns(outer) - 2 * US)
            end = max(min(end, end_ns(outer) - US), start + US)
        attributes = dict(span["attributes"])
        if "gen_ai.response.id" in attributes:
            attributes["gen_ai.response.id"] = call.response_id
        moved.append(
            {
                **span,
                "trace_id": trace_id,
                "parent_span_id": parent,
                "start_unix_nano": start,
                "duration_ms": (end - start) / 1e6,
                "attributes": attributes,
            }
        )
    return moved

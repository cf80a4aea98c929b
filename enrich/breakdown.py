"""A run's breakdown: its calls and tool executions summed per call-dimension value (pure).

One row per distinct (model, provider, agent, tool, operation, payload band) of the run,
each carrying the run's attribution and a mask telling which rows are the first of the run
for every subset of those dimensions, so any grouping counts each run exactly once.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from otelspend.enrich.calls import Call
from otelspend.enrich.run_records import BreakdownRecord, RunRecord, RunStatus
from otelspend.record import CALL_DIMENSIONS, L, LiteSpan

PAYLOAD_BANDS: tuple[tuple[int, str], ...] = (
    (1_000, "<1k"),
    (4_000, "1k-4k"),
    (16_000, "4k-16k"),
    (64_000, "16k-64k"),
    (128_000, "64k-128k"),
)
"""(input tokens below, band name), in increasing order."""
LAST_BAND = "128k+"
NO_BAND = "none"

CallKey = tuple[str, str, str, str, str, str]
"""Values of CALL_DIMENSIONS: (model, provider, agent, tool, operation, payload band)."""
_NO_CALLS: CallKey = ("", "", "", "", "", "")

_NDIMS = len(CALL_DIMENSIONS)
_ALL_SUBSETS = (1 << (1 << _NDIMS)) - 1
_SUBSETS_OF: tuple[int, ...] = tuple(
    sum(1 << subset for subset in range(1 << _NDIMS) if subset & ~agree == 0) for agree in range(1 << _NDIMS)
)
"""For a set of dimensions (bitmask), the bitmask of all its subsets (subset ids are bitmasks too)."""
_MS = 1_000_000


def payload_band(input_tokens: int | None) -> str:
    """The payload band of a call's input tokens (``none`` when the call reported none)."""
    if input_tokens is None:
        return NO_BAND
    for limit, name in PAYLOAD_BANDS:
        if input_tokens < limit:
            return name
    return LAST_BAND


@dataclass(slots=True)
class _Tally:
    """The sums of one breakdown row while the run's calls and tools are added up."""

    calls: int = 0
    errors: int = 0
    retries: int = 0
    tool_calls: int = 0
    tool_failures: int = 0
    unpriced_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    payload_bytes: int = 0
    cost_usd: int = 0
    reported_cost_usd: int = 0
    latencies_ms: list[int] = field(default_factory=list)
    cost_kind: str = ""

    def add_call(self, call: Call) -> None:
        s = call.span
        self.calls += 1
        self.errors += call.failed
        self.retries += call.retries
        self.unpriced_calls += call.unpriced
        self.input_tokens += s[L.input_tokens] or 0
        self.output_tokens += s[L.output_tokens] or 0
        self.cache_read_tokens += s[L.cache_read_tokens] or 0
        self.cache_write_tokens += s[L.cache_write_tokens] or 0
        self.reasoning_tokens += s[L.reasoning_tokens] or 0
        self.payload_bytes += s[L.payload_bytes]
        self.cost_usd += s[L.cost_usd] or 0
        self.reported_cost_usd += call.reported or 0
        self.latencies_ms.append(s[L.duration_ns] // _MS)
        self.cost_kind = self.cost_kind or s[L.cost_kind] or "model"

    def add_charge(self, span: LiteSpan, *, latency: bool = True) -> None:
        """A counted charge's cost (its latency too, unless it is a tool execution already added)."""
        self.cost_usd += span[L.cost_usd] or 0
        self.cost_kind = self.cost_kind or span[L.cost_kind]
        if latency:
            self.payload_bytes += span[L.payload_bytes]
            self.latencies_ms.append(span[L.duration_ns] // _MS)

    def add_tool(self, span: LiteSpan) -> None:
        self.tool_calls += 1
        failed = span[L.status_code] == "ERROR"
        self.tool_failures += failed
        self.errors += failed
        self.payload_bytes += span[L.payload_bytes]
        self.latencies_ms.append(span[L.duration_ns] // _MS)


def breakdown_rows(
    run: RunRecord,
    calls: list[Call],
    tools: list[LiteSpan],
    agent_of: Callable[[LiteSpan], str],
    charges: Sequence[LiteSpan] = (),
) -> tuple[BreakdownRecord, ...]:
    """The run's breakdown records, in key order (a run without calls or tools has one empty row).

    Each row says what its money is (``cost_kind``): model calls' rows ``model``, a tool with a
    fee its charge's kind, and a charge that is no tool execution a row of its own, named by its
    operation or, without one, by its kind (so charges of two kinds never share a row)."""
    tallies = _tallies(calls, tools, agent_of, charges)
    keys = sorted(tallies)
    masks = first_row_masks(keys)
    head, dimensions, tail = _head_of(run), _dimensions_of(run), _tail_of(run)
    successful = int(run.status == RunStatus.SUCCESS)
    accepted = int(run.outcome == "accepted")
    make = BreakdownRecord._make
    return tuple(
        make(
            head + key + dimensions + (masks[key], successful, accepted)
            + _sums_of(tallies[key]) + (tuple(tallies[key].latencies_ms),) + tail + (tallies[key].cost_kind,)
        )
        for key in keys
    )  # fmt: skip


def _tallies(
    calls: list[Call], tools: list[LiteSpan], agent_of: Callable[[LiteSpan], str], charges: Sequence[LiteSpan]
) -> dict[CallKey, _Tally]:
    tallies: dict[CallKey, _Tally] = {}
    for call in calls:
        s = call.span
        key = (s[L.model], s[L.provider], call.agent, "", s[L.operation], payload_band(s[L.input_tokens]))
        tally = tallies.get(key)
        if tally is None:
            tally = tallies[key] = _Tally()
        tally.add_call(call)
    charged = {s[L.span_id] for s in charges}
    for s in tools:
        key = ("", "", agent_of(s), s[L.tool_name], s[L.operation] or "execute_tool", "")
        tally = tallies.get(key)
        if tally is None:
            tally = tallies[key] = _Tally()
        tally.add_tool(s)
        if s[L.span_id] in charged:  # a tool with a fee: its cost on its own row
            tally.add_charge(s, latency=False)
    for s in charges:
        if s[L.span_class] == "tool":
            continue  # added with its tool execution above
        key = ("", "", agent_of(s), "", s[L.operation] or s[L.cost_kind], "")
        tally = tallies.get(key)
        if tally is None:
            tally = tallies[key] = _Tally()
        tally.add_charge(s)
    if not tallies:
        tallies[_NO_CALLS] = _Tally()
    return tallies


# A breakdown record is assembled from four parts, in RUN_CALL_COLUMNS order: the run's head,
# the row's key, the run's attribution, the row's mask and flags, its sums, the run's tail.
# Concatenating tuples builds the 45 fields in C (keyword construction costs ~2 us a row on
# the hot path); the layout is checked against the record's fields at import.
_RUN_HEAD = ("run_id", "version", "sign", "start_time")
_RUN_DIMENSIONS = (
    "workflow_id", "workflow_type", "service", "environment", "tenant", "customer", "feature", "user",
    "prompt_version", "team", "cost_center", "product", "owner", "status", "outcome",
)  # fmt: skip
_FLAGS = ("run_mask", "successful", "accepted")
_SUMS = (
    "calls", "errors", "retries", "tool_calls", "tool_failures", "unpriced_calls", "input_tokens", "output_tokens",
    "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "payload_bytes", "cost_usd", "reported_cost_usd",
)  # fmt: skip
_RUN_TAIL = ("written_at", "node")
if (*_RUN_HEAD, *CALL_DIMENSIONS, *_RUN_DIMENSIONS, *_FLAGS, *_SUMS, "latencies_ms", *_RUN_TAIL, "cost_kind") != (
    BreakdownRecord._fields
):  # pragma: no cover - a column added to one list but not the other
    raise AssertionError("enrich.breakdown: the record layout no longer matches BreakdownRecord")
_head_of = operator.attrgetter(*_RUN_HEAD)
_dimensions_of = operator.attrgetter(*_RUN_DIMENSIONS)
_tail_of = operator.attrgetter(*_RUN_TAIL)
_sums_of = operator.attrgetter(*_SUMS)


def first_row_masks(keys: list[CallKey]) -> dict[CallKey, int]:
    """Bit s of a row's mask: no earlier row has the same values on the dimensions of subset s.

    A row is not first for s exactly when an earlier row agrees with it on every dimension of
    s, i.e. when s is a subset of the dimensions the two rows agree on.
    """
    assert _NDIMS == 6, "the agreement bits below are written out for six call dimensions"
    masks = {}
    subsets_of = _SUBSETS_OF
    for index, key in enumerate(keys):
        covered = 0
        k0, k1, k2, k3, k4, k5 = key
        for o0, o1, o2, o3, o4, o5 in keys[:index]:
            covered |= subsets_of[
                (k0 == o0) | (k1 == o1) << 1 | (k2 == o2) << 2 | (k3 == o3) << 3 | (k4 == o4) << 4 | (k5 == o5) << 5
            ]
        masks[key] = _ALL_SUBSETS & ~covered
    return masks

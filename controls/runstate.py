"""Per-run state of the stream controls: the calls seen so far, their retries and steps.

Shared by the retry-loop watch (``stream``) and the policy watch (``routing``); pure data
and small helpers, no I/O.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Any

from otelspend.controls.policy import PolicyRule
from otelspend.controls.windows import WindowCounter
from otelspend.record import L

_START, _END, _SCOPE = L.start_time, L.end_time, L.scope_name
_PROVIDER, _OPERATION, _MODEL, _RESPONSE = L.provider, L.operation, L.model, L.response_id
_INPUT, _OUTPUT = L.input_tokens, L.output_tokens


@dataclass(slots=True)
class CallState:
    """One provider call as the stream has seen it so far (several spans may report it)."""

    span_id: str
    parent: str
    scope: str
    start: int
    end: int
    provider: str
    operation: str
    model: str
    response_id: str
    step: tuple[str, str, str]
    input_tokens: int
    failed: bool
    attributed: int = 0
    """Retries from attributes (resend / explicit) over every span of the call."""
    attempts: int = 0
    """Per-attempt HTTP child spans seen."""
    counted: int = 0
    """Retries of this call already added to the run's window."""
    app_retry: bool = False
    """Counted as a retry the application made (a later call of its step exists)."""
    members: list[str] = field(default_factory=list)


class RunState:
    """What the stream controls remember of one open run."""

    __slots__ = (
        "by_parent",
        "by_response",
        "by_span",
        "calls",
        "context",
        "context_version",
        "final",
        "http_under",
        "last_active",
        "looped",
        "new_retries",
        "new_steps",
        "pending",
        "retries",
        "retry_bound",
        "retry_total",
        "rules",
        "rules_version",
        "run_id",
        "screening",
        "seen_calls",
        "step_calls",
        "steps",
    )  # fmt: skip

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.context: dict[str, str] = {}
        self.final = False
        self.calls = 0
        self.by_span: dict[str, CallState] = {}
        self.by_response: dict[str, CallState] = {}
        self.by_parent: dict[str, list[CallState]] = {}
        self.http_under: dict[str, int] = {}
        self.retries = WindowCounter()
        self.retry_total = 0
        self.steps: dict[tuple[str, str, str], list[int]] = {}
        """Start times of each step's calls, sorted."""
        self.step_calls: dict[tuple[str, str, str], list[CallState]] = {}
        self.pending: list[tuple[CallState, float]] = []
        """Calls waiting for run attributes, with when they arrived (monotonic seconds)."""
        self.looped = False
        self.last_active = 0.0
        self.new_retries: list[int] = []
        """Times of retries added since the last check."""
        self.new_steps: dict[tuple[str, str, str], list[int]] = {}
        """Times of step calls added since the last check, by step."""
        self.rules: tuple[PolicyRule, ...] | None = None
        """The policy rules that apply to this run, once decidable (cached per context version)."""
        self.rules_version = -1
        self.context_version = 0
        self.screening: list[tuple[Any, ...]] | None = []
        """Spans kept while the run is only screened (None once it is analysed in full)."""
        self.seen_calls = 0
        """Inference and tool spans seen (an upper bound of the calls of any step)."""
        self.retry_bound = 0
        """An upper bound of the run's retries (see ``StreamControls._screen``)."""


def has_usage(span: tuple[Any, ...]) -> bool:
    """Whether the span reports token usage (a call that got an answer)."""
    return span[_INPUT] is not None or span[_OUTPUT] is not None


def busiest(times: list[int], around: int, width: int) -> int:
    """Most of the sorted ``times`` within any window ``[t, t + width]`` that contains ``around``."""
    first = bisect.bisect_left(times, around - width)
    last = bisect.bisect_right(times, around)
    return max((bisect.bisect_right(times, times[i] + width) - i for i in range(first, last)), default=0)


_SNAPSHOT = re.compile(r"-(\d{4}-?\d{2}-?\d{2}|latest)$")


_BASE_MODELS: dict[str, str] = {}


def base_model(model: str) -> str:
    """``gpt-5-2025-08-07`` -> ``gpt-5``: the failed attempt knows the model asked for, the
    success the dated snapshot that answered; one step either way (memoised: models are few)."""
    base = _BASE_MODELS.get(model)
    if base is None:
        if len(_BASE_MODELS) > 10_000:
            _BASE_MODELS.clear()
        base = _BASE_MODELS[model] = _SNAPSHOT.sub("", model)
    return base


def sibling_view(call: CallState, span: tuple[Any, ...]) -> bool:
    """Two libraries' spans of one request side by side: another scope, one inside the other
    in time, the same provider, operation and model, not two different responses."""
    scope = span[_SCOPE]
    if not scope or not call.scope or scope == call.scope:
        return False
    if call.response_id and span[_RESPONSE] and call.response_id != span[_RESPONSE]:
        return False
    start, end = span[_START], span[_END]
    nested = (call.start <= start and end <= call.end) or (start <= call.start and call.end <= end)
    if not nested:
        return False
    for mine, theirs in ((call.provider, span[_PROVIDER]), (call.operation, span[_OPERATION])):
        if mine and theirs and mine != theirs:
            return False
    return not call.model or not span[_MODEL] or base_model(call.model) == base_model(span[_MODEL])

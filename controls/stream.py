"""Controls on the span stream: retry loops and model-policy violations, seconds after ingest.

Spans arrive in export batches, children usually before their root, one provider call
often as several spans (an instrumentor's span around the SDK's own, two libraries side
by side). This keeps, per open run, just enough to count each call once as it arrives:

* an inference span is a **view** of a call already seen when it shares its
  ``gen_ai.response.id``, nests directly in or around one of its spans, or is a sibling
  from another instrumentation scope lying within it in time for the same provider,
  operation and model (the rules ``enrich.runs`` applies to whole runs, taken one span at
  a time; a view never counts again);
* **retries** of a call are the largest of ``http.request.resend_count``, an explicit
  retry attribute and its per-attempt HTTP child spans minus one; a failed call followed
  by a later call of the same step counts one more (the application retried);
* a **step** is the operation and model (or tool) called under one parent span, as for
  the stored ``runs.retry_loop`` flag.

A run raises ``run.retry_loop`` once, when more than ``max_retries`` retries, or more
than ``max_step_calls`` calls of one step, fall within ``window_seconds`` of span time.
Each counted call is handed to the policy watch (``routing``), which checks it as soon as
the run attributes its rules match on are known.

Memory is bounded: at most ``max_runs`` runs (the least recently active are forgotten,
counted) and ``max_calls_per_run`` calls each. Nothing here does I/O.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from otelspend.controls.events import RETRY_LOOP, Detection, count
from otelspend.controls.policy import Policy
from otelspend.controls.routing import PriceLookup, RoutingWatch
from otelspend.controls.runstate import CallState, RunState, base_model, busiest, has_usage, sibling_view
from otelspend.record import L

CONTEXT_KEYS: tuple[str, ...] = ("workflow_type", "feature", "environment", "tenant", "customer")
_CONTEXT_SLOTS = tuple((key, getattr(L, key)) for key in CONTEXT_KEYS)
_CONTEXT_INDEXES = tuple(slot for _, slot in _CONTEXT_SLOTS)
_SERVICE = L.service_name
# Tuple positions as plain ints: an attribute lookup on ``L`` per field per span adds up.
_TRACE, _SPAN, _PARENT, _CLASS = L.trace_id, L.span_id, L.parent_span_id, L.span_class
_START, _END, _STATUS, _SCOPE = L.start_time, L.end_time, L.status_code, L.scope_name
_PROVIDER, _OPERATION, _MODEL, _RESPONSE = L.provider, L.operation, L.model, L.response_id
_INPUT, _OUTPUT, _RESEND, _RETRY, _TOOL = L.input_tokens, L.output_tokens, L.resend_count, L.retry_count, L.tool_name
_WATCHED = frozenset({"llm", "tool", "http"})
NS = 10**9


@dataclass(frozen=True)
class StreamLimits:
    """Thresholds and memory bounds of the stream controls."""

    max_retries: int = 2
    max_step_calls: int = 9
    window_seconds: float = 60.0
    max_runs: int = 100_000
    max_calls_per_run: int = 10_000
    policy_wait_seconds: float = 300.0
    """A call whose rules need run attributes not seen yet is checked with what is known after this long."""
    screen: bool = True
    """Screen runs first (analysed in full only near a threshold or at a call the policy may refuse);
    off, every span is analysed at once. The detections are the same either way."""


@dataclass
class StreamStats:
    """Counters the engine exports."""

    calls: int = 0
    views: int = 0
    analysed: int = 0
    """Runs that came near a threshold (or a policy) and were analysed in full."""
    runs_evicted: int = 0
    calls_over_cap: int = 0
    violations: dict[str, int] = field(default_factory=dict)
    """Violating calls by rule id (the routing watch's counts)."""


class StreamControls:
    """Per-run state of the stream controls; ``observe`` returns what it detected."""

    def __init__(self, limits: StreamLimits, prices: PriceLookup) -> None:
        self.limits = limits
        self.prices = prices
        self.routing = RoutingWatch(prices)
        self.runs: OrderedDict[str, RunState] = OrderedDict()
        self.stats = StreamStats()
        self._window_ns = int(limits.window_seconds * NS)
        self.stats.violations = self.routing.violations
        """(rule, model, prices) -> the violation or None: a model is judged once per rule and price."""

    # -- input ------------------------------------------------------------------------------

    def observe(self, spans: Iterable[tuple[Any, ...]], now: float) -> list[Detection]:
        """Take one batch of priced spans (``otelspend.record.L`` tuples); ``now`` is monotonic seconds."""
        found: list[Detection] = []
        touched: dict[str, RunState] = {}
        watched, screen = _WATCHED, self.limits.screen
        for span in spans:
            span_class = span[_CLASS]
            is_root = not span[_PARENT]
            if span_class not in watched and not is_root:
                continue
            trace = span[_TRACE]
            run = touched.get(trace)  # spans of a trace usually come together: one LRU update per batch
            if run is None:
                run = touched[trace] = self._run(trace, now)
            if is_root:
                self._learn_context(run, span, True)
                run.final = True
            if span_class not in watched:
                continue
            if run.screening is None or not screen:
                self._process(run, span, found)
            else:
                self._screen(run, span, found)
        for run in touched.values():
            self._check_loop(run, found)
            if run.pending and run.final:
                self.routing.settle(run, found, force=True)
        self._evict(found)
        return found

    # -- screening: most runs never come near a threshold ----------------------------------------

    def _screen(self, run: RunState, span: tuple[Any, ...], found: list[Detection]) -> None:
        """Keep the span and count upper bounds of what the rules count: retries (every resend
        and retry attribute, failed inference span and HTTP attempt, views included) and calls
        (every inference and tool span). While both stay within their limits no rule can fire,
        so the run costs a list append; past them, or at a call that may break the policy,
        the run is analysed in full from its first span."""
        screening = run.screening
        assert screening is not None
        screening.append(span)
        span_class = span[_CLASS]
        if span_class == "llm":
            run.seen_calls += 1
            run.retry_bound += (span[_RESEND] or 0) + (span[_RETRY] or 0) + (span[_STATUS] == "ERROR")
            routing = self.routing
            if routing.policy.rules and routing.may_violate(span):
                self._analyse(run, found)
                return
        elif span_class == "tool":
            run.seen_calls += 1
        else:
            run.retry_bound += 1  # an HTTP attempt
        limits = self.limits
        if run.retry_bound > limits.max_retries or run.seen_calls > limits.max_step_calls:
            self._analyse(run, found)

    def _analyse(self, run: RunState, found: list[Detection]) -> None:
        """From now on, the run in full: what was screened first, in arrival order."""
        kept, run.screening = run.screening or [], None
        self.stats.analysed += 1
        for span in kept:
            self._process(run, span, found)

    def _process(self, run: RunState, span: tuple[Any, ...], found: list[Detection]) -> None:
        span_class = span[_CLASS]
        if self.routing.policy.rules and span[_PARENT] and len(run.context) < 6:
            self._learn_context(run, span, False)  # attributes on child spans matter to policy rules only
        if span_class == "llm":
            self._inference(run, span, found)
        elif span_class == "tool":
            self._step_event(run, ("tool", span[_PARENT], span[_TOOL]), span[_START])
        else:
            self._attempt(run, span[_PARENT])

    def closed(self, run_ids: Iterable[str], found: list[Detection]) -> None:
        """Runs just written by an emission: forget them (their waiting calls are checked first).
        A late span starts a fresh state; a loop raised again is the same incident (keyed by run)."""
        for run_id in run_ids:
            run = self.runs.pop(run_id, None)
            if run is not None and run.pending:
                self.routing.settle(run, found, force=True)

    def tick(self, now: float) -> list[Detection]:
        """Check calls that waited too long for their run's attributes."""
        found: list[Detection] = []
        wait = self.limits.policy_wait_seconds
        for run_id in list(self.routing.waiting):
            run = self.runs.get(run_id)
            if run is None or not run.pending:
                self.routing.waiting.discard(run_id)
            elif run.pending[0][1] + wait <= now:
                self.routing.settle(run, found, force=True)
        return found

    @property
    def policy(self) -> Policy:
        """The policy in force."""
        return self.routing.policy

    def set_policy(self, policy: Policy) -> None:
        """Use ``policy`` for calls from now on."""
        self.routing.set_policy(policy)
        for run in self.runs.values():
            run.rules_version = -1

    # -- runs ---------------------------------------------------------------------------------

    def _run(self, run_id: str, now: float) -> RunState:
        run = self.runs.get(run_id)
        if run is None:
            run = self.runs[run_id] = RunState(run_id)
        else:
            self.runs.move_to_end(run_id)
        run.last_active = now
        return run

    def _evict(self, found: list[Detection]) -> None:
        while len(self.runs) > self.limits.max_runs:
            _, run = self.runs.popitem(last=False)
            self.stats.runs_evicted += 1
            if run.pending:
                self.routing.settle(run, found, force=True)

    def forget_idle(self, now: float, idle_seconds: float) -> list[Detection]:
        """Forget runs quiet for ``idle_seconds`` (their pending calls are checked first)."""
        found: list[Detection] = []
        while self.runs:
            run = next(iter(self.runs.values()))
            if run.last_active + idle_seconds > now:
                break
            self.runs.popitem(last=False)
            if run.pending:
                self.routing.settle(run, found, force=True)
        return found

    @staticmethod
    def _learn_context(run: RunState, span: tuple[Any, ...], is_root: bool) -> None:
        context = run.context
        changed = False
        for key, slot in _CONTEXT_SLOTS:
            value = span[slot]
            if value and (is_root or key not in context) and context.get(key) != value:
                context[key] = value
                changed = True
        service = span[_SERVICE]
        if service and (is_root or "service" not in context) and context.get("service") != service:
            context["service"] = service
            changed = True
        if changed:
            run.context_version += 1

    # -- calls ----------------------------------------------------------------------------------

    def _inference(self, run: RunState, span: tuple[Any, ...], found: list[Detection]) -> None:
        span_id = span[_SPAN]
        call = self._same_call(run, span)
        attributed = max(span[_RESEND] or 0, span[_RETRY] or 0)
        if call is not None:
            self.stats.views += 1
            call.members.append(span_id)
            run.by_span[span_id] = call
            call.attributed = max(call.attributed, attributed)
            call.attempts += run.http_under.get(span_id, 0)
            if span[_RESPONSE]:
                run.by_response.setdefault(span[_RESPONSE], call)
            if call.failed and has_usage(span):
                call.failed = False  # the usage report of a call that succeeded
            self._add_call_retries(run, call)
            return
        if run.calls >= self.limits.max_calls_per_run:
            self.stats.calls_over_cap += 1
            return
        self.stats.calls += 1
        run.calls += 1
        parent = span[_PARENT]
        model = span[_MODEL]
        call = CallState(
            span_id,
            parent,
            span[_SCOPE],
            span[_START],
            span[_END],
            span[_PROVIDER],
            span[_OPERATION],
            model,
            span[_RESPONSE],
            ("call", parent, f"{span[_OPERATION]}:{base_model(model)}"),
            span[_INPUT] or 0,
            span[_STATUS] == "ERROR" and not has_usage(span),
            attributed,
            run.http_under.get(span_id, 0) if run.http_under else 0,
        )
        call.members.append(span_id)
        run.by_span[span_id] = call
        siblings = run.by_parent.get(parent)
        if siblings is None:
            run.by_parent[parent] = [call]
        else:
            siblings.append(call)
        if call.response_id:
            run.by_response[call.response_id] = call
        if attributed or call.attempts:
            self._add_call_retries(run, call)
        self._app_retries(run, call)
        self._step_event(run, call.step, call.start)
        if self.routing.policy.rules:
            self.routing.call(run, call, found)

    @staticmethod
    def _same_call(run: RunState, span: tuple[Any, ...]) -> CallState | None:
        """The call ``span`` is a view of, if any (see the module docstring)."""
        response_id = span[_RESPONSE]
        if response_id and response_id in run.by_response:
            return run.by_response[response_id]
        parent = span[_PARENT]
        inner = run.by_span.get(parent)
        if inner is not None:
            return inner
        for child in run.by_parent.get(span[_SPAN], ()):
            return child  # the span wraps a call already seen
        scope = span[_SCOPE]
        for sibling in run.by_parent.get(parent, ()):
            if sibling.scope != scope and sibling_view(sibling, span):  # two libraries side by side
                return sibling
        return None

    def _attempt(self, run: RunState, parent: str) -> None:
        run.http_under[parent] = run.http_under.get(parent, 0) + 1
        call = run.by_span.get(parent)
        if call is not None:
            call.attempts += 1
            self._add_call_retries(run, call)

    def _add_call_retries(self, run: RunState, call: CallState) -> None:
        retries = max(call.attributed, call.attempts - 1, 0)
        if retries > call.counted:
            run.retries.add(call.start, retries - call.counted)
            run.retry_total += retries - call.counted
            run.new_retries.append(call.start)
            call.counted = retries

    def _app_retries(self, run: RunState, call: CallState) -> None:
        """A failed call with a later call of the same step was retried by the application."""
        siblings = run.step_calls.get(call.step)
        if siblings is None:
            run.step_calls[call.step] = [call]
            return
        for earlier in siblings:
            if earlier.failed and not earlier.app_retry and earlier.start < call.start:
                earlier.app_retry = True
                run.retries.add(earlier.start)
                run.retry_total += 1
                run.new_retries.append(earlier.start)
        if call.failed and any(other.start > call.start for other in siblings):
            call.app_retry = True
            run.retries.add(call.start)
            run.retry_total += 1
            run.new_retries.append(call.start)
        siblings.append(call)

    def _step_event(self, run: RunState, step: tuple[str, str, str], start: int) -> None:
        times = run.steps.get(step)
        if times is None:
            run.steps[step] = [start]
            return
        bisect.insort(times, start)
        if len(times) > self.limits.max_step_calls:  # fewer calls in all can never be too many in a window
            run.new_steps.setdefault(step, []).append(start)

    # -- retry loops -------------------------------------------------------------------------------

    def _check_loop(self, run: RunState, found: list[Detection]) -> None:
        if run.looped:
            run.new_retries.clear()
            run.new_steps.clear()
            return
        limits, width = self.limits, self._window_ns
        if not run.new_steps and (not run.new_retries or run.retry_total <= limits.max_retries):
            run.new_retries.clear()
            return
        # Only windows around what arrived since the last check can have grown.
        retries = max((run.retries.busiest(t, width) for t in run.new_retries), default=0)
        busiest_step, step_calls = None, 0
        for step, times in run.new_steps.items():
            calls = max((busiest(run.steps[step], t, width) for t in times), default=0)
            if calls > step_calls:
                busiest_step, step_calls = step, calls
        run.new_retries.clear()
        run.new_steps.clear()
        if retries <= limits.max_retries and step_calls <= limits.max_step_calls:
            return
        run.looped = True
        found.append(self._loop_detection(run, retries, busiest_step, step_calls))

    def _loop_detection(
        self, run: RunState, retries: int, step: tuple[str, str, str] | None, step_calls: int
    ) -> Detection:
        limits = self.limits
        by_retries = retries > limits.max_retries
        window = f"{limits.window_seconds:g} s"
        if by_retries:
            reason = f"{retries} retries within {window} (more than {limits.max_retries})"
            observed, threshold = count(retries, "retries"), count(limits.max_retries, "retries")
        else:
            reason = f"{step_calls} calls of one step within {window} (more than {limits.max_step_calls})"
            observed, threshold = count(step_calls, "calls"), count(limits.max_step_calls, "calls")
        step_info = {}
        if step is not None:
            kind, parent, what = step
            step_info = {"kind": kind, "parent_span_id": parent, ("tool" if kind == "tool" else "call"): what}
        return Detection(
            type=RETRY_LOOP,
            key=f"{RETRY_LOOP}:{run.run_id}",
            severity="warning",
            title=f"Retry loop in run {run.run_id}: {reason}",
            dimensions={k: v for k, v in run.context.items() if v},
            observed=observed,
            threshold=threshold,
            details={
                "run_id": run.run_id,
                "reason": reason,
                "retries_in_window": retries,
                "max_step_calls_in_window": step_calls,
                "busiest_step": step_info,
                "window_seconds": limits.window_seconds,
                "action": "stop",
            },
            run_id=run.run_id,
            links={"run": f"/runs/{run.run_id}", "stop": f"/v1/controls/runs/{run.run_id}"},
        )

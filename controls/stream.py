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
Each counted call is checked against the policy as soon as the run attributes its rules
match on are known (on the call or an earlier span, else when the root arrives).

Memory is bounded: at most ``max_runs`` runs (the least recently active are forgotten,
counted) and ``max_calls_per_run`` calls each. Nothing here does I/O.
"""

from __future__ import annotations

import bisect
import re
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from otelspend.controls.events import POLICY_VIOLATION, RETRY_LOOP, Detection, Measure, count, decimal
from otelspend.controls.policy import Policy, PolicyRule, UnitPrices, Violation
from otelspend.controls.windows import WindowCounter
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
REPORT_SECONDS = 10.0
"""A policy incident is reported to the engine at most this often (its calls are all counted)."""
_UNKNOWN: Any = object()
PriceLookup = Callable[[str, str, int, int], "UnitPrices | str"]
"""(provider, model, start_ns, input_tokens) -> unit prices, or why the model is unpriced."""


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


@dataclass(slots=True)
class _Call:
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


class _Run:
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
        "retry_total",
        "rules",
        "rules_version",
        "run_id",
        "step_calls",
        "steps",
    )  # fmt: skip

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.context: dict[str, str] = {}
        self.final = False
        self.calls = 0
        self.by_span: dict[str, _Call] = {}
        self.by_response: dict[str, _Call] = {}
        self.by_parent: dict[str, list[_Call]] = {}
        self.http_under: dict[str, int] = {}
        self.retries = WindowCounter()
        self.retry_total = 0
        self.steps: dict[tuple[str, str, str], list[int]] = {}
        """Start times of each step's calls, sorted."""
        self.step_calls: dict[tuple[str, str, str], list[_Call]] = {}
        self.pending: list[tuple[_Call, float]] = []
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


@dataclass
class StreamStats:
    """Counters the engine exports."""

    calls: int = 0
    views: int = 0
    runs_evicted: int = 0
    calls_over_cap: int = 0
    violations: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Violating calls by rule id."""


class StreamControls:
    """Per-run state of the stream controls; ``observe`` returns what it detected."""

    def __init__(self, limits: StreamLimits, prices: PriceLookup) -> None:
        self.limits = limits
        self.prices = prices
        self.policy = Policy()
        self.runs: OrderedDict[str, _Run] = OrderedDict()
        self.stats = StreamStats()
        self._window_ns = int(limits.window_seconds * NS)
        self._checked: dict[tuple[str, str, Any], Any] = {}
        self._last_reported: dict[tuple[str, ...], float] = {}
        """(rule, model, prices) -> the violation or None: a model is judged once per rule and price."""

    # -- input ------------------------------------------------------------------------------

    def observe(self, spans: Iterable[tuple[Any, ...]], now: float) -> list[Detection]:
        """Take one batch of priced spans (``otelspend.record.L`` tuples); ``now`` is monotonic seconds."""
        found: list[Detection] = []
        touched: dict[str, _Run] = {}
        watched = _WATCHED
        learn_all = bool(self.policy.rules)  # attributes on child spans only matter to policy rules
        for span in spans:
            span_class = span[_CLASS]
            is_root = not span[_PARENT]
            if span_class not in watched and not is_root:
                continue
            trace = span[_TRACE]
            run = touched.get(trace)  # spans of a trace usually come together: one LRU update per batch
            if run is None:
                run = touched[trace] = self._run(trace, now)
            if is_root or (learn_all and len(run.context) < 6):
                self._learn_context(run, span, is_root)
            if span_class == "llm":
                self._inference(run, span, found)
            elif span_class == "tool":
                self._step_event(run, ("tool", span[_PARENT], span[_TOOL]), span[_START])
            elif span_class == "http":
                self._attempt(run, span[_PARENT])
            if is_root:
                run.final = True
        for run in touched.values():
            self._check_loop(run, found)
            if run.pending and run.final:
                self._settle_pending(run, found, force=True)
        self._evict(found)
        return found

    def tick(self, now: float) -> list[Detection]:
        """Check calls that waited too long for their run's attributes."""
        found: list[Detection] = []
        wait = self.limits.policy_wait_seconds
        for run in list(self.runs.values()):
            if run.pending and run.pending[0][1] + wait <= now:
                self._settle_pending(run, found, force=True)
        return found

    def set_policy(self, policy: Policy) -> None:
        """Use ``policy`` for calls from now on."""
        self.policy = policy
        self._checked = {}
        self._last_reported = {}
        for run in self.runs.values():
            run.rules_version = -1

    # -- runs ---------------------------------------------------------------------------------

    def _run(self, run_id: str, now: float) -> _Run:
        run = self.runs.get(run_id)
        if run is None:
            run = self.runs[run_id] = _Run(run_id)
        else:
            self.runs.move_to_end(run_id)
        run.last_active = now
        return run

    def _evict(self, found: list[Detection]) -> None:
        while len(self.runs) > self.limits.max_runs:
            _, run = self.runs.popitem(last=False)
            self.stats.runs_evicted += 1
            if run.pending:
                self._settle_pending(run, found, force=True)

    def forget_idle(self, now: float, idle_seconds: float) -> list[Detection]:
        """Forget runs quiet for ``idle_seconds`` (their pending calls are checked first)."""
        found: list[Detection] = []
        while self.runs:
            run = next(iter(self.runs.values()))
            if run.last_active + idle_seconds > now:
                break
            self.runs.popitem(last=False)
            if run.pending:
                self._settle_pending(run, found, force=True)
        return found

    @staticmethod
    def _learn_context(run: _Run, span: tuple[Any, ...], is_root: bool) -> None:
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

    def _inference(self, run: _Run, span: tuple[Any, ...], found: list[Detection]) -> None:
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
            if call.failed and _has_usage(span):
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
        call = _Call(
            span_id,
            parent,
            span[_SCOPE],
            span[_START],
            span[_END],
            span[_PROVIDER],
            span[_OPERATION],
            model,
            span[_RESPONSE],
            ("call", parent, f"{span[_OPERATION]}:{_base_model(model)}"),
            span[_INPUT] or 0,
            span[_STATUS] == "ERROR" and not _has_usage(span),
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
        if self.policy.rules:
            self._policy(run, call, found)

    @staticmethod
    def _same_call(run: _Run, span: tuple[Any, ...]) -> _Call | None:
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
            if sibling.scope != scope and _sibling_view(sibling, span):  # two libraries side by side
                return sibling
        return None

    def _attempt(self, run: _Run, parent: str) -> None:
        run.http_under[parent] = run.http_under.get(parent, 0) + 1
        call = run.by_span.get(parent)
        if call is not None:
            call.attempts += 1
            self._add_call_retries(run, call)

    def _add_call_retries(self, run: _Run, call: _Call) -> None:
        retries = max(call.attributed, call.attempts - 1, 0)
        if retries > call.counted:
            run.retries.add(call.start, retries - call.counted)
            run.retry_total += retries - call.counted
            run.new_retries.append(call.start)
            call.counted = retries

    def _app_retries(self, run: _Run, call: _Call) -> None:
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

    def _step_event(self, run: _Run, step: tuple[str, str, str], start: int) -> None:
        times = run.steps.get(step)
        if times is None:
            run.steps[step] = [start]
            return
        bisect.insort(times, start)
        if len(times) > self.limits.max_step_calls:  # fewer calls in all can never be too many in a window
            run.new_steps.setdefault(step, []).append(start)

    # -- retry loops -------------------------------------------------------------------------------

    def _check_loop(self, run: _Run, found: list[Detection]) -> None:
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
            calls = max((_busiest(run.steps[step], t, width) for t in times), default=0)
            if calls > step_calls:
                busiest_step, step_calls = step, calls
        run.new_retries.clear()
        run.new_steps.clear()
        if retries <= limits.max_retries and step_calls <= limits.max_step_calls:
            return
        run.looped = True
        found.append(self._loop_detection(run, retries, busiest_step, step_calls))

    def _loop_detection(self, run: _Run, retries: int, step: tuple[str, str, str] | None, step_calls: int) -> Detection:
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

    # -- policy ------------------------------------------------------------------------------------------

    def _policy(self, run: _Run, call: _Call, found: list[Detection]) -> None:
        if not self.policy:
            return
        if not self._evaluate(run, call, found, final=run.final):
            run.pending.append((call, run.last_active))

    def _settle_pending(self, run: _Run, found: list[Detection], *, force: bool) -> None:
        waiting, run.pending = run.pending, []
        for call, since in waiting:
            if not self._evaluate(run, call, found, final=force or run.final):
                run.pending.append((call, since))

    def _applicable(self, run: _Run, final: bool) -> tuple[PolicyRule, ...] | None:
        """The rules covering the run, None while undecidable; cached until its context changes."""
        version = run.context_version * 2 + final
        if run.rules_version == version:
            return run.rules
        applicable: list[PolicyRule] = []
        decided: tuple[PolicyRule, ...] | None = None
        for rule in self.policy.rules:
            applies = rule.applies(run.context, final=final)
            if applies is None:
                break
            if applies:
                applicable.append(rule)
        else:
            decided = tuple(applicable)
        run.rules, run.rules_version = decided, version
        return decided

    def _evaluate(self, run: _Run, call: _Call, found: list[Detection], *, final: bool) -> bool:
        """Check one call against every rule; False when a rule cannot be decided yet."""
        applicable = self._applicable(run, final)
        if applicable is None:
            return False
        prices: UnitPrices | str | None = None
        checked = self._checked
        for rule in applicable:
            if rule.prices_needed and prices is None:
                prices = self.prices(call.provider, call.model, call.start, call.input_tokens)
            key = (rule.id, call.model, prices if rule.prices_needed else None)
            violation = checked.get(key, _UNKNOWN)
            if violation is _UNKNOWN:
                violation = rule.check(call.model, prices)
                if len(checked) >= 10_000:
                    checked.clear()
                checked[key] = violation
            if violation is not None:
                self.stats.violations[rule.id] += 1
                key = (rule.id, call.model, run.context.get("workflow_type", ""), run.context.get("feature", ""),
                       run.context.get("environment", ""))  # fmt: skip
                # One detection per incident key every REPORT_SECONDS is enough to open it and keep it
                # open (it resolves after alerts.resolve_after_seconds of silence); every call is
                # still counted (stats.violations -> otelspend_policy_violations_total).
                if self._last_reported.get(key, -REPORT_SECONDS) + REPORT_SECONDS <= run.last_active:
                    self._last_reported[key] = run.last_active
                    found.append(self._violation(run, call, rule, violation, prices))
        return True

    @staticmethod
    def _violation(
        run: _Run, call: _Call, rule: PolicyRule, violation: Violation, prices: UnitPrices | str | None
    ) -> Detection:
        dims = {k: run.context.get(k, "") for k in ("workflow_type", "feature", "environment")}
        observed: Measure = Measure(call.model, "model")
        threshold: Measure | None = Measure(", ".join(rule.allow), "models") if rule.allow is not None else None
        if isinstance(prices, UnitPrices) and "cap" in violation.reason:
            kind_input = "input tokens" in violation.reason
            price = prices.input if kind_input else prices.output
            cap = rule.max_input if kind_input else rule.max_output
            if price is not None and cap is not None:
                observed = decimal(_decimal(price), "USD per million tokens")
                threshold = decimal(_decimal(cap), "USD per million tokens")
        return Detection(
            type=POLICY_VIOLATION,
            key=f"{POLICY_VIOLATION}:{rule.id}:{call.model}:" + ":".join(dims.values()),
            severity="warning",
            title=f"Model outside policy {rule.id}: {violation.reason}",
            dimensions={
                **{k: v for k, v in dims.items() if v},
                "model": call.model,
                "tenant": run.context.get("tenant", ""),
            },
            observed=observed,
            threshold=threshold,
            details={
                "rule": rule.id,
                "action": rule.action,
                "reason": violation.reason,
                "run_id": run.run_id,
                "span_id": call.span_id,
                "provider": call.provider,
                "model": call.model,
            },
            links={"run": f"/runs/{run.run_id}"},
        )


def _has_usage(span: tuple[Any, ...]) -> bool:
    return span[_INPUT] is not None or span[_OUTPUT] is not None


def _busiest(times: list[int], around: int, width: int) -> int:
    """Most of the sorted ``times`` within any window ``[t, t + width]`` that contains ``around``."""
    first = bisect.bisect_left(times, around - width)
    last = bisect.bisect_right(times, around)
    return max((bisect.bisect_right(times, times[i] + width) - i for i in range(first, last)), default=0)


_SNAPSHOT = re.compile(r"-(\d{4}-?\d{2}-?\d{2}|latest)$")


_BASE_MODELS: dict[str, str] = {}


def _base_model(model: str) -> str:
    """``gpt-5-2025-08-07`` -> ``gpt-5``: the failed attempt knows the model asked for, the
    success the dated snapshot that answered; one step either way (memoised: models are few)."""
    base = _BASE_MODELS.get(model)
    if base is None:
        if len(_BASE_MODELS) > 10_000:
            _BASE_MODELS.clear()
        base = _BASE_MODELS[model] = _SNAPSHOT.sub("", model)
    return base


def _sibling_view(call: _Call, span: tuple[Any, ...]) -> bool:
    """Two libraries' spans of one request side by side: another scope, one inside the other
    in time, the same provider, operation and model, not two different responses."""
    scope = span[L.scope_name]
    if not scope or not call.scope or scope == call.scope:
        return False
    if call.response_id and span[L.response_id] and call.response_id != span[L.response_id]:
        return False
    start, end = span[L.start_time], span[L.end_time]
    nested = (call.start <= start and end <= call.end) or (start <= call.start and call.end <= end)
    if not nested:
        return False
    for mine, theirs in ((call.provider, span[L.provider]), (call.operation, span[L.operation])):
        if mine and theirs and mine != theirs:
            return False
    return not call.model or not span[L.model] or _base_model(call.model) == _base_model(span[L.model])


def _decimal(value: Any) -> Any:
    from decimal import Decimal

    return Decimal(value.numerator) / Decimal(value.denominator)

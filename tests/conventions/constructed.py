"""CONSTRUCTED FROM THE DOCUMENTED CONVENTIONS, NOT CAPTURED.

Five of the thirteen libraries (logfire-openai, logfire-anthropic, pydantic-ai, openlit,
openinference-anthropic) have no capture. Their spans are built here from the per-library
tables of ``shared/conventions/README.md`` (attributes exactly as listed there: logfire's
separate streaming log-span, JSON ``gen_ai.usage.raw`` and finish reasons as a JSON string,
openlit's per-attempt ``POST`` spans and cache-EXCLUSIVE Anthropic input, pydantic-ai's
``invoke_agent`` span with ``gen_ai.aggregated_usage.*`` and ``operation.cost``, ...).

What the provider answered is real: each constructed run replays calls from a captured
ledger (the OpenAI calls of ``otel-genai-openai``, the Anthropic calls of
``anthropic-native``), with their timing, their usage, their failed attempts; where a
library nests the Anthropic SDK's own span, the real captured SDK span is reused. Only the
library's own spans are synthesised, so expectations still come from a real ledger.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from tests.conventions.capture import APP_SCOPE, Capture, call_groups, end_ns, load_capture
from tests.conventions.ledger import LedgerCall, Tokens, attempt_groups, logical_calls, price_femto

OPENAI_BASE = "otel-genai-openai"
ANTHROPIC_BASE = "anthropic-native"
MS = 1_000_000
PAD = 20_000
"""A library span starts this much (ns) before the SDK call it wraps and ends this much after."""

VERSIONS = {  # shared/conventions/README.md, "Versions captured"
    "logfire-openai": {"logfire": "5.2.0", "openai": "3.54.0", "opentelemetry-sdk": "1.45.2"},
    "logfire-anthropic": {"logfire": "5.2.0", "anthropic": "2.12.0", "opentelemetry-sdk": "1.45.2"},
    "pydantic-ai": {"pydantic-ai-slim": "2.68.0", "logfire": "5.2.0", "openai": "3.54.0", "anthropic": "2.12.0"},
    "openlit": {"openlit": "1.44.0", "openai": "2.54.0", "anthropic": "0.125.0", "opentelemetry-sdk": "1.45.1"},
    "openinference-anthropic": {"openinference-instrumentation-anthropic": "3.1.0", "anthropic": "2.12.0"},
}


@dataclass
class Slot:
    """One real provider call the constructed library reports, with its real timing."""

    call: LedgerCall
    attempts: list[dict[str, Any]]
    start: int
    end: int
    sdk_span: dict[str, Any] | None
    """The Anthropic SDK's own captured span for this call (Anthropic calls only)."""


@dataclass
class Run:
    """The constructed run being assembled."""

    library: str
    trace_id: str
    root_id: str
    keys: dict[str, str]
    """Business keys of the root span (what logfire copies from baggage onto every span)."""
    conversation_id: str
    spans: list[dict[str, Any]] = field(default_factory=list)

    def span_id(self, *parts: object) -> str:
        return _digest(self.library, *parts, size=8)

    def add(
        self,
        parts: Sequence[object],
        *,
        name: str,
        scope: str,
        version: str,
        parent: str,
        start: int,
        end: int,
        attributes: dict[str, Any],
        kind: str = "CLIENT",
        status: str = "UNSET",
        description: str | None = None,
        events: Sequence[dict[str, Any]] = (),
    ) -> str:
        span_id = self.span_id(*parts)
        self.spans.append(
            {
                "name": name,
                "kind": kind,
                "status": {"code": status, "description": description},
                "trace_id": self.trace_id,
                "span_id": span_id,
                "parent_span_id": parent,
                "scope": {"name": scope, "version": version},
                "start_unix_nano": start,
                "duration_ms": (end - start) / MS,
                "attributes": attributes,
                "events": list(events),
                "links": 0,
            }
        )
        return span_id

    def adopt(self, span: dict[str, Any], parent: str) -> None:
        """Reuse a real captured span (the Anthropic SDK's) under a constructed parent; its
        conversation id (a client option) is this run's."""
        attributes = dict(span["attributes"])
        if "gen_ai.conversation.id" in attributes:
            attributes["gen_ai.conversation.id"] = self.conversation_id
        self.spans.append({**span, "trace_id": self.trace_id, "parent_span_id": parent, "attributes": attributes})


def _digest(*parts: object, size: int) -> str:
    return hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=size).hexdigest()


# -- assembling a run from real ledgers ------------------------------------------------------


def _slots(base: Capture, keep: Callable[[LedgerCall], bool]) -> list[Slot]:
    calls = logical_calls(base.ledger, base.runs)
    groups = call_groups(base)
    assert len(groups) == len(calls), f"{base.library}: one span group per ledger call expected"
    attempts = attempt_groups(base.ledger)
    slots = []
    for call, group, tries in zip(calls, groups, attempts, strict=True):
        if not keep(call):
            continue
        sdk = next((s for s in group if s["scope"]["name"] == "com.anthropic.sdk.python"), None)
        slots.append(Slot(call, tries, group[0]["start_unix_nano"], end_ns(group[0]), sdk))
    return slots


def _shift_slot(slot: Slot, by_ns: int) -> Slot:
    sdk = None
    if slot.sdk_span is not None:
        sdk = {**slot.sdk_span, "start_unix_nano": slot.sdk_span["start_unix_nano"] + by_ns}
    attempts = [{**a, "ts": a["ts"] + by_ns / 1e9} for a in slot.attempts]
    return Slot(slot.call, attempts, slot.start + by_ns, slot.end + by_ns, sdk)


def _concatenate(parts: Sequence[list[Slot]], gap_ns: int = 20 * MS) -> list[Slot]:
    """Calls of several captured runs one after another, as one run would make them."""
    out: list[Slot] = []
    for slots in parts:
        if out and slots:
            offset = out[-1].end + gap_ns - slots[0].start
            slots = [_shift_slot(s, offset) for s in slots]
        out.extend(slots)
    return out


def _app_root(capture: Capture) -> dict[str, Any]:
    return next(s for s in capture.spans if s["scope"]["name"] == APP_SCOPE and not s["parent_span_id"])


def _new_run(library: str, app_root: dict[str, Any]) -> Run:
    run_id = f"{library}-constructed"
    keys = {
        "workflow.id": f"wf-{run_id}",
        "workflow.type": app_root["attributes"]["workflow.type"],
        "tenant.id": app_root["attributes"]["tenant.id"],
        "feature.id": app_root["attributes"]["feature.id"],
        "user.id": app_root["attributes"]["user.id"],
    }
    return Run(library, _digest(library, size=16), _digest(library, "root", size=8), keys, f"conv-{run_id}")


def _finish(run: Run, slots: list[Slot], base_root: dict[str, Any], tool_at: int, family: str) -> Capture:
    """Add the application's own spans (root, one tool) and the ledger; return the capture."""
    start = min(s["start_unix_nano"] for s in run.spans) - 30 * MS
    end = max(end_ns(s) for s in run.spans) + 10 * MS
    root_attrs = {
        **{k: v for k, v in base_root["attributes"].items() if k not in run.keys},
        **run.keys,
        "gen_ai.conversation.id": run.conversation_id,
        "rc.run_id": f"{run.library}-constructed",
    }
    run.spans.append(
        {
            **base_root,
            "trace_id": run.trace_id,
            "span_id": run.root_id,
            "start_unix_nano": start,
            "duration_ms": (end - start) / MS,
            "attributes": root_attrs,
        }
    )
    if tool_at:
        run.add(
            ["tool"],
            name="execute_tool search_kb",
            scope=APP_SCOPE,
            version="1.0",
            parent=run.root_id,
            start=tool_at,
            end=tool_at + 5 * MS,
            kind="INTERNAL",
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "search_kb",
                "gen_ai.tool.type": "function",
                "gen_ai.tool.call.id": f"call_{run.library}",
            },
        )
    run_id = f"{run.library}-constructed"
    ledger = [
        {**attempt, "run": run_id, "library": run.library, "seq": seq}
        for seq, attempt in enumerate(a for slot in slots for a in slot.attempts)
    ]
    return Capture(
        library=run.library,
        family=family,
        versions=VERSIONS[run.library],
        resource={
            "telemetry.sdk.language": "python",
            "telemetry.sdk.name": "opentelemetry",
            "telemetry.sdk.version": "1.45.2",
            "service.name": f"rc-{run.library}",
            "rc.library": run.library,
            "rc.harness": "constructed",
        },
        spans=tuple(run.spans),
        ledger=tuple(ledger),
        runs=(
            {
                "run_id": run_id,
                "trace_id": run.trace_id,
                "root_span_id": run.root_id,
                "conversation_id": run.conversation_id,
                **run.keys,
            },
        ),
        constructed=True,
    )


def _tool_time(slots: list[Slot], after_api: str) -> int:
    """Between the embeddings call and the next call, as in the captured runs."""
    for slot, following in pairwise(slots):
        if slot.call.api == after_api:
            return slot.end + (following.start - slot.end) // 3
    return slots[len(slots) // 2].end + MS


# -- attribute helpers ----------------------------------------------------------------------


def _raw_usage(slot: Slot) -> dict[str, Any]:
    return slot.attempts[-1]["usage"]


def _exception(error_type: str, message: str) -> dict[str, Any]:
    return {
        "name": "exception",
        "attributes": {
            "exception.type": error_type,
            "exception.message": message,
            "exception.stacktrace": f"Traceback (most recent call last):\n{error_type}: {message}\n",
            "exception.escaped": "False",
        },
    }


def _rate_limited(slot: Slot) -> str:
    return f"Error code: {slot.attempts[-1]['status']} - injected {slot.attempts[-1]['status']}"


def _cost_usd(slot: Slot) -> float:
    """What a library pricing with genai-prices reports (logfire / pydantic-ai operation.cost)."""
    assert slot.call.tokens is not None
    return price_femto(slot.call.provider, slot.call.response_model, slot.call.tokens, slot.call.at) / 10**15


def _response_id(call: LedgerCall) -> dict[str, str]:
    """Embeddings responses have no id: the attribute is absent, not empty."""
    return {"gen_ai.response.id": call.response_id} if call.response_id else {}


def _operation(api: str) -> str:
    return "embeddings" if api == "openai.embeddings" else "chat"


# -- logfire (instrument_openai / instrument_anthropic) ---------------------------------------

LOGFIRE_TEMPLATES = {
    "openai.chat": "Chat Completion with {request_data[model]!r}",
    "openai.responses": "Responses API with {request_data[model]!r}",
    "openai.embeddings": "Embedding Creation with {request_data[model]!r}",
    "anthropic.messages": "Message with {request_data[model]!r}",
}


def _logfire_call(run: Run, slot: Slot, index: int, scope: str) -> None:
    call = slot.call
    template = LOGFIRE_TEMPLATES[call.api]
    request = {"model": call.request_model, "max_tokens": 256, "stream": call.stream}
    common = {
        **run.keys,  # add_baggage_to_attributes=True: baggage copied onto every span
        "logfire.span_type": "span",
        "logfire.msg_template": template,
        "logfire.msg": template.replace("{request_data[model]!r}", repr(call.request_model)),
        "request_data": json.dumps(request),
        "gen_ai.provider.name": call.provider,
        "gen_ai.system": call.provider,
        "gen_ai.operation.name": _operation(call.api),
        "gen_ai.request.model": call.request_model,
        "async": False,
    }
    request_start, request_end = slot.start - PAD, slot.end + PAD
    if call.failed:
        error = "openai.RateLimitError" if call.provider == "openai" else "anthropic.RateLimitError"
        run.add(
            [index, "request"],
            name=template,
            scope=scope,
            version="5.2.0",
            parent=run.root_id,
            start=request_start,
            end=request_end,
            attributes={**common, "logfire.level_num": 17},
            status="ERROR",
            description=_rate_limited(slot),
            events=[_exception(error, _rate_limited(slot))],
        )
        return
    raw = _raw_usage(slot)
    tokens = call.tokens
    assert tokens is not None
    usage = {
        "gen_ai.usage.input_tokens": tokens.input,  # Anthropic: logfire adds the cache in
        "gen_ai.usage.raw": json.dumps(raw),  # the only place logfire keeps cache tokens
    }
    if call.api != "openai.embeddings":
        usage["gen_ai.usage.output_tokens"] = tokens.output
    finish = "end_turn" if call.provider == "anthropic" else "stop"
    if not call.stream:
        run.add(
            [index, "request"],
            name=template,
            scope=scope,
            version="5.2.0",
            parent=run.root_id,
            start=request_start,
            end=request_end,
            attributes={
                **common,
                **usage,
                "gen_ai.response.model": call.response_model,
                **_response_id(call),
                "gen_ai.response.finish_reasons": json.dumps([finish]),  # a JSON string, not an array
                "operation.cost": _cost_usd(slot),
                "response_data": json.dumps({"usage": raw}),
            },
        )
        return
    # Streamed: the request span closes when the stream object is returned (no usage, no
    # response id); the usage arrives on a zero-length log-span once the stream has been
    # read, emitted in the caller's context (a sibling), response model = request model.
    returned = slot.start + (slot.end - slot.start) // 5
    request_id = run.add(
        [index, "request"],
        name=template,
        scope=scope,
        version="5.2.0",
        parent=run.root_id,
        start=request_start,
        end=returned,
        attributes=common,
    )
    if slot.sdk_span is not None:  # logfire-anthropic: only streams produce the SDK's span
        run.adopt(slot.sdk_span, request_id)
    log_template = "streaming response from {request_data[model]!r} took {duration:.2f}s"
    duration = (slot.end - slot.start) / 1e9
    run.add(
        [index, "stream-log"],
        name=log_template,
        scope=scope,
        version="5.2.0",
        parent=run.root_id,
        start=slot.end + PAD,
        end=slot.end + PAD,
        kind="INTERNAL",
        attributes={
            **common,
            **usage,
            "logfire.span_type": "log",
            "logfire.level_num": 9,
            "logfire.msg_template": log_template,
            "logfire.msg": f"streaming response from {call.request_model!r} took {duration:.2f}s",
            "duration": duration,
            "gen_ai.response.model": call.request_model,
            "gen_ai.response.finish_reasons": json.dumps([finish]),
            "response_data": json.dumps({"combined_chunk_content": "...", "chunk_count": 6, "usage": raw}),
        },
    )


def _logfire(library: str, base_name: str, scope: str) -> Capture:
    base = load_capture(base_name)
    slots = _slots(base, lambda call: True)
    root = _app_root(base)
    run = _new_run(library, root)
    for index, slot in enumerate(slots):
        _logfire_call(run, slot, index, scope)
    tool_at = _tool_time(slots, "openai.embeddings" if base.family == "openai" else "")
    return _finish(run, slots, root, tool_at, base.family)


# -- OpenInference (anthropic) ----------------------------------------------------------------


def _openinference_anthropic() -> Capture:
    library = "openinference-anthropic"
    base = load_capture(ANTHROPIC_BASE)
    slots = _slots(base, lambda call: True)
    root = _app_root(base)
    run = _new_run(library, root)
    for index, slot in enumerate(slots):
        call = slot.call
        attributes: dict[str, Any] = {
            "openinference.span.kind": "LLM",  # INTERNAL span: the kind does not classify it
            "llm.provider": "anthropic",
            "llm.system": "anthropic",
            "llm.request.model_name": call.request_model,
            "llm.invocation_parameters": json.dumps({"model": call.request_model, "max_tokens": 256}),
            "session.id": run.conversation_id,
            "user.id": run.keys["user.id"],
            "metadata": json.dumps({"tenant.id": run.keys["tenant.id"], "workflow.id": run.keys["workflow.id"]}),
            "input.value": json.dumps({"model": call.request_model, "messages": [{"role": "user"}]}),
            "input.mime_type": "application/json",
        }
        events = []
        status = "OK"
        if call.failed:
            attributes["llm.model_name"] = call.request_model  # flips to the request model on failure
            events.append(_exception("anthropic.RateLimitError", _rate_limited(slot)))
            status = "ERROR"
        else:
            tokens = call.tokens
            assert tokens is not None
            attributes.update(
                {
                    "llm.model_name": call.response_model,
                    "llm.response.model_name": call.response_model,
                    "llm.token_count.prompt": tokens.input,  # includes cache reads and writes
                    "llm.token_count.completion": tokens.output,
                    "llm.token_count.prompt_details.cache_read": tokens.cache_read,
                    "llm.token_count.prompt_details.cache_write": tokens.cache_write,
                    "llm.token_count.total": tokens.input + tokens.output,
                    "llm.finish_reason": "end_turn",
                    "output.value": "{...}",
                }
            )
        span_id = run.add(
            [index, "llm"],
            name="messages.create",
            scope="openinference.instrumentation.anthropic",
            version="3.1.0",
            parent=run.root_id,
            start=slot.start - PAD,
            end=slot.end + PAD,
            kind="INTERNAL",
            status=status,
            description=_rate_limited(slot) if call.failed else None,
            attributes=attributes,
            events=events,
        )
        assert slot.sdk_span is not None
        run.adopt(slot.sdk_span, span_id)  # the SDK's span is a CHILD with the same response id
    return _finish(run, slots, root, _tool_time(slots, ""), "anthropic")


# -- openlit ------------------------------------------------------------------------------------


def _openlit_call(run: Run, slot: Slot, index: int) -> None:
    call = slot.call
    scope = f"openlit.instrumentation.{call.provider}"
    operation = _operation(call.api)
    attributes: dict[str, Any] = {
        "gen_ai.provider.name": call.provider,
        "gen_ai.operation.name": operation,
        "gen_ai.request.model": call.request_model,
        "gen_ai.request.max_tokens": -1,  # openlit's value when unset
        "gen_ai.request.stream": call.stream,
        "server.address": "127.0.0.1",
        "server.port": 37333,
    }
    events = []
    status = "OK"
    if call.failed:
        attributes["error.type"] = "RateLimitError"
        events.append(_exception("RateLimitError", _rate_limited(slot)))
        status = "ERROR"
    else:
        tokens = call.tokens
        assert tokens is not None
        raw = _raw_usage(slot)
        if call.provider == "anthropic":
            input_tokens = raw["input_tokens"]  # provider-raw: EXCLUDES cache reads and writes
            total = raw["input_tokens"] + raw["output_tokens"]
        else:
            input_tokens = tokens.input
            total = tokens.input + tokens.output
        attributes.update(
            {
                "gen_ai.response.model": call.response_model,
                "gen_ai.usage.input_tokens": input_tokens,
                "gen_ai.usage.output_tokens": tokens.output,
                "gen_ai.usage.cache_read.input_tokens": tokens.cache_read,
                "gen_ai.client.token.usage": total,  # a metric name used as an attribute
                "gen_ai.usage.cost": 0.0,  # price list not downloadable offline: a silent $0
            }
        )
        if call.provider == "anthropic":
            attributes["gen_ai.usage.cache_creation.input_tokens"] = tokens.cache_write
        if call.response_id:
            attributes["gen_ai.response.id"] = call.response_id
        finish = {"anthropic": "end_turn", "openai.responses": "completed"}
        attributes["gen_ai.response.finish_reasons"] = [finish.get(call.provider, finish.get(call.api, "stop"))]
    span_id = run.add(
        [index, "chat"],
        name=f"{operation} {call.request_model}",
        scope=scope,
        version="1.44.0",
        parent=run.root_id,
        start=slot.start - PAD,
        end=slot.end + PAD,
        status=status,
        description=_rate_limited(slot) if call.failed else None,
        attributes=attributes,
        events=events,
    )
    # The bundled httpx instrumentation: one POST span per HTTP attempt (failed ones ERROR).
    span = (slot.end - slot.start) // len(slot.attempts)
    for attempt_index, attempt in enumerate(slot.attempts):
        ok = 200 <= attempt["status"] < 300
        begin = slot.start + attempt_index * span
        run.add(
            [index, "POST", attempt_index],
            name="POST",
            scope="opentelemetry.instrumentation.httpx",
            version="",
            parent=span_id,
            start=begin,
            end=begin + span - MS // 10,
            status="UNSET" if ok else "ERROR",
            attributes={
                "http.method": "POST",
                "http.url": f"http://127.0.0.1:37333{attempt['path']}",
                "http.status_code": attempt["status"],
            },
        )


def _openlit() -> Capture:
    openai_slots = _slots(load_capture(OPENAI_BASE), lambda call: True)
    anthropic_slots = _slots(load_capture(ANTHROPIC_BASE), lambda call: True)
    slots = _concatenate([openai_slots, anthropic_slots])
    root = next(
        s for s in load_capture(OPENAI_BASE).spans if s["scope"]["name"] == APP_SCOPE and not s["parent_span_id"]
    )
    run = _new_run("openlit", root)
    for index, slot in enumerate(slots):
        _openlit_call(run, slot, index)
    return _finish(run, slots, root, _tool_time(slots, "openai.embeddings"), "both")


# -- pydantic-ai (through logfire.instrument_pydantic_ai) ---------------------------------------

PYDANTIC_AI_OPENAI = ("gpt-4o-mini", "text-embedding-3-small", "o4-mini")
PYDANTIC_AI_ANTHROPIC = ("claude-sonnet-4-5",)


def _pydantic_ai_call(run: Run, slot: Slot, index: int, agent_id: str) -> None:
    call = slot.call
    operation = _operation(call.api)
    attributes: dict[str, Any] = {
        **run.keys,
        "logfire.span_type": "span",
        "logfire.msg": f"{operation} {call.request_model}",
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": call.provider,
        "gen_ai.system": call.provider,
        "gen_ai.request.model": call.request_model,
        "gen_ai.agent.name": "support-triage",
        "agent_name": "support-triage",
        "gen_ai.conversation.id": run.conversation_id,
        "model_request_parameters": json.dumps({"function_tools": [], "output_mode": "text"}),
    }
    events = []
    status = "UNSET"
    if call.failed:
        attributes["gen_ai.response.model"] = call.request_model  # the request model on failure
        events.append(_exception("openai.RateLimitError", _rate_limited(slot)))
        status = "ERROR"
    else:
        tokens = call.tokens
        assert tokens is not None
        attributes.update(
            {
                "gen_ai.response.model": call.response_model,
                **_response_id(call),
                "gen_ai.usage.input_tokens": tokens.input,  # Anthropic: includes the cache
                "operation.cost": _cost_usd(slot),
                "gen_ai.response.finish_reasons": ["stop"],
            }
        )
        if call.api != "openai.embeddings":
            attributes["gen_ai.usage.output_tokens"] = tokens.output
        if tokens.cache_read:
            attributes["gen_ai.usage.cache_read.input_tokens"] = tokens.cache_read
            attributes["gen_ai.usage.details.cache_read_tokens"] = tokens.cache_read
        if call.provider == "anthropic":
            attributes["gen_ai.usage.cache_creation.input_tokens"] = tokens.cache_write  # pre-#440 name
            attributes["gen_ai.usage.details.cache_write_tokens"] = tokens.cache_write
            attributes["gen_ai.usage.details.cache_read_input_tokens"] = tokens.cache_read
            attributes["gen_ai.usage.details.cache_creation_input_tokens"] = tokens.cache_write
            attributes["pydantic_ai.cache.hit_ratio"] = tokens.cache_read / tokens.input
        if tokens.reasoning:
            attributes["gen_ai.usage.details.reasoning_tokens"] = tokens.reasoning
        if call.stream:
            attributes["gen_ai.client.operation.time_to_first_chunk"] = 0.05
    span_id = run.add(
        [index, "chat"],
        name=f"{operation} {call.request_model}",
        scope="pydantic-ai",
        version="2.68.0",
        parent=agent_id,
        start=slot.start - PAD,
        end=slot.end + PAD,
        status=status,
        description=_rate_limited(slot) if call.failed else None,
        attributes=attributes,
        events=events,
    )
    if call.stream and slot.sdk_span is not None:
        # Streamed Anthropic calls also produce the SDK's own span, nested, with the same
        # usage; logfire copies baggage onto it too.
        run.adopt({**slot.sdk_span, "attributes": {**slot.sdk_span["attributes"], **run.keys}}, span_id)


def _pydantic_ai() -> Capture:
    """An agent run: OpenAI and Anthropic model requests, a tool, and a final failed request
    (which fails the agent run too). The agent span carries the run's aggregated usage."""
    openai_slots = _slots(
        load_capture(OPENAI_BASE), lambda c: c.api != "openai.responses" and c.request_model in PYDANTIC_AI_OPENAI
    )
    failed = [s for s in openai_slots if s.call.failed]
    succeeded = [s for s in openai_slots if not s.call.failed]
    anthropic_slots = _slots(
        load_capture(ANTHROPIC_BASE), lambda c: not c.failed and c.request_model in PYDANTIC_AI_ANTHROPIC
    )
    slots = _concatenate([succeeded, anthropic_slots, failed])
    base_root = _app_root(load_capture(OPENAI_BASE))
    run = _new_run("pydantic-ai", base_root)
    agent_id = run.span_id("invoke_agent")
    for index, slot in enumerate(slots):
        _pydantic_ai_call(run, slot, index, agent_id)
    tool_at = _tool_time(slots, "openai.embeddings")
    run.add(
        ["execute_tool"],
        name="execute_tool search_kb",
        scope="pydantic-ai",
        version="2.68.0",
        parent=agent_id,
        start=tool_at,
        end=tool_at + 4 * MS,
        kind="INTERNAL",
        attributes={
            **run.keys,
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "search_kb",
            "gen_ai.tool.call.id": "call_pydantic-ai",
            "gen_ai.agent.name": "support-triage",
            "tool_arguments": '{"query": "refund"}',
            "tool_response": '{"hits": 3}',
            "logfire.span_type": "span",
        },
    )
    total = Tokens()
    for slot in slots:
        if slot.call.tokens is not None:
            total = total + slot.call.tokens
    cost = sum(_cost_usd(s) for s in slots if not s.call.failed)
    run.spans.append(
        {
            "name": "invoke_agent support-triage",
            "kind": "INTERNAL",
            "status": {"code": "ERROR", "description": _rate_limited(failed[0])},
            "trace_id": run.trace_id,
            "span_id": agent_id,
            "parent_span_id": run.root_id,
            "scope": {"name": "pydantic-ai", "version": "2.68.0"},
            "start_unix_nano": slots[0].start - 5 * MS,
            "duration_ms": (slots[-1].end + 3 * MS - slots[0].start + 5 * MS) / MS,
            "attributes": {
                **run.keys,
                "logfire.span_type": "span",
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "support-triage",
                "agent_name": "support-triage",
                "model_name": "gpt-4o-mini",
                "gen_ai.conversation.id": run.conversation_id,
                # The run's sums, kept apart precisely so backends do not double count.
                "gen_ai.aggregated_usage.input_tokens": total.input,
                "gen_ai.aggregated_usage.output_tokens": total.output,
                "gen_ai.aggregated_usage.cache_read.input_tokens": total.cache_read,
                "gen_ai.aggregated_usage.cache_creation.input_tokens": total.cache_write,
                "operation.cost": cost,
                "final_result": "",
                "all_messages_events": "[...]",
            },
            "events": [_exception("openai.RateLimitError", _rate_limited(failed[0]))],
            "links": 0,
        }
    )
    return _finish(run, slots, base_root, 0, "both")


CONSTRUCTORS: dict[str, Callable[[], Capture]] = {
    "logfire-openai": lambda: _logfire("logfire-openai", OPENAI_BASE, "logfire.openai"),
    "logfire-anthropic": lambda: _logfire("logfire-anthropic", ANTHROPIC_BASE, "logfire.anthropic"),
    "pydantic-ai": _pydantic_ai,
    "openlit": _openlit,
    "openinference-anthropic": _openinference_anthropic,
}


def construct(library: str) -> Capture:
    """The constructed (not captured) run of one of the five uncaptured libraries."""
    return CONSTRUCTORS[library]()

"""What the provider really billed, from the fake provider's ledger: the expected side of
every convention test.

The ledger has one entry per HTTP request. A logical call is a first attempt
(``retry_count == 0``) plus the SDK's retries of it; it succeeded if its last attempt did
(one usage set, whatever failed before), and a call whose every attempt failed is one failed
call with no usage and no cost. Tokens come from the raw provider usage, in the semantic
conventions' meaning (input includes cache reads and writes: Anthropic's raw
``input_tokens`` excludes them, OpenAI's ``prompt_tokens`` includes cached tokens), and cost
is ``genai_prices.calc_price`` of that usage for the response model at the request time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import genai_prices

FEMTO_PER_USD = 10**15


@dataclass(frozen=True)
class Tokens:
    """Token counts of one call, semantic-convention meaning (input includes cache)."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    cache_write_1h: int = 0
    reasoning: int = 0

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(*(a + b for a, b in zip(self.as_tuple(), other.as_tuple(), strict=True)))

    def as_tuple(self) -> tuple[int, ...]:
        return (self.input, self.output, self.cache_read, self.cache_write, self.cache_write_1h, self.reasoning)

    def by_kind(self) -> dict[str, int]:
        """The kinds every stored figure carries (1h writes are a subset of cache writes)."""
        return {
            "input_tokens": self.input,
            "output_tokens": self.output,
            "cache_read_tokens": self.cache_read,
            "cache_write_tokens": self.cache_write,
            "reasoning_tokens": self.reasoning,
        }


@dataclass(frozen=True)
class LedgerCall:
    """One logical provider call as the provider saw it."""

    trace_id: str
    api: str
    """``openai.chat``, ``openai.responses``, ``openai.embeddings``, ``anthropic.messages``,
    ``aws.converse``, ``aws.invoke`` (an Anthropic body on Bedrock), ``google.generate_content``."""
    provider: str
    """The genai-prices provider id (``openai``, ``anthropic``, ``aws``, ``google``)."""
    request_model: str
    response_model: str
    response_id: str
    attempts: int
    failed: bool
    tokens: Tokens | None
    at: dt.datetime
    """When the provider answered the attempt that counts (prices in force then)."""
    first_attempt_ns: int
    """When the provider received the first attempt (places the call in time)."""
    stream: bool = False
    usage_withheld: bool = False
    """Billed, but the usage never reached the client (an OpenAI stream without include_usage)."""

    @property
    def retries(self) -> int:
        return self.attempts - 1

    @property
    def model(self) -> str:
        """The model a stored call is attributed to: response model, else request model."""
        return self.response_model or self.request_model

    def cost_femto(self) -> int | None:
        """Cost per genai-prices, integer femto-USD; None when nothing was billed."""
        if self.tokens is None:
            return None
        return price_femto(self.provider, self.response_model, self.tokens, self.at)


def price_femto(provider: str, model: str, tokens: Tokens, at: dt.datetime) -> int:
    usage = genai_prices.Usage(
        input_tokens=tokens.input,
        cache_read_tokens=tokens.cache_read,
        cache_write_tokens=tokens.cache_write,
        cache_write_1h_tokens=tokens.cache_write_1h,
        output_tokens=tokens.output,
    )
    price = genai_prices.calc_price(usage, model, provider_id=provider, genai_request_timestamp=at)
    return int(Decimal(str(price.total_price)) * FEMTO_PER_USD)


def provider_usage(api: str, raw: dict[str, Any]) -> Tokens:
    """Raw provider usage -> semantic-convention token counts."""
    if api == "aws.converse":  # inputTokens excludes cache reads and writes
        read, write = raw.get("cacheReadInputTokens") or 0, raw.get("cacheWriteInputTokens") or 0
        return Tokens(raw["inputTokens"] + read + write, raw["outputTokens"], read, write)
    if api == "google.generate_content":  # candidates exclude thinking tokens, billed as output
        thoughts = raw.get("thoughtsTokenCount") or 0
        return Tokens(
            input=raw["promptTokenCount"],
            output=(raw.get("candidatesTokenCount") or 0) + thoughts,
            cache_read=raw.get("cachedContentTokenCount") or 0,
            reasoning=thoughts,
        )
    if api.startswith("anthropic.") or api == "aws.invoke":
        read = raw.get("cache_read_input_tokens") or 0
        write = raw.get("cache_creation_input_tokens") or 0
        write_1h = (raw.get("cache_creation") or {}).get("ephemeral_1h_input_tokens") or 0
        # Anthropic's input_tokens excludes cached tokens; the conventions' input includes them.
        return Tokens(raw["input_tokens"] + read + write, raw["output_tokens"], read, write, write_1h, 0)
    if api == "openai.responses":
        return Tokens(
            input=raw["input_tokens"],
            output=raw["output_tokens"],
            cache_read=(raw.get("input_tokens_details") or {}).get("cached_tokens") or 0,
            reasoning=(raw.get("output_tokens_details") or {}).get("reasoning_tokens") or 0,
        )
    return Tokens(  # chat completions and embeddings: prompt_tokens includes cached tokens
        input=raw["prompt_tokens"],
        output=raw.get("completion_tokens") or 0,
        cache_read=(raw.get("prompt_tokens_details") or {}).get("cached_tokens") or 0,
        reasoning=(raw.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0,
    )


def attempt_groups(ledger: Iterable[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The ledger's HTTP attempts, one list per logical call (a first attempt and its retries)."""
    groups: list[list[dict[str, Any]]] = []
    for entry in sorted(ledger, key=lambda e: (e["seq"], e["ts"])):
        if entry["retry_count"] == 0 or not groups:
            groups.append([entry])
        else:
            groups[-1].append(entry)
    return groups


def logical_calls(
    ledger: Iterable[dict[str, Any]], runs: Sequence[dict[str, Any]], shift_ns: int = 0
) -> list[LedgerCall]:
    """Group the ledger's HTTP attempts into logical calls, in request order.

    ``shift_ns`` moves request times by the same offset the replayed spans get.
    """
    trace_of = {run["run_id"]: run["trace_id"] for run in runs}
    calls = []
    for group in attempt_groups(ledger):
        last = group[-1]
        ok = 200 <= last["status"] < 300
        at = dt.datetime.fromtimestamp(last["ts"] + shift_ns / 1e9, tz=dt.UTC)
        calls.append(
            LedgerCall(
                trace_id=trace_of[last["run"]],
                api=last["api"],
                provider=last["api"].split(".", 1)[0],
                request_model=last["model"],
                response_model=(last.get("response_model") or "") if ok else "",
                response_id=(last.get("response_id") or "") if ok else "",
                attempts=len(group),
                failed=not ok,
                tokens=provider_usage(last["api"], last["usage"]) if ok else None,
                at=at,
                first_attempt_ns=int(group[0]["ts"] * 1e9) + shift_ns,
                stream=bool(last.get("stream")),
                usage_withheld=bool(ok and last.get("usage_withheld")),
            )
        )
    return calls


CACHE_KINDS = frozenset({"cache_read", "cache_write"})


@dataclass(frozen=True)
class Visibility:
    """What an instrumentation lets a backend see of the ledger (documented gaps only).

    A library that never reports a token kind, drops it on streams, never instruments an
    API, or hides SDK retries makes that part of the truth unknowable from its spans;
    expectations are the ledger projected onto what the library sends, and each gap is
    listed in the README ("Works with", "Known gaps").
    """

    unreported: frozenset[str] = frozenset()
    """Token kinds the library never sends (``cache_read``, ``cache_write``, ``reasoning``)."""
    unreported_on_streams: frozenset[str] = frozenset()
    """Token kinds the library drops on streamed calls only."""
    unreported_by_api: tuple[tuple[str, frozenset[str]], ...] = ()
    """Token kinds the library drops on one API only."""
    raw_input_providers: frozenset[str] = frozenset()
    """Providers whose input the library reports raw (cache excluded): a cache kind it drops
    is missing from the input too."""
    no_usage_when_withheld: bool = True
    """A stream whose usage the provider never sent (no include_usage) is reported with no usage."""
    no_usage_apis: frozenset[str] = frozenset()
    """APIs whose calls the library reports with no usage at all (a span, but no tokens)."""
    uninstrumented_apis: frozenset[str] = frozenset()
    unnamed_failures: frozenset[str] = frozenset()
    """APIs whose failed calls the library reports without a model: the store cannot tell
    which price list to look in and lists the call as unpriced (``no_model``)."""
    unrecognisable_failures: frozenset[str] = frozenset()
    """APIs whose failed calls the library reports in a span nothing identifies as a call."""
    unpriced_apis: frozenset[str] = frozenset()
    """APIs whose successful calls the library reports with usage but an empty provider and a
    model no price list can be guessed from: stored with tokens, unpriced."""
    retries_visible: bool = False
    """Whether SDK retries show (``http.request.resend_count`` or per-attempt HTTP spans)."""
    alternatives: tuple[Visibility, ...] = ()
    """Other libraries reporting the same calls (a mixed trace): the richest report is counted."""

    def sees(self, call: LedgerCall) -> bool:
        own = call.api not in self.uninstrumented_apis and not (
            call.failed and call.api in self.unrecognisable_failures
        )
        return own or any(v.sees(call) for v in self.alternatives)

    def union(self, other: Visibility) -> Visibility:
        """Two libraries reporting the same calls: the store counts the richer report."""
        return replace(
            self,
            retries_visible=self.retries_visible or other.retries_visible,
            alternatives=(*self.alternatives, other),
        )

    def unpriced_success(self, call: LedgerCall) -> bool:
        """A successful call every report of which lacks the provider (see ``unpriced_apis``)."""
        own = not call.failed and call.api in self.unpriced_apis
        return own and all(v.unpriced_success(call) for v in self.alternatives)

    def unpriced_failure(self, call: LedgerCall) -> bool:
        """A failed call every report of which lacks the model (see ``unnamed_failures``)."""
        own = call.failed and call.api in self.unnamed_failures
        return own and all(v.unpriced_failure(call) for v in self.alternatives)

    def dropped(self, call: LedgerCall) -> frozenset[str] | None:
        """Token kinds this library alone leaves out of its report of ``call`` (None: no usage)."""
        if (call.usage_withheld and self.no_usage_when_withheld) or call.api in self.no_usage_apis:
            return None
        kinds = set(self.unreported)
        if call.stream:
            kinds |= self.unreported_on_streams
        for api, lost in self.unreported_by_api:
            if api == call.api:
                kinds |= lost
        return frozenset(kinds)

    def _own(self, call: LedgerCall) -> tuple[int, LedgerCall]:
        if call.api in self.uninstrumented_apis or (call.failed and call.api in self.unrecognisable_failures):
            return -1, call
        dropped = self.dropped(call)
        if call.tokens is None:
            return 0, call
        if dropped is None:
            return 0, replace(call, tokens=None)
        tokens = call.tokens
        for kind in dropped:
            tokens = replace(tokens, **{kind: 0})
            if kind in CACHE_KINDS and call.provider in self.raw_input_providers:
                tokens = replace(tokens, input=tokens.input - getattr(call.tokens, kind))
        if "cache_write" in dropped:
            tokens = replace(tokens, cache_write_1h=0)
        return 6 - len(dropped), replace(call, tokens=tokens)

    def project(self, call: LedgerCall) -> LedgerCall:
        """The call as the trace's libraries report it (a kind none sends is unknown: zero)."""
        reports = [v._own(call) for v in (self, *self.alternatives)]
        return max(reports, key=lambda r: r[0])[1]


@dataclass(frozen=True)
class Seen:
    """A ledger call as the instrumentation(s) in a trace report it."""

    call: LedgerCall
    visibility: Visibility

    @property
    def reported(self) -> LedgerCall:
        return self.visibility.project(self.call)

    @property
    def retries(self) -> int:
        return self.call.retries if self.visibility.retries_visible else 0


def seen_by(calls: Iterable[LedgerCall], visibility: Visibility) -> list[Seen]:
    return [Seen(call, visibility) for call in calls if visibility.sees(call)]


@dataclass(frozen=True)
class Expected:
    """Run-level figures the store must show for one trace."""

    calls: int
    failed_calls: int
    tokens: Tokens
    cost_femto: int
    retries: int
    unpriced: int = 0
    """Successful calls the libraries report without usage (billed, but nothing to price)."""

    @classmethod
    def of(cls, seen: Sequence[Seen]) -> Expected:
        tokens = Tokens()
        for item in seen:
            if item.reported.tokens is not None:
                tokens = tokens + item.reported.tokens
        return cls(
            calls=len(seen),
            failed_calls=sum(item.call.failed for item in seen),
            tokens=tokens,
            cost_femto=sum(
                item.reported.cost_femto() or 0 for item in seen if not item.visibility.unpriced_success(item.call)
            ),
            retries=sum(item.retries for item in seen),
            unpriced=sum(
                (not item.call.failed and item.reported.tokens is None)
                or item.visibility.unpriced_failure(item.call)
                or item.visibility.unpriced_success(item.call)
                for item in seen
            ),
        )

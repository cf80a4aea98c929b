"""The instrumentations under test: where their spans come from, what of the provider's
truth they can show (``shared/conventions/README.md`` and the captures' own evidence), and
which second library each one is mixed with in one trace.

Every gap below is something the real library was seen not to send; the README's
"Known gaps" list names each one with the figures of its capture.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tests.conventions.capture import Capture, captured_libraries, load_capture
from tests.conventions.ledger import CACHE_KINDS, LedgerCall, Visibility

Mode = str
"""How a second library's spans sit next to the first's: ``nested`` (its wrapper runs inside
the first one's, so its span for the same call is a child), ``sibling`` (it does not make
its span current, like Traceloop next to the Anthropic SDK's span, or a gateway's span), or
``alongside`` (it reports other calls of the same trace: a second service or client)."""

V2_GAPS = Visibility(
    unreported=frozenset({"cache_read", "reasoning"}),  # 2.4b0 sends neither
    uninstrumented_apis=frozenset({"openai.responses"}),  # no span at all for responses.create
)
SDK_RETRIES = Visibility(retries_visible=True)  # the Anthropic SDK's http.request.resend_count


def _last_unstreamed(calls: Sequence[LedgerCall]) -> list[LedgerCall]:
    """LiteLLM's callback writes each non-streamed call onto the caller's current span,
    overwriting the one before: the run keeps the last one only (streams go to traces of
    their own)."""
    done = [c for c in calls if not c.stream and not c.failed]
    return done[-1:]


@dataclass(frozen=True)
class Library:
    name: str
    visibility: Visibility
    conversation: bool
    """Whether its own spans carry a conversation / session id."""
    partners: tuple[tuple[str, Mode], ...]
    error_type: bool = True
    """Whether a failed call's spans name the error (attribute or exception event)."""
    select: Callable[[Sequence[LedgerCall]], list[LedgerCall]] | None = None
    """The ledger calls the run's trace reports at all, when not every call (LiteLLM)."""
    provider_ids: bool = True
    """Whether ``gen_ai.response.id`` is the provider's (LiteLLM makes its own for Anthropic)."""
    providerless_apis: frozenset[str] = frozenset()
    """APIs whose calls' spans carry an empty provider (``gen_ai.system = ""``, LiteLLM proxy)."""
    operations: tuple[tuple[str, str], ...] = ()
    """The operation name a call's spans carry per API, when not the conventions' (the
    LiteLLM proxy names its own async functions)."""

    def capture(self) -> Capture:
        return load_capture(self.name)


LIBRARIES: dict[str, Library] = {
    lib.name: lib
    for lib in (
        Library("otel-openai-v2", V2_GAPS, False, (("otel-genai-openai", "nested"),)),
        Library("otel-openai-v2-latest", V2_GAPS, False, (("traceloop-openai", "sibling"),)),
        Library("otel-genai-openai", Visibility(), True, (("openinference-openai", "nested"),)),
        Library("openinference-openai", Visibility(), True, (("traceloop-openai", "sibling"),)),
        # The poorer report (v2: no cached tokens) nested deepest: the richer one must win.
        Library("traceloop-openai", Visibility(), False, (("otel-openai-v2", "nested"),)),
        Library("anthropic-native", SDK_RETRIES, True, (("traceloop-anthropic", "sibling"),)),
        Library("otel-genai-anthropic", SDK_RETRIES, True, (("traceloop-anthropic", "nested"),)),
        Library("traceloop-anthropic", SDK_RETRIES, False, (("otel-genai-anthropic", "sibling"),)),
        Library("logfire-openai", Visibility(), False, (("otel-genai-openai", "nested"),)),
        Library("logfire-anthropic", Visibility(), False, (("otel-genai-anthropic", "nested"),)),
        Library("openinference-anthropic", SDK_RETRIES, True, (("traceloop-anthropic", "sibling"),)),
        Library(
            "openlit",
            Visibility(
                unreported=frozenset({"reasoning"}),
                unreported_on_streams=CACHE_KINDS,  # streams: no cache reads or writes at all
                raw_input_providers=frozenset({"anthropic"}),  # ... and Anthropic input is raw
                # A failed Anthropic call's span has no attributes at all (only the exception).
                unrecognisable_failures=frozenset({"anthropic.messages"}),
                retries_visible=True,  # per-attempt POST spans
            ),
            False,
            (("otel-genai-openai", "nested"), ("otel-genai-anthropic", "nested")),
        ),
        Library(
            "pydantic-ai", Visibility(), True, (("traceloop-openai", "nested"), ("otel-genai-anthropic", "nested"))
        ),
        Library(
            "langchain-openinference",
            Visibility(uninstrumented_apis=frozenset({"openai.embeddings"})),  # embeddings: no span
            True,
            (("openinference-openai", "nested"),),
        ),
        Library(
            "langchain-traceloop",
            Visibility(unreported=frozenset({"reasoning"}), uninstrumented_apis=frozenset({"openai.embeddings"})),
            False,
            (("traceloop-openai", "nested"),),
        ),
        Library(
            "llamaindex-openinference",
            Visibility(
                no_usage_apis=frozenset({"openai.embeddings"}),  # an EMBEDDING span without token counts
                unreported_by_api=(("openai.responses", frozenset({"cache_read"})),),
            ),
            True,
            (("openinference-openai", "nested"),),
        ),
        Library(
            "litellm",
            Visibility(unreported=CACHE_KINDS),
            True,
            (("bedrock-botocore", "alongside"),),
            select=_last_unstreamed,
            provider_ids=False,
        ),
        Library(
            "litellm-proxy",
            Visibility(
                # Only in the Python-repr string metadata.usage_object (and the cost breakdown).
                unreported=frozenset({"cache_read", "cache_write", "reasoning"}),
                # A failed attempt's litellm_request span has no response model and no usage:
                # nothing identifies it as a call (and the proxy's retries are not visible).
                unrecognisable_failures=frozenset({"openai.chat"}),
                unpriced_apis=frozenset({"openai.embeddings"}),  # gen_ai.system = "" on embeddings
            ),
            False,
            (("bedrock-botocore", "alongside"),),
            provider_ids=False,
            providerless_apis=frozenset({"openai.embeddings", "openai.responses"}),
            operations=(
                ("openai.chat", "acompletion"),
                ("anthropic.messages", "acompletion"),
                ("openai.embeddings", "aembedding"),
                ("openai.responses", "aresponses"),
            ),
        ),
        Library(
            "openai-agents",
            Visibility(
                unreported_by_api=(("openai.chat", frozenset({"cache_read"})),),
                unnamed_failures=frozenset({"openai.responses"}),  # the failed response span names no model
            ),
            True,
            (("otel-genai-openai", "nested"),),
            error_type=False,
        ),
        Library(
            "bedrock-botocore",
            Visibility(
                unreported_by_api=(("aws.invoke", CACHE_KINDS),),  # InvokeModel: raw Anthropic input only
                raw_input_providers=frozenset({"aws"}),
                retries_visible=True,  # retry_attempts
            ),
            False,
            (("google-genai", "alongside"),),
        ),
        Library("google-genai", Visibility(), False, (("bedrock-botocore", "alongside"),)),
        Library(
            "vercel-ai",
            Visibility(unreported=frozenset({"reasoning"})),
            False,
            (("otel-genai-anthropic", "alongside"),),
        ),
    )
}

assert set(captured_libraries()) == set(LIBRARIES), "every capture is under test, every library has a capture"
assert len(LIBRARIES) == 22


def visible_calls(library: Library, capture: Capture) -> list[LedgerCall]:
    """The ledger calls the library reports in its run's trace, in call order."""
    from tests.conventions.ledger import logical_calls

    calls = logical_calls(capture.ledger, capture.runs)
    if library.select is not None:
        calls = library.select(calls)
    return [c for c in calls if library.visibility.sees(c)]

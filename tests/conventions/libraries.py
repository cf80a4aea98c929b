"""The thirteen instrumentations under test: where their spans come from, what of the
provider's truth they can show (``shared/conventions/README.md``), and which second library
each one is mixed with in one trace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tests.conventions.capture import Capture, captured_libraries, load_capture
from tests.conventions.constructed import CONSTRUCTORS, construct
from tests.conventions.ledger import Visibility

Mode = Literal["nested", "sibling"]
"""How a second library's spans for the same call sit next to the first's: ``nested`` (its
wrapper runs inside the first one's, so its span is a child) or ``sibling`` (it does not make
its span current, like Traceloop next to the Anthropic SDK's span, or a gateway's span)."""

V2_GAPS = Visibility(
    unreported=frozenset({"cache_read", "reasoning"}),  # 2.4b0 sends neither
    uninstrumented_apis=frozenset({"openai.responses"}),  # no span at all for responses.create
)
SDK_RETRIES = Visibility(retries_visible=True)  # the Anthropic SDK's http.request.resend_count


@dataclass(frozen=True)
class Library:
    name: str
    visibility: Visibility
    conversation: bool
    """Whether its own spans carry a conversation / session id."""
    partners: tuple[tuple[str, Mode], ...]

    @property
    def constructed(self) -> bool:
        return self.name in CONSTRUCTORS

    def capture(self) -> Capture:
        return construct(self.name) if self.constructed else load_capture(self.name)


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
            Visibility(unreported=frozenset({"reasoning"}), retries_visible=True),  # per-attempt POST spans
            False,
            (("otel-genai-openai", "nested"), ("otel-genai-anthropic", "nested")),
        ),
        Library(
            "pydantic-ai", Visibility(), True, (("traceloop-openai", "nested"), ("otel-genai-anthropic", "nested"))
        ),
    )
}

assert set(captured_libraries()) <= set(LIBRARIES), "every captured library is under test"
assert len(LIBRARIES) == 13

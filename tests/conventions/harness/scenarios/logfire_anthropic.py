"""logfire.instrument_anthropic on the raw Anthropic SDK (whose own spans are on by default)."""

import anthropic
import logfire
from kit import agent_run, finish, span_processor
from sdk_steps import anthropic_calls

logfire.configure(send_to_logfire=False, console=False, additional_span_processors=[span_processor()])
logfire.instrument_anthropic()
with agent_run():
    anthropic_calls(anthropic.Anthropic())
logfire.force_flush()
finish()

"""logfire.instrument_openai on the raw OpenAI SDK (logfire's own TracerProvider, exporting
to the sink through an extra span processor)."""

import logfire
import openai
from kit import agent_run, finish, span_processor
from sdk_steps import openai_calls

logfire.configure(send_to_logfire=False, console=False, additional_span_processors=[span_processor()])
logfire.instrument_openai()
with agent_run():
    openai_calls(openai.OpenAI())
logfire.force_flush()
finish()

"""pydantic-ai agents instrumented by logfire.instrument_pydantic_ai: an OpenAI agent with a
tool (two model requests and a tool call), Anthropic requests (one streamed), a reasoning
model, the Responses API, a 500 then success and a request failing every attempt."""

import asyncio

import kit
import logfire
from kit import QUESTION, SYSTEM, agent_run, finish, span_processor, step
from pydantic_ai import Agent
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel

logfire.configure(send_to_logfire=False, console=False, additional_span_processors=[span_processor()])
logfire.instrument_pydantic_ai()


def search_kb(query: str) -> str:
    """Search the knowledge base."""
    return kit.search_kb(query)


def agent(model: object, tools: bool = False) -> Agent:
    return Agent(model, name="support-triage", instructions=SYSTEM, tools=[search_kb] if tools else [])


def run(model: object, tools: bool = False) -> None:
    agent(model, tools).run_sync(QUESTION, conversation_id=kit.CONVERSATION_ID)


async def streamed(model: object) -> None:
    async with agent(model).run_stream(QUESTION, conversation_id=kit.CONVERSATION_ID) as result:
        async for _ in result.stream_text():
            pass


with agent_run():
    with step("pydantic-ai agent gpt-4o-mini with search_kb (two requests)"):
        run(OpenAIChatModel("gpt-4o-mini"), tools=True)
    with step("pydantic-ai agent claude-sonnet-4-5"):
        run(AnthropicModel("claude-sonnet-4-5"))
    with step("pydantic-ai agent stream claude-sonnet-4-5"):
        asyncio.run(streamed(AnthropicModel("claude-sonnet-4-5")))
    with step("pydantic-ai agent o4-mini (reasoning)"):
        run(OpenAIChatModel("o4-mini"))
    with step("pydantic-ai agent gpt-4o-mini responses"):
        run(OpenAIResponsesModel("gpt-4o-mini"))
    with step("pydantic-ai agent gpt-4o-mini 500-then-retry", fail=[500]):
        run(OpenAIChatModel("gpt-4o-mini"))
    with step("pydantic-ai agent gpt-4o 429-then-retry", fail=[429]):
        run(OpenAIChatModel("gpt-4o"))
    with step("pydantic-ai agent gpt-4o-mini 429x3 -> final error", always=429, expect_error=True):
        run(OpenAIChatModel("gpt-4o-mini"))
logfire.force_flush()
finish()

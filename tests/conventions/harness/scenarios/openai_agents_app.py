"""The OpenAI Agents SDK instrumented by OpenInference (exclusive processor: nothing goes to the
OpenAI tracing backend): a Responses agent with a function tool (two model calls), a
streamed run, a Chat Completions model, a reasoning model, a 500 then success and a run
failing every attempt."""

import asyncio

import kit
from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool, set_default_openai_client
from kit import QUESTION, SYSTEM, agent_run, app_tool, finish, step, tracer_provider
from openai import AsyncOpenAI
from openinference.instrumentation import using_attributes
from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor

provider = tracer_provider()
OpenAIAgentsInstrumentor().instrument(tracer_provider=provider, exclusive_processor=True)
client = AsyncOpenAI()
set_default_openai_client(client, use_for_tracing=False)


@function_tool
def search_kb(query: str) -> str:
    """Search the knowledge base."""
    return kit.search_kb(query)


def agent(model: object = "gpt-4o-mini", tools: bool = False) -> Agent:
    return Agent(name="support-triage", instructions=SYSTEM, model=model, tools=[search_kb] if tools else [])


async def main() -> None:
    """One event loop for every run: the AsyncOpenAI client's connections belong to it."""
    with step("agents Runner.run gpt-4o-mini with search_kb (two responses)"):
        await Runner.run(agent(tools=True), QUESTION)
    with step("agents Runner.run_streamed gpt-4o-mini"):
        result = Runner.run_streamed(agent(), QUESTION)
        async for _ in result.stream_events():
            pass
    app_tool()
    with step("agents chat completions model gpt-4o"):
        await Runner.run(agent(OpenAIChatCompletionsModel("gpt-4o", client)), QUESTION)
    with step("agents Runner.run o4-mini (reasoning)"):
        await Runner.run(agent("o4-mini"), QUESTION)
    with step("agents Runner.run gpt-4o-mini 500-then-retry", fail=[500]):
        await Runner.run(agent(), QUESTION)
    with step("agents Runner.run o4-mini 429-then-retry", fail=[429]):
        await Runner.run(agent("o4-mini"), QUESTION)
    with step("agents Runner.run gpt-4o-mini 429 every attempt", always=429, expect_error=True):
        await Runner.run(agent(), QUESTION)


with agent_run(), using_attributes(session_id=kit.CONVERSATION_ID, user_id=kit.KEYS["user.id"]):
    asyncio.run(main())
finish(provider)

"""A LlamaIndex application: the OpenAI LLM (chat, a stream with LlamaIndex's defaults,
a reasoning model), OpenAIResponses, OpenAI embeddings, a FunctionAgent workflow with a tool
(two model calls), a 500 then success and a call failing every attempt; instrumented by
OpenInference."""

import asyncio
import os

import kit
from kit import QUESTION, SYSTEM, agent_run, app_tool, finish, step, tracer_provider
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.llms import ChatMessage
from llama_index.embeddings.openai import OpenAIEmbedding
from llama_index.llms.openai import OpenAI, OpenAIResponses
from openinference.instrumentation import using_attributes
from openinference.instrumentation.llama_index import LlamaIndexInstrumentor

provider = tracer_provider()
LlamaIndexInstrumentor().instrument(tracer_provider=provider)
BASE = os.environ["OPENAI_BASE_URL"]
MESSAGES = [ChatMessage(role="system", content=SYSTEM), ChatMessage(role="user", content=QUESTION)]


def llm(model: str, **options: object) -> OpenAI:
    return OpenAI(model=model, api_base=BASE, **options)


def search_kb(query: str) -> str:
    """Search the knowledge base."""
    return kit.search_kb(query)


async def agent() -> None:
    workflow = FunctionAgent(tools=[search_kb], llm=llm("gpt-4o-mini"), system_prompt=SYSTEM, name="support_agent")
    await workflow.run(user_msg=QUESTION)


with agent_run(), using_attributes(session_id=kit.CONVERSATION_ID, user_id=kit.KEYS["user.id"]):
    with step("llamaindex chat gpt-4o-mini"):
        llm("gpt-4o-mini", temperature=0.2, max_tokens=200).chat(MESSAGES)
    with step("llamaindex chat gpt-4o"):
        llm("gpt-4o", max_tokens=300).chat(MESSAGES)
    with step("llamaindex stream_chat gpt-4o-mini (defaults)"):
        for _ in llm("gpt-4o-mini").stream_chat(MESSAGES):
            pass
    with step("llamaindex embeddings text-embedding-3-small"):
        OpenAIEmbedding(model="text-embedding-3-small", api_base=BASE).get_text_embedding_batch(["refund", "shipping"])
    app_tool()
    with step("llamaindex FunctionAgent gpt-4o-mini with search_kb (two calls)"):
        asyncio.run(agent())
    with step("llamaindex chat gpt-4o-mini 500-then-retry", fail=[500]):
        llm("gpt-4o-mini").chat(MESSAGES)
    with step("llamaindex chat gpt-4o 429-then-retry", fail=[429]):
        llm("gpt-4o", max_tokens=300).chat(MESSAGES)
    with step("llamaindex chat gpt-4o-mini 429 every attempt (max_retries=1)", always=429, expect_error=True):
        llm("gpt-4o-mini", max_retries=1).chat(MESSAGES)
    with step("llamaindex chat o4-mini (reasoning)"):
        llm("o4-mini").chat(MESSAGES)
    with step("llamaindex OpenAIResponses gpt-4o-mini"):
        OpenAIResponses(model="gpt-4o-mini", api_base=BASE).chat(MESSAGES)
finish(provider)

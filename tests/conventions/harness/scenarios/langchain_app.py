"""A LangChain application on langchain-openai: prompt | model | parser chains, a stream, a
tool-calling loop inside one chain (two model calls and a tool), embeddings, a 500 then
success, a call failing every attempt, a reasoning model and the Responses API. Instrumented
by OpenInference or by Traceloop OpenLLMetry (``RC_LANGCHAIN_INSTRUMENTOR``)."""

import os

import kit
from kit import QUESTION, SYSTEM, agent_run, app_tool, finish, step, tracer_provider
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI, OpenAIEmbeddings

provider = tracer_provider()
if os.environ["RC_LANGCHAIN_INSTRUMENTOR"] == "openinference":
    from openinference.instrumentation import using_attributes
    from openinference.instrumentation.langchain import LangChainInstrumentor

    LangChainInstrumentor().instrument(tracer_provider=provider)
    session = using_attributes(session_id=kit.CONVERSATION_ID, user_id=kit.KEYS["user.id"])
else:
    from contextlib import nullcontext

    from opentelemetry.instrumentation.langchain import LangchainInstrumentor

    LangchainInstrumentor().instrument(tracer_provider=provider)
    session = nullcontext()


def model(name: str, **options: object) -> ChatOpenAI:
    return ChatOpenAI(model=name, base_url=os.environ["OPENAI_BASE_URL"], **options)


@tool
def search_kb(query: str) -> str:
    """Search the knowledge base."""
    return kit.search_kb(query)


prompt = ChatPromptTemplate.from_messages([("system", SYSTEM), ("human", "{question}")])


def chain(llm: ChatOpenAI) -> object:
    return prompt | llm | StrOutputParser()


def tool_loop(question: str) -> str:
    llm = model("gpt-4o-mini").bind_tools([search_kb])
    messages = [SystemMessage(SYSTEM), HumanMessage(question)]
    first = llm.invoke(messages)
    messages.append(first)
    for call in first.tool_calls:
        messages.append(search_kb.invoke(call))
    return llm.invoke(messages).content


ask = {"question": QUESTION}
with agent_run(), session:
    with step("langchain chain gpt-4o-mini"):
        chain(model("gpt-4o-mini", temperature=0.2, max_tokens=200)).invoke(ask)
    with step("langchain chain gpt-4o"):
        chain(model("gpt-4o", max_tokens=300)).invoke(ask)
    with step("langchain chain stream gpt-4o-mini"):
        for _ in chain(model("gpt-4o-mini", stream_usage=True)).stream(ask):
            pass
    with step("langchain embeddings text-embedding-3-small"):
        embeddings = OpenAIEmbeddings(
            model="text-embedding-3-small", base_url=os.environ["OPENAI_BASE_URL"], check_embedding_ctx_length=False
        )
        embeddings.embed_documents(["refund policy", "shipping times"])
    app_tool()
    with step("langchain tool loop gpt-4o-mini (two calls and search_kb)"):
        RunnableLambda(tool_loop, name="support_agent").invoke(QUESTION)
    with step("langchain chain gpt-4o-mini 500-then-retry", fail=[500]):
        chain(model("gpt-4o-mini")).invoke(ask)
    with step("langchain chain gpt-4o 429-then-retry", fail=[429]):
        chain(model("gpt-4o", max_tokens=300)).invoke(ask)
    with step("langchain chain gpt-4o-mini 429x3 -> final error", always=429, expect_error=True):
        chain(model("gpt-4o-mini")).invoke(ask)
    with step("langchain chain o4-mini (reasoning)"):
        chain(model("o4-mini")).invoke(ask)
    with step("langchain chain gpt-4o-mini use_responses_api"):
        chain(model("gpt-4o-mini", use_responses_api=True)).invoke(ask)
finish(provider)

"""Model selection and the assistant graph, without network or servers."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from src.config.settings import Settings
from src.graph.assistant import MAX_PROMPT_MESSAGES, build_graph
from src.graph.model import OfflineChatModel, build_chat_model, offline_reply

# Auth is irrelevant to the model: off, so these settings need no token.
URLS = {
    "DATABASE_URL": "postgresql://u@db/app",
    "REDIS_URL": "redis://cache/0",
    "AUTH_DISABLED": "true",
}


def settings(**extra: str) -> Settings:
    return Settings.model_validate({**URLS, **extra})


def test_offline_model_is_chosen_and_reported_without_keys():
    model, info = build_chat_model(settings())
    assert isinstance(model, OfflineChatModel)
    assert (info.provider, info.offline) == ("offline", True)


@pytest.mark.parametrize(
    ("key", "provider", "class_name"),
    [
        ("OPENAI_API_KEY", "openai", "ChatOpenAI"),
        ("ANTHROPIC_API_KEY", "anthropic", "ChatAnthropic"),
    ],
)
def test_real_provider_is_built_when_its_key_is_set(key, provider, class_name):
    model, info = build_chat_model(settings(**{key: "sk-test-not-used"}))
    assert type(model).__name__ == class_name
    assert (info.provider, info.offline) == (provider, False)


def test_offline_reply_is_deterministic_and_uses_history():
    history = [HumanMessage("a"), AIMessage("x"), HumanMessage("b")]
    assert offline_reply(history) == offline_reply(list(history))
    assert "Turn 2. You said: b. Before that you said: a." in offline_reply(history)


def test_graph_keeps_threads_apart_and_trims_the_prompt():
    seen_prompt_sizes: list[int] = []

    class Recording(OfflineChatModel):
        async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):
            seen_prompt_sizes.append(len(messages))
            return await super()._agenerate(messages, stop, run_manager, **kwargs)

    graph = build_graph(Recording(), InMemorySaver())

    async def scenario() -> tuple[list, list]:
        one = {"configurable": {"thread_id": "one"}}
        two = {"configurable": {"thread_id": "two"}}
        for i in range(MAX_PROMPT_MESSAGES):
            await graph.ainvoke({"messages": [HumanMessage(f"m{i}")]}, one)
        await graph.ainvoke({"messages": [HumanMessage("other")]}, two)
        return (
            (await graph.aget_state(one)).values["messages"],
            (await graph.aget_state(two)).values["messages"],
        )

    thread_one, thread_two = asyncio.run(scenario())
    assert len(thread_one) == 2 * MAX_PROMPT_MESSAGES  # full history is stored
    assert [m.text for m in thread_two] == ["other", offline_reply([HumanMessage("other")])]
    # system prompt + at most MAX_PROMPT_MESSAGES recent messages reach the model
    assert max(seen_prompt_sizes) <= MAX_PROMPT_MESSAGES + 1

"""Chat model selection: a real provider when its key is set, else a deterministic offline model.

The offline model lets the service (and its tests, and a fresh deployment without secrets) run end
to end with no network, and `/health` reports it so nobody mistakes it for a real assistant.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from langchain.chat_models import init_chat_model
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from src.config.settings import Settings

OFFLINE_MODEL_NAME = "offline-deterministic"


@dataclass(frozen=True)
class ModelInfo:
    """What `/health` reports about the model in use."""

    provider: str
    name: str
    offline: bool


def offline_reply(messages: list[BaseMessage]) -> str:
    """Deterministic answer that proves the thread's memory: it quotes the previous user turn."""
    said = [m.text for m in messages if isinstance(m, HumanMessage)]
    if not said:
        return "(offline model) Nothing to answer yet."
    reply = f"(offline model) Turn {len(said)}. You said: {said[-1]}."
    if len(said) > 1:
        return f"{reply} Before that you said: {said[-2]}."
    return f"{reply} This is the start of our conversation."


class OfflineChatModel(BaseChatModel):
    """A LangChain chat model that needs no network; `latency_ms` imitates a provider's delay."""

    latency_ms: int = 0

    @property
    def _llm_type(self) -> str:
        return OFFLINE_MODEL_NAME

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = AIMessage(content=offline_reply(messages))
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        return self._generate(messages, stop)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        """Word by word, the latency spread over the words, like a provider's token stream."""
        words = re.findall(r"\S+\s*", offline_reply(messages))
        for word in words:
            if self.latency_ms:
                await asyncio.sleep(self.latency_ms / 1000 / len(words))
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=word))
            if run_manager is not None:
                await run_manager.on_llm_new_token(word, chunk=chunk)
            yield chunk


def build_chat_model(settings: Settings) -> tuple[BaseChatModel, ModelInfo]:
    """Create the model the settings ask for; constructing it makes no network call."""
    resolved = settings.resolved_chat_model()
    if resolved == "offline":
        model = OfflineChatModel(latency_ms=settings.offline_model_latency_ms)
        return model, ModelInfo(provider="offline", name=OFFLINE_MODEL_NAME, offline=True)
    provider, _, name = resolved.partition(":")
    key = settings.provider_key(provider)
    assert key is not None  # Settings refuses a provider without its key
    chat = init_chat_model(
        name,
        model_provider=provider,
        api_key=key.get_secret_value(),
        timeout=settings.run_timeout_seconds,
        max_retries=2,
    )
    return chat, ModelInfo(provider=provider, name=name, offline=False)

"""The chat assistant graph: one model node over a message history persisted per thread.

State is LangGraph's `MessagesState`, checkpointed in Postgres after every step, so a thread
survives restarts and can be served by any replica. The prompt sent to the model is trimmed to
the most recent turns so a long thread cannot grow the request without bound; the stored history
keeps everything.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import SystemMessage, trim_messages
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph

SYSTEM_PROMPT = (
    "You are a concise, helpful assistant. Answer in the user's language. "
    "If you do not know, say so."
)
#: Messages (not tokens) sent to the model per turn; counting messages needs no tokenizer.
MAX_PROMPT_MESSAGES = 40


def build_graph(
    model: BaseChatModel, checkpointer: BaseCheckpointSaver[Any]
) -> CompiledStateGraph[MessagesState, None, MessagesState, MessagesState]:
    """Compile the assistant graph with the given model and checkpointer."""

    async def assistant(state: MessagesState) -> dict[str, Any]:
        recent = trim_messages(
            state["messages"],
            max_tokens=MAX_PROMPT_MESSAGES,
            token_counter=len,
            strategy="last",
            start_on="human",
        )
        reply = await model.ainvoke([SystemMessage(SYSTEM_PROMPT), *recent])
        return {"messages": [reply]}

    builder = StateGraph(MessagesState)
    builder.add_node("assistant", assistant)
    builder.add_edge(START, "assistant")
    builder.add_edge("assistant", END)
    return builder.compile(checkpointer=checkpointer, name="chat-assistant")

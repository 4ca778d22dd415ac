"""Everything a request handler needs, built once per process in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from langgraph.graph import MessagesState
from langgraph.graph.state import CompiledStateGraph

from src.config.observability import Metrics, TracingInfo
from src.config.settings import Settings
from src.graph.model import ModelInfo
from src.services.dependencies import Dependencies
from src.services.guards import RateLimiter, ThreadLock

AssistantGraph = CompiledStateGraph[MessagesState, None, MessagesState, MessagesState]


@dataclass
class Runtime:
    """Process-wide services; stored on `app.state.runtime`."""

    settings: Settings
    dependencies: Dependencies
    graph: AssistantGraph
    model: ModelInfo
    tracing: TracingInfo
    metrics: Metrics
    thread_lock: ThreadLock
    rate_limiter: RateLimiter


def get_runtime(request: Request) -> Runtime:
    """FastAPI dependency returning the runtime set up by the lifespan."""
    runtime: Any = request.app.state.runtime
    assert isinstance(runtime, Runtime)
    return runtime

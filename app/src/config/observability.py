"""LangSmith tracing set-up and the service's Prometheus metrics.

LangSmith is configured through environment variables that the LangChain runtime reads itself; we
only normalise them (legacy `LANGCHAIN_*` names become `LANGSMITH_*`) so that what `/health`
reports is what the tracer actually does. Metrics live in a registry per app instance so several
apps (tests) never collide on the global default registry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    gc_collector,
    platform_collector,
    process_collector,
)

from src.config.settings import Settings

_TRACING_FLAGS = ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING")


@dataclass(frozen=True)
class TracingInfo:
    """What `/health` says about tracing (never the key itself)."""

    enabled: bool
    project: str | None


def configure_tracing(settings: Settings) -> TracingInfo:
    """Export the resolved LangSmith settings under the names the LangChain tracer reads."""
    value = "true" if settings.langsmith_tracing else "false"
    for flag in _TRACING_FLAGS:
        os.environ[flag] = value
    if settings.langsmith_tracing:
        assert settings.langsmith_api_key is not None  # enforced by Settings
        os.environ["LANGSMITH_API_KEY"] = settings.langsmith_api_key.get_secret_value()
        if settings.langsmith_project:
            os.environ["LANGSMITH_PROJECT"] = settings.langsmith_project
        if settings.langsmith_endpoint:
            os.environ["LANGSMITH_ENDPOINT"] = settings.langsmith_endpoint
    return TracingInfo(enabled=settings.langsmith_tracing, project=settings.langsmith_project)


class Metrics:
    """Prometheus metrics of one app instance; route labels are templates, never raw paths."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        process_collector.ProcessCollector(registry=self.registry)
        platform_collector.PlatformCollector(registry=self.registry)
        gc_collector.GCCollector(registry=self.registry)
        self.http_requests = Counter(
            "http_requests_total",
            "HTTP requests handled, by route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency, by route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.graph_runs = Counter(
            "graph_runs_total",
            "Graph runs by outcome: ok, error, timeout, conflict, rate_limited, unavailable.",
            ["outcome"],
            registry=self.registry,
        )
        self.graph_duration = Histogram(
            "graph_run_duration_seconds",
            "Duration of successful graph runs (model latency included).",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=self.registry,
        )
        self.dependency_up = Gauge(
            "dependency_up",
            "1 when the last check of a dependency succeeded, else 0.",
            ["dependency"],
            registry=self.registry,
        )

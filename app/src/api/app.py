"""FastAPI application: `src.api.app:app` (settings read at start-up) or `create_app(settings)`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from fastapi import FastAPI

from src.api.middleware import RequestContextMiddleware
from src.api.routes import health, threads
from src.api.runtime import Runtime
from src.config.logging import configure_logging, get_logger
from src.config.observability import Metrics, configure_tracing
from src.config.settings import Settings, load_settings
from src.graph.assistant import build_graph
from src.graph.model import build_chat_model
from src.services.dependencies import Dependencies
from src.services.guards import RateLimiter, ThreadLock

log = get_logger(__name__)


def _host_of(url: str) -> str | None:
    """Host part only, for start-up logs (no user, no password)."""
    return urlsplit(url).hostname


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; settings are loaded from the environment at start-up when not given."""
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings or load_settings()
        configure_logging(resolved.log_format, resolved.log_level, resolved.secret_values())
        tracing = configure_tracing(resolved)
        model, model_info = build_chat_model(resolved)
        dependencies = Dependencies(resolved)
        app.state.runtime = Runtime(
            settings=resolved,
            dependencies=dependencies,
            graph=build_graph(model, dependencies.checkpointer),
            model=model_info,
            tracing=tracing,
            metrics=metrics,
            thread_lock=ThreadLock(dependencies.redis, resolved.run_timeout_seconds),
            rate_limiter=RateLimiter(dependencies.redis, resolved.rate_limit_per_minute),
        )
        await dependencies.start()
        log.info(
            "service_started",
            version=resolved.app_version,
            port=resolved.port,
            model_provider=model_info.provider,
            model=model_info.name,
            tracing=tracing.enabled,
            postgres_host=_host_of(resolved.database_url.get_secret_value()),
            redis_host=_host_of(resolved.redis_url.get_secret_value()),
            redis_tls=resolved.redis_url.get_secret_value().startswith("rediss://"),
            rate_limit_per_minute=resolved.rate_limit_per_minute,
        )
        try:
            yield
        finally:
            await dependencies.stop()
            log.info("service_stopped")

    app = FastAPI(
        title="agent-app",
        summary="Reference LangGraph chat service deployed by agent-deploy",
        lifespan=lifespan,
    )
    app.include_router(health.router)
    app.include_router(threads.router)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app


app = create_app()

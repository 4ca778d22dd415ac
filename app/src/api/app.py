"""FastAPI application: `src.api.app:app` or `create_app(settings)`.

`src.api.app:app` is resolved lazily (module `__getattr__`): settings are read when uvicorn asks
for the app, so `uvicorn src.api.app:app` with a bad environment prints the same named-variable
message as `python -m src` and exits 2, without a traceback, and importing this module has no
side effect.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import start_http_server

from src.api.auth import DOCS_PATHS, PUBLIC_PATHS, BearerAuthMiddleware
from src.api.limits import BodyLimitMiddleware
from src.api.middleware import RequestContextMiddleware
from src.api.routes import health, threads
from src.api.runtime import Runtime
from src.config.logging import configure_logging, get_logger
from src.config.observability import Metrics, configure_tracing
from src.config.settings import Settings, SettingsError, load_settings
from src.graph.assistant import build_graph
from src.graph.model import build_chat_model
from src.services.dependencies import Dependencies
from src.services.guards import RateLimiter, ThreadLock

log = get_logger(__name__)


def _host_of(url: str) -> str | None:
    """Host part only, for start-up logs (no user, no password)."""
    return urlsplit(url).hostname


_JSON_HINT = "the body is read as JSON only with Content-Type: application/json"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 naming what is wrong and where, never quoting the input.

    FastAPI's default echoes the submitted value: a 10 MB body came back whole, and a lone
    surrogate (`"\\ud800"`) could not be encoded back, which turned a 422 into a 500.
    """
    assert isinstance(exc, RequestValidationError)
    detail = [
        {"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": e.get("msg")}
        for e in exc.errors()
    ]
    content_type = request.headers.get("content-type", "")
    if any(d["loc"] == ["body"] for d in detail) and "json" not in content_type:
        detail.append(
            {"type": "content_type", "loc": ["header", "content-type"], "msg": _JSON_HINT}
        )
    return JSONResponse({"detail": detail}, status_code=422)


def create_app(settings: Settings) -> FastAPI:
    """Build the app for validated settings."""
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings
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
            thread_lock=ThreadLock(
                dependencies.redis, resolved.run_timeout_seconds, resolved.redis_key_prefix
            ),
            rate_limiter=RateLimiter(
                dependencies.redis, resolved.rate_limit_per_minute, resolved.redis_key_prefix
            ),
        )
        # /metrics on its own listener: never reachable through the public port.
        metrics_server, metrics_thread = start_http_server(
            resolved.metrics_port, addr=resolved.host, registry=metrics.registry
        )
        await dependencies.start()
        if resolved.forwarded_allow_ips == "*":
            log.warning(
                "forwarded_allow_ips_wildcard",
                detail="FORWARDED_ALLOW_IPS=* trusts the left-most X-Forwarded-For entry, "
                "which any client can set: list the load balancer's addresses instead",
            )
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
            metrics_port=resolved.metrics_port,
            auth="disabled" if resolved.auth_disabled else "bearer",
            docs=resolved.docs_enabled,
        )
        try:
            yield
        finally:
            metrics_server.shutdown()
            metrics_server.server_close()
            metrics_thread.join(timeout=5)
            await dependencies.stop()
            log.info("service_stopped")

    app = FastAPI(
        title="agent-app",
        summary="Reference LangGraph chat service deployed by agent-deploy",
        lifespan=lifespan,
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
    )
    app.include_router(health.router)
    app.include_router(threads.router)
    app.add_exception_handler(RequestValidationError, _validation_error)
    # Added innermost first: request context (logs, metrics) > auth > body limit > routes.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if not settings.auth_disabled:
        public = PUBLIC_PATHS | DOCS_PATHS if settings.docs_enabled else PUBLIC_PATHS
        app.add_middleware(BearerAuthMiddleware, tokens=settings.tokens(), public_paths=public)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app


@cache
def _app_from_environment() -> FastAPI:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"agent-app: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return create_app(settings)


def __getattr__(name: str) -> FastAPI:
    """`src.api.app:app`: built from the environment on first access."""
    if name == "app":
        return _app_from_environment()
    raise AttributeError(name)

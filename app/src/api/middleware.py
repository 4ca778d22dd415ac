"""Per-request context: request id, access log line, HTTP metrics.

Pure ASGI (not BaseHTTPMiddleware) so the request id bound in contextvars is visible to the route
handler's log lines, and streaming responses are not buffered.
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from src.config.logging import get_logger
from src.config.observability import Metrics

log = get_logger("src.access")

REQUEST_ID_HEADER = "x-request-id"
# Accept a caller's id (ALB/X-Ray, another service) only if it is short and plain, so a client
# cannot inject log-breaking content through it.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
#: Probe paths are logged at DEBUG: every 10 s from each load balancer would drown real traffic.
PROBE_PATHS = frozenset({"/live", "/ready", "/health"})


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER.encode():
            candidate = value.decode("latin-1")
            return candidate if _VALID_REQUEST_ID.match(candidate) else None
    return None


class RequestContextMiddleware:
    """Bind a request id, echo it in the response, log and measure every request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                log.exception("unhandled_error", path=scope["path"])
                raise
            finally:
                elapsed = time.perf_counter() - started
                route = getattr(scope.get("route"), "path", "unmatched")
                method = scope["method"]
                self.metrics.http_requests.labels(method, route, str(status)).inc()
                self.metrics.http_duration.labels(method, route).observe(elapsed)
                client = scope.get("client")
                fields = {
                    "method": method,
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 1),
                    "client": client[0] if client else None,
                }
                if scope["path"] in PROBE_PATHS and status < 500:
                    log.debug("request", **fields)
                else:
                    log.info("request", **fields)

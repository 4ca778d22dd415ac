"""Bearer-token authentication for everything but the probes.

A pure ASGI middleware, so an unauthenticated request is answered before its body is read or any
route runs. Tokens come from `AUTH_TOKENS` (several at once, for rotation). An app with its own
authentication sets `AUTH_DISABLED=true` and adds its own middleware or FastAPI dependency in
`create_app` (see app/README.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send

#: Open without a token: load balancers and container health checks cannot send one.
PUBLIC_PATHS = frozenset({"/live", "/ready", "/health"})
#: Served without a token when DOCS_ENABLED=true (a browser opening /docs cannot send one).
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/openapi.json"})


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


class BearerAuthMiddleware:
    """401 unless `Authorization: Bearer <token>` matches one of the configured tokens."""

    def __init__(self, app: ASGIApp, tokens: list[str], public_paths: frozenset[str]) -> None:
        self.app = app
        # Compared as digests: equal lengths, so the comparison time says nothing about a token.
        self._digests = [_digest(token.encode()) for token in tokens]
        self._public = public_paths

    def _authorized(self, scope: Scope) -> bool:
        header = next((v for k, v in scope.get("headers", []) if k == b"authorization"), b"")
        scheme, _, credentials = header.partition(b" ")
        if scheme.lower() != b"bearer" or not credentials.strip():
            return False
        candidate = _digest(credentials.strip())
        matched = False
        for digest in self._digests:  # no early exit: every token is compared
            matched |= hmac.compare_digest(candidate, digest)
        return matched

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] == "lifespan" or scope["path"] in self._public or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({"detail": "missing or invalid bearer token"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="agent-app"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

"""Probes and metrics, the part of the contract the infrastructure relies on.

* `/live`: the process serves HTTP. Never touches a dependency (container restarts key on it).
* `/ready`: 200 only when Postgres (schema in place) and Redis answer; load balancers route on it.
* `/health`: per-check detail for humans and dashboards; 200 with `"degraded"` when a
  dependency is down, so it is informative without being a restart trigger.

All three answer HEAD like GET (uptime checkers and some proxies use HEAD). Prometheus metrics
are served on their own listener (`METRICS_PORT`, see `src.api.app`), never on this router.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from src.api.runtime import Runtime, get_runtime
from src.services.dependencies import CheckResult

router = APIRouter(tags=["health"])
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def _check_all(runtime: Runtime) -> dict[str, CheckResult]:
    postgres, redis = await asyncio.gather(
        runtime.dependencies.check_postgres(), runtime.dependencies.check_redis()
    )
    checks = {"postgres": postgres, "redis": redis}
    for name, result in checks.items():
        runtime.metrics.dependency_up.labels(name).set(1 if result.status == "up" else 0)
    return checks


@router.api_route("/live", methods=["GET", "HEAD"])
async def live() -> dict[str, str]:
    """The process is up and its event loop responds."""
    return {"status": "alive"}


@router.api_route(
    "/ready",
    methods=["GET", "HEAD"],
    responses={503: {"description": "a dependency is not reachable yet"}},
)
async def ready(runtime: RuntimeDep) -> JSONResponse:
    """Ready to serve runs: Postgres and Redis both answer."""
    checks = await _check_all(runtime)
    is_ready = all(c.status == "up" for c in checks.values())
    body = {
        "status": "ready" if is_ready else "not ready",
        "checks": {name: c.as_dict() for name, c in checks.items()},
    }
    if is_ready:
        return JSONResponse(body)
    return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})


@router.api_route("/health", methods=["GET", "HEAD"])
async def health(runtime: RuntimeDep) -> dict[str, Any]:
    """Per-dependency status; `degraded` when Postgres or Redis is down."""
    checks = await _check_all(runtime)
    healthy = all(c.status == "up" for c in checks.values())
    model = runtime.model
    return {
        "status": "healthy" if healthy else "degraded",
        "version": runtime.settings.app_version,
        "checks": {
            **{name: c.as_dict() for name, c in checks.items()},
            "model": {
                "status": "up",
                "provider": model.provider,
                "model": model.name,
                "offline": model.offline,
            },
        },
        "tracing": {"enabled": runtime.tracing.enabled, "project": runtime.tracing.project},
    }

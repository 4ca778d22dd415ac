"""Connections to Postgres and Redis, owned by the app for its whole life.

The app starts even when a dependency is down: `/live` answers at once, `/ready` says 503 until
both answer, and the checkpointer schema is created in the background as soon as Postgres
accepts connections. Orchestrators then route traffic on readiness instead of crash-looping
containers while a database is still booting.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Literal

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from src.config.logging import get_logger
from src.config.settings import Settings

log = get_logger(__name__)

CHECK_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one dependency check; `error` is an exception class name, never its text."""

    status: Literal["up", "down"]
    latency_ms: float
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form used by `/health` and `/ready`."""
        body: dict[str, Any] = {"status": self.status, "latency_ms": round(self.latency_ms, 1)}
        if self.error:
            body["error"] = self.error
        return body


class Dependencies:
    """Postgres pool + LangGraph checkpointer + Redis client, with health checks."""

    def __init__(self, settings: Settings) -> None:
        self.pool: AsyncConnectionPool[AsyncConnection[DictRow]] = AsyncConnectionPool(
            settings.database_url.get_secret_value(),
            open=False,
            min_size=1,
            max_size=10,
            timeout=5.0,
            # Autocommit + no prepared statements: what AsyncPostgresSaver requires, and safe
            # behind PgBouncer-style poolers.
            kwargs={"autocommit": True, "prepare_threshold": None, "row_factory": dict_row},
            # Verify a pooled connection before lending it, so a restarted Postgres costs one
            # reconnect instead of one failed request per stale connection.
            check=AsyncConnectionPool.check_connection,
            name="checkpointer",
        )
        self.checkpointer = AsyncPostgresSaver(self.pool)
        self.redis: Redis = Redis.from_url(
            settings.redis_url.get_secret_value(),
            socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
            socket_timeout=5.0,
            health_check_interval=15,
        )
        self.schema_ready = asyncio.Event()
        self._setup_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the pool without waiting and create the checkpointer schema in the background."""
        await self.pool.open(wait=False)
        self._setup_task = asyncio.create_task(self._setup_schema(), name="checkpointer-setup")

    async def _setup_schema(self) -> None:
        delay = 0.5
        while True:
            try:
                await self.checkpointer.setup()  # idempotent migrations
            except Exception as exc:  # noqa: BLE001  # any failure: retry, the app keeps serving /live
                log.warning(
                    "checkpointer_setup_retry",
                    dependency="postgres",
                    error=type(exc).__name__,
                    detail=str(exc),
                    retry_in_s=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            else:
                self.schema_ready.set()
                log.info("checkpointer_ready", dependency="postgres")
                return

    async def stop(self) -> None:
        """Release connections (called on shutdown, after in-flight requests finished)."""
        if self._setup_task is not None:
            self._setup_task.cancel()
        await self.pool.close()
        await self.redis.aclose()

    async def check_postgres(self) -> CheckResult:
        """Round trip `SELECT 1`; down until the checkpointer schema exists."""
        started = time.perf_counter()
        if not self.schema_ready.is_set():
            return CheckResult("down", 0.0, "SchemaNotReady")
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                async with self.pool.connection(timeout=CHECK_TIMEOUT_SECONDS) as conn:
                    await conn.execute("SELECT 1")
        except Exception as exc:  # noqa: BLE001  # a check reports, it does not raise
            return CheckResult("down", _ms_since(started), type(exc).__name__)
        return CheckResult("up", _ms_since(started))

    async def check_redis(self) -> CheckResult:
        """Round trip `PING`."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                await self.redis.ping()
        except Exception as exc:  # noqa: BLE001  # a check reports, it does not raise
            return CheckResult("down", _ms_since(started), type(exc).__name__)
        return CheckResult("up", _ms_since(started))


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000

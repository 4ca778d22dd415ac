"""Connections to Postgres and Redis, owned by the app for its whole life.

The app starts even when a dependency is down: `/live` answers at once, `/ready` says 503 until
both answer and the schema is in place. The schema is created by `python -m src migrate` (a
deploy step that runs before the new version serves): the service only checks it in the
background until it is current, unless `MIGRATE_ON_START` makes it run that same migration first
(targets without an init step: Cloud Run). Orchestrators then route traffic on readiness instead
of crash-looping containers while a database is still booting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psycopg
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from src.config.logging import get_logger
from src.config.settings import Settings
from src.migrate import APP_MIGRATIONS, SCHEMA_QUERY, migrate, schema_problems
from src.services.postgres_tls import verified_conninfo
from src.services.redis_tls import redis_client

log = get_logger(__name__)

CHECK_TIMEOUT_SECONDS = 2.0
POOL_MAX_SIZE = 10
#: How long a failed probe answers for everyone before the next request probes again.
PROBE_INTERVAL_SECONDS = 1.0
#: What AsyncPostgresSaver requires (autocommit, no prepared statements: also safe behind
#: PgBouncer-style poolers).
_CONNECTION_KWARGS: dict[str, Any] = {
    "autocommit": True,
    "prepare_threshold": None,
    "row_factory": dict_row,
}


def read_password_file(path: Path) -> str:
    """The password in `path`, without the trailing newline editors and secret mounts add."""
    return path.read_text(encoding="utf-8").rstrip("\r\n")


def connection_kwargs(password_file: Path | None) -> Callable[[], dict[str, Any]]:
    """Connection arguments, resolved by the pool for every new connection.

    Why a callable: a password rotated in `DATABASE_PASSWORD_FILE` is used by the next connection
    without a restart. Without a file, libpq takes the password from the URL or `PGPASSWORD`.
    """

    def resolve() -> dict[str, Any]:
        if password_file is None:
            return dict(_CONNECTION_KWARGS)
        return {**_CONNECTION_KWARGS, "password": read_password_file(password_file)}

    return resolve


class _NoWaitLock(asyncio.Lock):
    """Stands in for the saver's process-wide lock: each operation has its own pooled connection."""

    async def acquire(self) -> Literal[True]:
        return True

    def release(self) -> None:
        return None


class PostgresBreaker:
    """Fail fast while Postgres is known to be down.

    Why: a run that cannot get a connection waits for the pool timeout; once one has failed,
    every later run would wait the same again. After a failure, runs first share one direct
    probe (a new connection, refused at once when the server is gone) and get 503 within
    milliseconds until a probe succeeds.
    """

    def __init__(self, conninfo: str, kwargs: Callable[[], dict[str, Any]]) -> None:
        self._conninfo = conninfo
        self._kwargs = kwargs
        self._down = False
        self._probe: asyncio.Task[None] | None = None
        self._probed_at = 0.0

    def trip(self) -> None:
        """Record a connection-level failure; the next run probes afresh."""
        self._down = True
        if self._probe is not None and self._probe.done():
            self._probe = None

    async def admit(self) -> None:
        """Return when Postgres is believed up; raise psycopg.OperationalError otherwise."""
        if not self._down:
            return
        stale = time.monotonic() - self._probed_at > PROBE_INTERVAL_SECONDS
        if self._probe is None or (self._probe.done() and stale):
            self._probed_at = time.monotonic()
            self._probe = asyncio.create_task(self._run_probe(), name="postgres-probe")
        await asyncio.shield(self._probe)

    async def _run_probe(self) -> None:
        try:
            kwargs = {**self._kwargs(), "connect_timeout": max(round(CHECK_TIMEOUT_SECONDS), 1)}
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS + 1):
                conn = await psycopg.AsyncConnection.connect(self._conninfo, **kwargs)
                async with conn:
                    await conn.execute("SELECT 1")
        except (OSError, TimeoutError, psycopg.Error) as exc:
            raise psycopg.OperationalError(f"postgres unavailable: {type(exc).__name__}") from None
        self._down = False
        log.info("postgres_reachable_again", dependency="postgres")


class PooledPostgresSaver(AsyncPostgresSaver):
    """LangGraph's checkpointer over the pool, without its one process-wide lock.

    Upstream serialises every operation through one asyncio.Lock, which a saver sharing a single
    connection needs; over a pool each operation borrows its own connection, and the lock only
    queued runs (N runs x pool timeout when Postgres is down, one connection used of ten when
    it is up). Ordering does not rely on it: a run's checkpoint puts are chained by LangGraph's
    loop (each waits for the previous), and runs on one thread are exclusive (ThreadLock).
    Connection failures trip the breaker so later runs fail fast.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[DictRow]],
        breaker: PostgresBreaker,
    ) -> None:
        super().__init__(pool)
        self.lock = _NoWaitLock()
        self.breaker = breaker

    @asynccontextmanager
    async def _cursor(self, *, pipeline: bool = False) -> AsyncIterator[AsyncCursor[DictRow]]:
        await self.breaker.admit()
        try:
            async with super()._cursor(pipeline=pipeline) as cur:
                yield cur
        except psycopg.OperationalError:  # includes psycopg_pool.PoolTimeout
            self.breaker.trip()
            raise


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
        conninfo = verified_conninfo(
            settings.database_url.get_secret_value(), settings.database_ca_cert
        )
        kwargs = connection_kwargs(settings.database_password_file)
        self.pool: AsyncConnectionPool[AsyncConnection[DictRow]] = AsyncConnectionPool(
            conninfo,
            open=False,
            min_size=1,
            max_size=POOL_MAX_SIZE,
            timeout=5.0,
            kwargs=kwargs,
            # Verify a pooled connection before lending it, so a restarted Postgres costs one
            # reconnect instead of one failed request per stale connection.
            check=AsyncConnectionPool.check_connection,
            name="checkpointer",
        )
        self.breaker = PostgresBreaker(conninfo, kwargs)
        self._conninfo = conninfo
        self._kwargs = kwargs
        self._migrate_on_start = settings.migrate_on_start
        self.checkpointer = PooledPostgresSaver(self.pool, self.breaker)
        self.redis: Redis = redis_client(
            settings.redis_url.get_secret_value(),
            settings.redis_ca_cert,
            socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
            socket_timeout=5.0,
            health_check_interval=15,
        )
        self.schema_ready = asyncio.Event()
        self._setup_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the pool without waiting and check the schema in the background."""
        await self.pool.open(wait=False)
        self._setup_task = asyncio.create_task(self._await_schema(), name="schema-check")

    async def _await_schema(self) -> None:
        delay = 0.5
        migrated = not self._migrate_on_start
        while True:
            if not migrated:
                migrated = await self._migrate()
            problems: list[str] = []
            try:
                async with self.pool.connection(timeout=CHECK_TIMEOUT_SECONDS * 2) as conn:
                    row = await (await conn.execute(SCHEMA_QUERY)).fetchone()
                problems = schema_problems(row) if row else ["no answer"]
            except Exception as exc:  # noqa: BLE001  # any failure: retry, the app keeps serving /live
                problems = [type(exc).__name__]
            if not problems:
                self.schema_ready.set()
                log.info("schema_ready", dependency="postgres")
                return
            log.warning(
                "schema_not_ready",
                dependency="postgres",
                detail="; ".join(problems),
                hint="see migrate_failed"
                if self._migrate_on_start
                else "run `python -m src migrate`",
                retry_in_s=delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _migrate(self) -> bool:
        """Run `python -m src migrate`'s migration from here; False (logged) when it failed.

        Every starting instance may try at once: the advisory lock makes the others wait, then
        find nothing to do. A failure leaves `/ready` at 503 (so Cloud Run keeps the old
        revision serving) and is retried with the schema check's backoff.
        """
        try:
            done = await asyncio.to_thread(self._migrate_blocking)
        except Exception as exc:  # noqa: BLE001  # any failure: not ready, logged, retried
            log.error("migrate_failed", error=type(exc).__name__, detail=str(exc))
            return False
        log.info("migrate_done", **done)
        return True

    def _migrate_blocking(self) -> dict[str, object]:
        kwargs = {**self._kwargs(), "connect_timeout": 10, "application_name": "agent-app-migrate"}
        with psycopg.connect(self._conninfo, **kwargs) as conn:
            return migrate(conn, APP_MIGRATIONS)

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

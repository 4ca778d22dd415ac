"""Bring the database schema up to date: `python -m src migrate`.

Why a step of its own: a deploy runs it once with the new image before any new task serves
(AWS: the `migrate` init container the app container waits on), so a failed migration stops the
rollout while the old version keeps serving, and replicas no longer race to create tables at
start-up. The service itself only checks the schema (`/ready` says 503 while it is missing).

Idempotent (every step is recorded and skipped once applied) and safe when several run at once:
each holds a Postgres advisory lock for the whole run, so the next one waits, then finds nothing
left to do. Connects as the application role (`DATABASE_URL`, password from the URL,
`PGPASSWORD` or `DATABASE_PASSWORD_FILE`), which owns what it creates.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
from langgraph.checkpoint.postgres import PostgresSaver
from psycopg import sql
from psycopg.rows import dict_row

from src.config.logging import configure_logging, get_logger
from src.config.settings import ENV_NAMES, normalize_database_url
from src.services.postgres_tls import verified_conninfo

log = get_logger("src.migrate")

EXIT_FAILED = 1
EXIT_CONFIG_ERROR = 2
#: Any constant shared by every runner of this app: the key of the advisory lock.
LOCK_KEY = 0x6167_656E_745F_6462  # "agent_db"
CONNECT_ATTEMPTS = 5
CONNECT_RETRY_SECONDS = 3.0
LOCK_POLL_SECONDS = 0.5
#: The app's own tables, in order; append, never edit an applied entry (its index is its
#: version in the ledger).
APP_MIGRATIONS: Sequence[str] = ()
#: The checkpointer's schema is complete when its ledger holds this version.
CHECKPOINTER_VERSION = len(PostgresSaver.MIGRATIONS) - 1


class MigrationError(RuntimeError):
    """A migration that failed; the message names it."""


def _connect(url: str, password_file: Path | None) -> psycopg.Connection[dict[str, Any]]:
    kwargs: dict[str, Any] = {"autocommit": True, "prepare_threshold": None}
    if password_file is not None:
        kwargs["password"] = password_file.read_text(encoding="utf-8").rstrip("\r\n")
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        try:
            return psycopg.connect(
                url,
                row_factory=dict_row,
                application_name="agent-app-migrate",
                connect_timeout=10,
                **kwargs,
            )
        except psycopg.OperationalError as exc:
            if attempt == CONNECT_ATTEMPTS:
                raise
            log.warning("migrate_connect_retry", attempt=attempt, detail=str(exc))
            time.sleep(CONNECT_RETRY_SECONDS)
    raise AssertionError("unreachable")


def migrate(
    conn: psycopg.Connection[dict[str, Any]], app_migrations: Sequence[str] = APP_MIGRATIONS
) -> dict[str, object]:
    """Apply what is missing under the advisory lock; return what was applied."""
    _lock(conn)
    try:
        before = _checkpointer_version(conn)
        PostgresSaver(conn).setup()
        conn.execute(
            "CREATE TABLE IF NOT EXISTS app_schema_migrations "
            "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = conn.execute(
            "SELECT coalesce(max(version), -1) AS v FROM app_schema_migrations"
        ).fetchone()
        current = int(row["v"]) if row else -1
        applied = []
        for version in range(current + 1, len(app_migrations)):
            try:
                with conn.transaction():
                    conn.execute(sql.SQL(app_migrations[version]))
                    conn.execute(
                        "INSERT INTO app_schema_migrations (version) VALUES (%s)", [version]
                    )
            except psycopg.Error as exc:
                raise MigrationError(
                    f"app migration {version} failed: {type(exc).__name__}: {exc}".strip()
                ) from exc
            applied.append(version)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
    return {
        "checkpointer_from": before,
        "checkpointer_to": CHECKPOINTER_VERSION,
        "app_applied": applied,
    }


def _lock(conn: psycopg.Connection[dict[str, Any]]) -> None:
    """Take the advisory lock, polling: a session blocked in `pg_advisory_lock` keeps a
    snapshot open, which the holder's `CREATE INDEX CONCURRENTLY` waits for (a deadlock)."""
    waited = False
    while True:
        row = conn.execute("SELECT pg_try_advisory_lock(%s) AS got", [LOCK_KEY]).fetchone()
        if row and row["got"]:
            return
        if not waited:
            log.info("migrate_waiting_for_lock", detail="another migrate is running")
            waited = True
        time.sleep(LOCK_POLL_SECONDS)


def _checkpointer_version(conn: psycopg.Connection[dict[str, Any]]) -> int:
    if not _exists(conn, "checkpoint_migrations"):
        return -1
    row = conn.execute("SELECT coalesce(max(v), -1) AS v FROM checkpoint_migrations").fetchone()
    return int(row["v"]) if row else -1


def _exists(conn: psycopg.Connection[dict[str, Any]], table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL AS present", [table]).fetchone()
    return bool(row and row["present"])


SCHEMA_QUERY = """
SELECT
  CASE WHEN to_regclass('checkpoint_migrations') IS NULL THEN -1
       ELSE (SELECT coalesce(max(v), -1) FROM checkpoint_migrations) END AS checkpointer,
  CASE WHEN to_regclass('app_schema_migrations') IS NULL THEN -2
       ELSE (SELECT coalesce(max(version), -1) FROM app_schema_migrations) END AS app
"""


def schema_problems(row: Mapping[str, Any]) -> list[str]:
    """What `SCHEMA_QUERY` says is missing: empty when the service may serve."""
    problems = []
    if int(row["checkpointer"]) < CHECKPOINTER_VERSION:
        problems.append(
            f"checkpointer schema at {row['checkpointer']}, needs {CHECKPOINTER_VERSION}"
        )
    if int(row["app"]) < len(APP_MIGRATIONS) - 1:  # -2: no ledger at all
        problems.append("app_schema_migrations missing or behind")
    return problems


def main(environ: Mapping[str, str] | None = None) -> int:
    """Run the migrations; exit 0 when the schema is current."""
    env = os.environ if environ is None else environ
    configure_logging("console" if env.get("LOG_FORMAT") == "console" else "json", "INFO", [])
    url_name = next((n for n in ENV_NAMES["database_url"] if env.get(n)), "DATABASE_URL")
    password_file = env.get("DATABASE_PASSWORD_FILE")
    try:
        # Verified as the service verifies it: against DATABASE_CA_CERT when given.
        url = verified_conninfo(
            normalize_database_url(env.get(url_name, "")), env.get("DATABASE_CA_CERT") or None
        )
    except ValueError as exc:
        print(f"agent-app migrate: {url_name}: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    try:
        with _connect(url, Path(password_file) if password_file else None) as conn:
            done = migrate(conn, APP_MIGRATIONS)
    except (MigrationError, psycopg.Error, OSError) as exc:
        log.error("migrate_failed", error=type(exc).__name__, detail=str(exc))
        print(f"agent-app migrate: failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    log.info("migrate_done", **done)
    return 0

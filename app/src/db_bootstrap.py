"""Create or update the service's least-privilege database role: `python -m src.db_bootstrap`.

Why a separate step: the service must not connect as the database's master user (RDS rotates its
password every 7 days while running tasks keep the one they started with, and the master can
create roles and databases). This step runs before the service, with the master credentials only
it receives, and exits 0. It is idempotent: a rerun sets the role's password again (rotation) and
re-applies the grants.

Environment (see app/README.md): `DATABASE_URL` is the service's own URL (host, port, database,
the application user, sslmode; its password, if any, is ignored), `DATABASE_ADMIN_USER`,
`DATABASE_ADMIN_PASSWORD`, `DATABASE_APP_PASSWORD`; optional `DATABASE_PROVISIONER_USER`.

The service's database admits only the roles it names (CONNECT is revoked from PUBLIC): a server
that also hosts pull-request slices gives each slice a role, and those must not reach it.
`DATABASE_PROVISIONER_USER` (a staging stack hosting slices) also creates the role the slice
provisioner Lambda connects as: CREATEDB CREATEROLE to make the slices' databases and roles, no
password (RDS IAM auth: `rds_iam` granted where that role exists), never a superuser.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from src.config.logging import configure_logging, get_logger
from src.config.settings import ENV_NAMES, normalize_database_url

log = get_logger("src.db_bootstrap")

EXIT_FAILED = 1
EXIT_CONFIG_ERROR = 2
CONNECT_ATTEMPTS = 5
CONNECT_RETRY_SECONDS = 3.0
#: Tables LangGraph's checkpointer creates; ones created earlier by another role change owner,
#: because its migrations (ALTER TABLE, CREATE INDEX) need ownership.
CHECKPOINTER_TABLES = (
    "checkpoint_migrations",
    "checkpoints",
    "checkpoint_blobs",
    "checkpoint_writes",
)


class BootstrapError(RuntimeError):
    """A problem the operator must fix; the message names it."""


@dataclass(frozen=True)
class BootstrapConfig:
    """What the bootstrap needs, validated."""

    url: str
    database: str
    app_user: str
    app_password: str
    admin_user: str
    admin_password: str
    provisioner_user: str = ""


_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def load_config(environ: Mapping[str, str]) -> BootstrapConfig:
    """Validate the environment, reporting every problem at once (names, never values)."""
    problems: list[str] = []
    url_name = next((n for n in ENV_NAMES["database_url"] if environ.get(n)), "DATABASE_URL")
    url, params = "", {}
    try:
        url = normalize_database_url(environ.get(url_name, ""))
        params = conninfo_to_dict(url)
    except ValueError as exc:
        problems.append(f"{url_name}: {exc}")
    database, app_user = str(params.get("dbname") or ""), str(params.get("user") or "")
    if url and not app_user:
        problems.append(f"{url_name}: no user; it names the application role to create")
    if url and not database:
        problems.append(f"{url_name}: no database name")
    values = {
        name: environ.get(name, "")
        for name in ("DATABASE_ADMIN_USER", "DATABASE_ADMIN_PASSWORD", "DATABASE_APP_PASSWORD")
    }
    problems += [f"{name}: not set" for name, value in values.items() if not value]
    if app_user and app_user == values["DATABASE_ADMIN_USER"]:
        problems.append(
            f"{url_name}: the application user must not be DATABASE_ADMIN_USER "
            "(its privileges would be removed)"
        )
    provisioner = environ.get("DATABASE_PROVISIONER_USER", "")
    if provisioner and not _ROLE_NAME.fullmatch(provisioner):
        problems.append(
            f"DATABASE_PROVISIONER_USER: {provisioner!r} is not a role name "
            "(lower-case letters, digits and _, at most 63, not a digit first)"
        )
    elif provisioner and provisioner in (app_user, values["DATABASE_ADMIN_USER"]):
        problems.append(
            "DATABASE_PROVISIONER_USER: must differ from the application and admin users"
        )
    if problems:
        raise BootstrapError("invalid configuration:\n  " + "\n  ".join(problems))
    return BootstrapConfig(
        provisioner_user=provisioner,
        url=url,
        database=database,
        app_user=app_user,
        app_password=values["DATABASE_APP_PASSWORD"],
        admin_user=values["DATABASE_ADMIN_USER"],
        admin_password=values["DATABASE_ADMIN_PASSWORD"],
    )


def _connect_as_admin(config: BootstrapConfig) -> psycopg.Connection[tuple[object, ...]]:
    conninfo = make_conninfo(
        config.url,
        user=config.admin_user,
        password=config.admin_password,
        application_name="agent-app-db-bootstrap",
        connect_timeout=10,
    )
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        try:
            return psycopg.connect(conninfo, autocommit=True)
        except psycopg.OperationalError as exc:
            if attempt == CONNECT_ATTEMPTS:
                raise
            log.warning("db_bootstrap_connect_retry", attempt=attempt, detail=str(exc))
            time.sleep(CONNECT_RETRY_SECONDS)
    raise AssertionError("unreachable")


def bootstrap(config: BootstrapConfig) -> dict[str, object]:
    """Create or update the role and its grants; return what was done (for the log)."""
    role = sql.Identifier(config.app_user)
    with _connect_as_admin(config) as conn:
        existing = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = %s",
            [config.app_user],
        ).fetchone()
        # Send the SCRAM verifier, never the password: DDL statements may be logged by the server.
        verifier = sql.Literal(
            conn.pgconn.encrypt_password(
                config.app_password.encode(), config.app_user.encode()
            ).decode()
        )
        if existing is None:
            conn.execute(
                sql.SQL(
                    "CREATE ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                    "NOREPLICATION NOBYPASSRLS PASSWORD {}"
                ).format(role, verifier)
            )
        else:
            is_super, can_create_role, can_create_db = existing
            if is_super:
                raise BootstrapError(
                    f"role {config.app_user!r} is a superuser; the application role must not be "
                    "(choose another user name in DATABASE_URL)"
                )
            # Only what differs: a non-superuser admin (the RDS master) may not name SUPERUSER.
            revoke = [
                sql.SQL(keyword)
                for keyword, held in (
                    ("NOCREATEROLE", can_create_role),
                    ("NOCREATEDB", can_create_db),
                )
                if held
            ]
            conn.execute(
                sql.SQL("ALTER ROLE {} WITH LOGIN {} PASSWORD {}").format(
                    role, sql.SQL(" ").join(revoke), verifier
                )
            )
        database = sql.Identifier(config.database)
        admitted = [config.app_user, config.admin_user]
        if config.provisioner_user:
            _provisioner_role(conn, config.provisioner_user)
            admitted.append(config.provisioner_user)
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                database, sql.SQL(", ").join(map(sql.Identifier, admitted))
            )
        )
        conn.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(database))
        conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(role))
        moved = _take_over_checkpointer_tables(conn, config.app_user)
    done: dict[str, object] = {
        "role": config.app_user,
        "created": existing is None,
        "tables_reowned": moved,
    }
    if config.provisioner_user:
        done["provisioner"] = config.provisioner_user
    return done


def _provisioner_role(conn: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    """The slice provisioner's role: creates databases and roles, nothing more.

    No password: on RDS it logs in with an IAM token (`rds_iam`). From PostgreSQL 16 its
    CREATEROLE only reaches the roles it created itself (their ADMIN OPTION); up to 15 it
    reaches every non-superuser role, which is why the AWS engine versions start at 16.
    """
    role = sql.Identifier(name)
    row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [name]).fetchone()
    if row is None:
        conn.execute(
            sql.SQL(
                "CREATE ROLE {} WITH LOGIN NOSUPERUSER CREATEDB CREATEROLE NOREPLICATION "
                "NOBYPASSRLS"
            ).format(role)
        )
    elif row[0]:
        raise BootstrapError(
            f"role {name!r} is a superuser; the provisioner role must not be "
            "(choose another DATABASE_PROVISIONER_USER)"
        )
    else:
        conn.execute(sql.SQL("ALTER ROLE {} WITH LOGIN CREATEDB CREATEROLE").format(role))
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam'").fetchone():
        conn.execute(sql.SQL("GRANT rds_iam TO {}").format(role))


def _take_over_checkpointer_tables(
    conn: psycopg.Connection[tuple[object, ...]], app_user: str
) -> list[str]:
    """Give the role the checkpointer tables another role created (a service that used to
    connect as the admin), so its migrations and writes keep working."""
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
        "AND tablename = ANY(%s) AND tableowner <> %s ORDER BY tablename",
        [list(CHECKPOINTER_TABLES), app_user],
    ).fetchall()
    tables = [str(row[0]) for row in rows]
    if not tables:
        return []
    role = sql.Identifier(app_user)
    is_super = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    row = is_super.fetchone()
    if not (row and row[0]):
        # A non-superuser may only give objects to a role it can SET ROLE to.
        conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(role))
    for table in tables:
        conn.execute(
            sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.Identifier("public", table), role)
        )
    return tables


def main(environ: Mapping[str, str] | None = None) -> int:
    """Run the bootstrap; exit 0 when the role is in place."""
    env = os.environ if environ is None else environ
    secrets = [env.get(n, "") for n in ("DATABASE_ADMIN_PASSWORD", "DATABASE_APP_PASSWORD")]
    configure_logging("console" if env.get("LOG_FORMAT") == "console" else "json", "INFO", secrets)
    try:
        config = load_config(env)
    except BootstrapError as exc:
        print(f"agent-app db_bootstrap: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    try:
        done = bootstrap(config)
    except (BootstrapError, psycopg.Error) as exc:
        log.error("db_bootstrap_failed", error=type(exc).__name__, detail=str(exc))
        return EXIT_FAILED
    log.info("db_bootstrap_done", **done)
    return 0


if __name__ == "__main__":
    sys.exit(main())

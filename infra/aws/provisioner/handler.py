"""Create, update or drop one pull-request slice's database and role on the shared Postgres.

A Lambda in the host's VPC (deployed by the staging stack, invoked by each pr-<n> stack through
`aws.lambda_.Invocation`): the slice's database cannot be created from outside the VPC, and a
function that only runs this file holds no long-lived database secret (it signs an RDS IAM auth
token locally). Event: `{"database": "pr_42", "password": "...", "tf": {"action": ...}}` with
`tf.action` "create", "update" or "delete" (no `tf`: create).

What a slice gets: a role `pr_<n>` (LOGIN, nothing else) and a database of the same name owned by
it, which only that role may connect to. The base's own database and every other slice's revoke
CONNECT from PUBLIC, so the role reaches nothing else. Every step is idempotent: a rerun of create
changes no object (the password verifier is rewritten, with the same password); delete of a slice
already gone succeeds.

Stdlib and pg8000 only (bundled by `provisioner_archive()`); boto3 is imported when the function
connects, from the Lambda runtime. The password is never logged, and never sent to the server in
clear: the role gets a SCRAM-SHA-256 verifier computed here, so a logged DDL statement (e.g.
`log_statement = ddl`) shows a salted hash, the same thing Postgres stores.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import ssl
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import pg8000.native  # type: ignore[import-untyped]
from scramp.utils import saslprep  # type: ignore[import-untyped]

log = logging.getLogger("provisioner")
log.setLevel(logging.INFO)

#: The only names this function acts on: a slice's database and role (`slice_database`).
SLICE_NAME = re.compile(r"pr_[0-9]{1,9}")
#: Connections one slice may hold on the shared server (app pool 10 per task, a rolling
#: deployment runs two tasks, plus a migration): a runaway slice cannot starve staging.
CONNECTION_LIMIT = 25
#: The RDS CA bundle, shipped next to this file in the archive.
CA_BUNDLE = Path(__file__).with_name("rds-global-bundle.pem")
SCRAM_ITERATIONS = 4096
ACTIONS = ("create", "update", "delete")


class Database(Protocol):
    """What the handler needs of a connection (pg8000.native.Connection has it)."""

    def run(self, sql: str, **params: Any) -> list[list[Any]] | None: ...

    def close(self) -> None: ...


Connect = Callable[[], Database]


class ProvisionError(ValueError):
    """A request this function refuses; the message names what is wrong (never the password)."""


def iam_connection(environ: Mapping[str, str] = os.environ) -> Database:
    """Connect as DATABASE_USER with an RDS IAM auth token, over TLS verified by the RDS CA.

    The token is signed locally with the function's role (no network call, no stored secret)
    and is valid for 15 minutes, longer than one invocation.
    """
    import boto3  # type: ignore[import-not-found]  # the Lambda runtime ships it

    host, port = environ["DATABASE_HOST"], int(environ.get("DATABASE_PORT", "5432"))
    user = environ["DATABASE_USER"]
    token = boto3.client("rds").generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user)
    conn: Database = pg8000.native.Connection(
        user=user,
        password=token,
        host=host,
        port=port,
        database=environ["DATABASE_NAME"],
        ssl_context=ssl.create_default_context(cafile=str(CA_BUNDLE)),
        timeout=30,
        application_name="agent-provisioner",
    )
    return conn


def handler(event: Mapping[str, Any], context: object = None) -> dict[str, str]:
    """The Lambda entry point (`handler.handler`): always the IAM connection.

    The connection is a parameter of `provision`, not a setting read here: tests call
    `provision` with a password connection to a local server, and nothing a deployed function
    receives (event, environment) can switch it away from IAM auth and a verified TLS.
    """
    return provision(event, iam_connection)


def provision(event: Mapping[str, Any], connect: Connect) -> dict[str, str]:
    """Validate the event completely, then connect and apply it."""
    name, action, password = _parse(event)
    conn = connect()
    try:
        if action == "delete":
            _drop(conn, name)
            log.info("slice dropped: %s", name)
            return {"dropped": name}
        created = _create_or_update(conn, name, password)
        log.info("slice %s: %s", "created" if created else "updated", name)
        return {"database": name, "role": name}
    finally:
        conn.close()


def _parse(event: Mapping[str, Any]) -> tuple[str, str, str]:
    problems = []
    name = event.get("database")
    if not isinstance(name, str) or not SLICE_NAME.fullmatch(name):
        problems.append(
            f"database {name!r} is not a slice name: expected pr_<n> with n of 1 to 9 digits"
        )
    tf = event.get("tf")
    action = tf.get("action", "create") if isinstance(tf, Mapping) else "create"
    if action not in ACTIONS:
        problems.append(f"tf.action {action!r} is not one of {', '.join(ACTIONS)}")
    password = event.get("password")
    if action != "delete" and (not isinstance(password, str) or not password):
        problems.append("password: missing or empty (a non-empty string is required)")
    if problems:
        raise ProvisionError("; ".join(problems))
    return str(name), str(action), password if isinstance(password, str) else ""


def scram_verifier(password: str, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier Postgres stores for `password` (what `\\password` sends).

    Postgres SASLprep-normalises the password and falls back to its raw bytes when that fails;
    this does the same, so any password logs in.
    """
    try:
        prepared = saslprep(password).encode()
    except ValueError:
        prepared = password.encode()
    salt = secrets.token_bytes(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", prepared, salt, SCRAM_ITERATIONS)
    stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _one(conn: Database, sql: str, **params: Any) -> Any:
    rows = conn.run(sql, **params) or []
    return rows[0][0] if rows else None


def _server_version(conn: Database) -> int:
    return int(_one(conn, "SHOW server_version_num"))


def _act_as(conn: Database, name: str, version: int) -> None:
    """Give this user the slice role's privileges, as owning its database requires.

    CREATE DATABASE ... OWNER, DROP DATABASE and terminating the role's sessions need the
    privileges of the role. Up to PostgreSQL 15 a CREATEROLE user simply grants itself the
    role. From 16 the creator holds only ADMIN OPTION (unless `createrole_self_grant` says
    otherwise, which `_create_or_update` sets for the roles it creates); the grant must ask for
    INHERIT and SET explicitly.
    """
    wanted = ("USAGE", "SET") if version >= 160000 else ("USAGE",)
    held = all(
        _one(conn, "SELECT pg_has_role(current_user, :name, :what)", name=name, what=what)
        for what in wanted
    )
    if not held:
        options = " WITH INHERIT TRUE, SET TRUE" if version >= 160000 else ""
        conn.run(f"GRANT {_ident(name)} TO CURRENT_USER{options}")


def _create_or_update(conn: Database, name: str, password: str) -> bool:
    """Role, then database, then its privileges; True when the role was new."""
    role = _ident(name)
    version = _server_version(conn)
    verifier = pg8000.native.literal(scram_verifier(password))
    attributes = conn.run(
        "SELECT rolsuper OR rolreplication OR rolbypassrls FROM pg_roles WHERE rolname = :name",
        name=name,
    )
    if attributes and attributes[0][0]:
        raise ProvisionError(
            f"role {name!r} exists with SUPERUSER, REPLICATION or BYPASSRLS; refusing to touch it"
        )
    if not attributes:
        if version >= 160000:
            conn.run("SET createrole_self_grant = 'set, inherit'")
        conn.run(
            f"CREATE ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
            f"NOBYPASSRLS CONNECTION LIMIT {CONNECTION_LIMIT} PASSWORD {verifier}"
        )
    else:
        conn.run(
            f"ALTER ROLE {role} WITH LOGIN NOCREATEDB NOCREATEROLE "
            f"CONNECTION LIMIT {CONNECTION_LIMIT} PASSWORD {verifier}"
        )
    _act_as(conn, name, version)
    owner = _one(
        conn,
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :name",
        name=name,
    )
    if owner is None:
        conn.run(f"CREATE DATABASE {role} OWNER {role}")
    elif owner != name:
        raise ProvisionError(
            f"database {name!r} exists and belongs to {owner!r}, not to the slice role; "
            "refusing to touch it"
        )
    conn.run(f"REVOKE ALL ON DATABASE {role} FROM PUBLIC")
    conn.run(f"GRANT CONNECT, TEMPORARY ON DATABASE {role} TO {role}")
    return not attributes


def _drop(conn: Database, name: str) -> None:
    """Lock the role out, end its sessions, then drop database and role (each if present)."""
    role = _ident(name)
    if _one(conn, "SELECT count(*) FROM pg_roles WHERE rolname = :name", name=name):
        _act_as(conn, name, _server_version(conn))
        conn.run(f"ALTER ROLE {role} WITH NOLOGIN")
        conn.run(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :name",
            name=name,
        )
    conn.run(f"DROP DATABASE IF EXISTS {role} WITH (FORCE)")
    conn.run(f"DROP ROLE IF EXISTS {role}")


def _ident(name: str) -> str:
    if not SLICE_NAME.fullmatch(name):  # every statement re-checks: a name is never spliced raw
        raise ProvisionError(f"{name!r} is not a slice name")
    return str(pg8000.native.identifier(name))

"""Create, update or drop one pull-request slice's database and role on the shared Postgres, and
delete its Redis keys when it goes.

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

On delete the slice's Redis keys (`pr-<n>:*`, the prefix its app writes under) are unlinked too,
by the host's cleanup cache user: IAM-authenticated (a token signed here, no password), allowed
only SCAN and UNLINK of `pr-*` keys. The keys would expire by their TTLs anyway for the reference
app; an app that writes keys without one would otherwise leave them in staging's cache.

Stdlib and pg8000 only (bundled by `provisioner_archive()`); boto3 and botocore are imported when
the function connects, from the Lambda runtime. The password is never logged, and never sent to
the server in clear: the role gets a SCRAM-SHA-256 verifier computed here, so a logged DDL
statement (e.g. `log_statement = ddl`) shows a salted hash, the same thing Postgres stores.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import socket
import ssl
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

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
#: Keys a SCAN step asks for: big enough to be quick, small enough not to block the server.
SCAN_COUNT = 500
#: An ElastiCache IAM auth token's life (the longest ElastiCache accepts).
CACHE_TOKEN_SECONDS = 900
#: Per cache connect and reply.
CACHE_TIMEOUT_SECONDS = 10


class Database(Protocol):
    """What the handler needs of a connection (pg8000.native.Connection has it)."""

    def run(self, sql: str, **params: Any) -> list[list[Any]] | None: ...

    def close(self) -> None: ...


Connect = Callable[[], Database]


class CacheError(RuntimeError):
    """An error reply from Redis, or a connection that ended mid-reply."""


class Cache:
    """Just enough of a Redis client (RESP2 over one socket) for AUTH, SCAN and UNLINK.

    Written here rather than bundled: the function needs three commands, and every byte of
    the archive is code that runs inside staging's VPC.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._file = sock.makefile("rwb")

    def call(self, *args: str | bytes) -> Any:
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            raw = arg.encode() if isinstance(arg, str) else arg
            parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
        self._file.write(b"".join(parts))
        self._file.flush()
        return self._reply()

    def _reply(self) -> Any:
        line = self._file.readline()
        if not line.endswith(b"\r\n"):
            raise CacheError("the cache closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise CacheError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self._file.read(size + 2)
            if len(data) != size + 2 or not data.endswith(b"\r\n"):
                raise CacheError("the cache closed the connection mid-reply")
            return data[:-2]
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self._reply() for _ in range(size)]
        raise CacheError(f"unexpected reply type {kind!r}")

    def close(self) -> None:
        self._file.close()
        self._sock.close()


CacheConnect = Callable[[], Cache]


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


def cache_token(user: str, cache_name: str, region: str) -> str:
    """An ElastiCache IAM auth token: a SigV4-presigned `connect` request, without its scheme.

    Signed locally with the function's role, like the RDS token; ElastiCache checks it against
    `elasticache:Connect` on the replication group and the user.
    """
    import botocore.session  # type: ignore[import-untyped]  # the Lambda runtime ships it
    from botocore.model import ServiceId  # type: ignore[import-untyped]
    from botocore.signers import RequestSigner  # type: ignore[import-untyped]

    session = botocore.session.get_session()
    signer = RequestSigner(
        ServiceId("elasticache"),
        region,
        "elasticache",
        "v4",
        session.get_credentials(),
        session.get_component("event_emitter"),
    )
    query = urlencode({"Action": "connect", "User": user})
    signed = signer.generate_presigned_url(
        {
            "method": "GET",
            "url": f"https://{cache_name}/?{query}",
            "body": {},
            "headers": {},
            "context": {},
        },
        operation_name="connect",
        expires_in=CACHE_TOKEN_SECONDS,
        region_name=region,
    )
    return str(signed).removeprefix("https://")


def iam_cache_connection(environ: Mapping[str, str] = os.environ) -> Cache:
    """Connect to the host's cache as CACHE_USER with an IAM token, over TLS (system CAs)."""
    host, port = environ["CACHE_HOST"], int(environ.get("CACHE_PORT", "6379"))
    user = environ["CACHE_USER"]
    token = cache_token(user, environ["CACHE_NAME"], environ["AWS_REGION"])
    # Well inside the function's 60 s, which the database part needs too.
    raw = socket.create_connection((host, port), timeout=CACHE_TIMEOUT_SECONDS)
    cache = Cache(ssl.create_default_context().wrap_socket(raw, server_hostname=host))
    try:
        cache.call("AUTH", user, token)
    except BaseException:
        cache.close()
        raise
    return cache


def handler(event: Mapping[str, Any], context: object = None) -> dict[str, str]:
    """The Lambda entry point (`handler.handler`): always the IAM connections.

    The connections are parameters of `provision`, not settings read here: tests call
    `provision` with password connections to local servers, and nothing a deployed function
    receives (event, environment) can switch it away from IAM auth and a verified TLS.
    """
    return provision(event, iam_connection, iam_cache_connection)


def key_prefix(name: str) -> str:
    """The Redis key prefix of slice `pr_<n>`: `pr-<n>:` (the slice's REDIS_KEY_PREFIX)."""
    if not SLICE_NAME.fullmatch(name):
        raise ProvisionError(f"{name!r} is not a slice name")
    return f"pr-{name.removeprefix('pr_')}:"


def purge_keys(cache: Cache, prefix: str) -> int:
    """UNLINK every key under `prefix` (SCAN in steps: never KEYS on a shared server)."""
    if not re.fullmatch(r"pr-[0-9]{1,9}:", prefix):
        raise ProvisionError(f"{prefix!r} is not a slice key prefix")
    cursor, removed = b"0", 0
    while True:
        cursor, found = cache.call("SCAN", cursor, "MATCH", f"{prefix}*", "COUNT", str(SCAN_COUNT))
        keys = [k for k in found if k.startswith(prefix.encode())]  # never trust MATCH alone
        if keys:
            removed += int(cache.call("UNLINK", *keys))
        if cursor == b"0":
            return removed


def provision(
    event: Mapping[str, Any], connect: Connect, connect_cache: CacheConnect | None = None
) -> dict[str, str]:
    """Validate the event completely, then connect and apply it.

    `connect_cache` is None only for a host without a cache to clean (tests of the database
    part); the deployed `handler` always passes it.
    """
    name, action, password = _parse(event)
    if action == "delete" and connect_cache is not None:
        cache = connect_cache()
        try:
            removed = purge_keys(cache, key_prefix(name))
        finally:
            cache.close()
        log.info("slice keys removed: %s (%d)", name, removed)
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

"""The provisioner Lambda (infra/aws/provisioner) against a real PostgreSQL server.

Every test runs twice: on the PostgreSQL on PATH (Debian 12's 15.x here and in CI, installed by
`.ci/app.sh`) and on 16.2 from the `pgserver` wheel (a dev dependency), whose CREATEROLE rules
(ADMIN OPTION only, `createrole_self_grant`, INHERIT/SET grants) are those of RDS 16/17. The
handler connects as a CREATEDB CREATEROLE non-superuser, as on RDS, so a privilege it lacks
there fails here too.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import socket
import ssl
import subprocess
import sys
import types
import urllib.parse
from pathlib import Path

import pg8000.native
import pulumi
import pytest
from packaging.specifiers import SpecifierSet

from infra.aws.provisioner import (
    CA_BUNDLE,
    HANDLER,
    PROVISIONER_USER,
    RUNTIME,
    bundled_files,
    provisioner_archive,
)
from infra.aws.provisioner import handler as provisioner
from infra.config.pull_requests import slice_database, slice_key_prefix
from tests.infra.postgres_server import PROVISIONER_PASSWORD, Postgres, postgres
from tests.infra.redis_server import CLEANUP_USER, Redis, redis_server

__all__ = ["postgres", "redis_server"]

PASSWORD = "slice-Secr3t-9d2c"


def as_provisioner(server: Postgres) -> provisioner.Connect:
    return lambda: server.connect(PROVISIONER_USER, PROVISIONER_PASSWORD, "base")


def create(server: Postgres, name: str, password: str = PASSWORD) -> dict[str, str]:
    event = {"database": name, "password": password, "tf": {"action": "create"}}
    return provisioner.provision(event, as_provisioner(server))


def delete(server: Postgres, name: str) -> dict[str, str]:
    event = {"database": name, "password": PASSWORD, "tf": {"action": "delete"}}
    return provisioner.provision(event, as_provisioner(server))


def can_connect(server: Postgres, user: str, password: str, database: str) -> bool:
    try:
        server.connect(user, password, database).close()
    except pg8000.native.DatabaseError:
        return False
    return True


def snapshot(server: Postgres, name: str) -> list[object]:
    """What a no-op must leave alone: the role's and database's identity, attributes, ACL."""
    admin = server.admin()
    try:
        return admin.run(
            "SELECT r.oid, r.rolcanlogin, r.rolcreatedb, r.rolcreaterole, r.rolconnlimit, "
            "d.oid, pg_get_userbyid(d.datdba), d.datacl::text FROM pg_roles r "
            "JOIN pg_database d ON d.datname = r.rolname WHERE r.rolname = :name",
            name=name,
        )
    finally:
        admin.close()


def test_the_servers_are_the_versions_named(postgres: Postgres, request: pytest.FixtureRequest):
    if "pgserver-16" in request.node.callspec.id:
        assert postgres.version // 10000 == 16
    else:
        assert postgres.version >= 150000


def test_create_gives_a_slice_a_database_only_its_role_can_reach(postgres: Postgres) -> None:
    assert slice_database("pr-42") == "pr_42"
    assert create(postgres, "pr_42") == {"database": "pr_42", "role": "pr_42"}
    create(postgres, "pr_43")

    own = postgres.connect("pr_42", PASSWORD, "pr_42")
    own.run("CREATE TABLE checkpoints (id int)")  # the app migrates its own database
    assert own.run("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                   "WHERE rolname = current_user") == [[False, False, False]]  # fmt: skip
    own.close()
    assert not can_connect(postgres, "pr_42", PASSWORD, "base")
    assert not can_connect(postgres, "pr_42", PASSWORD, "pr_43")
    assert not can_connect(postgres, "pr_43", PASSWORD, "pr_42")
    assert can_connect(postgres, "pr_43", PASSWORD, "pr_43")
    row = snapshot(postgres, "pr_42")[0]
    assert row[6] == "pr_42"
    assert "=" not in row[7].replace("pr_42=", "")  # no grant to PUBLIC left in the ACL
    assert row[4] == provisioner.CONNECTION_LIMIT


def test_second_create_changes_nothing_and_applies_a_new_password(postgres: Postgres) -> None:
    create(postgres, "pr_50")
    before = snapshot(postgres, "pr_50")
    assert create(postgres, "pr_50") == {"database": "pr_50", "role": "pr_50"}
    assert snapshot(postgres, "pr_50") == before
    assert can_connect(postgres, "pr_50", PASSWORD, "pr_50")

    rotated = "rotated-Pässwörd-ß-1"  # non-ASCII: SASLprep as the server does it
    create(postgres, "pr_50", rotated)
    assert snapshot(postgres, "pr_50") == before
    assert can_connect(postgres, "pr_50", rotated, "pr_50")
    assert not can_connect(postgres, "pr_50", PASSWORD, "pr_50")


def test_delete_drops_database_and_role_despite_an_open_session(postgres: Postgres) -> None:
    create(postgres, "pr_60")
    session = postgres.connect("pr_60", PASSWORD, "pr_60")
    session.run("CREATE TABLE t (id int)")

    assert delete(postgres, "pr_60") == {"dropped": "pr_60"}
    admin = postgres.admin()
    assert admin.run("SELECT count(*) FROM pg_database WHERE datname = 'pr_60'") == [[0]]
    assert admin.run("SELECT count(*) FROM pg_roles WHERE rolname = 'pr_60'") == [[0]]
    admin.close()
    with pytest.raises((pg8000.native.InterfaceError, pg8000.native.DatabaseError)):
        session.run("SELECT 1")  # its session was ended
    assert delete(postgres, "pr_60") == {"dropped": "pr_60"}  # already gone: still succeeds


@pytest.mark.parametrize(
    ("event", "named"),
    [
        ({"database": "staging", "password": PASSWORD}, "'staging'"),
        ({"database": "pr_1; drop database base", "password": PASSWORD}, "'pr_1; drop"),
        ({"database": "pr_1\n", "password": PASSWORD}, "'pr_1\\n'"),
        ({"database": "pr_1234567890", "password": PASSWORD}, "'pr_1234567890'"),
        ({"database": "base", "password": PASSWORD, "tf": {"action": "delete"}}, "'base'"),
        ({"database": 42, "password": PASSWORD}, "42"),
        ({"database": "pr_1", "password": ""}, "password"),
        ({"database": "pr_1", "password": PASSWORD, "tf": {"action": "read"}}, "'read'"),
    ],
)
def test_bad_requests_are_refused_before_connecting(event: dict[str, object], named: str) -> None:
    def never() -> provisioner.Database:
        raise AssertionError("connected for a request it must refuse")

    with pytest.raises(provisioner.ProvisionError) as refused:
        provisioner.provision(event, never)
    assert named in str(refused.value)
    assert PASSWORD not in str(refused.value)


def test_existing_objects_it_does_not_own_are_refused(postgres: Postgres) -> None:
    admin = postgres.admin()
    admin.run("CREATE ROLE pr_70 SUPERUSER")
    admin.run("CREATE DATABASE pr_71")  # owned by admin
    admin.close()
    with pytest.raises(provisioner.ProvisionError, match=r"pr_70.*SUPERUSER"):
        create(postgres, "pr_70")
    with pytest.raises(provisioner.ProvisionError, match=r"pr_71.*belongs to 'admin'"):
        create(postgres, "pr_71")
    admin = postgres.admin()
    assert admin.run("SELECT rolsuper FROM pg_roles WHERE rolname = 'pr_70'") == [[True]]
    admin.close()


def test_password_reaches_neither_logs_nor_server(
    postgres: Postgres, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    create(postgres, "pr_80")
    create(postgres, "pr_80")
    delete(postgres, "pr_80")
    assert "slice created: pr_80" in caplog.text
    assert "slice dropped: pr_80" in caplog.text
    out = capsys.readouterr()
    assert PASSWORD not in caplog.text + out.out + out.err
    server_log = postgres.log.read_text()
    assert 'CREATE ROLE "pr_80"' in server_log  # log_statement=all saw the DDL
    assert "SCRAM-SHA-256$4096:" in server_log
    assert PASSWORD not in server_log


def test_lambda_entry_connects_with_an_iam_token_over_verified_tls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signed: dict[str, object] = {}
    opened: dict[str, object] = {}

    class Rds:
        def generate_db_auth_token(self, **kwargs: object) -> str:
            signed.update(kwargs)
            return "iam-token"

    boto3 = types.ModuleType("boto3")
    boto3.client = lambda service: Rds() if service == "rds" else None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "boto3", boto3)

    class Stop(Exception):
        pass

    def connection(**kwargs: object) -> None:
        opened.update(kwargs)
        raise Stop

    monkeypatch.setattr(pg8000.native, "Connection", connection)
    monkeypatch.setattr(provisioner, "CA_BUNDLE", CA_BUNDLE)  # beside handler.py in the archive
    for name, value in {
        "DATABASE_HOST": "db.example.internal",
        "DATABASE_PORT": "5432",
        "DATABASE_NAME": "agent",
        "DATABASE_USER": PROVISIONER_USER,
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(Stop):
        provisioner.handler({"database": "pr_1", "password": PASSWORD}, None)

    assert signed == {"DBHostname": "db.example.internal", "Port": 5432,
                      "DBUsername": PROVISIONER_USER}  # fmt: skip
    assert opened["password"] == "iam-token"
    assert (opened["user"], opened["database"]) == (PROVISIONER_USER, "agent")
    context = opened["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert len(context.get_ca_certs()) > 10  # the RDS bundle, not the system store


def test_archive_runs_alone_on_a_bare_python(postgres: Postgres, tmp_path: Path) -> None:
    """Extract the archive and drive the real server from it, with nothing else importable."""
    archive = provisioner_archive()
    assert isinstance(archive, pulumi.AssetArchive)
    assert (HANDLER, RUNTIME) == ("handler.handler", "python3.12")
    names = set(archive.assets)
    assert names == set(bundled_files())
    assert {"handler.py", "rds-global-bundle.pem", "pg8000/native.py", "scramp/core.py"} <= names
    assert not [n for n in names if n.endswith((".so", ".pyc", ".pyd")) or "infra/" in n]
    for name, asset in archive.assets.items():
        assert isinstance(asset, pulumi.FileAsset)
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(str(asset.path), tmp_path / name)
    for metadata in tmp_path.glob("*.dist-info/METADATA"):  # every wheel admits the runtime
        requires = [line.split(":", 1)[1] for line in metadata.read_text().splitlines()
                    if line.startswith("Requires-Python:")]  # fmt: skip
        assert all("3.12" in SpecifierSet(spec.strip()) for spec in requires), metadata

    script = f"""
import json, sys
sys.path.insert(0, {str(tmp_path)!r})
import handler, pg8000.native
assert all(m.__file__.startswith({str(tmp_path)!r}) for m in (handler, pg8000.native))
connect = lambda: pg8000.native.Connection(user={PROVISIONER_USER!r},
    password={PROVISIONER_PASSWORD!r}, host="127.0.0.1", port={postgres.port}, database="base")
print(json.dumps(handler.provision({{"database": "pr_90", "password": "p"}}, connect)))
"""
    # -I -S: no site-packages, no PYTHONPATH, no user site: only the stdlib and the archive.
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"database": "pr_90", "role": "pr_90"}
    assert can_connect(postgres, "pr_90", "p", "pr_90")


# --------------------------------------------------------------------------------------------
# A destroyed slice's Redis keys
# --------------------------------------------------------------------------------------------
#: Keys of staging's app and of other slices, in the same cache: cleanup must leave them.
OTHER_KEYS = ("agent:ratelimit:10.1.2.3", "pr-70:agent:ratelimit:x", "pr-8:agent:thread-lock:t")


def resp_commands(raw: bytes) -> list[list[bytes]]:
    """The commands a client sent, parsed from RESP arrays of bulk strings."""
    commands, at = [], 0
    while at < len(raw):
        end = raw.index(b"\r\n", at)
        count, at, args = int(raw[at + 1 : end]), end + 2, []
        for _ in range(count):
            end = raw.index(b"\r\n", at)
            size = int(raw[at + 1 : end])
            args.append(raw[end + 2 : end + 2 + size])
            at = end + 4 + size
        commands.append(args)
    return commands


def as_cleanup(server: Redis) -> provisioner.CacheConnect:
    return server.cleanup


def test_delete_removes_the_slices_keys_and_only_those(
    postgres: Postgres, redis_server: Redis
) -> None:
    create(postgres, "pr_7")
    admin = redis_server.admin()
    mine = [f"pr-7:agent:thread-lock:{i}" for i in range(1200)]  # several SCAN steps
    for key in [*mine, *OTHER_KEYS]:
        admin.call("SET", key, "v")
    admin.call("SET", "pr-7:no-ttl", "v")  # an app's key without a TTL goes too
    event = {"database": "pr_7", "tf": {"action": "delete"}}

    done = provisioner.provision(event, as_provisioner(postgres), as_cleanup(redis_server))

    assert done == {"dropped": "pr_7"}
    assert admin.call("KEYS", "pr-7:*") == []
    assert sorted(k.decode() for k in admin.call("KEYS", "*")) == sorted(OTHER_KEYS)
    assert not can_connect(postgres, "pr_7", PASSWORD, "pr_7")
    # A re-run (a destroy retried after a failure) finds nothing and succeeds.
    assert provisioner.provision(event, as_provisioner(postgres), as_cleanup(redis_server)) == {
        "dropped": "pr_7"
    }
    admin.close()


def test_a_cache_failure_fails_the_delete_before_the_database_goes(
    postgres: Postgres, redis_server: Redis
) -> None:
    create(postgres, "pr_9")

    def refused() -> provisioner.Cache:
        return redis_server.connect(CLEANUP_USER, "wrong-password")

    with pytest.raises(provisioner.CacheError, match="WRONGPASS"):
        provisioner.provision({"database": "pr_9", "tf": {"action": "delete"}},
                              as_provisioner(postgres), refused)  # fmt: skip
    assert can_connect(postgres, "pr_9", PASSWORD, "pr_9")  # retried whole on the next destroy


def test_the_cleanup_user_may_only_list_and_unlink_slice_keys(redis_server: Redis) -> None:
    admin = redis_server.admin()
    for key in ("pr-3:k", *OTHER_KEYS):
        admin.call("SET", key, "v")
    cleanup = redis_server.cleanup()
    for command in (
        ("UNLINK", "agent:ratelimit:10.1.2.3"),
        ("DEL", "pr-3:k"),
        ("GET", "pr-3:k"),
        ("SET", "pr-3:k", "x"),
        ("FLUSHALL",),
        ("CONFIG", "GET", "*"),
        ("ACL", "LIST"),
        ("KEYS", "*"),
        ("EVAL", "return 1", "0"),
    ):
        with pytest.raises(provisioner.CacheError, match="NOPERM"):
            cleanup.call(*command)
    assert cleanup.call("UNLINK", "pr-3:k") == 1
    assert admin.call("GET", "agent:ratelimit:10.1.2.3") == b"v"
    cleanup.close()
    admin.close()


def test_the_cleaned_prefix_is_the_one_the_slice_writes_under() -> None:
    for n in (1, 42, 999_999_999):
        stack = f"pr-{n}"
        assert provisioner.key_prefix(slice_database(stack)) == slice_key_prefix(stack)
    for bad in ("pr-7", "pr_7:", "staging", "pr_"):
        with pytest.raises(provisioner.ProvisionError):
            provisioner.key_prefix(bad)
    with pytest.raises(provisioner.ProvisionError):
        provisioner.purge_keys(provisioner.Cache(socket.socket()), "agent:")


def test_lambda_entry_cleans_keys_as_the_cleanup_user_with_an_iam_token_over_tls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The deployed path: a SigV4 token signed with the function's credentials, sent in AUTH over
    a TLS socket verified against the cache's name; then SCAN, then the database part."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEY",
        "AWS_SECRET_ACCESS_KEY": "example-secret",
        "AWS_SESSION_TOKEN": "example-session",
        "AWS_REGION": "eu-west-1",
        "CACHE_HOST": "master.agent-staging-cache.abc123.euw1.cache.amazonaws.com",
        "CACHE_PORT": "6379",
        "CACHE_NAME": "agent-staging-cache",
        "CACHE_USER": "agent-staging-cache-cleanup",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)

    class Kept(io.BytesIO):
        def close(self) -> None:  # read after the client closed its connection
            pass

    sent = Kept()
    wrapped: dict[str, object] = {}

    class FakeTls:
        def makefile(self, mode: str) -> io.BufferedRWPair:
            replies = io.BytesIO(b"+OK\r\n*2\r\n$1\r\n0\r\n*0\r\n")
            return io.BufferedRWPair(replies, sent)  # type: ignore[arg-type]

        def close(self) -> None:
            pass

    class Context:
        def wrap_socket(self, sock: object, server_hostname: str) -> FakeTls:
            wrapped.update(sock=sock, server_hostname=server_hostname)
            return FakeTls()

    contexts: list[Context] = []

    def default_context() -> Context:
        contexts.append(Context())
        return contexts[-1]

    monkeypatch.setattr(provisioner.ssl, "create_default_context", default_context)
    monkeypatch.setattr(
        provisioner.socket, "create_connection", lambda address, timeout: ("tcp", address, timeout)
    )

    class Stop(Exception):
        pass

    def no_database(**kwargs: object) -> None:
        raise Stop

    monkeypatch.setattr(provisioner, "iam_connection", lambda: no_database())
    with pytest.raises(Stop):
        provisioner.handler({"database": "pr_5", "tf": {"action": "delete"}}, None)

    host = "master.agent-staging-cache.abc123.euw1.cache.amazonaws.com"
    # A dead cache costs 10 s, not the function's whole minute.
    assert wrapped == {"sock": ("tcp", (host, 6379), 10), "server_hostname": host}
    commands = resp_commands(sent.getvalue())
    auth = commands[0]
    assert auth[:2] == [b"AUTH", b"agent-staging-cache-cleanup"]
    token = auth[2].decode()
    assert token.startswith("agent-staging-cache/?Action=connect&User=agent-staging-cache-cleanup&")
    query = urllib.parse.parse_qs(token.partition("?")[2])
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Credential"][0].startswith("AKIAEXAMPLEKEY/")
    assert query["X-Amz-Credential"][0].endswith("/eu-west-1/elasticache/aws4_request")
    assert query["X-Amz-Expires"] == ["900"]
    assert query["X-Amz-Security-Token"] == ["example-session"]
    assert "example-secret" not in token
    assert commands[1][:4] == [b"SCAN", b"0", b"MATCH", b"pr-5:*"]


_PEERS: list[socket.socket] = []


def _replying(raw: bytes) -> provisioner.Cache:
    """A client whose server sends `raw`, then ends its side (still taking the request)."""
    ours, theirs = socket.socketpair()
    theirs.sendall(raw)
    theirs.shutdown(socket.SHUT_WR)
    _PEERS.append(theirs)  # closed with the test process
    return provisioner.Cache(ours)


def test_the_cache_client_reads_every_reply_type_and_refuses_a_cut_reply() -> None:
    assert _replying(b"*3\r\n$-1\r\n:3\r\n*1\r\n+OK\r\n").call("X") == [None, 3, ["OK"]]
    with pytest.raises(provisioner.CacheError, match="NOPERM"):
        _replying(b"-NOPERM no\r\n").call("X")
    with pytest.raises(provisioner.CacheError, match="mid-reply"):
        _replying(b"$5\r\nab").call("GET", "k")
    with pytest.raises(provisioner.CacheError, match="closed"):
        _replying(b"").call("PING")


def test_only_keys_under_the_prefix_are_unlinked_whatever_scan_returns() -> None:
    """A server that ignored MATCH (or a glob surprise) still cannot widen the delete."""
    sent: list[tuple[str, ...]] = []

    class Lenient:
        def call(self, *args: str | bytes) -> object:
            sent.append(tuple(a.decode() if isinstance(a, bytes) else a for a in args))
            if args[0] == "SCAN":
                return [b"0", [b"pr-7:a", b"pr-70:b", b"agent:ratelimit:x", b"pr-7:b"]]
            return 2

    assert provisioner.purge_keys(Lenient(), "pr-7:") == 2  # type: ignore[arg-type]
    assert sent[-1] == ("UNLINK", "pr-7:a", "pr-7:b")

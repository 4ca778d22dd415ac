"""Postgres under failure and rotation, against a real server: fail fast when it is down, use the
pool when it is up, and a least-privilege role whose password can change under a running service.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest
from langgraph.checkpoint.postgres import PostgresSaver
from psycopg import sql

from harness import (
    API_TOKEN,
    APP_DIR,
    PG_PASSWORD,
    PostgresServer,
    run_migrate,
    service_env,
)

pytestmark = pytest.mark.integration

POOL_TIMEOUT_SECONDS = 5.0  # Dependencies' pool timeout: what one run may wait for a connection


def post_run(base_url: str, thread_id: str, timeout: float = 30) -> httpx.Response:
    return httpx.post(
        f"{base_url}/threads/{thread_id}/runs",
        json={"message": "hi"},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=timeout,
    )


def concurrent_runs(base_url: str, prefix: str, count: int) -> tuple[list[httpx.Response], float]:
    started = time.monotonic()
    with ThreadPoolExecutor(count) as pool:
        responses = list(pool.map(lambda i: post_run(base_url, f"{prefix}-{i}"), range(count)))
    return responses, time.monotonic() - started


def admin_connect(postgres: PostgresServer, dbname: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1",
        port=postgres.port,
        user="agent",
        password=PG_PASSWORD,
        dbname=dbname,
        autocommit=True,
    )


# --------------------------------------------------------------------------- 15.15


def test_concurrent_runs_fail_fast_with_503_while_postgres_is_down(start_service, postgres):
    service = start_service(RATE_LIMIT_PER_MINUTE="0")
    count = 12
    postgres.stop()
    try:
        # The first wave learns that Postgres is gone: each run waits at most one pool timeout,
        # in parallel (one process-wide lock made it count x 5 s, the last after 60 s).
        first, first_elapsed = concurrent_runs(service.base_url, "down-a", count)
        # Later runs share one refused probe and answer at once.
        second, second_elapsed = concurrent_runs(service.base_url, "down-b", count)
    finally:
        postgres.start()

    for response in first + second:
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "5"
    assert first_elapsed < 2 * POOL_TIMEOUT_SECONDS, first_elapsed
    assert second_elapsed < 1.5, second_elapsed

    deadline = time.monotonic() + 20
    while (status := post_run(service.base_url, "back-up").status_code) != 200:
        assert time.monotonic() < deadline, f"runs never recovered (last {status})"
        time.sleep(0.5)


def test_concurrent_runs_use_more_than_one_pooled_connection(start_service, postgres):
    app_name = f"pool-{uuid.uuid4().hex[:8]}"
    service = start_service(
        DATABASE_URL=f"{postgres.url}?application_name={app_name}", RATE_LIMIT_PER_MINUTE="0"
    )
    assert post_run(service.base_url, f"{app_name}-warm").status_code == 200
    count = 6
    most_waiting = 0
    with admin_connect(postgres) as locker, admin_connect(postgres) as watcher:
        # Every checkpoint read now blocks in Postgres, each on the connection it holds.
        locker.execute("BEGIN")
        locker.execute("LOCK TABLE checkpoints IN ACCESS EXCLUSIVE MODE")
        with ThreadPoolExecutor(count) as pool:
            futures = [
                pool.submit(post_run, service.base_url, f"{app_name}-{i}") for i in range(count)
            ]
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and most_waiting < count:
                row = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = %s AND wait_event_type = 'Lock'",
                    [app_name],
                ).fetchone()
                most_waiting = max(most_waiting, row[0])
                time.sleep(0.05)
            locker.execute("ROLLBACK")
            responses = [f.result() for f in futures]

    assert [r.status_code for r in responses] == [200] * count
    # Serialised through one lock, exactly one connection would be waiting in Postgres.
    assert most_waiting == count


# --------------------------------------------------------------------------- 17.4


def bootstrap_process(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m src.db_bootstrap` as the init container runs it."""
    return subprocess.run(
        [sys.executable, "-m", "src.db_bootstrap"],
        cwd=APP_DIR,
        env=service_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


class RdsLikeDatabase:
    """A database owned by a master user that, like RDS's, is not a superuser but may create
    roles and databases."""

    def __init__(self, postgres: PostgresServer) -> None:
        suffix = uuid.uuid4().hex[:6]
        self.postgres = postgres
        self.database = f"agent_{suffix}"
        self.admin_user = f"master_{suffix}"
        self.admin_password = "master-Pw-1'\"x"  # quotes: identifiers and literals must be safe
        self.app_user = f"App-User_{suffix}"  # mixed case: must be quoted to survive
        with admin_connect(postgres) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEROLE CREATEDB PASSWORD {}").format(
                    sql.Identifier(self.admin_user), sql.Literal(self.admin_password)
                )
            )
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(self.database), sql.Identifier(self.admin_user)
                )
            )

    @property
    def app_url(self) -> str:
        """The service's URL: application user, no password (as the stacks build it)."""
        return (
            f"postgresql://{self.app_user}@127.0.0.1:{self.postgres.port}/{self.database}"
            "?sslmode=disable"
        )

    def bootstrap_env(self, app_password: str) -> dict[str, str]:
        return {
            "DATABASE_URL": self.app_url,
            "DATABASE_ADMIN_USER": self.admin_user,
            "DATABASE_ADMIN_PASSWORD": self.admin_password,
            "DATABASE_APP_PASSWORD": app_password,
        }

    def connect(self, user: str, password: str) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.postgres.port,
            dbname=self.database,
            user=user,
            password=password,
            autocommit=True,
        )


@pytest.fixture
def rds_like(postgres: PostgresServer) -> RdsLikeDatabase:
    return RdsLikeDatabase(postgres)


def test_bootstrap_creates_a_least_privilege_role_idempotently(rds_like):
    app_password = "app-Pw-1'; DROP ROLE x; --"
    # A service that used to connect as the master left checkpointer tables the master owns.
    with rds_like.connect(rds_like.admin_user, rds_like.admin_password) as conn:
        PostgresSaver(conn).setup()

    first = bootstrap_process(rds_like.bootstrap_env(app_password))
    assert first.returncode == 0, first.stderr + first.stdout
    again = bootstrap_process(rds_like.bootstrap_env(app_password))
    assert again.returncode == 0, again.stderr + again.stdout
    assert '"created": false' in again.stdout
    for output in (first.stdout + first.stderr, again.stdout + again.stderr):
        assert app_password not in output
        assert rds_like.admin_password not in output

    with rds_like.connect(rds_like.app_user, app_password) as app:
        row = app.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolcanlogin FROM pg_roles "
            "WHERE rolname = current_user"
        ).fetchone()
        assert row == (False, False, False, True)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("CREATE ROLE intruder")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("CREATE DATABASE intruder")
        # It owns the checkpointer tables (their migrations need it) and may create new ones.
        owners = app.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE tablename LIKE 'checkpoint%'"
        ).fetchall()
        assert owners == [(rds_like.app_user,)]
        PostgresSaver(app).setup()
        app.execute("CREATE TABLE app_owned (id int)")


def test_bootstrap_creates_the_slice_provisioner_and_closes_the_database_to_public(
    rds_like, postgres
):
    """A staging host's db-init: the Lambda's role, and a database no other role reaches."""
    provisioner = f"prov_{uuid.uuid4().hex[:6]}"
    env = {**rds_like.bootstrap_env("app-Pw-4e1"), "DATABASE_PROVISIONER_USER": provisioner}
    first = bootstrap_process(env)
    assert first.returncode == 0, first.stderr + first.stdout
    assert f'"provisioner": "{provisioner}"' in first.stdout
    stranger = f"stranger_{uuid.uuid4().hex[:6]}"  # e.g. a pull-request slice's role
    with admin_connect(postgres) as admin:
        row = admin.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, rolreplication, "
            "rolbypassrls, rolpassword IS NULL FROM pg_authid WHERE rolname = %s",
            [provisioner],
        ).fetchone()
        assert row == (False, True, True, True, False, False, True)
        assert not admin.execute(
            "SELECT 1 FROM pg_auth_members WHERE member = %s::regrole", [provisioner]
        ).fetchall()  # no rds_iam role on this server: nothing granted
        admin.execute("CREATE ROLE rds_iam")
        # As on RDS, where the master (rds_superuser) may grant rds_iam (needed from 16 on).
        admin.execute(
            sql.SQL("GRANT rds_iam TO {} WITH ADMIN OPTION").format(
                sql.Identifier(rds_like.admin_user)
            )
        )
        # Passwords for this test's logins only (on RDS the provisioner uses IAM tokens).
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'pw-7'").format(sql.Identifier(stranger))
        )
        admin.execute(sql.SQL("ALTER ROLE {} PASSWORD 'pw-7'").format(sql.Identifier(provisioner)))
    try:
        again = bootstrap_process(env)  # idempotent, and grants rds_iam now that it exists
        assert again.returncode == 0, again.stderr + again.stdout
        with admin_connect(postgres) as admin:
            granted = admin.execute(
                "SELECT roleid::regrole::text FROM pg_auth_members WHERE member = %s::regrole",
                [provisioner],
            ).fetchall()
        assert granted == [("rds_iam",)]
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            rds_like.connect(stranger, "pw-7")
        rds_like.connect(provisioner, "pw-7").close()
        rds_like.connect(rds_like.app_user, "app-Pw-4e1").close()
        rds_like.connect(rds_like.admin_user, rds_like.admin_password).close()
    finally:
        with admin_connect(postgres) as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(stranger)))
            admin.execute("DROP ROLE rds_iam")


def test_bootstrap_refuses_a_provisioner_that_is_another_role():
    env = {
        "DATABASE_URL": "postgresql://agent_app@127.0.0.1:1/agent",
        "DATABASE_ADMIN_USER": "master",
        "DATABASE_ADMIN_PASSWORD": "x",
        "DATABASE_APP_PASSWORD": "y",
    }
    same = bootstrap_process({**env, "DATABASE_PROVISIONER_USER": "agent_app"})
    assert same.returncode == 2
    assert "DATABASE_PROVISIONER_USER: must differ" in same.stderr
    bad = bootstrap_process({**env, "DATABASE_PROVISIONER_USER": "Prov; drop"})
    assert bad.returncode == 2
    assert "DATABASE_PROVISIONER_USER: 'Prov; drop' is not a role name" in bad.stderr


def test_bootstrap_refuses_incomplete_configuration_naming_each_variable():
    result = bootstrap_process({"DATABASE_URL": "postgresql://127.0.0.1:1/agent"})
    assert result.returncode == 2
    for name in ("no user", "DATABASE_ADMIN_USER", "DATABASE_ADMIN_PASSWORD"):
        assert name in result.stderr
    assert "DATABASE_APP_PASSWORD: not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_service_as_the_app_role_survives_admin_and_app_password_changes(
    rds_like, start_service, tmp_path: Path
):
    old_password, new_password = "app-old-Pw-7f1", "app-new-Pw-2c9"
    assert bootstrap_process(rds_like.bootstrap_env(old_password)).returncode == 0
    password_file = tmp_path / "db-password"
    password_file.write_text(old_password + "\n")
    migrated = run_migrate(rds_like.app_url, DATABASE_PASSWORD_FILE=str(password_file))
    assert migrated.returncode == 0, migrated.stderr + migrated.stdout
    service = start_service(
        DATABASE_URL=rds_like.app_url,
        DATABASE_PASSWORD_FILE=str(password_file),
        RATE_LIMIT_PER_MINUTE="0",
    )
    assert post_run(service.base_url, "rotation-1").status_code == 200
    with rds_like.connect(rds_like.admin_user, rds_like.admin_password) as admin:
        users = admin.execute(
            "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = %s AND pid <> "
            "pg_backend_pid()",
            [rds_like.database],
        ).fetchall()
        assert users == [(rds_like.app_user,)]

        # RDS rotates the master secret: the service never used it and keeps serving.
        admin.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(rds_like.admin_user), sql.Literal("master-rotated-Pw-9")
            )
        )
        rds_like.admin_password = "master-rotated-Pw-9"
        assert post_run(service.base_url, "rotation-2").status_code == 200

    # The application password changes: new secret file, bootstrap rerun (ALTER ROLE), and
    # every backend of the service is killed, so only new connections can serve.
    password_file.write_text(new_password + "\n")
    rerun = bootstrap_process(rds_like.bootstrap_env(new_password))
    assert rerun.returncode == 0, rerun.stderr + rerun.stdout
    with pytest.raises(psycopg.OperationalError):
        rds_like.connect(rds_like.app_user, old_password).close()
    with admin_connect(rds_like.postgres) as admin:  # RDS: the master holds pg_signal_backend
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = %s",
            [rds_like.app_user],
        ).fetchone()
        assert killed[0] >= 1

    for i in range(3):
        response = post_run(service.base_url, f"rotation-after-{i}")
        assert response.status_code == 200, response.text
    assert service.process is not None
    assert service.process.poll() is None  # served through the change, never restarted
    assert new_password not in service.logs()
    assert old_password not in service.logs()

"""`python -m src migrate` against a real PostgreSQL, and the service's schema check."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import psycopg
import pytest

from harness import APP_DIR, PG_PASSWORD, PostgresServer, run_migrate, service_env
from src import migrate as migrate_module


@pytest.fixture
def fresh_url(postgres: PostgresServer) -> str:
    """A new, empty database on the session server."""
    name = f"migrate_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://agent:{PG_PASSWORD}@127.0.0.1:{postgres.port}/{name}"


def done_event(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert result.returncode == 0, result.stderr + result.stdout
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return next(e for e in events if e.get("event") == "migrate_done")


def schema_versions(url: str) -> tuple[list[int], bool]:
    with psycopg.connect(url) as conn:
        versions = [r[0] for r in conn.execute("SELECT v FROM checkpoint_migrations ORDER BY v")]
        ledger = conn.execute("SELECT to_regclass('app_schema_migrations') IS NOT NULL")
        row = ledger.fetchone()
    return versions, bool(row and row[0])


def test_first_run_creates_the_schema_and_a_second_run_changes_nothing(fresh_url: str):
    first = done_event(run_migrate(fresh_url))
    assert first["checkpointer_from"] == -1
    versions, ledger = schema_versions(fresh_url)
    assert versions == list(range(migrate_module.CHECKPOINTER_VERSION + 1))
    assert ledger

    second = done_event(run_migrate(fresh_url))
    assert second["checkpointer_from"] == migrate_module.CHECKPOINTER_VERSION
    assert second["app_applied"] == []
    assert schema_versions(fresh_url) == (versions, True)


def test_two_runs_at_once_both_succeed(fresh_url: str):
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "src", "migrate"],
            cwd=APP_DIR,
            env=service_env(DATABASE_URL=fresh_url, LOG_FORMAT="json"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    versions, _ = schema_versions(fresh_url)
    assert versions == list(range(migrate_module.CHECKPOINTER_VERSION + 1))  # each once


def test_a_failing_migration_exits_non_zero_naming_it(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setattr(
        migrate_module,
        "APP_MIGRATIONS",
        ("CREATE TABLE app_notes (id integer PRIMARY KEY)", "ALTER TABLE nowhere ADD x int"),
    )
    code = migrate_module.main({"DATABASE_URL": fresh_url, "LOG_FORMAT": "json"})
    assert code == migrate_module.EXIT_FAILED
    err = capsys.readouterr().err
    assert "app migration 1 failed" in err
    assert "nowhere" in err
    with psycopg.connect(fresh_url) as conn:  # the good step stays applied, the bad one not
        applied = [r[0] for r in conn.execute("SELECT version FROM app_schema_migrations")]
    assert applied == [0]


def test_an_unreachable_database_exits_non_zero(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(migrate_module, "CONNECT_ATTEMPTS", 1)
    code = migrate_module.main({"DATABASE_URL": "postgresql://agent@127.0.0.1:1/none"})
    assert code == migrate_module.EXIT_FAILED


def test_service_refuses_readiness_until_the_schema_is_migrated(start_service, fresh_url: str):
    service = start_service(wait_ready=False, DATABASE_URL=fresh_url)
    response = service.wait_for("/ready", 503, timeout=10)
    assert response.json()["checks"]["postgres"]["error"] == "SchemaNotReady"
    with psycopg.connect(fresh_url) as conn:  # the service created nothing itself
        row = conn.execute("SELECT to_regclass('checkpoint_migrations')").fetchone()
    assert row == (None,)
    assert "schema_not_ready" in service.logs()

    assert run_migrate(fresh_url).returncode == 0
    service.wait_for("/ready", 200, timeout=30)


def test_migrate_on_start_makes_instances_on_an_empty_database_ready_to_serve(
    start_service, fresh_url: str
):
    """Cloud Run has no init container: with MIGRATE_ON_START each instance migrates first.
    Two start at once, as a scale-out does; the advisory lock lets both succeed."""
    services = [
        start_service(wait_ready=False, DATABASE_URL=fresh_url, MIGRATE_ON_START="true")
        for _ in range(2)
    ]
    for service in services:
        service.wait_for("/ready", 200, timeout=60)
        assert "migrate_done" in service.logs()
    versions, ledger = schema_versions(fresh_url)
    assert versions == list(range(migrate_module.CHECKPOINTER_VERSION + 1))
    assert ledger
    with services[1].client() as client:
        thread_id = client.post("/threads").json()["thread_id"]
        reply = client.post(f"/threads/{thread_id}/runs", json={"message": "hello"})
        assert reply.status_code == 200, reply.text
        assert reply.json()["message_count"] == 2


def test_a_failing_migration_on_start_keeps_the_service_unready_and_says_why(
    start_service, postgres: PostgresServer, fresh_url: str
):
    """The rollout guarantee on Cloud Run: a revision whose migration fails never gets ready,
    so traffic stays on the old one."""
    role = f"nocreate_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(fresh_url, autocommit=True) as conn:  # may connect, may not create
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PG_PASSWORD}'")
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    url = fresh_url.replace("//agent:", f"//{role}:")
    service = start_service(wait_ready=False, DATABASE_URL=url, MIGRATE_ON_START="true")
    deadline = time.monotonic() + 30
    while "migrate_failed" not in service.logs() and time.monotonic() < deadline:
        time.sleep(0.2)
    failed = [
        json.loads(line)
        for line in service.logs().splitlines()
        if line.startswith("{") and '"migrate_failed"' in line
    ]
    assert failed, service.logs()
    assert failed[0]["error"] == "InsufficientPrivilege"
    response = service.wait_for("/ready", 503, timeout=5)
    assert response.json()["checks"]["postgres"]["error"] == "SchemaNotReady"
    assert "migrate_done" not in service.logs()
    assert PG_PASSWORD not in service.logs()

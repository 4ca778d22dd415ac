"""The service against real PostgreSQL and Redis servers, run as the container runs it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from harness import API_TOKEN, APP_DIR, PG_PASSWORD, REDIS_PASSWORD, RedisServer, service_env

pytestmark = pytest.mark.integration


def run(client: httpx.Client, thread_id: str, message: str, **headers: str) -> httpx.Response:
    return client.post(f"/threads/{thread_id}/runs", json={"message": message}, headers=headers)


def test_thread_state_survives_a_service_restart(start_service):
    service = start_service()
    with service.client() as client:
        thread_id = client.post("/threads").json()["thread_id"]
        first = run(client, thread_id, "remember the word heliotrope")
        assert first.status_code == 200, first.text
        assert first.json()["message_count"] == 2

    service.stop()
    service.start()

    with service.client() as client:
        state = client.get(f"/threads/{thread_id}/state")
        assert state.status_code == 200, state.text
        assert [m["role"] for m in state.json()["messages"]] == ["user", "assistant"]
        assert state.json()["messages"][0]["content"] == "remember the word heliotrope"
        # The model sees the history restored from Postgres, not just the new message.
        second = run(client, thread_id, "what was the word?")
        assert second.status_code == 200
        assert "Before that you said: remember the word heliotrope" in second.json()["reply"]
        assert second.json()["message_count"] == 4


def test_unknown_thread_is_404_and_bad_thread_id_is_422(start_service):
    service = start_service()
    with service.client() as client:
        assert client.get("/threads/never-used-thread/state").status_code == 404
        assert client.get("/threads/bad%20id/state").status_code == 422
        assert run(client, "t1", "").status_code == 422


def test_redis_outage_flips_ready_but_not_live_and_recovers_without_restart(
    start_service, own_redis: RedisServer
):
    service = start_service(REDIS_URL=own_redis.url())
    with service.client() as client:
        assert client.get("/ready").status_code == 200
        assert client.get("/health").json()["status"] == "healthy"

        own_redis.stop()
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["redis"]["status"] == "down"
        assert ready.json()["checks"]["postgres"]["status"] == "up"
        assert client.get("/live").status_code == 200
        health = client.get("/health").json()
        assert health["status"] == "degraded"
        assert health["checks"]["redis"]["status"] == "down"
        # Runs fail closed: without Redis the per-thread lock cannot be guaranteed.
        outage_run = run(client, "outage-thread", "hello")
        assert outage_run.status_code == 503
        assert outage_run.headers["retry-after"] == "5"

        own_redis.start()  # same port, same process of the service
        service.wait_for("/ready", 200, timeout=20)
        assert client.get("/health").json()["status"] == "healthy"
        assert run(client, "outage-thread", "hello again").status_code == 200
    assert service.process is not None
    assert service.process.poll() is None  # never restarted


def test_service_starts_before_postgres_and_becomes_ready_when_it_answers(start_service, postgres):
    postgres.stop()
    try:
        service = start_service(wait_ready=False)
        with service.client() as client:
            assert client.get("/live").status_code == 200
            ready = client.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["checks"]["postgres"]["status"] == "down"
            assert run(client, "early-thread", "hi").status_code == 503
    finally:
        postgres.start()
    service.wait_for("/ready", 200, timeout=30)


def test_concurrent_runs_on_one_thread_conflict_across_replicas(start_service, redis_server):
    # Two replicas on the same Postgres and Redis; the model takes 1.5 s per answer.
    replica_a = start_service(OFFLINE_MODEL_LATENCY_MS="1500")
    replica_b = start_service(OFFLINE_MODEL_LATENCY_MS="1500", REDIS_URL=replica_a.env["REDIS_URL"])
    thread_id = "shared-thread"
    with replica_a.client() as a, replica_b.client() as b, ThreadPoolExecutor(2) as pool:
        slow = pool.submit(run, a, thread_id, "first")
        time.sleep(0.5)  # the first run now holds the lock
        second = run(b, thread_id, "second")
        other_thread = run(b, "another-thread", "independent")
        first = slow.result()

    assert first.status_code == 200
    assert second.status_code == 409
    assert second.headers["retry-after"] == "1"
    assert other_thread.status_code == 200  # the lock is per thread, not global
    with replica_b.client() as b:
        messages = b.get(f"/threads/{thread_id}/state").json()["messages"]
        assert [m["content"] for m in messages if m["role"] == "user"] == ["first"]
        # Released after the run: the retry succeeds and sees the first exchange.
        retried = run(b, thread_id, "second")
        assert retried.status_code == 200
        assert retried.json()["message_count"] == 4
        metrics = replica_b.metrics().text
        assert 'graph_runs_total{outcome="conflict"} 1.0' in metrics


def test_rate_limit_per_client_holds_and_spares_probes(start_service):
    # The service trusts X-Forwarded-For from 127.0.0.1, as it would from its load balancer.
    service = start_service(RATE_LIMIT_PER_MINUTE="3")
    client_a = {"X-Forwarded-For": "203.0.113.10"}
    client_b = {"X-Forwarded-For": "203.0.113.20"}
    with service.client() as client:
        statuses = [run(client, f"rl-{i}", "hi", **client_a).status_code for i in range(3)]
        assert statuses == [200, 200, 200]
        limited = run(client, "rl-3", "hi", **client_a)
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert run(client, "rl-4", "hi", **client_b).status_code == 200
        assert all(client.get("/health").status_code == 200 for _ in range(5))


def test_request_id_metrics_and_logs_carry_no_secret(start_service):
    service = start_service()
    with service.client() as client:
        response = run(client, "log-thread", "hi", **{"X-Request-ID": "req-abc-123"})
        assert response.headers["x-request-id"] == "req-abc-123"
        generated = client.get("/live").headers["x-request-id"]
        assert len(generated) == 32
        metrics = service.metrics()
        assert metrics.headers["content-type"].startswith("text/plain")
        assert (
            'http_requests_total{method="POST",route="/threads/{thread_id}/runs",status="200"} 1.0'
            in metrics.text
        )
        assert 'dependency_up{dependency="postgres"}' in metrics.text
    service.stop()

    lines = [json.loads(line) for line in service.logs().splitlines() if line.startswith("{")]
    run_lines = [line for line in lines if line.get("event") == "run_completed"]
    assert run_lines
    assert run_lines[0]["request_id"] == "req-abc-123"
    assert any(line.get("event") == "service_started" for line in lines)
    assert PG_PASSWORD not in service.logs()
    assert REDIS_PASSWORD not in service.logs()


def test_health_reports_offline_model_and_version(start_service):
    service = start_service(APP_VERSION="1.2.3")
    with service.client() as client:
        health = client.get("/health").json()
    assert health["status"] == "healthy"
    assert health["version"] == "1.2.3"
    assert health["checks"]["model"] == {
        "status": "up",
        "provider": "offline",
        "model": "offline-deterministic",
        "offline": True,
    }
    assert health["tracing"] == {"enabled": False, "project": None}


@pytest.mark.parametrize(
    ("env", "named", "leaked"),
    [
        ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "DATABASE_URL (or DATABASE_URI", None),
        (
            {"DATABASE_URL": "mysql://app:hunter2-db@db/app", "REDIS_URL": "redis://r:6379/0"},
            "DATABASE_URL",
            "hunter2-db",
        ),
        (
            {"DATABASE_URL": "postgresql://a:b@h/d?sslmode=bogus", "REDIS_URL": "redis://r/0"},
            "sslmode='bogus'",
            None,
        ),
        (
            {"DATABASE_URL": "postgresql://a@h/d", "REDIS_URI": "http://:hunter2-redis@r/0"},
            "REDIS_URL (or REDIS_URI)",
            "hunter2-redis",
        ),
        (
            {"DATABASE_URL": "postgresql://a@h/d", "REDIS_URL": "redis://r/0", "PORT": "eighty"},
            "PORT",
            None,
        ),
        (
            {
                "DATABASE_URL": "postgresql://a@h/d",
                "REDIS_URL": "redis://r/0",
                "LANGCHAIN_TRACING_V2": "true",
            },
            "LANGSMITH_API_KEY is not set",
            None,
        ),
        (
            {"DATABASE_URL": "postgresql://a@h/d", "REDIS_URL": "redis://r/0", "AUTH_TOKENS": ""},
            "AUTH_TOKENS: not set",
            None,
        ),
    ],
    ids=[
        "missing-db",
        "wrong-scheme",
        "bad-sslmode",
        "bad-redis",
        "bad-port",
        "tracing-no-key",
        "missing-token",
    ],
)
def test_bad_settings_stop_start_up_naming_the_variable(env, named, leaked):
    result = subprocess.run(
        [sys.executable, "-m", "src"],
        cwd=APP_DIR,
        env=service_env(**{"AUTH_TOKENS": API_TOKEN, **env}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "invalid configuration" in result.stderr
    assert named in result.stderr
    if leaked:
        assert leaked not in result.stderr + result.stdout

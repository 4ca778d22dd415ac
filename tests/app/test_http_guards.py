"""The service's public surface under abuse: auth, body size, malformed input, client address.

Everything runs against the real service process (`python -m src`) with real Postgres and Redis,
the way the load balancer and the internet reach it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from harness import API_TOKEN, APP_DIR, free_port, service_env
from src.services.guards import rate_limit_key

pytestmark = pytest.mark.integration

RUN_PATH = "/threads/guard-thread/runs"


def run(client: httpx.Client, thread_id: str, message: str, **headers: str) -> httpx.Response:
    return client.post(f"/threads/{thread_id}/runs", json={"message": message}, headers=headers)


def status_kib(pid: int, field: str) -> int:
    """A memory figure of a process from /proc (VmRSS, VmHWM), in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def raw_post(port: int, headers: str, body: list[bytes], timeout: float = 10) -> bytes:
    """Send a request by hand (headers, then the body pieces) and return what the server sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(
            f"POST {RUN_PATH} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {API_TOKEN}\r\n"
            f"Content-Type: application/json\r\n{headers}\r\n".encode()
        )
        for piece in body:
            sock.sendall(piece)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def chunked(payload: bytes, size: int) -> list[bytes]:
    pieces = [payload[i : i + size] for i in range(0, len(payload), size)]
    return [b"%x\r\n%s\r\n" % (len(p), p) for p in pieces] + [b"0\r\n\r\n"]


# --------------------------------------------------------------------------- authentication


def test_runs_and_state_need_a_bearer_token_probes_do_not(start_service):
    service = start_service(AUTH_TOKENS=f"{API_TOKEN},second-token-for-rotation")
    with service.client(token=None) as anonymous:
        for response in (
            anonymous.post("/threads"),
            run(anonymous, "auth-thread", "hi"),
            anonymous.get("/threads/auth-thread/state"),
            run(anonymous, "auth-thread", "hi", Authorization="Bearer wrong-token-0123456789"),
            run(anonymous, "auth-thread", "hi", Authorization=f"Basic {API_TOKEN}"),
        ):
            assert response.status_code == 401, response.request.url
            assert response.headers["www-authenticate"].startswith("Bearer")
        for probe in ("/live", "/ready", "/health"):
            assert anonymous.get(probe).status_code == 200
        # Either token of a rotation works.
        rotated = run(
            anonymous, "auth-thread", "hi", Authorization="Bearer second-token-for-rotation"
        )
        assert rotated.status_code == 200, rotated.text
    with service.client() as client:
        assert client.get("/threads/auth-thread/state").status_code == 200
    assert API_TOKEN not in service.logs()


def test_docs_are_off_by_default_and_metrics_never_on_the_public_port(start_service):
    service = start_service()
    with service.client() as client:
        for path in ("/docs", "/openapi.json", "/metrics"):
            assert client.get(path).status_code == 404, path
        assert run(client, "metrics-thread", "hi").status_code == 200
    metrics = service.metrics()
    assert metrics.status_code == 200
    assert 'graph_runs_total{outcome="ok"} 1.0' in metrics.text

    documented = start_service(DOCS_ENABLED="true")
    with documented.client(token=None) as anonymous:
        assert anonymous.get("/docs").status_code == 200
        schema = anonymous.get("/openapi.json").json()
        assert "/threads/{thread_id}/runs" in schema["paths"]
        assert "/metrics" not in schema["paths"]


def test_auth_can_be_disabled_for_an_app_with_its_own(start_service):
    service = start_service(AUTH_DISABLED="true", AUTH_TOKENS="")
    with service.client(token=None) as anonymous:
        assert run(anonymous, "open-thread", "hi").status_code == 200


# --------------------------------------------------------------------------- request size


def test_a_declared_oversized_body_is_refused_before_it_is_sent(start_service):
    service = start_service()
    # Only the headers go out: the 413 arrives although not one byte of the body was sent.
    answer = raw_post(service.port, "Content-Length: 100000000\r\n", [])
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"65536" in answer


def test_a_streamed_oversized_body_is_refused_and_a_small_one_served(start_service):
    service = start_service(MAX_BODY_BYTES="4096")
    payload = json.dumps({"message": "a" * 20_000}).encode()
    # 6 KiB of a 20 KiB body: the server answers as soon as the count passes the limit. (Sending
    # on after that would make the kernel reset the connection and could eat the answer.)
    first_pieces = chunked(payload, 1024)[:6]
    answer = raw_post(service.port, "Transfer-Encoding: chunked\r\n", first_pieces)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"a" * 100 not in answer

    small = json.dumps({"message": "just fits"}).encode()
    answer = raw_post(
        service.port, "Transfer-Encoding: chunked\r\nConnection: close\r\n", chunked(small, 4)
    )
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]


def test_validation_errors_never_echo_the_input(start_service):
    service = start_service()
    with service.client() as client:
        too_long = run(client, "echo-thread", "canary-" + "x" * 8000)
        wrong_type = client.post(RUN_PATH, json={"message": ["canary-in-a-list"]})
        plain_text = client.post(
            RUN_PATH, content=b'{"message": "canary"}', headers={"content-type": "text/plain"}
        )
    for response in (too_long, wrong_type, plain_text):
        assert response.status_code == 422
        assert "canary" not in response.text
        assert len(response.content) < 1000
    assert too_long.json()["detail"][0]["loc"] == ["body", "message"]
    assert too_long.json()["detail"][0]["type"] == "string_too_long"
    assert "Content-Type: application/json" in plain_text.json()["detail"][-1]["msg"]


def test_server_memory_stays_bounded_under_a_burst_of_oversized_bodies(start_service):
    service = start_service()
    assert service.process is not None
    pid = service.process.pid
    with service.client() as client:  # warm up the paths a normal request takes
        assert run(client, "memory-thread", "hi").status_code == 200
    peak_before = status_kib(pid, "VmHWM")

    def flood(index: int) -> None:
        """Try to push 32 MiB; the server stops reading, so this ends early with an error."""
        declared = index % 2 == 0
        framing = "Content-Length: 33554432" if declared else "Transfer-Encoding: chunked"
        block = b"0" * (256 * 1024)
        piece = block if declared else b"%x\r\n%s\r\n" % (len(block), block)
        try:
            with socket.create_connection(("127.0.0.1", service.port), timeout=3) as sock:
                sock.sendall(
                    f"POST {RUN_PATH} HTTP/1.1\r\nHost: test\r\n"
                    f"Authorization: Bearer {API_TOKEN}\r\n{framing}\r\n\r\n".encode()
                )
                for _ in range(128):
                    sock.sendall(piece)
        except OSError:
            pass  # reset, broken pipe or a send that blocks: the server stopped reading

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(flood, range(16)))  # 16 x 32 MiB attempted

    grown_mib = (status_kib(pid, "VmHWM") - peak_before) / 1024
    assert grown_mib < 48, f"peak RSS grew by {grown_mib:.0f} MiB"
    with service.client() as client:
        assert client.get("/live").status_code == 200
        assert run(client, "memory-thread", "still here").status_code == 200


# --------------------------------------------------------------------------- malformed input


def test_a_lone_surrogate_is_a_422_not_a_500(start_service):
    service = start_service()
    with service.client() as client:
        response = client.post(
            RUN_PATH,
            content=b'{"message": "\\ud800"}',
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body", "message"]
        # The connection stays usable (a 500 used to close it).
        assert run(client, "after-surrogate", "hi").status_code == 200
    service.stop()
    logs = service.logs()
    assert "Traceback" not in logs
    assert "unhandled_error" not in logs


# --------------------------------------------------------------------------- client address


def test_a_spoofed_left_most_forwarded_for_does_not_pick_the_rate_limit_bucket(start_service):
    # 127.0.0.1 plays the load balancer; 10.0.0.0/16 is an inner proxy tier.
    service = start_service(RATE_LIMIT_PER_MINUTE="2", FORWARDED_ALLOW_IPS="127.0.0.1,10.0.0.0/16")
    with service.client() as client:
        statuses = [
            run(
                client,
                f"xff-{i}",
                "hi",
                **{"X-Forwarded-For": f"198.51.100.{i}, 203.0.113.7, 10.0.4.{i}"},
            ).status_code
            for i in range(4)
        ]
        assert statuses == [200, 200, 429, 429]
        other = run(client, "xff-other", "hi", **{"X-Forwarded-For": "203.0.113.8"})
        assert other.status_code == 200

    # A peer that is not a trusted proxy cannot choose its address at all.
    untrusted = httpx.Client(
        base_url=service.base_url,
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        transport=httpx.HTTPTransport(local_address="127.0.0.2"),
    )
    with untrusted:
        direct = run(untrusted, "xff-direct", "hi", **{"X-Forwarded-For": "203.0.113.8"})
        assert direct.status_code == 200
    service.stop()
    lines = [json.loads(line) for line in service.logs().splitlines() if line.startswith("{")]
    runs = [line for line in lines if line.get("route") == "/threads/{thread_id}/runs"]
    assert [r["client"] for r in runs] == [*["203.0.113.7"] * 4, "203.0.113.8", "127.0.0.2"]


# --------------------------------------------------------------------------- smaller points


def test_probes_answer_head_like_get(start_service):
    service = start_service()
    with service.client(token=None) as client:
        for path in ("/live", "/ready", "/health"):
            response = client.head(path)
            assert response.status_code == 200, path
            assert response.content == b""


def test_conflicts_do_not_use_up_the_rate_limit(start_service):
    service = start_service(RATE_LIMIT_PER_MINUTE="2", OFFLINE_MODEL_LATENCY_MS="1500")
    with service.client() as client, ThreadPoolExecutor(1) as pool:
        slow = pool.submit(run, client, "busy-thread", "first")
        time.sleep(0.5)
        conflicts = [run(client, "busy-thread", "again").status_code for _ in range(3)]
        assert slow.result().status_code == 200
        assert conflicts == [409, 409, 409]
        # One run of two used (the first); the 409s were given back.
        assert run(client, "not-busy", "hi").status_code == 200
        assert run(client, "not-busy-2", "hi").status_code == 429


def test_outages_answer_503_with_retry_after_and_do_not_use_up_the_rate_limit(
    start_service, postgres, redis_server, redis_db
):
    service = start_service(RATE_LIMIT_PER_MINUTE="5")
    with service.client() as client:
        assert run(client, "before-outage", "hi").status_code == 200
    counter = redis_server.client(redis_db)
    assert counter.get(rate_limit_key("127.0.0.1")) == b"1"
    postgres.stop()
    try:
        with service.client() as client:
            service.wait_for("/ready", 503, timeout=20)
            assert client.get("/ready").headers["retry-after"] == "5"
            # Reads and runs answer 503 with Retry-After while Postgres is away.
            for response in (
                client.get("/threads/before-outage/state"),
                run(client, "outage-a", "hi"),
                run(client, "outage-b", "hi"),
            ):
                assert response.status_code == 503
                assert response.headers["retry-after"] == "5"
            # A streamed run says the same in its error event.
            with client.stream(
                "POST", "/threads/outage-c/runs/stream", json={"message": "hi"}
            ) as r:
                assert r.status_code == 200
                last_data = [line for line in r.iter_lines() if line.startswith("data: ")][-1]
            assert json.loads(last_data.removeprefix("data: ")) == {
                "status": 503,
                "detail": "postgres unavailable",
                "retry_after": 5,
            }
    finally:
        postgres.start()
    # The refused runs were counted on arrival and given back.
    assert counter.get(rate_limit_key("127.0.0.1")) == b"1"
    service.wait_for("/ready", 200, timeout=30)


def test_a_timed_out_run_is_rolled_back(start_service):
    fast = start_service()
    slow = start_service(
        RUN_TIMEOUT_SECONDS="1",
        OFFLINE_MODEL_LATENCY_MS="2000",
        REDIS_URL=fast.env["REDIS_URL"],
    )
    with fast.client() as client:
        assert run(client, "timeout-thread", "kept").status_code == 200
    with slow.client() as client:
        timed_out = run(client, "timeout-thread", "dropped")
        assert timed_out.status_code == 504
        assert run(client, "timeout-new-thread", "dropped").status_code == 504
    with fast.client() as client:
        messages = client.get("/threads/timeout-thread/state").json()["messages"]
        assert [m["content"] for m in messages if m["role"] == "user"] == ["kept"]
        assert client.get("/threads/timeout-new-thread/state").status_code == 404
        retried = run(client, "timeout-thread", "dropped")
        assert retried.status_code == 200
        assert retried.json()["message_count"] == 4
    assert '"event": "run_rolled_back"' in slow.logs()


def test_uvicorn_command_line_serves_the_app_and_warns_about_a_wildcard_proxy_list(tmp_path):
    port = free_port()
    log_path = tmp_path / "uvicorn.log"
    env = service_env(
        DATABASE_URL="postgresql://u@127.0.0.1:1/app",  # nothing listens: /live needs no database
        REDIS_URL="redis://127.0.0.1:1/0",
        AUTH_TOKENS=API_TOKEN,
        METRICS_PORT=str(free_port()),
        FORWARDED_ALLOW_IPS="*",
    )
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "src.api.app:app", "--port", str(port)],
            cwd=APP_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        live = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                live = httpx.get(f"http://127.0.0.1:{port}/live", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert live is not None, log_path.read_text()
        assert live.status_code == 200
        assert httpx.post(f"http://127.0.0.1:{port}/threads", timeout=5).status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "forwarded_allow_ips_wildcard" in log_path.read_text()


def test_uvicorn_command_line_reports_bad_config_without_a_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "src.api.app:app", "--port", str(free_port())],
        cwd=APP_DIR,
        env=service_env(DATABASE_URL="mysql://u:hunter2-db@db/app", REDIS_URL="redis://r/0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr
    assert "AUTH_TOKENS" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "hunter2-db" not in result.stderr + result.stdout

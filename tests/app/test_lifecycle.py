"""Connection lifecycle behind a load balancer: keep-alive above its idle timeout, and a SIGTERM
(deploy, scale-in) that lets in-flight runs finish while refusing new connections.
"""

from __future__ import annotations

import http.client
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from harness import API_TOKEN

pytestmark = pytest.mark.integration

UVICORN_DEFAULT_KEEPALIVE_SECONDS = 5


def get_live(conn: http.client.HTTPConnection) -> int:
    conn.request("GET", "/live")
    response = conn.getresponse()
    response.read()
    return response.status


def test_idle_keep_alive_connection_outlives_uvicorns_default(start_service):
    service = start_service()
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
    try:
        assert get_live(conn) == 200
        first_socket = conn.sock
        # A load balancer reuses idle connections for its own idle timeout (60 s+): the service
        # must not close them first (ALB 502s). The default is 75 s. A closed connection makes
        # the next request fail (http.client does not reconnect an open HTTPConnection).
        time.sleep(UVICORN_DEFAULT_KEEPALIVE_SECONDS + 1)
        assert get_live(conn) == 200
        assert conn.sock is first_socket
    finally:
        conn.close()


def in_flight_run_across_sigterm(service) -> tuple[httpx.Response | Exception, bool]:
    """Start a slow run, SIGTERM the service, and report the run's outcome and whether a new
    connection was refused meanwhile."""

    def slow_run() -> httpx.Response | Exception:
        try:
            return httpx.post(
                f"{service.base_url}/threads/draining/runs",
                json={"message": "hi"},
                headers={"Authorization": f"Bearer {API_TOKEN}"},
                timeout=30,
            )
        except httpx.HTTPError as exc:
            return exc

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(slow_run)
        time.sleep(1.0)  # the run is now waiting on the (slow) model
        service.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        try:
            httpx.get(f"{service.base_url}/live", timeout=2)
            refused = False
        except httpx.ConnectError:
            refused = True
        return pending.result(), refused


def test_sigterm_lets_an_in_flight_run_finish_and_refuses_new_connections(start_service):
    service = start_service(OFFLINE_MODEL_LATENCY_MS="4000")
    outcome, refused = in_flight_run_across_sigterm(service)
    assert refused
    assert isinstance(outcome, httpx.Response), outcome
    assert outcome.status_code == 200, outcome.text
    # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly.
    assert service.process.wait(timeout=20) in (0, -signal.SIGTERM)


def test_shutdown_timeout_bounds_the_wait_for_in_flight_runs(start_service):
    service = start_service(OFFLINE_MODEL_LATENCY_MS="6000", SHUTDOWN_TIMEOUT_SECONDS="1")
    started = time.monotonic()
    outcome, refused = in_flight_run_across_sigterm(service)
    service.process.wait(timeout=20)
    assert refused
    assert not (isinstance(outcome, httpx.Response) and outcome.status_code == 200)
    assert time.monotonic() - started < 5  # cut after ~1 s of grace, not after the 6 s run

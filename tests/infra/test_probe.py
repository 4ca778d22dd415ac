"""The container health check command, run for real against a loopback HTTP server."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import pytest

from infra.probe import http_probe

HEALTHY_PATH = "/it's-alive\""


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if unquote(self.path) == HEALTHY_PATH else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def _probe(port: int, path: str) -> int:
    command = http_probe(port, path)
    assert command[:2] == ["CMD", "python"]
    # What Docker/ECS execute: the argv after `CMD`, with this interpreter as `python`.
    return subprocess.run(
        [sys.executable, *command[2:]], capture_output=True, timeout=20
    ).returncode


def test_a_path_with_quotes_is_probed_as_data(port: int) -> None:
    assert _probe(port, HEALTHY_PATH) == 0


def test_a_failing_path_is_unhealthy(port: int) -> None:
    assert _probe(port, "/missing") != 0


def test_code_in_a_path_is_never_executed(port: int) -> None:
    # Spliced into the `python -c` code, a path was code; as data it is a URL that fails.
    injected = "/x', timeout=4); import os; os._exit(0); ('"
    assert _probe(port, injected) != 0

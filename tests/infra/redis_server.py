"""A throwaway redis-server on a loopback port, holding staging's cache users as the host has them.

`default` is the admin (a password, as the tests need one to seed keys); the cleanup user gets
the host's own access string (`CLEANUP_ACCESS_STRING`) with a password, because IAM auth exists
only on ElastiCache: the provisioner's key cleanup is driven here through the same client and
ACL, signed in with that password instead of a token.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.aws.provisioner.handler import Cache, CacheError
from infra.config.pull_requests import CLEANUP_ACCESS_STRING
from tests.infra.support import free_port, need_binary

ADMIN_PASSWORD = "redis-admin-Secr3t-5c1e"
CLEANUP_USER = "agent-staging-cache-cleanup"
CLEANUP_PASSWORD = "cleanup-Secr3t-77ab"


@dataclass(frozen=True)
class Redis:
    port: int

    def connect(self, user: str, password: str) -> Cache:
        cache = Cache(socket.create_connection(("127.0.0.1", self.port), timeout=10))
        cache.call("AUTH", user, password)
        return cache

    def admin(self) -> Cache:
        return self.connect("default", ADMIN_PASSWORD)

    def cleanup(self) -> Cache:
        return self.connect(CLEANUP_USER, CLEANUP_PASSWORD)


@pytest.fixture
def redis_server() -> Iterator[Redis]:
    binary = need_binary("redis-server")
    root = Path(tempfile.mkdtemp(prefix="redis-"))
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", ADMIN_PASSWORD,
         "--save", "", "--appendonly", "no", "--dir", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        server = Redis(port)
        deadline = time.monotonic() + 15
        while True:
            try:
                admin = server.admin()
                break
            except (OSError, CacheError):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        admin.call(
            "ACL", "SETUSER", CLEANUP_USER, *CLEANUP_ACCESS_STRING.split(), f">{CLEANUP_PASSWORD}"
        )
        admin.close()
        yield server
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
        shutil.rmtree(root, ignore_errors=True)

"""Test harness that runs the real thing: PostgreSQL and Redis servers started from their
binaries on free loopback ports, and the service as a subprocess (`python -m src`, as in
the container).

Credentials are deliberately non-trivial so tests can prove they never reach a log line.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis

APP_DIR = Path(__file__).resolve().parents[2] / "app"
PG_PASSWORD = "pg-Secr3t-4f9a"  # test credential, asserted absent from logs
REDIS_PASSWORD = "redis-Secr3t-7c1e"
API_TOKEN = "api-T0ken-5b8d-2e61-test"  # the bearer token every test client sends
#: Variables of the outer environment that would change what the service does under test.
_SCRUBBED_ENV = (
    "DATABASE_URL",
    "DATABASE_URI",
    "POSTGRES_URI",
    "REDIS_URL",
    "REDIS_URI",
    "REDIS_KEY_PREFIX",
    "PORT",
    "HOST",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "CHAT_MODEL",
    "LANGSMITH_TRACING",
    "LANGSMITH_API_KEY",
    "LANGCHAIN_TRACING_V2",
    "LANGCHAIN_TRACING",
    "LANGCHAIN_API_KEY",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "RATE_LIMIT_PER_MINUTE",
    "RUN_TIMEOUT_SECONDS",
    "OFFLINE_MODEL_LATENCY_MS",
    "AUTH_TOKENS",
    "AUTH_DISABLED",
    "DOCS_ENABLED",
    "METRICS_PORT",
    "MAX_BODY_BYTES",
    "FORWARDED_ALLOW_IPS",
    "MIGRATE_ON_START",
)


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, never one this process handed out before.

    The kernel may give the same ephemeral port to two binds in a row once the first socket is
    closed, so a service's PORT and METRICS_PORT could collide without this memory.
    """
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def need_binary(name: str) -> str:
    """Path of a server binary; missing ones fail in CI and skip (with the reason) elsewhere."""
    found = shutil.which(name) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None
    )
    if found:
        return found
    message = f"{name} not found on PATH (install postgresql / redis-server)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def service_env(**overrides: str) -> dict[str, str]:
    """Environment for the service: the outer one minus anything that would change behaviour."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in _SCRUBBED_ENV}
    env.update(overrides)
    return env


# --------------------------------------------------------------------------- PostgreSQL


def run_migrate(database_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m src migrate`, as the deploy's `migrate` step runs it."""
    return subprocess.run(
        [sys.executable, "-m", "src", "migrate"],
        cwd=APP_DIR,
        env=service_env(DATABASE_URL=database_url, LOG_FORMAT="json", **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass
class PostgresServer:
    """A throwaway cluster with password (SCRAM) authentication on a loopback port."""

    root: Path
    port: int
    run_as: list[str]
    pg_ctl: str

    @property
    def url(self) -> str:
        return f"postgresql://agent:{PG_PASSWORD}@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.run_as, self.pg_ctl, "-D", str(self.root / "data"), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self.ctl("-o", options, "-l", str(self.root / "server.log"), "-w", "start")

    def stop(self) -> None:
        self.ctl("-m", "fast", "-w", "stop")


def _postgres_user() -> list[str]:
    """initdb refuses root: run the server as `postgres` (created if missing) when we are root."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
    return ["runuser", "-u", "postgres", "--"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session (tests isolate by thread id)."""
    initdb = need_binary("initdb")
    pg_ctl = need_binary("pg_ctl")
    root = Path(tempfile.mkdtemp(prefix="agent-app-pg-"))
    run_as = _postgres_user()
    pwfile = root / "pwfile"
    pwfile.write_text(PG_PASSWORD + "\n")
    if run_as:
        shutil.chown(root, "postgres")
        shutil.chown(pwfile, "postgres")
    subprocess.run(
        [
            *run_as,
            initdb,
            "-D",
            str(root / "data"),
            "-U",
            "agent",
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "--no-sync",
            "--encoding=UTF8",
            "--locale=C",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    server = PostgresServer(root=root, port=free_port(), run_as=run_as, pg_ctl=pg_ctl)
    server.start()
    # What every deploy does before the new version serves (the service only checks it).
    migrated = run_migrate(server.url)
    assert migrated.returncode == 0, migrated.stderr + migrated.stdout
    yield server
    with contextlib.suppress(subprocess.SubprocessError):
        server.stop()
    shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- Redis


@dataclass
class RedisServer:
    """A redis-server with a password; can be stopped and restarted on the same port."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://:{REDIS_PASSWORD}@127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis.from_url(self.url(db), socket_timeout=2)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                need_binary("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--requirepass",
                REDIS_PASSWORD,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if self.client().ping():
                    return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self.process = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Shared Redis; tests that need isolation use their own logical database number."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis only this test uses (for tests that stop it)."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


#: Databases 1-14 in turn (15 is the container test's); more tests than databases, so each
#: test empties the one it gets.
_next_db = itertools.cycle(range(1, 15))


@pytest.fixture
def redis_db(redis_server: RedisServer) -> int:
    """A logical Redis database only this test uses (rate-limit counters are per database)."""
    db = next(_next_db)
    redis_server.client(db).flushdb()
    return db


# --------------------------------------------------------------------------- the service


@dataclass
class ServiceProcess:
    """The service started exactly as the container starts it: `python -m src`."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, timeout: float = 10.0, token: str | None = API_TOKEN) -> httpx.Client:
        """A client of the public port that sends the bearer token (none with `token=None`)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers)

    def start(self, wait_ready: bool = True) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "src"],
                cwd=APP_DIR,
                env={**self.env, "PORT": str(self.port), "METRICS_PORT": str(self.metrics_port)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_for("/live", 200, timeout=30)
        if wait_ready:
            self.wait_for("/ready", 200, timeout=30)

    def metrics(self) -> httpx.Response:
        """GET the Prometheus exposition from the separate metrics listener."""
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5)

    def wait_for(self, path: str, status: int, timeout: float) -> httpx.Response:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"service exited with {self.process.returncode}:\n{self.logs()}"
                )
            try:
                response = httpx.get(self.base_url + path, timeout=3)
                if response.status_code == status:
                    return response
                last = response.status_code
            except httpx.TransportError as exc:
                last = exc
            time.sleep(0.1)
        raise AssertionError(f"{path} never returned {status} (last: {last!r}):\n{self.logs()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def start_service(
    tmp_path: Path, postgres: PostgresServer, redis_server: RedisServer, redis_db: int
) -> Iterator[object]:
    """Factory: `start_service(**env)` starts a service process; all are stopped at teardown."""
    started: list[ServiceProcess] = []

    def start(wait_ready: bool = True, **env: str) -> ServiceProcess:
        defaults = {
            "DATABASE_URL": postgres.url,
            "REDIS_URL": redis_server.url(redis_db),
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "DEBUG",
            "AUTH_TOKENS": API_TOKEN,
        }
        service = ServiceProcess(
            env=service_env(**{**defaults, **env}),
            log_path=tmp_path / f"service-{len(started)}.log",
        )
        started.append(service)
        service.start(wait_ready=wait_ready)
        return service

    yield start
    for service in started:
        service.stop()

"""The production Dockerfile, unchanged, built with BuildKit and run like on AWS: read-only root
filesystem and no mount of our own on /tmp (the image's VOLUME must make it writable, as ECS
does on Fargate), against the test Postgres and Redis, host network.

The two images the Dockerfile names cannot be pulled here; `support/build-standins.sh` makes
local stand-ins under the same tags (see its header). Without a Docker engine this test fails in
CI (CI=true) and skips elsewhere, saying why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness import (
    API_TOKEN,
    APP_DIR,
    PG_PASSWORD,
    REDIS_PASSWORD,
    PostgresServer,
    RedisServer,
    free_port,
)

pytestmark = pytest.mark.container

DOCKER = os.environ.get("DOCKER", "/usr/bin/docker")
SUPPORT = Path(__file__).parent / "support"
IMAGE = "agent-app:container-test"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


def docker(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DOCKER, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
    )


def require_docker() -> None:
    """A missing engine is a failure in CI and a skip with the reason on a developer machine."""
    problem = None
    if not shutil.which(DOCKER):
        problem = f"docker client {DOCKER} not installed (apt-get install docker.io)"
    elif subprocess.run([DOCKER, "info"], capture_output=True, timeout=30).returncode != 0:
        problem = "no Docker engine answers (start it: bash tests/app/support/start-dockerd.sh)"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"container test needs Docker in CI: {problem}")
        pytest.skip(problem)


@pytest.fixture(scope="module")
def image() -> str:
    require_docker()
    subprocess.run(["bash", str(SUPPORT / "build-standins.sh")], check=True, timeout=900)
    build_args = [
        f"--build-arg={name}={os.environ[name]}" for name in PROXY_VARS if name in os.environ
    ]
    result = docker(
        "build",
        "--network",
        "host",
        *build_args,
        "--tag",
        IMAGE,
        str(APP_DIR),
        timeout=1200,
        check=False,
    )
    assert result.returncode == 0, f"docker build failed:\n{result.stderr[-4000:]}"
    return IMAGE


@pytest.fixture
def container(
    image: str, postgres: PostgresServer, redis_server: RedisServer
) -> Iterator[tuple[str, int]]:
    name = f"agent-app-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    docker(
        "run",
        "--detach",
        "--name",
        name,
        "--network",
        "host",
        "--read-only",
        "--env",
        f"PORT={port}",
        "--env",
        f"METRICS_PORT={free_port()}",
        "--env",
        f"AUTH_TOKENS={API_TOKEN}",
        "--env",
        f"DATABASE_URL={postgres.url}",
        "--env",
        f"REDIS_URL={redis_server.url(15)}",
        image,
    )
    try:
        yield name, port
    finally:
        logs = docker("logs", name, check=False)
        print(logs.stdout[-3000:], logs.stderr[-3000:])
        docker("rm", "--force", name, check=False)


def test_image_runs_healthy_as_non_root_on_a_read_only_root(container: tuple[str, int]):
    name, port = container
    base = f"http://127.0.0.1:{port}"

    deadline = time.monotonic() + 60
    health: dict | None = None
    while time.monotonic() < deadline:
        try:
            health = httpx.get(f"{base}/health", timeout=3).json()
            if health["status"] == "healthy":
                break
        except (httpx.TransportError, ValueError):
            pass
        time.sleep(0.5)
    assert health is not None
    assert health["status"] == "healthy", health
    # The version comes from the pyproject.toml shipped next to the code.
    with (APP_DIR / "pyproject.toml").open("rb") as file:
        assert health["version"] == tomllib.load(file)["project"]["version"]

    # A real run writes checkpoints through the container (and nothing to its read-only root).
    reply = httpx.post(
        f"{base}/threads/container-thread/runs",
        json={"message": "hi"},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text

    uid = docker("exec", name, "id", "-u").stdout.strip()
    assert uid.isdigit()
    assert int(uid) != 0
    pid1_uid = docker("exec", name, "awk", "/^Uid:/ {print $2}", "/proc/1/status").stdout.strip()
    assert pid1_uid == uid

    deadline = time.monotonic() + 90
    status = ""
    while time.monotonic() < deadline:
        status = docker("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip()
        if status == "healthy":
            break
        time.sleep(1)
    assert status == "healthy"

    # /tmp is writable by the app user without any mount from the runtime, for tempfile too.
    write = docker(
        "exec",
        name,
        "python",
        "-c",
        "import pathlib, tempfile; pathlib.Path('/tmp/probe').write_text('x'); "
        "tempfile.NamedTemporaryFile().write(b'x')",
        check=False,
    )
    assert write.returncode == 0, write.stderr
    assert docker("exec", name, "stat", "-c", "%u %a", "/tmp").stdout.split() == [uid, "1777"]
    read_only = docker("exec", name, "touch", "/app/probe", check=False)
    assert read_only.returncode != 0

    logs = docker("logs", name)
    output = logs.stdout + logs.stderr
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(e.get("event") == "service_started" for e in events)
    assert PG_PASSWORD not in output
    assert REDIS_PASSWORD not in output


def test_image_declares_tmp_as_a_volume_owned_by_the_app_user(image: str):
    """What ECS copies onto the task's /tmp bind mount on Fargate: the image VOLUME's owner and
    mode (without a VOLUME it is root-owned 0755 and uid 10001 cannot write it)."""
    volumes = json.loads(
        docker("image", "inspect", "--format", "{{json .Config.Volumes}}", image).stdout
    )
    assert "/tmp" in volumes
    stat = docker("run", "--rm", "--entrypoint", "stat", image, "-c", "%u %a", "/tmp")
    assert stat.stdout.split() == ["10001", "1777"]


def test_image_ships_a_parseable_rds_ca_bundle(image: str):
    script = (
        "import ssl; ctx = ssl.create_default_context("
        "cafile='/etc/ssl/certs/rds-global-bundle.pem'); print(len(ctx.get_ca_certs()))"
    )
    result = docker("run", "--rm", "--read-only", image, "python", "-c", script)
    assert int(result.stdout.strip()) >= 80


def test_image_runs_the_database_bootstrap(image: str, postgres: PostgresServer):
    app_user = f"app_{uuid.uuid4().hex[:8]}"
    url = f"postgresql://{app_user}@127.0.0.1:{postgres.port}/postgres?sslmode=disable"
    result = docker(
        "run",
        "--rm",
        "--read-only",
        "--network",
        "host",
        "--env",
        f"DATABASE_URL={url}",
        "--env",
        "DATABASE_ADMIN_USER=agent",
        "--env",
        f"DATABASE_ADMIN_PASSWORD={PG_PASSWORD}",
        "--env",
        "DATABASE_APP_PASSWORD=app-Container-Pw-1",
        image,
        "python",
        "-m",
        "src.db_bootstrap",
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "db_bootstrap_done" in result.stdout
    assert PG_PASSWORD not in result.stdout + result.stderr

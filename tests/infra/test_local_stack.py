"""The local stack's wiring, from the real Pulumi.local.yaml under mocks."""

from __future__ import annotations

import pytest

from cli.engine import ProgramRun, Resource, contains_secret, is_secret
from tests.harness import run_stack

CONTAINER = "docker:index/container:Container"


@pytest.fixture(scope="module")
def local() -> ProgramRun:
    return run_stack(
        "local",
        secrets={"OPENAI_API_KEY": "sk-test-123"},
        override={"app": {"secrets": ["OPENAI_API_KEY"]}},
    )


def _container(run: ProgramRun, suffix: str) -> Resource:
    return run.one(CONTAINER, f"agent-local{suffix}")


def _env(container: Resource) -> dict[str, str]:
    return dict(item.split("=", 1) for item in container.plain["envs"])


def test_registers_network_volumes_three_containers_and_the_image(local: ProgramRun) -> None:
    assert [r.name for r in local.of_type("docker:index/network:Network")] == ["agent-local-net"]
    assert sorted(r.name for r in local.of_type("docker:index/volume:Volume")) == [
        "agent-local-postgres-data",
        "agent-local-redis-data",
    ]
    assert sorted(r.name for r in local.of_type(CONTAINER)) == [
        "agent-local",
        "agent-local-migrate",
        "agent-local-postgres",
        "agent-local-redis",
    ]
    image = local.one("docker-build:index:Image")
    assert image.plain["load"] is True and image.plain["push"] is False
    assert image.plain["tags"][0].startswith("agent-deploy/agent:sha-")
    assert not image.plain["tags"][0].endswith(":latest")


def test_every_container_is_on_the_stack_network_with_restart_and_wait(local: ProgramRun) -> None:
    for container in local.of_type(CONTAINER):
        assert [n["name"] for n in container.plain["networksAdvanced"]] == ["agent-local-net"]
        if container.name == "agent-local-migrate":
            continue  # a one-shot step, see below
        assert container.plain["restart"] == "unless-stopped"
        assert container.plain["wait"] is True


def test_app_gets_database_and_redis_urls_under_both_names(local: ProgramRun) -> None:
    env = _env(_container(local, ""))
    password = local.one(
        "random:index/randomPassword:RandomPassword", "agent-local-postgres-password"
    )
    assert env["DATABASE_URL"] == env["DATABASE_URI"]
    assert env["DATABASE_URL"].startswith("postgresql://agent_admin:mockpw")
    assert env["DATABASE_URL"].endswith("@postgres:5432/agent")
    assert env["REDIS_URL"] == env["REDIS_URI"]
    assert env["REDIS_URL"].startswith("redis://:mockpw") and env["REDIS_URL"].endswith(
        "@redis:6379/0"
    )
    assert password.plain["special"] is False  # the password is embedded in a URL unescaped
    assert env["OPENAI_API_KEY"] == "sk-test-123"
    assert env["LOG_FORMAT"] == "console" and env["PORT"] == "8000"
    assert env["RUN_TIMEOUT_SECONDS"] == "100" and env["SHUTDOWN_TIMEOUT_SECONDS"] == "105"


def test_database_and_redis_aliases_match_the_urls(local: ProgramRun) -> None:
    postgres = _container(local, "-postgres").plain
    redis = _container(local, "-redis").plain
    assert postgres["networksAdvanced"][0]["aliases"] == ["postgres"]
    assert redis["networksAdvanced"][0]["aliases"] == ["redis"]
    assert "POSTGRES_USER=agent_admin" in postgres["envs"]
    assert "POSTGRES_DB=agent" in postgres["envs"]


def test_secrets_arrive_marked_secret(local: ProgramRun) -> None:
    for container in local.of_type(CONTAINER):
        assert contains_secret(container.inputs["envs"]), container.name
    app_env = _env(_container(local, ""))
    # No secret value hides in a plain input anywhere else.
    for resource in local.resources:
        for key, value in resource.inputs.items():
            if is_secret(value) or key == "envs":
                continue
            assert app_env["OPENAI_API_KEY"] not in str(value), (resource.name, key)
            assert "mockpw" not in str(value), (resource.name, key)


def test_only_loopback_ports_and_databases_unpublished(local: ProgramRun) -> None:
    app = _container(local, "").plain
    assert [(p["ip"], p["external"], p["internal"]) for p in app["ports"]] == [
        ("127.0.0.1", 8000, 8000)
    ]
    for suffix in ("-postgres", "-redis"):
        assert not _container(local, suffix).plain.get("ports")


def test_health_checks(local: ProgramRun) -> None:
    postgres = _container(local, "-postgres").plain["healthcheck"]["tests"]
    redis = _container(local, "-redis").plain["healthcheck"]["tests"]
    app = _container(local, "").plain["healthcheck"]["tests"]
    assert postgres == ["CMD", "pg_isready", "-U", "agent_admin", "-d", "agent"]
    assert redis == ["CMD-SHELL", "redis-cli ping | grep -q PONG"]
    # Liveness, the URL passed as an argument, never spliced into the code.
    assert app[:3] == ["CMD", "python", "-c"] and app[4:] == ["http://127.0.0.1:8000/live"]


def test_app_waits_for_healthy_database_and_cache(local: ProgramRun) -> None:
    app = _container(local, "")
    assert app.plain["mustRun"] is True
    dependencies = " ".join(app.depends_on)
    assert "agent-local-postgres" in dependencies and "agent-local-redis" in dependencies
    for suffix in ("-postgres", "-redis"):
        assert _container(local, suffix).plain["wait"] is True


def test_app_starts_after_the_migration_ran_to_completion(local: ProgramRun) -> None:
    """Issue 11: the service no longer creates its schema; `migrate` (same image, same
    credentials) runs to its end first."""
    migrate, app = _container(local, "-migrate"), _container(local, "")
    assert migrate.plain["command"] == ["python", "-m", "src", "migrate"]
    assert migrate.plain["image"] == app.plain["image"]
    assert migrate.plain["attach"] is True and migrate.plain["mustRun"] is False
    assert not migrate.plain.get("ports")
    assert _env(migrate)["DATABASE_URL"] == _env(app)["DATABASE_URL"]
    assert "agent-local-migrate" in " ".join(app.depends_on)
    assert "agent-local-postgres" in " ".join(migrate.depends_on)


def test_outputs(local: ProgramRun) -> None:
    image = local.one("docker-build:index:Image").plain["tags"][0]
    assert local.outputs["serviceUrl"] == "http://127.0.0.1:8000"
    assert local.outputs["healthUrl"] == "http://127.0.0.1:8000/health"
    assert local.outputs["image"] == image
    assert local.secret_outputs == {"apiToken"}


def test_chroma_is_opt_in_and_wired_into_the_app() -> None:
    run = run_stack("local", override={"local": {"chroma": True, "chromaHostPort": 8011}})
    chroma = run.one(CONTAINER, "agent-local-chroma").plain
    assert chroma["ports"][0]["ip"] == "127.0.0.1" and chroma["ports"][0]["external"] == 8011
    env = _env(run.one(CONTAINER, "agent-local"))
    assert env["CHROMA_HOST"] == "chroma" and env["CHROMA_PORT"] == "8000"


def test_host_port_override_moves_the_binding_and_the_url() -> None:
    run = run_stack("local", override={"local": {"hostPort": 18000}})
    app = run.one(CONTAINER, "agent-local").plain
    assert app["ports"][0]["external"] == 18000 and app["ports"][0]["internal"] == 8000
    assert run.outputs["serviceUrl"] == "http://127.0.0.1:18000"


def test_prebuilt_image_skips_the_build() -> None:
    run = run_stack("local", override={"app": {"image": "ghcr.io/acme/agent:1.2.3"}})
    assert not run.of_type("docker-build:index:Image")
    assert run.outputs["image"] == "ghcr.io/acme/agent:1.2.3"


def test_components_parent_their_children(local: ProgramRun) -> None:
    for resource in local.resources:
        if resource.custom:
            assert resource.parent is not None, f"{resource.name} has no component parent"

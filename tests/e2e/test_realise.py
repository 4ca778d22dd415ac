"""The end-to-end realiser, offline: what it would ask the Docker engine for the real local stack
recorded by the mocks engine, and that a broken wiring stops it naming container and check.

The run against the engine itself is `make e2e-local` (tests/e2e/local.py).
"""

from __future__ import annotations

import copy
import re

import pytest

from cli.engine import contains_secret
from tests.e2e.local import GENERATED, Run, record
from tests.e2e.realise import (
    CONTAINER,
    NETWORK,
    CheckFailed,
    Unsupported,
    duration_ns,
    plan,
    settings_problems,
    wiring_problems,
)


def fake_image_id(name: str) -> str:
    return f"sha256:{name.replace(':', '-')}"


@pytest.fixture(scope="module")
def recorded():
    return record(fake_image_id)


def containers(recorded):
    return {c.name: c for c in plan(recorded, "t").containers}


def test_every_docker_resource_the_program_registers_is_realised(recorded):
    result = plan(recorded, "t")
    assert [name for name, _ in result.networks] == [
        r.plain["name"] for r in recorded.of_type(NETWORK)
    ]
    assert sorted(name for name, _ in result.volumes) == [
        "agent-local-postgres-data",
        "agent-local-redis-data",
    ]
    assert sorted(result.images) == ["postgres:16-alpine", "redis:7-alpine"]
    assert [b.dockerfile for b in result.builds] == ["app/Dockerfile"]
    assert {c.name for c in result.containers} == {
        r.plain["name"] for r in recorded.of_type(CONTAINER)
    }


def test_containers_get_the_recorded_settings(recorded):
    by_name = containers(recorded)
    redis = by_name["agent-local-redis"]
    recorded_redis = recorded.one(CONTAINER, "agent-local-redis").plain
    assert redis.body["Image"] == fake_image_id("redis:7-alpine")
    assert redis.body["Cmd"] == recorded_redis["command"]
    assert redis.body["Healthcheck"]["Test"] == recorded_redis["healthcheck"]["tests"]
    assert redis.body["Healthcheck"]["Interval"] == 5 * 10**9
    assert redis.body["HostConfig"]["RestartPolicy"] == {"Name": "unless-stopped"}
    assert redis.body["HostConfig"]["Mounts"] == [
        {"Type": "volume", "Source": "agent-local-redis-data", "Target": "/data", "ReadOnly": False}
    ]
    assert redis.networks == [("agent-local-net", ["redis"])]
    assert redis.published == []
    app = by_name["agent-local"]
    assert app.published == [("127.0.0.1", "8000")]
    assert app.body["StopTimeout"] == 110
    assert app.wait and app.wait_timeout == 180
    # The app and its migration run hardened, as on ECS; the backing services keep their files.
    for name in ("agent-local", "agent-local-migrate"):
        host = by_name[name].body["HostConfig"]
        assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"], name
        assert host["Tmpfs"] == {"/tmp": "rw,nosuid,nodev,size=256m,mode=1777"}, name
        assert host["SecurityOpt"] == ["no-new-privileges:true"], name
    assert redis.body["HostConfig"]["ReadonlyRootfs"] is False


def test_an_engine_ignoring_the_hardening_fails_naming_it(recorded):
    app = containers(recorded)["agent-local"]
    inspected = copy.deepcopy(_as_inspected(app))
    inspected["HostConfig"]["ReadonlyRootfs"] = False
    assert settings_problems(app, inspected) == [
        "container agent-local: check 'the engine holds the recorded hardening (read-only root, "
        "tmpfs, capabilities, security options)' failed"
    ]


def test_the_app_starts_after_the_containers_it_depends_on_whatever_the_record_order(recorded):
    shuffled = copy.deepcopy(recorded)
    shuffled.resources.reverse()
    order = [c.name for c in plan(shuffled, "t").containers]
    assert order[-1] == "agent-local"
    assert sorted(order[:2]) == ["agent-local-postgres", "agent-local-redis"]


def test_generated_secrets_are_real_random_values(recorded):
    again = record(fake_image_id)
    first = containers(recorded)["agent-local"].env
    second = containers(again)["agent-local"].env
    for key in ("AUTH_TOKENS", "REDIS_URL", "DATABASE_URL"):
        assert first[key] != second[key]
    token = recorded.outputs["apiToken"]
    assert re.fullmatch(r"[A-Za-z0-9]{48}", token)
    assert not token.startswith("mockpw")
    assert token in GENERATED
    # Still secrets in the record, as with the real engine.
    app = recorded.one(CONTAINER, "agent-local")
    assert contains_secret(app.inputs["envs"])


def test_the_real_local_stack_is_wired(recorded):
    assert wiring_problems(plan(recorded, "t")) == []


def _mutated(recorded, name, change):
    broken = copy.deepcopy(recorded)
    resource = next(r for r in broken.resources if r.name == name and r.type == CONTAINER)
    change(resource.inputs)
    return broken


def test_a_wrong_redis_alias_fails_naming_the_container_and_the_check(recorded):
    def rename_alias(inputs):
        inputs["networksAdvanced"][0]["aliases"] = ["redis-cache"]

    problems = wiring_problems(plan(_mutated(recorded, "agent-local-redis", rename_alias), "t"))
    # REDIS_URL and REDIS_URI, in the app and in its one-shot migration (same environment).
    assert [p.split(" failed")[0] for p in problems] == [
        f"container {name}: check 'env {key} names a container on its networks'"
        for name in ("agent-local-migrate", "agent-local")
        for key in ("REDIS_URI", "REDIS_URL")
    ]
    assert "host 'redis' is none of" in problems[0]
    assert "redis-cache" in problems[0]
    assert all(v not in " ".join(problems) for v in GENERATED)  # never the passwords


def test_a_container_on_another_network_is_not_reachable(recorded):
    def move(inputs):
        inputs["networksAdvanced"] = [{"name": "elsewhere", "aliases": ["postgres"]}]

    problems = wiring_problems(plan(_mutated(recorded, "agent-local-postgres", move), "t"))
    assert [p.split(" failed")[0] for p in problems] == [
        f"container {name}: check 'env {key} names a container on its networks'"
        for name in ("agent-local-migrate", "agent-local")
        for key in ("DATABASE_URI", "DATABASE_URL")
    ]


def test_a_port_published_beyond_loopback_fails_naming_the_container(recorded):
    def all_interfaces(inputs):
        del inputs["ports"][0]["ip"]  # the provider's default: 0.0.0.0

    problems = wiring_problems(plan(_mutated(recorded, "agent-local", all_interfaces), "t"))
    assert problems == [
        "container agent-local: check 'only 127.0.0.1 ports published' failed: "
        "published on ['0.0.0.0']"
    ]


def test_an_input_the_realiser_does_not_know_is_refused_not_dropped(recorded):
    def privileged(inputs):
        inputs["privileged"] = True

    with pytest.raises(Unsupported, match=r"agent-local-redis: inputs privileged are not"):
        plan(_mutated(recorded, "agent-local-redis", privileged), "t")


def test_a_nested_setting_the_realiser_does_not_know_is_refused(recorded):
    def pin_address(inputs):
        inputs["networksAdvanced"][0]["ipv4Address"] = "10.0.0.5"

    with pytest.raises(Unsupported, match=r"networksAdvanced settings \['ipv4Address'\]"):
        plan(_mutated(recorded, "agent-local-postgres", pin_address), "t")


def test_an_image_missing_from_the_engine_says_how_to_build_its_stand_in():
    with pytest.raises(Unsupported, match=r"build-backing-standins\.sh (postgres|redis):"):
        record(lambda name: None)


def _as_inspected(container):
    """What the engine reports for a container created from `container.body` unchanged."""
    body = container.body
    return {
        "Image": body["Image"],
        "Config": {
            "Image": body["Image"],
            "Cmd": body.get("Cmd"),
            "Env": [*body["Env"], "PATH=/usr/bin"],
            "Healthcheck": body.get("Healthcheck"),
        },
        "HostConfig": body["HostConfig"],
        "Mounts": [
            {"Type": "volume", "Name": m["Source"], "Destination": m["Target"]}
            for m in body["HostConfig"]["Mounts"]
        ],
        "NetworkSettings": {
            "Networks": {n: {"Aliases": [*a, "0123abcd"]} for n, a in container.networks}
        },
    }


def test_the_engine_holding_the_recorded_settings_passes(recorded):
    for container in plan(recorded, "t").containers:
        assert settings_problems(container, _as_inspected(container)) == []


def test_an_engine_dropping_an_alias_or_the_restart_policy_fails_naming_them(recorded):
    redis = containers(recorded)["agent-local-redis"]
    inspected = copy.deepcopy(_as_inspected(redis))
    inspected["NetworkSettings"]["Networks"]["agent-local-net"]["Aliases"] = []
    inspected["HostConfig"]["RestartPolicy"] = {"Name": "no"}
    assert settings_problems(redis, inspected) == [
        "container agent-local-redis: check 'the engine holds the recorded restart policy' failed",
        "container agent-local-redis: check 'the engine holds the recorded networks and aliases' "
        "failed",
    ]


def test_the_migration_is_a_one_shot_between_the_backing_services_and_the_app(recorded):
    order = [c.name for c in plan(recorded, "t").containers]
    assert order.index("agent-local-migrate") < order.index("agent-local")
    by_name = containers(recorded)
    migrate, app = by_name["agent-local-migrate"], by_name["agent-local"]
    assert migrate.attach and not app.attach
    assert migrate.body["Cmd"] == ["python", "-m", "src", "migrate"]
    assert migrate.body["Image"] == app.body["Image"] and migrate.env == app.env
    assert migrate.urn in app.depends_on


class FakeEngine:
    """Answers `Run.create` as an engine would; one-shots exit with `exit_codes` (default 0)."""

    def __init__(self, plan_, exit_codes):
        self.by_name = {c.name: c for c in plan_.containers}
        self.exit_codes = exit_codes
        self.calls = []

    def request(self, method, path, body=None, query=None, ok=(), timeout=0):
        self.calls.append((method, path.removeprefix("/containers/")))
        if path.endswith("/wait"):
            return {"StatusCode": self.exit_codes.get(path.split("/")[2], 0)}
        return {}

    def inspect(self, name):
        inspected = _as_inspected(self.by_name[name])
        inspected["State"] = {"Running": True, "Health": {"Status": "healthy"}}
        return inspected

    def logs(self, name, tail=30):
        return f"{name}: relation agent_threads already exists\n"


def test_the_app_starts_only_after_the_one_shot_exited_0(recorded):
    plan_ = plan(recorded, "t")
    engine = FakeEngine(plan_, {})
    Run(engine, plan_, "t").create()
    started = [path for _, path in engine.calls if path.endswith(("/start", "/wait"))]
    # The backing services register in either order; the one-shot and the app come after.
    assert sorted(started[:2]) == ["agent-local-postgres/start", "agent-local-redis/start"]
    assert started[2:] == [
        "agent-local-migrate/start",
        "agent-local-migrate/wait",
        "agent-local/start",
    ]


def test_a_failing_one_shot_fails_naming_it_with_its_logs_and_the_app_never_starts(recorded):
    plan_ = plan(recorded, "t")
    engine = FakeEngine(plan_, {"agent-local-migrate": 3})
    with pytest.raises(CheckFailed) as failed:
        Run(engine, plan_, "t").create()
    assert failed.value.container == "agent-local-migrate"
    assert str(failed.value).startswith(
        "container agent-local-migrate: check 'runs to completion with exit code 0 within 60 s' "
        "failed: exit code 3; logs:\nagent-local-migrate: relation agent_threads already exists"
    )
    assert ("POST", "agent-local/start") not in engine.calls


def test_a_one_shot_s_settings_are_still_compared(recorded):
    migrate = containers(recorded)["agent-local-migrate"]
    inspected = _as_inspected(migrate)
    inspected["Config"]["Cmd"] = ["python", "-m", "src", "serve"]
    # No health check recorded: the image's own HEALTHCHECK is what the engine holds.
    inspected["Config"]["Healthcheck"] = {"Test": ["CMD", "python", "-m", "src", "probe"]}
    assert settings_problems(migrate, inspected) == [
        "container agent-local-migrate: check 'the engine holds the recorded command' failed"
    ]
    app = containers(recorded)["agent-local"]
    inspected = _as_inspected(app)
    inspected["Config"]["Healthcheck"] = {"Test": ["CMD", "python", "-m", "src", "probe"]}
    assert settings_problems(app, inspected) == [
        "container agent-local: check 'the engine holds the recorded health check' failed"
    ]


def test_go_durations():
    assert duration_ns("1m30s") == 90 * 10**9
    assert duration_ns("500ms") == 5 * 10**8
    with pytest.raises(Unsupported):
        duration_ns("5 seconds")

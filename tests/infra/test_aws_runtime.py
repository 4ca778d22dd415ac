"""What the AWS service needs at run time: start order, timeouts, probes, pulls, tokens, and
the database bootstrap, from the real stack files under mocks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cli.engine import ProgramRun, contains_secret, is_secret
from infra.aws.service import ecr_repository_arn
from infra.config import ConfigError, load_stack_config
from stacks import PROJECT_ROOT
from tests.harness import run_stack, stack_inputs
from tests.infra.test_aws_fixtures import container, containers, policy, tier_run

SERVICE = "aws:ecs/service:Service"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
PASSWORD = "random:index/randomPassword:RandomPassword"
TIERS = ("ephemeral", "staging", "production")
METRICS_PORT = 9464  # the app's default `/metrics` listener


def _problems(stack: str, override: dict[str, Any]) -> list[str]:
    config, secret_keys = stack_inputs(stack, override)
    with pytest.raises(ConfigError) as caught:
        load_stack_config(stack, config, secret_keys, root=PROJECT_ROOT)
    return [str(p) for p in caught.value.problems]


def _urns(run: ProgramRun, *types: str) -> set[str]:
    return {r.urn for t in types for r in run.of_type(t)}


# 17.2 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("tier", TIERS)
def test_service_starts_only_after_everything_its_tasks_read(tier: str) -> None:
    run = tier_run(tier)
    depends_on = set(run.one(SERVICE).depends_on)
    needed = {
        # Secret values: ECS reads `valueFrom` at task start (REDIS_URL exists once the cache does).
        "secret values": _urns(run, SECRET_VERSION),
        "database": _urns(run, "aws:rds/instance:Instance"),
        "cache": _urns(run, "aws:elasticache/replicationGroup:ReplicationGroup"),
        "execution policy": {
            run.one("aws:iam/rolePolicy:RolePolicy", f"agent-{run.stack}-execution").urn
        },
        # (The slice provisioner's, on a stack hosting pr-<n> slices, are none of theirs.)
        "security group rules": {
            urn
            for urn in _urns(run, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
            | _urns(run, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
            if "-pr-host-" not in urn
        },
        "capacity providers": _urns(
            run, "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders"
        ),
        # Private tasks pull their image through NAT.
        "routes": _urns(run, "aws:ec2/route:Route", "aws:ec2/natGateway:NatGateway"),
    }
    for what, urns in needed.items():
        assert urns, what
        assert urns <= depends_on, f"the service does not wait for the {what}"


# 17.5 / 17.6 ----------------------------------------------------------------------------------
@pytest.mark.parametrize("run_timeout", [None, 30, 110])
def test_every_timeout_derives_from_the_run_timeout(run_timeout: int | None) -> None:
    override = {"app": {"runTimeoutSeconds": run_timeout}} if run_timeout else None
    run = run_stack("staging", override)
    t = run_timeout or 100
    alb = run.one("aws:lb/loadBalancer:LoadBalancer").plain
    target_group = run.one("aws:lb/targetGroup:TargetGroup").plain
    app = container(run)
    env = {e["name"]: e["value"] for e in app["environment"]}
    assert env["RUN_TIMEOUT_SECONDS"] == str(t)
    assert env["SHUTDOWN_TIMEOUT_SECONDS"] == str(t + 5)
    # The app answers (its own 504) before the load balancer's idle timer fires...
    assert alb["idleTimeout"] == t + 15
    # ...whose connections the app keeps open longer than the balancer (no 502 on reuse).
    assert env["KEEPALIVE_TIMEOUT_SECONDS"] == str(t + 20)
    # A stopping task drains, then shuts down gracefully, before SIGKILL (Fargate max 120).
    assert target_group["deregistrationDelay"] == t + 10
    assert app["stopTimeout"] == min(120, t + 10)
    assert app["stopTimeout"] > t + 5


def test_aws_refuses_a_run_timeout_fargate_cannot_drain() -> None:
    found = _problems("staging", {"app": {"runTimeoutSeconds": 111}})
    assert len(found) == 1 and found[0].startswith("agent-deploy:app.runTimeoutSeconds = 111:")
    assert "at most 110" in found[0]


def test_local_takes_a_long_run_timeout_and_stops_gracefully() -> None:
    run = run_stack("local", {"app": {"runTimeoutSeconds": 300}})
    app = run.one("docker:index/container:Container", "agent-local").plain
    env = dict(item.split("=", 1) for item in app["envs"] if isinstance(item, str))
    assert env["RUN_TIMEOUT_SECONDS"] == "300" and env["SHUTDOWN_TIMEOUT_SECONDS"] == "305"
    assert app["stopTimeout"] == 310


@pytest.mark.parametrize("bad", [0, 3601, "long"])
def test_run_timeout_must_be_a_sensible_number(bad: object) -> None:
    found = _problems("local", {"app": {"runTimeoutSeconds": bad}})
    assert [p.split(" ")[0] for p in found] == ["agent-deploy:app.runTimeoutSeconds"]


# 17.10 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("tier", TIERS)
def test_container_health_check_probes_liveness_with_the_url_as_data(tier: str) -> None:
    run = tier_run(tier)
    command = container(run)["healthCheck"]["command"]
    assert command[:3] == ["CMD", "python", "-c"]
    assert command[4:] == ["http://127.0.0.1:8000/live"]
    assert "127.0.0.1" not in command[3] and "/live" not in command[3]
    # The target group probes readiness.
    assert run.one("aws:lb/targetGroup:TargetGroup").plain["healthCheck"]["path"] == "/ready"


def test_a_custom_liveness_path_reaches_the_probe_unchanged() -> None:
    run = run_stack("staging", {"app": {"livenessPath": "/healthz/live"}})
    assert container(run)["healthCheck"]["command"][-1] == "http://127.0.0.1:8000/healthz/live"


# 17.12 ----------------------------------------------------------------------------------------
def test_a_prebuilt_image_in_another_ecr_repository_can_be_pulled() -> None:
    image = "210987654321.dkr.ecr.us-east-1.amazonaws.com/team/agent@sha256:" + "cd" * 32
    run = run_stack("staging", {"app": {"image": image}})
    assert container(run)["image"] == image
    statements = policy(run.one("aws:iam/rolePolicy:RolePolicy", "agent-staging-execution"))
    (pull,) = [s for s in statements["Statement"] if "ecr:BatchGetImage" in s["Action"]]
    assert pull["Resource"] == ["arn:aws:ecr:us-east-1:210987654321:repository/team/agent"]
    assert sorted(pull["Action"]) == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    ]


@pytest.mark.parametrize(
    ("image", "arn"),
    [
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/agent:1.2.3",
            "arn:aws:ecr:eu-west-1:123456789012:repository/agent",
        ),
        (
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/a/b/c@sha256:" + "0" * 64,
            "arn:aws-cn:ecr:cn-north-1:123456789012:repository/a/b/c",
        ),
        (
            "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/agent",
            "arn:aws-us-gov:ecr:us-gov-west-1:123456789012:repository/agent",
        ),
        ("ghcr.io/example/agent:1", None),
        ("public.ecr.aws/example/agent:1", None),
        ("docker.io/library/python:3.11", None),
    ],
)
def test_ecr_repository_of_an_image_reference(image: str, arn: str | None) -> None:
    assert ecr_repository_arn(image) == arn


# 15.4 -----------------------------------------------------------------------------------------
def test_arm64_spot_runs_on_a_pinned_platform_that_supports_it() -> None:
    run = tier_run("ephemeral")
    service = run.one(SERVICE).plain
    task = run.one("aws:ecs/taskDefinition:TaskDefinition").plain
    assert service["capacityProviderStrategies"][0]["capacityProvider"] == "FARGATE_SPOT"
    assert task["runtimePlatform"]["cpuArchitecture"] == "ARM64"
    major_minor = tuple(int(x) for x in service["platformVersion"].split("."))
    assert major_minor >= (1, 4, 0)


# 15.13 ----------------------------------------------------------------------------------------
def test_only_the_vpc_is_trusted_for_the_client_address() -> None:
    run = run_stack("staging", {"aws": {"vpcCidr": "10.77.0.0/16"}})
    env = {e["name"]: e["value"] for e in container(run)["environment"]}
    assert env["FORWARDED_ALLOW_IPS"] == "10.77.0.0/16"


def test_the_stack_owns_its_forwarding_timeout_and_token_variables() -> None:
    for name in ("FORWARDED_ALLOW_IPS", "RUN_TIMEOUT_SECONDS", "KEEPALIVE_TIMEOUT_SECONDS"):
        found = _problems("staging", {"app": {"env": {name: "x"}}})
        assert any(p.startswith("agent-deploy:app.env") and name in p for p in found), found
    found = _problems("staging", {"app": {"secrets": ["AUTH_TOKENS"]}})
    assert any(p.startswith("agent-deploy:app.secrets") for p in found), found


# 15.16 ----------------------------------------------------------------------------------------
def _plain_inputs_without(run: ProgramRun, value: str) -> None:
    for resource in run.resources:
        for key, item in resource.inputs.items():
            if contains_secret(item):
                continue
            assert value not in json.dumps(item, default=str), (resource.name, key)


@pytest.mark.parametrize("tier", TIERS)
def test_each_aws_stack_generates_its_api_token_and_keeps_it_secret(tier: str) -> None:
    run = tier_run(tier)
    name = f"agent-{run.stack}"
    generated = run.one(PASSWORD, f"{name}-secrets-auth-tokens")
    assert generated.plain["special"] is False and generated.plain["length"] >= 32
    token = run.outputs["apiToken"]
    assert token.startswith("mockpw")
    # A secret stack output: `pulumi stack output` shows it only with --show-secrets.
    assert "apiToken" in run.secret_outputs
    version = run.one(SECRET_VERSION, f"{name}-secrets-auth-tokens")
    assert version.is_secret("secretString") and version.plain["secretString"] == token
    app = container(run)
    secret_arn = run.one("aws:secretsmanager/secret:Secret", f"{name}-secrets-auth-tokens")
    assert {s["name"]: s["valueFrom"] for s in app["secrets"]}["AUTH_TOKENS"] == (
        f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:{secret_arn.name}-AbCdEf"
    )
    assert "AUTH_TOKENS" not in {e["name"] for e in app["environment"]}
    _plain_inputs_without(run, token)


def test_the_local_stack_generates_its_api_token_and_keeps_it_secret() -> None:
    run = run_stack("local")
    app = run.one("docker:index/container:Container", "agent-local")
    token = run.outputs["apiToken"]
    assert "apiToken" in run.secret_outputs and token.startswith("mockpw")
    # The container's env list holds secrets, so the engine stores all of it as a secret.
    assert is_secret(app.inputs["envs"])
    assert f"AUTH_TOKENS={token}" in app.plain["envs"]
    assert run.one(PASSWORD, "agent-local-api-token").plain["special"] is False
    _plain_inputs_without(run, token)


@pytest.mark.parametrize("tier", TIERS)
def test_metrics_port_is_never_routed_by_the_load_balancer(tier: str) -> None:
    run = tier_run(tier)
    assert run.one("aws:lb/targetGroup:TargetGroup").plain["port"] == 8000
    assert [p["containerPort"] for p in container(run)["portMappings"]] == [8000]
    assert "portMappings" not in container(run, "db-init")
    for type_ in (
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        "aws:lb/listener:Listener",
    ):
        for resource in run.of_type(type_):
            ports = {resource.plain.get(k) for k in ("fromPort", "toPort", "port")}
            assert METRICS_PORT not in ports, resource.name


# 17.4 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("tier", TIERS)
def test_db_init_alone_gets_the_master_secret_and_runs_before_the_app(tier: str) -> None:
    run = tier_run(tier)
    name = f"agent-{run.stack}"
    by_name = containers(run)
    assert set(by_name) == {"db-init", "migrate", "app"}
    init, app = by_name["db-init"], by_name["app"]
    assert init["essential"] is False and init["image"] == app["image"]
    assert init["command"] == ["python", "-m", "src.db_bootstrap"]
    assert init["readonlyRootFilesystem"] is True and init["privileged"] is False
    assert by_name["migrate"]["dependsOn"] == [{"containerName": "db-init", "condition": "SUCCESS"}]

    init_secrets = {s["name"]: s["valueFrom"] for s in init["secrets"]}
    app_secrets = {s["name"]: s["valueFrom"] for s in app["secrets"]}
    assert set(init_secrets) == {"DATABASE_URL", "DATABASE_ADMIN_PASSWORD", "DATABASE_APP_PASSWORD"}
    master = init_secrets["DATABASE_ADMIN_PASSWORD"]
    assert ":secret:rds!db-" in master and master.endswith(":password::")
    master_arn = master.removesuffix(":password::")
    # The master secret reaches no other container, in no form.
    assert master_arn not in json.dumps(app)
    init_env = {e["name"]: e["value"] for e in init["environment"]}
    assert init_env["DATABASE_ADMIN_USER"] == "agent_admin"
    # The app's password is the application user's own secret, shared with db-init only.
    app_password = run.one(
        "aws:secretsmanager/secret:Secret", f"{name}-secrets-database-app-password"
    )
    assert app_secrets["PGPASSWORD"] == init_secrets["DATABASE_APP_PASSWORD"]
    assert f":secret:{app_password.name}-" in app_secrets["PGPASSWORD"]
    assert "DATABASE_APP_PASSWORD" not in app_secrets
    assert app_secrets["DATABASE_URL"] == init_secrets["DATABASE_URL"]
    generated = run.one(PASSWORD, f"{name}-secrets-database-app-password").plain
    assert generated["special"] is False and generated["length"] >= 32
    version = run.one(SECRET_VERSION, f"{name}-secrets-database-app-password")
    assert version.is_secret("secretString")


@pytest.mark.parametrize("tier", TIERS)
def test_the_app_container_waits_on_the_migration_which_runs_as_the_app(tier: str) -> None:
    """Issue 11: a new task's app starts only after `migrate` exited 0 with the same image, so a
    failed migration starts no new task (the circuit breaker keeps the old ones serving)."""
    run = tier_run(tier)
    by_name = containers(run)
    migrate, app = by_name["migrate"], by_name["app"]
    assert [
        c["name"]
        for c in json.loads(
            run.one("aws:ecs/taskDefinition:TaskDefinition").plain["containerDefinitions"]
        )
    ] == ["db-init", "migrate", "app"]
    assert app["dependsOn"] == [{"containerName": "migrate", "condition": "SUCCESS"}]
    assert migrate["essential"] is False and migrate["image"] == app["image"]
    assert migrate["command"] == ["python", "-m", "src", "migrate"]
    assert (PROJECT_ROOT / "app" / "src" / "migrate.py").is_file()
    assert migrate["readonlyRootFilesystem"] is True and migrate["privileged"] is False
    # The application role's credentials, never the master's: it owns what it creates.
    app_secrets = {s["name"]: s["valueFrom"] for s in app["secrets"]}
    migrate_secrets = {s["name"]: s["valueFrom"] for s in migrate["secrets"]}
    assert migrate_secrets == {k: app_secrets[k] for k in ("DATABASE_URL", "PGPASSWORD")}
    assert "DATABASE_ADMIN_PASSWORD" not in json.dumps(migrate)
    # Its log lines land in the task's log group, stream prefix `migrate`.
    logs = migrate["logConfiguration"]["options"]
    assert logs["awslogs-group"] == app["logConfiguration"]["options"]["awslogs-group"]
    assert logs["awslogs-stream-prefix"] == "migrate"
    service = run.one("aws:ecs/service:Service").plain
    assert service["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert service["waitForSteadyState"] is True


def test_the_master_user_name_cannot_be_the_application_user() -> None:
    found = _problems("staging", {"database": {"username": "agent_app"}})
    assert [p.split(" ")[0] for p in found] == ["agent-deploy:database.username"]


def test_db_init_runs_a_module_the_image_has_and_verifies_with_the_bundle_it_ships() -> None:
    """The stack's half of the db-init contract matches the image's half (app/Dockerfile)."""
    run = tier_run("staging")
    init = containers(run)["db-init"]
    module = init["command"][init["command"].index("-m") + 1]
    assert (PROJECT_ROOT / "app" / (module.replace(".", "/") + ".py")).is_file(), module
    bootstrap = (PROJECT_ROOT / "app" / "src" / "db_bootstrap.py").read_text()
    init_names = {e["name"] for e in init["environment"]} | {s["name"] for s in init["secrets"]}
    for name in ("DATABASE_URL", "DATABASE_ADMIN_USER", "DATABASE_ADMIN_PASSWORD"):
        assert name in init_names and f'"{name}"' in bootstrap, name
    url = run.one(SECRET_VERSION, "agent-staging-secrets-database-url").plain["secretString"]
    bundle = url.split("sslrootcert=", 1)[1].split("&", 1)[0]
    dockerfile = (PROJECT_ROOT / "app" / "Dockerfile").read_text()
    copies = [line.split()[-1] for line in dockerfile.splitlines() if line.startswith("COPY")]
    assert bundle in copies, f"the image has no {bundle}"


# 17.3 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("tier", TIERS)
def test_resources_with_fixed_names_are_deleted_before_they_are_replaced(tier: str) -> None:
    """A replacement (a field AWS cannot change in place) of a resource whose name is fixed
    would otherwise create the new one first and clash on the name."""
    run = tier_run(tier)
    fixed = {
        SERVICE: "name",
        "aws:rds/instance:Instance": "identifier",
        "aws:elasticache/replicationGroup:ReplicationGroup": "replicationGroupId",
    }
    for type_, key in fixed.items():
        resource = run.one(type_)
        assert resource.plain[key], (type_, key)
        assert resource.delete_before_replace is True, type_


# 17.2 / 15.16 ---------------------------------------------------------------------------------
def _secrets_revision(run: ProgramRun) -> str:
    label: str = container(run)["dockerLabels"]["agent-deploy.secrets-revision"]
    return label


@pytest.mark.parametrize("tier", TIERS)
def test_a_new_secret_value_makes_a_new_task_definition(tier: str) -> None:
    """ECS reads `valueFrom` only at task start: a rotated token or a replaced cache's URL
    reaches the tasks only through a new task definition, which the label makes."""
    run = tier_run(tier)
    revision = _secrets_revision(run)
    assert len(revision) == 16 and "dockerLabels" not in container(run, "db-init")
    # Made of every version the tasks read, and of no value.
    versions = run.of_type(SECRET_VERSION)
    assert len(versions) >= 4
    for version in versions:
        assert version.plain["secretString"] not in revision
    task = run.one("aws:ecs/taskDefinition:TaskDefinition")
    assert not is_secret(task.inputs["containerDefinitions"])


def test_the_secrets_revision_follows_the_versions() -> None:
    base = _secrets_revision(run_stack("staging"))
    assert _secrets_revision(run_stack("staging")) == base, "stable while nothing changes"
    more = run_stack(
        "staging", {"app": {"secrets": ["OPENAI_API_KEY"]}}, secrets={"OPENAI_API_KEY": "sk-x"}
    )
    assert _secrets_revision(more) != base

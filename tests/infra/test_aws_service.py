"""The ECS service, its task, roles, load balancer, autoscaling, registry and image."""

from __future__ import annotations

import pytest

from cli.engine import contains_secret
from infra.aws.service import TLS_POLICY
from tests.infra.test_aws_fixtures import (
    APP_SECRETS,
    container,
    containers,
    policy,
    tier_run,
    variant_run,
)

SERVICE = "aws:ecs/service:Service"
TASK = "aws:ecs/taskDefinition:TaskDefinition"
TIERS = ("ephemeral", "staging", "production")
VPC_CIDRS = {"ephemeral": "10.40.0.0/16", "staging": "10.20.0.0/16", "production": "10.30.0.0/16"}


@pytest.mark.parametrize("tier", TIERS)
def test_cluster_has_container_insights(tier: str) -> None:
    cluster = tier_run(tier).one("aws:ecs/cluster:Cluster").plain
    # ECS.12
    assert {"name": "containerInsights", "value": "enabled"} in cluster["settings"]


@pytest.mark.parametrize(
    ("tier", "cpu", "memory"),
    [("ephemeral", "256", "512"), ("staging", "512", "1024"), ("production", "1024", "2048")],
)
def test_task_is_arm64_fargate_of_the_tier_size(tier: str, cpu: str, memory: str) -> None:
    task = tier_run(tier).one(TASK).plain
    assert task["requiresCompatibilities"] == ["FARGATE"] and task["networkMode"] == "awsvpc"
    assert task["runtimePlatform"] == {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"}
    assert (task["cpu"], task["memory"]) == (cpu, memory)
    assert task["volumes"] == [{"name": "tmp"}]
    assert "pidMode" not in task  # ECS.3


@pytest.mark.parametrize("tier", TIERS)
def test_container_is_hardened_and_logs_to_cloudwatch(tier: str) -> None:
    run = tier_run(tier)
    app = container(run)
    assert app["privileged"] is False  # ECS.4
    assert app["readonlyRootFilesystem"] is True  # ECS.5
    assert app["mountPoints"] == [
        {"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}
    ]
    logs = app["logConfiguration"]  # ECS.9
    assert logs["logDriver"] == "awslogs"
    assert logs["options"]["awslogs-group"] == f"/ecs/agent-{run.stack}"
    assert logs["options"]["awslogs-region"] == "eu-west-1"
    assert app["healthCheck"]["command"][0] == "CMD"
    # Liveness, not /health: a restart cannot fix a database that is away.
    assert app["healthCheck"]["command"][-1] == "http://127.0.0.1:8000/live"


@pytest.mark.parametrize("tier", TIERS)
def test_secrets_arrive_by_value_from_never_in_environment(tier: str) -> None:
    run = tier_run(tier)
    app = container(run)
    environment = {e["name"]: e["value"] for e in app["environment"]}
    secrets = {s["name"]: s["valueFrom"] for s in app["secrets"]}
    # ECS.8: every credential is a Secrets Manager reference.
    assert set(secrets) == {
        *APP_SECRETS,
        "AUTH_TOKENS",
        "DATABASE_URL",
        "DATABASE_URI",
        "REDIS_URL",
        "REDIS_URI",
        "PGPASSWORD",
    }
    assert all(v.startswith("arn:aws:secretsmanager:") for v in secrets.values())
    assert not set(secrets) & set(environment)
    assert environment == {
        "LOG_FORMAT": "json",
        "PORT": "8000",
        "FORWARDED_ALLOW_IPS": VPC_CIDRS[tier],
        "RUN_TIMEOUT_SECONDS": "100",
        "SHUTDOWN_TIMEOUT_SECONDS": "105",
        "KEEPALIVE_TIMEOUT_SECONDS": "120",
    }
    # No secret value anywhere in the task definition or any other plain input.
    task = run.one(TASK)
    for value in APP_SECRETS.values():
        assert value not in task.plain["containerDefinitions"]
    for resource in run.resources:
        for key, value in resource.inputs.items():
            if contains_secret(value):
                continue
            for secret in APP_SECRETS.values():
                assert secret not in str(value), (resource.name, key)
    # Each app secret is its own Secrets Manager secret, holding the value as a Pulumi secret.
    for name, value in APP_SECRETS.items():
        slug = name.lower().replace("_", "-")
        version = run.one(
            "aws:secretsmanager/secretVersion:SecretVersion", f"agent-{run.stack}-secrets-{slug}"
        )
        assert version.is_secret("secretString") and version.plain["secretString"] == value


@pytest.mark.parametrize(("tier", "window"), [("ephemeral", 0), ("staging", 7), ("production", 30)])
def test_secret_recovery_window_by_tier(tier: str, window: int) -> None:
    for secret in tier_run(tier).of_type("aws:secretsmanager/secret:Secret"):
        assert secret.plain["recoveryWindowInDays"] == window


@pytest.mark.parametrize("tier", TIERS)
def test_execution_role_reads_exactly_its_secrets_logs_and_repository(tier: str) -> None:
    run = tier_run(tier)
    name = f"agent-{run.stack}"
    statements = policy(run.one("aws:iam/rolePolicy:RolePolicy", f"{name}-execution"))["Statement"]
    by_action = {tuple(s["Action"]): s["Resource"] for s in statements}
    secret_arns = {
        s["valueFrom"].removesuffix(":password::")
        for definition in containers(run).values()
        for s in definition["secrets"]
    }
    # IAM.1/21: explicit actions on explicit ARNs; the one `*` is GetAuthorizationToken,
    # which AWS accepts only on `*`.
    assert sorted(by_action[("secretsmanager:GetSecretValue",)]) == sorted(secret_arns)
    assert by_action[("logs:CreateLogStream", "logs:PutLogEvents")] == [
        f"arn:aws:logs:eu-west-1:123456789012:log-group:/ecs/{name}:log-stream:*"
    ]
    assert by_action[
        ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")
    ] == [f"arn:aws:ecr:us-east-1:123456789012:{name}-registry-repo"]
    assert by_action[("ecr:GetAuthorizationToken",)] == "*"
    for statement in statements:
        assert all("*" not in action for action in statement["Action"])
    task = run.one(TASK).plain
    assert task["executionRoleArn"] != task["taskRoleArn"]
    # The task role (what the app may call) has no policy at all.
    task_role = run.one("aws:iam/role:Role", f"{name}-task")
    assert not [
        p
        for p in run.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.plain["role"] == f"{task_role.name}-id"
    ]


@pytest.mark.parametrize(
    ("tier", "retention"), [("ephemeral", 7), ("staging", 30), ("production", 365)]
)
def test_log_retention_by_tier(tier: str, retention: int) -> None:
    run = tier_run(tier)
    group = run.one("aws:cloudwatch/logGroup:LogGroup", f"agent-{run.stack}-logs")
    assert group.plain["retentionInDays"] == retention  # CloudWatch retention (>= 365 prod)
    assert run.outputs["logGroup"] == f"/ecs/agent-{run.stack}"


@pytest.mark.parametrize(
    ("tier", "desired", "capacity"),
    [("ephemeral", 1, "FARGATE_SPOT"), ("staging", 1, "FARGATE"), ("production", 2, "FARGATE")],
)
def test_service_deploys_safely(tier: str, desired: int, capacity: str) -> None:
    run = tier_run(tier)
    service = run.one(SERVICE)
    plain = service.plain
    assert plain["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert plain["deploymentMinimumHealthyPercent"] == 100
    assert plain["healthCheckGracePeriodSeconds"] >= 60
    # ECS.10, pinned: ARM64 on Fargate Spot needs 1.4.0, and LATEST would move on its own.
    assert plain["platformVersion"] == "1.4.0"
    assert plain["desiredCount"] == desired
    assert plain["capacityProviderStrategies"] == [{"capacityProvider": capacity, "weight": 1}]
    assert plain["loadBalancers"][0]["containerPort"] == 8000
    assert plain["waitForSteadyState"] is True


@pytest.mark.parametrize(
    ("tier", "bounds"), [("ephemeral", None), ("staging", (1, 3)), ("production", (2, 6))]
)
def test_autoscaling_bounds_and_policies(tier: str, bounds: tuple[int, int] | None) -> None:
    run = tier_run(tier)
    targets = run.of_type("aws:appautoscaling/target:Target")
    service = run.one(SERVICE)
    if bounds is None:
        assert targets == [] and service.ignore_changes == []
        return
    (target,) = targets
    assert (target.plain["minCapacity"], target.plain["maxCapacity"]) == bounds
    assert target.plain["resourceId"] == f"service/agent-{run.stack}/agent-{run.stack}"
    metrics = sorted(
        p.plain["targetTrackingScalingPolicyConfiguration"]["predefinedMetricSpecification"][
            "predefinedMetricType"
        ]
        for p in run.of_type("aws:appautoscaling/policy:Policy")
    )
    assert metrics == ["ALBRequestCountPerTarget", "ECSServiceAverageCPUUtilization"]
    # Autoscaling owns the running count: a deploy must not reset it.
    assert service.ignore_changes == ["desiredCount"]


@pytest.mark.parametrize(
    ("tier", "protected"), [("ephemeral", False), ("staging", False), ("production", True)]
)
def test_load_balancer(tier: str, protected: bool) -> None:
    run = tier_run(tier)
    alb = run.one("aws:lb/loadBalancer:LoadBalancer").plain
    assert alb["internal"] is False
    assert all("-public-" in s for s in alb["subnets"]) and len(alb["subnets"]) == 2  # ELB.13
    assert alb["dropInvalidHeaderFields"] is True  # ELB.4
    assert alb["desyncMitigationMode"] in {"defensive", "strictest"}  # ELB.12
    assert alb["enableDeletionProtection"] is protected  # ELB.6
    health = run.one("aws:lb/targetGroup:TargetGroup").plain["healthCheck"]
    assert health["path"] == "/ready"
    assert (health["healthyThreshold"], health["unhealthyThreshold"]) == (2, 3)
    assert 10 <= health["interval"] <= 15


# Production has no such stack: it serves its app.domain over HTTPS (test_aws_domain.py).
@pytest.mark.parametrize("tier", ["ephemeral", "staging"])
def test_without_a_certificate_http_only_and_the_outputs_say_so(tier: str) -> None:
    run = tier_run(tier)
    (listener,) = run.of_type("aws:lb/listener:Listener")
    assert listener.plain["port"] == 80
    assert listener.plain["defaultActions"][0]["type"] == "forward"
    assert run.outputs["tls"].startswith("disabled")
    assert run.outputs["serviceUrl"].startswith("http://")


def test_with_a_certificate_https_with_tls13_and_a_redirect() -> None:
    run = variant_run("tls")
    listeners = {r.plain["port"]: r.plain for r in run.of_type("aws:lb/listener:Listener")}
    assert listeners[443]["protocol"] == "HTTPS"
    assert listeners[443]["sslPolicy"] == TLS_POLICY  # ELB.17
    assert listeners[443]["certificateArn"].startswith("arn:aws:acm:eu-west-1:")
    # ELB.1: port 80 only redirects.
    assert listeners[80]["defaultActions"] == [
        {
            "type": "redirect",
            "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"},
        }
    ]
    assert run.outputs["tls"] == "enabled"
    assert run.outputs["serviceUrl"].startswith("https://")


@pytest.mark.parametrize(
    ("tier", "force_delete"), [("ephemeral", True), ("staging", False), ("production", False)]
)
def test_registry(tier: str, force_delete: bool) -> None:
    run = tier_run(tier)
    repo = run.one("aws:ecr/repository:Repository").plain
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}  # ECR.1
    assert repo["imageTagMutability"] == "IMMUTABLE"  # ECR.2
    assert repo["forceDelete"] is force_delete
    rules = policy(run.one("aws:ecr/lifecyclePolicy:LifecyclePolicy"))["rules"]  # ECR.3
    assert rules[1]["selection"]["countType"] == "imageCountMoreThan"
    assert rules[1]["selection"]["countNumber"] == 20


@pytest.mark.parametrize("tier", TIERS)
def test_image_is_pushed_to_ecr_by_content_tag_and_pinned_by_digest(tier: str) -> None:
    run = tier_run(tier)
    image = run.one("docker-build:index:Image")
    repo_url = f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/agent-{run.stack}-registry-repo"
    assert image.plain["push"] is True
    (tag,) = image.plain["tags"]
    assert tag.startswith(f"{repo_url}:sha-") and not tag.endswith(":latest")
    assert image.plain["platforms"] == ["linux/arm64"]
    (registry,) = image.plain["registries"]
    assert registry["address"].endswith(".dkr.ecr.eu-west-1.amazonaws.com")
    assert contains_secret(image.inputs["registries"])
    # No registry cache tag: it would need overwriting in an IMMUTABLE repository.
    assert "cacheTo" not in image.plain
    pinned = container(run)["image"]
    assert pinned == f"{repo_url}@{run.outputs['imageDigest']}"
    assert pinned.split("@")[1].startswith("sha256:")
    assert run.outputs["image"] == pinned


def test_a_prebuilt_image_is_used_as_is() -> None:
    run = variant_run("prebuilt")
    assert run.of_type("docker-build:index:Image") == []
    assert run.of_type("aws:ecr/repository:Repository") == []
    assert container(run)["image"] == "ghcr.io/example/agent@sha256:" + "ab" * 32
    assert run.outputs["imageDigest"] == "sha256:" + "ab" * 32
    statements = policy(run.one("aws:iam/rolePolicy:RolePolicy", "agent-staging-execution"))
    assert not [s for s in statements["Statement"] if "ecr:BatchGetImage" in s["Action"]]


@pytest.mark.parametrize("tier", TIERS)
def test_outputs(tier: str) -> None:
    run = tier_run(tier)
    name = f"agent-{run.stack}"
    out = run.outputs
    assert out["region"] == "eu-west-1" and out["tier"] == tier
    assert out["clusterName"] == out["serviceName"] == name
    assert out["databaseEndpoint"] == f"{name}-db.mock.eu-west-1.rds.amazonaws.com"
    if tier == "ephemeral":
        assert "deployRoleArn" not in out  # pr stacks use staging's shared ephemeral role
    else:
        assert out["deployRoleArn"].startswith("arn:aws:iam::123456789012:role/")
    assert out["healthUrl"] == out["serviceUrl"] + "/health"
    assert run.secret_outputs == {"apiToken"}

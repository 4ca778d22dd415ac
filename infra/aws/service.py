"""The app on ECS Fargate behind an Application Load Balancer.

The cluster has Container Insights; the task runs non-privileged with a read-only root
filesystem, logs to its own log group and gets every credential through `secrets`
(`valueFrom` a Secrets Manager ARN), never `environment`. Two roles: the execution role may
pull this repository's images, write this log group and read exactly these secrets; the task
role (what the app itself may call) starts empty.

Optional non-essential init containers (same image) run to completion, one after the other,
before the app starts, each with secrets of its own (only `db-init` sees the database master
password). The last is the schema migration: a new task definition's app container waits on it
(`SUCCESS`), so a failed migration starts no new task, the deployment circuit breaker rolls the
service back, and the previous tasks keep serving; its output is in the task's log group under
the container's name as stream prefix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pulumi
import pulumi_aws as aws

from infra.aws.registry import PULL_ACTIONS
from infra.naming import fit
from infra.probe import http_probe
from infra.timeouts import Timeouts

CONTAINER = "app"
TMP = "/tmp"  # noqa: S108 - a task-private volume, not a shared host directory
# TLS 1.3, TLS 1.2 with forward-secret AEAD ciphers only, hybrid post-quantum key exchange:
# what AWS recommends since 2025-09 (a TLS 1.3-only policy would turn away TLS 1.2 clients).
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09"
# The VPC has no IPv6 ranges, so neither has the load balancer: no AAAA records for it.
IP_ADDRESS_TYPE = "ipv4"
_ARCHITECTURES = {"linux/arm64": "ARM64", "linux/amd64": "X86_64"}
# ARM64 on Fargate Spot and `valueFrom` JSON keys need 1.4.0; pinned, so a new `LATEST` never
# changes a running service without a commit.
PLATFORM_VERSION = "1.4.0"
SECRETS_REVISION_LABEL = "agent-deploy.secrets-revision"
_ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)"
    r"\.amazonaws\.com(?P<cn>\.cn)?"
    r"/(?P<repository>[a-z0-9][a-z0-9._/-]*?)(?::[\w][\w.-]*)?(?:@sha256:[0-9a-f]{64})?$"
)


def ecr_repository_arn(image: str) -> str | None:
    """The ECR repository an image reference pulls from, or None outside ECR."""
    match = _ECR_IMAGE.match(image)
    if match is None:
        return None
    region = match["region"]
    partition = "aws-cn" if match["cn"] else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    return f"arn:{partition}:ecr:{region}:{match['account']}:repository/{match['repository']}"


@dataclass(frozen=True)
class InitContainer:
    """Runs once per task, before the app, which starts only if it exits 0."""

    name: str
    command: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    # Variable name -> `valueFrom`, seen by this container only.
    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


class ContainerSpec(Protocol):
    """What the containers of a task are made from (ServiceArgs, a pr slice's args)."""

    @property
    def port(self) -> int: ...
    @property
    def liveness_path(self) -> str: ...
    @property
    def timeouts(self) -> Timeouts: ...
    @property
    def env(self) -> Mapping[str, str]: ...
    @property
    def init(self) -> Sequence[InitContainer]: ...


@dataclass(frozen=True)
class ServiceArgs:
    vpc_id: pulumi.Input[str]
    public_subnet_ids: Sequence[pulumi.Input[str]]
    task_subnet_ids: Sequence[pulumi.Input[str]]
    assign_public_ip: bool
    alb_security_group_id: pulumi.Input[str]
    task_security_group_id: pulumi.Input[str]
    image: pulumi.Input[str]
    repository_arn: pulumi.Input[str] | None
    platform: str
    cpu: int
    memory: int
    port: int
    liveness_path: str
    readiness_path: str
    desired_count: int
    min_count: int
    max_count: int
    autoscaling: bool
    fargate_spot: bool
    log_retention_days: int
    load_balancer_deletion_protection: bool
    health_check_grace_seconds: int
    timeouts: Timeouts
    # HTTPS with this certificate (and port 80 only redirecting); None: plain HTTP.
    certificate_arn: pulumi.Input[str] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    # Variable name -> `valueFrom` (a secret ARN, optionally with `:json-key::`).
    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # The secrets' ARNs, for the execution role's policy.
    secret_arns: Sequence[pulumi.Input[str]] = ()
    # Run in this order; each waits for the previous to succeed, the app for the last.
    init: Sequence[InitContainer] = ()
    # What must exist before a task starts (secret values, database, cache, network rules).
    start_after: Sequence[pulumi.Resource] = ()
    # Changes whenever a secret value the tasks read changes. ECS reads secrets only at task
    # start and redeploys only for a new task definition: as a container label it makes one.
    secrets_revision: pulumi.Input[str] | None = None
    # The permissions boundary both task roles carry (the deploy role's, see identity.py).
    permissions_boundary: pulumi.Input[str] | None = None
    cpu_target_percent: float = 60.0
    requests_per_target: float = 200.0
    # ELB.5 / CKV_AWS_91: access logs kept this many days (0: none); the bucket empties
    # itself on destroy when `access_logs_force_destroy` (throw-away stacks).
    access_logs_days: int = 0
    access_logs_force_destroy: bool = False


def _assume_role(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def _logs(log_group: str, region: str, prefix: str) -> dict[str, Any]:
    return {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": log_group,
            "awslogs-region": region,
            "awslogs-stream-prefix": prefix,
        },
    }


def _hardened() -> dict[str, Any]:
    return {
        "privileged": False,  # ECS.4
        "readonlyRootFilesystem": True,  # ECS.5
        # The writable scratch volume next to the read-only root filesystem.
        "mountPoints": [{"sourceVolume": "tmp", "containerPath": TMP, "readOnly": False}],
        "linuxParameters": {"initProcessEnabled": True},
    }


def _variables(env: Mapping[str, str], secrets: Mapping[str, str]) -> dict[str, Any]:
    return {
        # ECS.8: only non-secret settings here; credentials arrive through `secrets`.
        "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(secrets.items())],
    }


def container_definition(
    args: ContainerSpec,
    image: str,
    log_group: str,
    region: str,
    secrets: Mapping[str, str],
    init_secrets: Mapping[str, Mapping[str, str]] | None = None,
    secrets_revision: str | None = None,
    env: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    app: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "essential": True,
        "portMappings": [{"containerPort": args.port, "protocol": "tcp"}],
        **_variables(args.env if env is None else env, secrets),
        "logConfiguration": _logs(log_group, region, CONTAINER),  # ECS.9
        "healthCheck": {
            # Liveness only: a restart cannot fix a database that is away.
            "command": http_probe(args.port, args.liveness_path),
            "interval": 15,
            "timeout": 5,
            "retries": 3,
            "startPeriod": 30,
        },
        **_hardened(),
        "stopTimeout": args.timeouts.fargate_stop,
    }
    if secrets_revision is not None:
        app["dockerLabels"] = {SECRETS_REVISION_LABEL: secrets_revision}
    if not args.init:
        return [app]
    chain: list[dict[str, Any]] = []
    for step in args.init:
        init = {
            "name": step.name,
            "image": image,
            "essential": False,
            "command": list(step.command),
            **_variables(step.env, (init_secrets or {}).get(step.name, {})),
            "logConfiguration": _logs(log_group, region, step.name),
            **_hardened(),
        }
        if chain:
            init["dependsOn"] = [{"containerName": chain[-1]["name"], "condition": "SUCCESS"}]
        chain.append(init)
    app["dependsOn"] = [{"containerName": chain[-1]["name"], "condition": "SUCCESS"}]
    return [*chain, app]


class Service(pulumi.ComponentResource):
    url: pulumi.Output[str]
    cluster_name: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    load_balancer_arn: pulumi.Output[str]
    # The listener serving the app: HTTPS with a certificate, else HTTP.
    listener_arn: pulumi.Output[str]
    listener_arns: list[pulumi.Output[str]]
    target_group_arn: pulumi.Output[str]
    service_name: pulumi.Output[str]
    log_group_name: pulumi.Output[str]
    load_balancer_arn_suffix: pulumi.Output[str]
    load_balancer_dns_name: pulumi.Output[str]
    load_balancer_zone_id: pulumi.Output[str]
    target_group_arn_suffix: pulumi.Output[str]
    tls: bool
    dualstack: bool = IP_ADDRESS_TYPE == "dualstack"

    def __init__(
        self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:aws:Service", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        region = aws.get_region_output(opts=pulumi.InvokeOptions(parent=self)).region

        cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            name=name,
            settings=[{"name": "containerInsights", "value": "enabled"}],  # ECS.12
            opts=child,
        )
        capacity_providers = aws.ecs.ClusterCapacityProviders(
            f"{name}-capacity",
            cluster_name=cluster.name,
            capacity_providers=["FARGATE", "FARGATE_SPOT"],
            opts=child,
        )
        task = fargate_task(name, args, self, region)
        log_group, task_definition = task.log_group, task.definition
        execution_policy = task.execution_policy

        access_logs = self._access_logs(name, args) if args.access_logs_days else None
        load_balancer = aws.lb.LoadBalancer(
            fit("aws:lb/loadBalancer:LoadBalancer", f"{name}-alb"),
            load_balancer_type="application",
            internal=False,
            ip_address_type=IP_ADDRESS_TYPE,
            subnets=list(args.public_subnet_ids),  # ELB.13: one per AZ, at least two
            security_groups=[args.alb_security_group_id],
            drop_invalid_header_fields=True,  # ELB.4
            desync_mitigation_mode="defensive",  # ELB.12
            enable_deletion_protection=args.load_balancer_deletion_protection,  # ELB.6
            # Runs send nothing until they end: the idle timer must outlast the run timeout.
            idle_timeout=args.timeouts.idle,
            access_logs={"bucket": access_logs[0].bucket, "enabled": True} if access_logs else None,
            # AWS tests the bucket policy when access logs are turned on.
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(access_logs or ())),
        )
        target_group = app_target_group(name, args, self)
        forward: list[aws.lb.ListenerDefaultActionArgsDict] = [
            {"type": "forward", "target_group_arn": target_group.arn}
        ]
        listeners: list[aws.lb.Listener] = []
        self.tls = args.certificate_arn is not None
        if args.certificate_arn is not None:
            listeners.append(
                aws.lb.Listener(
                    f"{name}-https",
                    load_balancer_arn=load_balancer.arn,
                    port=443,
                    protocol="HTTPS",
                    ssl_policy=TLS_POLICY,  # ELB.17
                    certificate_arn=args.certificate_arn,
                    default_actions=forward,
                    opts=child,
                )
            )
            listeners.append(
                aws.lb.Listener(
                    f"{name}-http",
                    load_balancer_arn=load_balancer.arn,
                    port=80,
                    protocol="HTTP",
                    # ELB.1: plain HTTP only redirects.
                    default_actions=[
                        {
                            "type": "redirect",
                            "redirect": {
                                "protocol": "HTTPS",
                                "port": "443",
                                "status_code": "HTTP_301",
                            },
                        }
                    ],
                    opts=child,
                )
            )
        else:
            listeners.append(
                aws.lb.Listener(
                    f"{name}-http",
                    load_balancer_arn=load_balancer.arn,
                    port=80,
                    protocol="HTTP",
                    default_actions=forward,
                    opts=child,
                )
            )

        service = app_service(
            name,
            args,
            self,
            cluster=cluster.arn,
            task_definition=task_definition,
            target_group=target_group,
            # A task starting early fails on a missing secret value, permission or
            # capacity provider, and a fresh stack trips the circuit breaker.
            depends_on=[*listeners, capacity_providers, execution_policy, *args.start_after],
            # Autoscaling owns the running count once the service exists.
            ignore_changes=["desiredCount"] if args.autoscaling else None,
        )

        if args.autoscaling:
            target = aws.appautoscaling.Target(
                f"{name}-scaling",
                service_namespace="ecs",
                scalable_dimension="ecs:service:DesiredCount",
                resource_id=pulumi.Output.concat("service/", cluster.name, "/", service.name),
                min_capacity=args.min_count,
                max_capacity=args.max_count,
                opts=child,
            )
            metric_spec = aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs  # noqa: E501
            metrics = {
                "cpu": (
                    args.cpu_target_percent,
                    metric_spec(predefined_metric_type="ECSServiceAverageCPUUtilization"),
                ),
                "requests": (
                    args.requests_per_target,
                    metric_spec(
                        predefined_metric_type="ALBRequestCountPerTarget",
                        resource_label=pulumi.Output.concat(
                            load_balancer.arn_suffix, "/", target_group.arn_suffix
                        ),
                    ),
                ),
            }
            for suffix, (target_value, metric) in metrics.items():
                aws.appautoscaling.Policy(
                    f"{name}-{suffix}",
                    policy_type="TargetTrackingScaling",
                    service_namespace=target.service_namespace,
                    scalable_dimension=target.scalable_dimension,
                    resource_id=target.resource_id,
                    target_tracking_scaling_policy_configuration=(
                        aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                            target_value=target_value,
                            predefined_metric_specification=metric,
                            scale_in_cooldown=120,
                            scale_out_cooldown=60,
                        )
                    ),
                    opts=child,
                )

        scheme = "https" if self.tls else "http"
        self.url = pulumi.Output.concat(scheme, "://", load_balancer.dns_name)
        self.cluster_name = cluster.name
        self.cluster_arn = cluster.arn
        self.load_balancer_arn = load_balancer.arn
        self.listener_arn = listeners[0].arn
        self.listener_arns = [listener.arn for listener in listeners]
        self.target_group_arn = target_group.arn
        self.service_name = service.name
        self.log_group_name = log_group.name
        self.load_balancer_arn_suffix = load_balancer.arn_suffix
        self.load_balancer_dns_name = load_balancer.dns_name
        self.load_balancer_zone_id = load_balancer.zone_id
        self.target_group_arn_suffix = target_group.arn_suffix
        self.register_outputs(
            {
                "url": self.url,
                "clusterName": self.cluster_name,
                "serviceName": self.service_name,
                "logGroupName": self.log_group_name,
            }
        )

    def _access_logs(
        self, name: str, args: ServiceArgs
    ) -> tuple[aws.s3.Bucket, aws.s3.BucketPolicy]:
        """A private, encrypted bucket that forgets logs after `access_logs_days` and that only
        the region's load-balancer log delivery may write to (over TLS)."""
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        bucket = aws.s3.Bucket(
            fit("aws:s3/bucket:Bucket", f"{name}-alb-logs"),
            force_destroy=args.access_logs_force_destroy,
            opts=child,
        )
        blocked = aws.s3.BucketPublicAccessBlock(
            f"{name}-alb-logs",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-alb-logs",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        # Access logs support SSE-S3 only (not KMS).
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-alb-logs",
            bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-alb-logs",
            bucket=bucket.id,
            rules=[
                {
                    "id": "expire-access-logs",
                    "status": "Enabled",
                    "filter": {},
                    "expiration": {"days": args.access_logs_days},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
                }
            ],
            opts=child,
        )
        elb = aws.elb.get_service_account_output(opts=invoke)
        account = aws.get_caller_identity_output(opts=invoke)
        policy = aws.s3.BucketPolicy(
            f"{name}-alb-logs",
            bucket=bucket.id,
            policy=pulumi.Output.all(bucket.arn, elb.arn, account.account_id).apply(
                lambda v: _access_logs_policy(v[0], v[1], v[2])
            ),
            # A policy put before the block is in place could be public for a moment.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[blocked]),
        )
        return bucket, policy


def _access_logs_policy(bucket_arn: str, elb_account_arn: str, account: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    # The region's Elastic Load Balancing account delivers the logs.
                    "Sid": "LoadBalancerDelivers",
                    "Effect": "Allow",
                    "Principal": {"AWS": elb_account_arn},
                    "Action": "s3:PutObject",
                    "Resource": f"{bucket_arn}/AWSLogs/{account}/*",
                },
                {
                    "Sid": "TlsOnly",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
            ],
        }
    )


class TaskSpec(ContainerSpec, Protocol):
    """What a Fargate task is made from (ServiceArgs, a pr slice's args)."""

    @property
    def image(self) -> pulumi.Input[str]: ...
    @property
    def repository_arn(self) -> pulumi.Input[str] | None: ...
    @property
    def platform(self) -> str: ...
    @property
    def cpu(self) -> int: ...
    @property
    def memory(self) -> int: ...
    @property
    def readiness_path(self) -> str: ...
    @property
    def log_retention_days(self) -> int: ...
    @property
    def secrets(self) -> Mapping[str, pulumi.Input[str]]: ...
    @property
    def secret_arns(self) -> Sequence[pulumi.Input[str]]: ...
    @property
    def secrets_revision(self) -> pulumi.Input[str] | None: ...
    @property
    def permissions_boundary(self) -> pulumi.Input[str] | None: ...
    @property
    def vpc_id(self) -> pulumi.Input[str]: ...


@dataclass(frozen=True)
class FargateTask:
    log_group: aws.cloudwatch.LogGroup
    definition: aws.ecs.TaskDefinition
    # A service must wait for it: a task started earlier cannot pull its image or secrets.
    execution_policy: aws.iam.RolePolicy


def fargate_task(
    name: str,
    args: TaskSpec,
    parent: pulumi.Resource,
    region: pulumi.Input[str],
    extra_env: Mapping[str, pulumi.Input[str]] | None = None,
) -> FargateTask:
    """The log group, roles and task definition of one app task, as children of `parent`.

    Why one function: a staging service and a pr-<n> slice run the same task; a hardening of
    one (a role's rights, a container setting) must never miss the other. `extra_env` adds
    variables known only at deploy time (a slice's trusted proxy range).
    """
    child = pulumi.ResourceOptions(parent=parent)
    log_group = aws.cloudwatch.LogGroup(
        f"{name}-logs",
        name=f"/ecs/{name}",
        retention_in_days=args.log_retention_days,
        opts=child,
    )

    execution_role = aws.iam.Role(
        fit("aws:iam/role:Role", f"{name}-execution"),
        assume_role_policy=_assume_role("ecs-tasks.amazonaws.com"),
        permissions_boundary=args.permissions_boundary,
        opts=child,
    )
    statements: list[dict[str, Any]] = [
        # The one ECR action that takes no resource (IAM.21 exception by AWS design).
        {"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [pulumi.Output.concat(log_group.arn, ":log-stream:*")],
        },
    ]
    if args.repository_arn is not None:
        statements.append(
            {
                "Effect": "Allow",
                "Action": list(PULL_ACTIONS),
                "Resource": [args.repository_arn],
            }
        )
    if args.secret_arns:
        statements.append(
            {
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": list(args.secret_arns),
            }
        )
    execution_policy = aws.iam.RolePolicy(
        f"{name}-execution",
        role=execution_role.id,
        policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements}),
        opts=child,
    )
    # What the app itself may call: nothing until it needs something.
    task_role = aws.iam.Role(
        fit("aws:iam/role:Role", f"{name}-task"),
        assume_role_policy=_assume_role("ecs-tasks.amazonaws.com"),
        permissions_boundary=args.permissions_boundary,
        opts=child,
    )

    init_secrets = {
        step.name: pulumi.Output.all(**dict(step.secrets)) for step in args.init if step.secrets
    }
    definitions = pulumi.Output.all(
        image=args.image,
        log_group=log_group.name,
        region=region,
        secrets=pulumi.Output.all(**dict(args.secrets)) if args.secrets else {},
        init_secrets=pulumi.Output.all(**init_secrets) if init_secrets else {},
        secrets_revision=args.secrets_revision,
        extra_env=pulumi.Output.all(**dict(extra_env)) if extra_env else {},
    ).apply(
        lambda v: json.dumps(
            container_definition(
                args,
                v["image"],
                v["log_group"],
                v["region"],
                v["secrets"],
                v["init_secrets"],
                v["secrets_revision"],
                env={**args.env, **v["extra_env"]},
            )
        )
    )
    task_definition = aws.ecs.TaskDefinition(
        f"{name}-task",
        family=name,
        cpu=str(args.cpu),
        memory=str(args.memory),
        network_mode="awsvpc",
        requires_compatibilities=["FARGATE"],
        runtime_platform={
            "cpu_architecture": _ARCHITECTURES[args.platform],
            "operating_system_family": "LINUX",
        },
        execution_role_arn=execution_role.arn,
        task_role_arn=task_role.arn,
        volumes=[{"name": "tmp"}],
        container_definitions=definitions,
        opts=child,
    )
    return FargateTask(log_group, task_definition, execution_policy)


def app_target_group(
    name: str, args: TaskSpec, parent: pulumi.Resource, resource_name: str | None = None
) -> aws.lb.TargetGroup:
    """The app's target group: readiness probed, draining as long as a run may last."""
    return aws.lb.TargetGroup(
        resource_name or fit("aws:lb/targetGroup:TargetGroup", f"{name}-tg"),
        port=args.port,
        protocol="HTTP",
        target_type="ip",
        vpc_id=args.vpc_id,
        # Draining lets in-flight runs finish before ECS stops the task.
        deregistration_delay=args.timeouts.deregistration_delay,
        health_check={
            "path": args.readiness_path,
            "matcher": "200",
            "interval": 10,
            "timeout": 5,
            "healthy_threshold": 2,
            "unhealthy_threshold": 3,
        },
        opts=pulumi.ResourceOptions(parent=parent),
    )


class ServiceSpec(TaskSpec, Protocol):
    """What an ECS service of the app is placed with (ServiceArgs, a pr slice's args)."""

    @property
    def desired_count(self) -> int: ...
    @property
    def fargate_spot(self) -> bool: ...
    @property
    def task_subnet_ids(self) -> Sequence[pulumi.Input[str]]: ...
    @property
    def task_security_group_id(self) -> pulumi.Input[str]: ...
    @property
    def assign_public_ip(self) -> bool: ...
    @property
    def health_check_grace_seconds(self) -> int: ...


def app_service(
    name: str,
    args: ServiceSpec,
    parent: pulumi.Resource,
    *,
    cluster: pulumi.Input[str],
    task_definition: aws.ecs.TaskDefinition,
    target_group: aws.lb.TargetGroup,
    depends_on: Sequence[pulumi.Resource],
    ignore_changes: list[str] | None = None,
) -> aws.ecs.Service:
    """The app's ECS service: rolling, circuit-broken, waited for until steady."""
    capacity = "FARGATE_SPOT" if args.fargate_spot else "FARGATE"
    return aws.ecs.Service(
        f"{name}-service",
        name=name,
        cluster=cluster,
        task_definition=task_definition.arn,
        desired_count=args.desired_count,
        capacity_provider_strategies=[{"capacity_provider": capacity, "weight": 1}],
        platform_version=PLATFORM_VERSION,  # ECS.10
        network_configuration={
            "subnets": list(args.task_subnet_ids),
            "security_groups": [args.task_security_group_id],
            "assign_public_ip": args.assign_public_ip,  # ECS.2 (False in production)
        },
        load_balancers=[
            {
                "target_group_arn": target_group.arn,
                "container_name": CONTAINER,
                "container_port": args.port,
            }
        ],
        deployment_circuit_breaker={"enable": True, "rollback": True},
        deployment_minimum_healthy_percent=100,
        deployment_maximum_percent=200,
        health_check_grace_period_seconds=args.health_check_grace_seconds,
        enable_ecs_managed_tags=True,
        propagate_tags="SERVICE",
        wait_for_steady_state=True,
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=list(depends_on),
            ignore_changes=ignore_changes,
            # Its name is fixed: a replacement must remove the old service first, or ECS
            # refuses the second service of the same name.
            delete_before_replace=True,
        ),
    )

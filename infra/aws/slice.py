"""A pull request's slice of a shared base (staging's `prBase`): only what is its own.

`SliceDatabase`: its database and role on the base's Postgres server, made and dropped by the
base's provisioner Lambda (the only thing inside the VPC that may), through an Invocation whose
delete event drops them. `SliceCacheUser`: an ElastiCache RBAC user limited to the slice's key
prefix, in the base's user group. `ServiceSlice`: its ECS service on the base's cluster
(Fargate Spot), its roles, log group and task definition, a target group in the base's VPC and
its address on the base's load balancer: a host rule `pr-<n>.<prDomain>` at priority n, or,
when the base has no domain, a listener of its own on port PR_PORT_OFFSET + n.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.aws.service import (
    SECRETS_REVISION_LABEL,
    InitContainer,
    app_service,
    app_target_group,
    fargate_task,
)
from infra.config.pull_requests import PR_PORT_OFFSET
from infra.naming import AUTONAME_SUFFIX, NAME_RULES
from infra.timeouts import Timeouts
from infra.tokens import generate_token

#: ALB listener rule priorities run 1..50000; a slice's priority is its PR number.
MAX_RULE_PRIORITY = 50000
#: The last port a slice's listener may take (PR_PORT_OFFSET + n).
MAX_PORT = 65535
#: The most digits a slice's number has (its address refuses more).
_NUMBER_DIGITS = len(str(max(MAX_RULE_PRIORITY, MAX_PORT - PR_PORT_OFFSET)))
#: The Invocation's lifecycle: create/update/delete events (`tf.action`), delete drops it all.
LIFECYCLE_SCOPE = "CRUD"

__all__ = [
    "LIFECYCLE_SCOPE",
    "MAX_PORT",
    "MAX_RULE_PRIORITY",
    "SECRETS_REVISION_LABEL",
    "ServiceSlice",
    "ServiceSliceArgs",
    "SliceAddress",
    "SliceCacheUser",
    "SliceCacheUserArgs",
    "SliceDatabase",
    "SliceDatabaseArgs",
    "slice_address",
    "slice_target_group",
    "slice_target_group_prefix",
]


@dataclass(frozen=True)
class SliceAddress:
    """Where a slice answers on the base's load balancer: by host rule or by its own port."""

    number: int
    host: str | None
    port: int | None

    @property
    def priority(self) -> int:
        return self.number


def slice_address(number: int, pr_domain: str | None) -> SliceAddress:
    """The address for PR `number`; ValueError (saying what is allowed) when it cannot have one.

    Why n itself: two open PRs never share a number, so priorities (and ports) never collide,
    and the slice needs no coordination with the others to pick one.
    """
    if number < 1:
        raise ValueError(f"pull request number {number}: slices are numbered from 1")
    if pr_domain is not None:
        if number > MAX_RULE_PRIORITY:
            raise ValueError(
                f"pull request number {number} is above {MAX_RULE_PRIORITY}, the highest "
                "listener rule priority an Application Load Balancer accepts (the slice's "
                "priority is its number): use a self-contained pr stack (remove pullRequests)"
            )
        return SliceAddress(number, f"pr-{number}.{pr_domain}", None)
    if PR_PORT_OFFSET + number > MAX_PORT:
        raise ValueError(
            f"pull request number {number}: its port {PR_PORT_OFFSET} + {number} is above "
            f"{MAX_PORT}; without a prDomain on the base, slices are numbered up to "
            f"{MAX_PORT - PR_PORT_OFFSET}: give the base a domain, or use a self-contained pr "
            "stack (remove pullRequests)"
        )
    return SliceAddress(number, None, PR_PORT_OFFSET + number)


def slice_target_group_prefix(app: str) -> str:
    """What every slice's target group name starts with: the ephemeral role's pattern for them.

    `<app>-pr-` while `<app>-pr-<n>-tg` fits ELB's 32 characters with Pulumi's suffix for
    every n; for longer app names the start of the name and a hash of all of it (a cut
    `<app>-pr-` would match another app's slices, or none of its own).
    """
    room = NAME_RULES["aws:lb/targetGroup:TargetGroup"].max_length - AUTONAME_SUFFIX
    tail = len(f"{'9' * _NUMBER_DIGITS}-tg")
    if len(f"{app}-pr-") + tail <= room:
        return f"{app}-pr-"
    digest = hashlib.sha256(app.encode()).hexdigest()[: AUTONAME_SUFFIX - 1]
    keep = room - tail - len(f"-{digest}-pr-")
    return f"{app[:keep].rstrip('-')}-{digest}-pr-"


def slice_target_group(app: str, number: int) -> str:
    """The logical (and, with Pulumi's suffix, physical) name of slice `number`'s target group."""
    return f"{slice_target_group_prefix(app)}{number}-tg"


@dataclass(frozen=True)
class SliceDatabaseArgs:
    #: The base's provisioner Lambda.
    function_name: pulumi.Input[str]
    #: The database and role name (`slice_database(stack)`).
    database: str


class SliceDatabase(pulumi.ComponentResource):
    """Its own database and role, via the base's provisioner; `password` is the role's."""

    password: pulumi.Output[str]
    invocation: aws.lambda_.Invocation

    def __init__(
        self, name: str, args: SliceDatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:aws:SliceDatabase", name, None, opts)
        self.password = generate_token(f"{name}-password", parent=self)
        self.invocation = aws.lambda_.Invocation(
            f"{name}-provision",
            function_name=args.function_name,
            # json_dumps keeps the password's secretness: the input is stored encrypted.
            input=pulumi.Output.json_dumps({"database": args.database, "password": self.password}),
            lifecycle_scope=LIFECYCLE_SCOPE,
            # A replacement (say, a new function name) must drop before it creates: Pulumi's
            # default creates first, and the old delete event would then drop the new slice.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        self.register_outputs({"database": args.database})


@dataclass(frozen=True)
class SliceCacheUserArgs:
    user_group_id: pulumi.Input[str]
    #: Unique in the account and region: the slice's name.
    user_id: str
    engine: str
    access_string: str
    address: pulumi.Input[str]
    port: pulumi.Input[int]


class SliceCacheUser(pulumi.ComponentResource):
    """An RBAC user of the base's cache confined to the slice's keys; `url` (secret) logs in
    as it over TLS (ElastiCache RBAC requires in-transit encryption)."""

    url: pulumi.Output[str]

    def __init__(
        self, name: str, args: SliceCacheUserArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:aws:SliceCacheUser", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        password = generate_token(f"{name}-password", parent=self)
        user = aws.elasticache.User(
            f"{name}-user",
            user_id=args.user_id,
            user_name=args.user_id,
            engine=args.engine,
            access_string=args.access_string,
            authentication_mode={"type": "password", "passwords": [password]},
            opts=child,
        )
        self.association = aws.elasticache.UserGroupAssociation(
            f"{name}-membership",
            user_group_id=args.user_group_id,
            user_id=user.user_id,
            opts=child,
        )
        self.url = pulumi.Output.secret(
            pulumi.Output.concat(
                "rediss://",
                user.user_name,
                ":",
                password,
                "@",
                args.address,
                ":",
                pulumi.Output.from_input(args.port).apply(lambda p: str(int(p))),
                "/0",
            )
        )
        self.register_outputs({"userId": user.user_id})


@dataclass(frozen=True)
class ServiceSliceArgs:
    """The base's pieces (from `prBase`) and the slice's own task."""

    cluster_arn: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    task_subnet_ids: Sequence[pulumi.Input[str]]
    assign_public_ip: bool
    task_security_group_id: pulumi.Input[str]
    load_balancer_arn: pulumi.Input[str]
    load_balancer_dns_name: pulumi.Input[str]
    load_balancer_zone_id: pulumi.Input[str]
    listener_arn: pulumi.Input[str]
    hosted_zone_id: pulumi.Input[str] | None
    address: SliceAddress
    image: pulumi.Input[str]
    repository_arn: pulumi.Input[str] | None
    platform: str
    cpu: int
    memory: int
    port: int
    liveness_path: str
    readiness_path: str
    desired_count: int
    fargate_spot: bool
    log_retention_days: int
    health_check_grace_seconds: int
    timeouts: Timeouts
    #: The base VPC's range: its load balancer's nodes, the only proxies the app trusts.
    forwarded_allow_ips: pulumi.Input[str]
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    secret_arns: Sequence[pulumi.Input[str]] = ()
    init: Sequence[InitContainer] = ()
    start_after: Sequence[pulumi.Resource] = ()
    secrets_revision: pulumi.Input[str] | None = None
    permissions_boundary: pulumi.Input[str] | None = None
    #: `slice_target_group(app, n)`: what the ephemeral role may manage.
    target_group_name: str | None = None


class ServiceSlice(pulumi.ComponentResource):
    """The slice's service on the base's cluster and load balancer (see the module docstring)."""

    url: pulumi.Output[str]
    tls: bool
    service_name: pulumi.Output[str]
    log_group_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: ServiceSliceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:aws:ServiceSlice", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        region = aws.get_region_output(opts=pulumi.InvokeOptions(parent=self)).region

        task = fargate_task(
            name, args, self, region, extra_env={"FORWARDED_ALLOW_IPS": args.forwarded_allow_ips}
        )
        log_group, task_definition = task.log_group, task.definition
        execution_policy = task.execution_policy
        target_group = app_target_group(name, args, self, args.target_group_name)
        routing: pulumi.Resource
        address = args.address
        if address.host is not None:
            routing = aws.lb.ListenerRule(
                f"{name}-rule",
                listener_arn=args.listener_arn,
                priority=address.priority,
                conditions=[{"host_header": {"values": [address.host]}}],
                actions=[{"type": "forward", "target_group_arn": target_group.arn}],
                opts=child,
            )
            if args.hosted_zone_id is not None:
                aws.route53.Record(
                    f"{name}-alias",
                    zone_id=args.hosted_zone_id,
                    name=address.host,
                    type="A",
                    aliases=[
                        {
                            "name": args.load_balancer_dns_name,
                            "zone_id": args.load_balancer_zone_id,
                            "evaluate_target_health": True,
                        }
                    ],
                    opts=child,
                )
            # The base's certificate carries *.<prDomain>: the host rule is on its HTTPS listener.
            self.tls = True
            self.url = pulumi.Output.from_input(f"https://{address.host}")
        else:
            assert address.port is not None
            routing = aws.lb.Listener(
                f"{name}-listener",
                load_balancer_arn=args.load_balancer_arn,
                port=address.port,
                protocol="HTTP",
                default_actions=[{"type": "forward", "target_group_arn": target_group.arn}],
                opts=child,
            )
            self.tls = False
            self.url = pulumi.Output.concat(
                "http://", args.load_balancer_dns_name, f":{address.port}"
            )

        service = app_service(
            name,
            args,
            self,
            cluster=args.cluster_arn,
            task_definition=task_definition,
            target_group=target_group,
            # Its database, cache user and secret values exist before a task starts.
            depends_on=[routing, execution_policy, *args.start_after],
        )
        self.service_name = service.name
        self.log_group_name = log_group.name
        self.register_outputs({"url": self.url, "serviceName": self.service_name})

"""ElastiCache (Valkey or Redis) with its own subnet group, TLS, encryption at rest and an
auth token that exists only as a Pulumi secret.

A stack hosting pull-request slices (`rbac`) uses ElastiCache RBAC instead of the token: a user
group holding a disabled `default` user, the app's own user and an IAM-authenticated cleanup
user (the slice provisioner deletes a destroyed slice's keys as it), which slices join with
users limited to their key prefix (a token would give every slice every key).

The replication group id is fixed (alarms name its nodes), so a change AWS can only make by
replacement deletes the old group first instead of clashing on the id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.aws.firewall import service_only_security_group
from infra.config.pull_requests import CLEANUP_ACCESS_STRING
from infra.naming import fit, fit_user_id

REDIS_PORT = 6379
# ElastiCache RBAC: passwords of 16 to 128 printable characters.
USER_PASSWORD_LENGTH = 48
# The host app's user: every key, every command but the administrative ones.
APP_ACCESS_STRING = "on ~* +@all -@dangerous"


def replication_group_id(name: str) -> str:
    """The replication group id of the Cache component `name` (IAM ARNs name it)."""
    return fit("aws:elasticache/replicationGroup:ReplicationGroup", name)


def cleanup_user_id(name: str) -> str:
    """The id (and name) of the IAM-authenticated cleanup user of the Cache component `name`."""
    return fit_user_id(f"{replication_group_id(name)}-cleanup")


@dataclass(frozen=True)
class CacheArgs:
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    client_security_group_id: pulumi.Input[str]
    engine: str
    engine_version: str
    node_type: str
    nodes: int
    automatic_failover: bool
    snapshot_days: int
    encrypted: bool
    apply_immediately: bool = False
    # RBAC users instead of the auth token (a stack hosting pull-request slices).
    rbac: bool = False


class Cache(pulumi.ComponentResource):
    """`url` is a secret `rediss://` URL with the auth token."""

    url: pulumi.Output[str]
    primary_endpoint: pulumi.Output[str]
    replication_group_id: pulumi.Output[str]
    member_ids: list[str]
    arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    # The RBAC user group and its own users' ids (None and empty without `rbac`).
    user_group_id: pulumi.Output[str] | None = None
    user_ids: tuple[str, ...] = ()
    # The IAM-authenticated user that deletes a destroyed slice's keys (None without `rbac`).
    cleanup_user_id: str | None = None

    def __init__(
        self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:aws:Cache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        security_group = service_only_security_group(
            name,
            vpc_id=args.vpc_id,
            client_security_group_id=args.client_security_group_id,
            port=REDIS_PORT,
            label=args.engine,
            opts=child,
        )
        # ElastiCache.7: its own subnet group, of private subnets.
        subnets = aws.elasticache.SubnetGroup(
            f"{name}-subnets", subnet_ids=list(args.subnet_ids), opts=child
        )
        group_id = replication_group_id(name)
        # ElastiCache.6: AUTH, or RBAC users. Alphanumeric: the password is embedded in a URL
        # without escaping. AWS accepts either only with transit encryption.
        token = (
            random.RandomPassword(f"{name}-auth-token", length=48, special=False, opts=child)
            if args.encrypted and not args.rbac
            else None
        )
        user = self._users(name, group_id, args) if args.rbac else None
        group = aws.elasticache.ReplicationGroup(
            f"{name}",
            replication_group_id=group_id,
            description=f"{name} cache",
            engine=args.engine,
            engine_version=args.engine_version,
            node_type=args.node_type,
            num_cache_clusters=args.nodes,
            port=REDIS_PORT,
            subnet_group_name=subnets.name,
            security_group_ids=[security_group.id],
            at_rest_encryption_enabled=args.encrypted,  # ElastiCache.4
            transit_encryption_enabled=args.encrypted,  # ElastiCache.5
            auth_token=token.result if token is not None else None,
            # Moving an existing group from its token to the user group: ElastiCache wants the
            # token deleted in the same request (ignored on create).
            auth_token_update_strategy="DELETE" if args.rbac else None,
            user_group_ids=[self.user_group_id] if self.user_group_id is not None else None,
            automatic_failover_enabled=args.automatic_failover,  # ElastiCache.3
            multi_az_enabled=args.automatic_failover,
            snapshot_retention_limit=args.snapshot_days,  # ElastiCache.1
            auto_minor_version_upgrade=True,
            apply_immediately=args.apply_immediately,
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        self.primary_endpoint = group.primary_endpoint_address
        self.replication_group_id = group.id
        self.arn = group.arn
        self.security_group_id = security_group.id
        self.member_ids = [f"{group_id}-{i + 1:03d}" for i in range(args.nodes)]
        credentials: list[pulumi.Input[str]] = (
            ["rediss://:", token.result, "@"]
            if token is not None
            else ["rediss://", user[0], ":", user[1], "@"]
            if user is not None
            else ["redis://"]
        )
        self.url = pulumi.Output.secret(
            pulumi.Output.concat(
                *credentials, group.primary_endpoint_address, ":", str(REDIS_PORT), "/0"
            )
        )
        self.register_outputs(
            {"primaryEndpoint": self.primary_endpoint, "userGroupId": self.user_group_id}
        )

    def _users(
        self, name: str, group_id: str, args: CacheArgs
    ) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        """The user group (in `self.user_group_id`) and the app's (user name, password).

        The group lists only `default` (ElastiCache wants one) and ignores its member list:
        the app's user and every slice's join through associations, so a refresh of this
        stack never removes a live slice's user.
        """
        child = pulumi.ResourceOptions(parent=self)
        engine = args.engine.lower()
        default_id = fit_user_id(f"{group_id}-default")
        disabled = random.RandomPassword(
            f"{name}-default-user", length=USER_PASSWORD_LENGTH, special=False, opts=child
        )
        default = aws.elasticache.User(
            f"{name}-default-user",
            user_id=default_id,
            user_name="default",
            # `off`: nobody logs in as `default`, whatever the password.
            access_string="off -@all",
            engine=engine,
            passwords=[disabled.result],
            opts=child,
        )
        password = random.RandomPassword(
            f"{name}-app-user", length=USER_PASSWORD_LENGTH, special=False, opts=child
        )
        app_user_id = fit_user_id(f"{group_id}-app")
        app = aws.elasticache.User(
            f"{name}-app-user",
            user_id=app_user_id,
            user_name=app_user_id,
            access_string=APP_ACCESS_STRING,
            engine=engine,
            passwords=[password.result],
            opts=child,
        )
        # IAM auth: ElastiCache wants the user name equal to its id, and the engine 7 or later.
        cleanup_id = cleanup_user_id(name)
        cleanup = aws.elasticache.User(
            f"{name}-cleanup-user",
            user_id=cleanup_id,
            user_name=cleanup_id,
            access_string=CLEANUP_ACCESS_STRING,
            engine=engine,
            authentication_mode={"type": "iam"},
            opts=child,
        )
        self.user_ids = (default_id, app_user_id, cleanup_id)
        self.cleanup_user_id = cleanup_id
        user_group = aws.elasticache.UserGroup(
            f"{name}-users",
            user_group_id=fit_user_id(f"{group_id}-users"),
            engine=engine,
            user_ids=[default.user_id],
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["userIds"]),
        )
        association = aws.elasticache.UserGroupAssociation(
            f"{name}-app-user",
            user_group_id=user_group.user_group_id,
            user_id=app.user_id,
            opts=child,
        )
        cleanup_association = aws.elasticache.UserGroupAssociation(
            f"{name}-cleanup-user",
            user_group_id=user_group.user_group_id,
            user_id=cleanup.user_id,
            # ElastiCache modifies a group one change at a time.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[association]),
        )
        # The replication group waits for the memberships: its first client is the app.
        self.user_group_id = pulumi.Output.all(
            user_group.user_group_id, association.id, cleanup_association.id
        ).apply(lambda v: str(v[0]))
        return app.user_name, pulumi.Output.secret(password.result)

"""ElastiCache (Valkey or Redis) with its own subnet group, TLS, encryption at rest and an
auth token that exists only as a Pulumi secret.

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
from infra.naming import fit

REDIS_PORT = 6379


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


class Cache(pulumi.ComponentResource):
    """`url` is a secret `rediss://` URL with the auth token."""

    url: pulumi.Output[str]
    primary_endpoint: pulumi.Output[str]
    replication_group_id: pulumi.Output[str]
    member_ids: list[str]

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
        # ElastiCache.6: AUTH. Alphanumeric: the token is embedded in a URL without escaping.
        # AWS accepts a token only with transit encryption: without it there is none.
        token = (
            random.RandomPassword(f"{name}-auth-token", length=48, special=False, opts=child)
            if args.encrypted
            else None
        )
        group_id = fit("aws:elasticache/replicationGroup:ReplicationGroup", name)
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
            automatic_failover_enabled=args.automatic_failover,  # ElastiCache.3
            multi_az_enabled=args.automatic_failover,
            snapshot_retention_limit=args.snapshot_days,  # ElastiCache.1
            auto_minor_version_upgrade=True,
            apply_immediately=args.apply_immediately,
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        self.primary_endpoint = group.primary_endpoint_address
        self.replication_group_id = group.id
        self.member_ids = [f"{group_id}-{i + 1:03d}" for i in range(args.nodes)]
        credentials: list[pulumi.Input[str]] = (
            ["rediss://:", token.result, "@"] if token is not None else ["redis://"]
        )
        self.url = pulumi.Output.secret(
            pulumi.Output.concat(
                *credentials, group.primary_endpoint_address, ":", str(REDIS_PORT), "/0"
            )
        )
        self.register_outputs({"primaryEndpoint": self.primary_endpoint})

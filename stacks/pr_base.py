"""What a hosting stack exports as `prBase` (and a pr-<n> slice reads), per target.

Why a typed contract: the two sides are different stacks deployed at different times from
possibly different commits; `version` lets a slice refuse a base it does not understand.
"""

from __future__ import annotations

from typing import Literal, TypedDict

import pulumi
from pulumi.runtime.sync_await import _sync_await

from infra.config.pull_requests import PR_BASE_OUTPUT, base_stack_reference

PR_BASE_VERSION = 1


class AwsPrBase(TypedDict):
    """Staging's shared pieces on AWS (output `prBase` of a stack with pullRequests.host)."""

    target: Literal["aws"]
    version: int
    region: str
    vpcId: str
    #: The load balancer's nodes live here: the only proxies whose X-Forwarded-For counts.
    vpcCidr: str
    clusterName: str
    clusterArn: str
    taskSubnetIds: list[str]
    assignPublicIp: bool
    #: The tasks' group: the one the database and cache security groups admit.
    taskSecurityGroupId: str
    albSecurityGroupId: str
    loadBalancerArn: str
    loadBalancerDnsName: str
    loadBalancerZoneId: str
    #: Where host rules go: the HTTPS listener when the base has TLS, else the HTTP one.
    listenerArn: str
    #: `pr-<n>.<prDomain>` is covered by the base's wildcard certificate; None: no domain,
    #: a slice gets a listener on port PR_PORT_OFFSET + n instead.
    prDomain: str | None
    hostedZoneId: str | None
    databaseAddress: str
    databasePort: int
    #: The Lambda function that creates and drops a slice's database and role.
    provisionerFunctionName: str
    cacheAddress: str
    cachePort: int
    #: The ElastiCache RBAC user group a slice's user joins.
    cacheUserGroupId: str
    #: `redis` or `valkey`: an ElastiCache user must name its group's engine.
    cacheEngine: str
    logRetentionDays: int


class GcpPrBase(TypedDict):
    """Staging's shared pieces on GCP (output `prBase` of a gcp stack with pullRequests.host).

    No secret travels here: a slice reads the Redis AUTH string from the Memorystore API and
    the server CAs from the host's own Secret Manager secrets (never its DATABASE_URL or
    REDIS_URL), pinned to the versions below.
    """

    target: Literal["gcp"]
    version: int
    project: str
    region: str
    #: Direct VPC egress: the slice's Cloud Run service egresses through this network/subnet.
    network: str
    subnet: str
    #: The Cloud SQL instance (name, as `gcp.sql.Database(instance=...)` takes it).
    databaseInstance: str
    databaseHost: str
    databasePort: int
    databaseCaSecretId: str
    databaseCaSecretVersion: str
    #: The Memorystore instance's name (its AUTH string is read through the API).
    redisInstance: str
    redisHost: str
    redisPort: int
    redisCaSecretId: str
    redisCaSecretVersion: str
    #: The host's Artifact Registry repository; None when the host deploys a prebuilt image.
    registryUrl: str | None
    #: The runtime account the host already lets read both CA secrets (its `ephemeral`
    #: identity's); a slice running as it grants nothing on the host's secrets.
    caReaderServiceAccount: str | None


def read_pr_base(base: str, resource_name: str | None = None) -> tuple[str, object]:
    """(the base's full stack name, its raw `prBase` or None), read before anything is
    registered (waiting as Pulumi's own synchronous invokes do), so a slice can refuse a bad
    base with one message and nothing half-made. A stack reference is read in previews too."""
    full = base_stack_reference(base, pulumi.get_organization(), pulumi.get_project())
    reference = pulumi.StackReference(resource_name or full, stack_name=full)
    details = _sync_await(reference.get_output_details(PR_BASE_OUTPUT))
    return full, details.value if details.value is not None else details.secret_value

"""INTERIM, until helper pr-base's branch lands: staging does not export `prBase` yet.

The engine lends the base's run a `prBase` assembled from what that run registered (names and
mock identifiers of its real VPC, cluster, load balancer, listener, database and cache), so a
pr-<n> slice can be checked and priced offline now. Once staging exports `prBase` itself, the
engine keeps the real one (it only fills a missing output) and this module and its hook in
cli/engine.py are to be deleted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stacks.pr_base import PR_BASE_VERSION, AwsPrBase

MOCK_ACCOUNT = "123456789012"
MOCK_ALB_ZONE = "Z32O12XQLNTSW2"

if TYPE_CHECKING:
    from cli.engine import ProgramRun


def stand_in(run: ProgramRun) -> AwsPrBase | None:
    """The base's shared pieces as staging will export them; None for a non-AWS base."""
    if run.outputs.get("target") != "aws" or not run.of_type("aws:lb/loadBalancer:LoadBalancer"):
        return None

    def one(type_: str, suffix: str = "") -> Any:
        found = [r for r in run.of_type(type_) if r.name.endswith(suffix)]
        return found[0]

    balancer = one("aws:lb/loadBalancer:LoadBalancer")
    listener = one(
        "aws:lb/listener:Listener",
        "-https" if run.of_type("aws:acm/certificate:Certificate") else "-http",
    )
    service = one("aws:ecs/service:Service").plain
    network = service["networkConfiguration"]
    cache = one("aws:elasticache/replicationGroup:ReplicationGroup")
    region = str(run.outputs["region"])
    arn = f"arn:aws:{{}}:{region}:{MOCK_ACCOUNT}:{{}}"
    dns_name = str(run.outputs["serviceUrl"]).partition("://")[2]
    return {
        "target": "aws",
        "version": PR_BASE_VERSION,
        "region": region,
        "vpcId": f"{one('aws:ec2/vpc:Vpc').name}-id",
        "clusterName": str(run.outputs["clusterName"]),
        "clusterArn": arn.format("ecs", f"cluster/{run.outputs['clusterName']}"),
        "taskSubnetIds": list(network["subnets"]),
        "assignPublicIp": bool(network.get("assignPublicIp", False)),
        "taskSecurityGroupId": network["securityGroups"][0],
        "albSecurityGroupId": balancer.plain["securityGroups"][0],
        "loadBalancerArn": arn.format("elasticloadbalancing", f"loadbalancer/app/{balancer.name}"),
        "loadBalancerDnsName": dns_name,
        "loadBalancerZoneId": MOCK_ALB_ZONE,
        "listenerArn": arn.format("elasticloadbalancing", f"listener/app/{listener.name}"),
        "prDomain": None,
        "hostedZoneId": None,
        "databaseAddress": str(run.outputs["databaseEndpoint"]),
        "databasePort": 5432,
        "provisionerFunctionName": f"{run.outputs['serviceName']}-pr-provisioner",
        "cacheAddress": f"master.{cache.name}.mock.euw1.cache.amazonaws.com",
        "cachePort": 6379,
        "cacheUserGroupId": f"{run.outputs['serviceName']}-pr-users",
        "logRetentionDays": int(
            one("aws:cloudwatch/logGroup:LogGroup", "-logs").plain["retentionInDays"]
        ),
    }

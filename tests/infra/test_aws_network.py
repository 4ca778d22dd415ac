"""Network of the AWS stacks: subnets, NAT by tier, security groups, flow logs, provider."""

from __future__ import annotations

import json

import pytest

from tests.infra.test_aws_fixtures import tier_run, variant_run

SUBNET = "aws:ec2/subnet:Subnet"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
TIERS = ("ephemeral", "staging", "production")


@pytest.mark.parametrize("tier", TIERS)
def test_two_public_and_two_private_subnets_in_two_zones(tier: str) -> None:
    run = tier_run(tier)
    subnets = run.of_type(SUBNET)
    public = [s for s in subnets if s.plain["tags"]["tier"] == "public"]
    private = [s for s in subnets if s.plain["tags"]["tier"] == "private"]
    assert len(public) == len(private) == 2
    # ELB.13: the load balancer's subnets span at least two AZs.
    assert len({s.plain["availabilityZone"] for s in public}) == 2
    assert len({s.plain["availabilityZone"] for s in private}) == 2
    # EC2.15: no subnet hands out public IPs automatically.
    assert all(s.plain["mapPublicIpOnLaunch"] is False for s in subnets)


def test_three_zones_when_configured() -> None:
    run = variant_run("three-azs")
    assert len(run.of_type(SUBNET)) == 6
    assert len(run.of_type("aws:ec2/natGateway:NatGateway")) == 1
    assert run.outputs["natGateways"] == 1


@pytest.mark.parametrize(("tier", "nats"), [("ephemeral", 0), ("staging", 0), ("production", 2)])
def test_nat_gateways_by_tier(tier: str, nats: int) -> None:
    run = tier_run(tier)
    assert len(run.of_type("aws:ec2/natGateway:NatGateway")) == nats
    assert len(run.of_type("aws:ec2/eip:Eip")) == nats
    assert run.outputs["natGateways"] == nats
    private_defaults = [r for r in run.of_type("aws:ec2/route:Route") if "private" in r.name]
    assert len(private_defaults) == nats
    # One NAT per AZ: each private route table uses its own zone's gateway.
    assert len({r.plain["natGatewayId"] for r in private_defaults}) == nats


@pytest.mark.parametrize("tier", TIERS)
def test_default_security_group_allows_nothing(tier: str) -> None:
    # EC2.2
    default = tier_run(tier).one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert default.plain.get("ingress", []) == [] and default.plain.get("egress", []) == []


@pytest.mark.parametrize("tier", TIERS)
def test_only_the_load_balancer_is_open_to_the_internet(tier: str) -> None:
    run = tier_run(tier)
    open_rules = [r for r in run.of_type(INGRESS) if r.plain.get("cidrIpv4") == "0.0.0.0/0"]
    # EC2.18/19: open ingress only on the ALB, only on HTTP (and HTTPS with a certificate:
    # production always has one, issued for its app.domain).
    ports = [80, 443] if tier == "production" else [80]
    slices = {f"agent-{run.stack}-alb-in-slices"} if tier == "staging" else set()
    assert {r.name for r in open_rules} == {f"agent-{run.stack}-alb-in-{p}" for p in ports} | slices
    assert sorted(r.plain["fromPort"] for r in open_rules) == sorted(
        ports + ([10000] if slices else [])
    )
    with_tls = variant_run("tls")
    tls_open = {
        (r.plain["fromPort"], r.plain["toPort"])
        for r in with_tls.of_type(INGRESS)
        if r.plain.get("cidrIpv4") == "0.0.0.0/0"
    }
    # Staging hosts pr-<n> slices: without a domain they answer on ports 10000 + n.
    assert tls_open == {(80, 80), (443, 443), (10000, 65535)}
    # Every other ingress references a security group, never a CIDR.
    for rule in run.of_type(INGRESS):
        if rule not in open_rules:
            assert rule.plain.get("referencedSecurityGroupId"), rule.name
            assert "cidrIpv4" not in rule.plain, rule.name


@pytest.mark.parametrize("tier", TIERS)
def test_tasks_accept_traffic_only_from_the_load_balancer(tier: str) -> None:
    run = tier_run(tier)
    name = f"agent-{run.stack}"
    rule = run.one(INGRESS, f"{name}-tasks-from-alb")
    alb_sg = run.one("aws:ec2/securityGroup:SecurityGroup", f"{name}-alb")
    tasks_sg = run.one("aws:ec2/securityGroup:SecurityGroup", f"{name}-tasks")
    assert rule.plain["referencedSecurityGroupId"] == f"{alb_sg.name}-id"
    assert rule.plain["securityGroupId"] == f"{tasks_sg.name}-id"
    assert rule.plain["fromPort"] == rule.plain["toPort"] == 8000


@pytest.mark.parametrize(
    ("tier", "public_ip"), [("ephemeral", True), ("staging", True), ("production", False)]
)
def test_tasks_are_private_behind_nat_only_in_production(tier: str, public_ip: bool) -> None:
    run = tier_run(tier)
    service = run.one("aws:ecs/service:Service").plain
    network = service["networkConfiguration"]
    # ECS.2: production tasks get no public IP and sit in the private subnets.
    assert network["assignPublicIp"] is public_ip
    kind = "public" if public_ip else "private"
    assert all(f"-{kind}-" in subnet for subnet in network["subnets"])


@pytest.mark.parametrize(
    ("tier", "enabled"), [("ephemeral", False), ("staging", False), ("production", True)]
)
def test_vpc_flow_logs_in_production(tier: str, enabled: bool) -> None:
    run = tier_run(tier)
    flow_logs = run.of_type("aws:ec2/flowLog:FlowLog")
    # EC2.6
    assert len(flow_logs) == (1 if enabled else 0)
    if enabled:
        # Refused traffic only (EC2.6's default parameter): all traffic, ingested per GB into
        # CloudWatch, can cost more than the service.
        assert flow_logs[0].plain["trafficType"] == "REJECT"
        group = run.one("aws:cloudwatch/logGroup:LogGroup", "agent-production-flow-logs")
        assert group.plain["retentionInDays"] == 365
        role = run.one("aws:iam/role:Role", "agent-production-flow-logs")
        (trust,) = json.loads(role.plain["assumeRolePolicy"])["Statement"]
        # Only this account's flow logs may assume the role (confused deputy).
        assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
        assert trust["Condition"] == {
            "StringEquals": {"aws:SourceAccount": "123456789012"},
            "ArnLike": {"aws:SourceArn": "arn:aws:ec2:*:123456789012:vpc-flow-log/*"},
        }


@pytest.mark.parametrize(
    ("tier", "endpoint"), [("ephemeral", False), ("staging", False), ("production", True)]
)
def test_s3_gateway_endpoint_where_tasks_sit_behind_nat(tier: str, endpoint: bool) -> None:
    run = tier_run(tier)
    endpoints = run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert len(endpoints) == (1 if endpoint else 0)
    if endpoint:
        # Image layers come from S3: through the gateway they skip NAT's per-GB charge.
        s3 = endpoints[0].plain
        assert s3["serviceName"] == "com.amazonaws.eu-west-1.s3"
        assert s3["vpcEndpointType"] == "Gateway"
        private_tables = [
            t.name for t in run.of_type("aws:ec2/routeTable:RouteTable") if "-private-" in t.name
        ]
        assert len(private_tables) == 2
        assert sorted(s3["routeTableIds"]) == sorted(f"{t}-id" for t in private_tables)


@pytest.mark.parametrize("tier", TIERS)
def test_every_aws_resource_uses_the_stack_provider(tier: str) -> None:
    run = tier_run(tier)
    (provider,) = run.of_type("pulumi:providers:aws")
    assert provider.plain["region"] == "eu-west-1"
    # Provider inputs travel as JSON strings.
    tags = json.loads(provider.plain["defaultTags"])["tags"]
    assert tags == {"project": "agent-deploy", "stack": run.stack, "tier": tier, "app": "agent"}
    for resource in run.resources:
        if resource.custom and resource.type.startswith("aws:"):
            assert resource.provider.startswith(provider.urn), resource.name
            assert resource.name.startswith(f"agent-{run.stack}"), resource.name

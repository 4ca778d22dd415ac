"""Staging hosting pr-<n> slices (`pullRequests.host`, shipped on): the `prBase` output, the
slice provisioner, the cache's RBAC users, the addresses slices get, what the `ephemeral` role
may and may not do to the host, and staging without `host` unchanged."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any, get_type_hints

import pytest

from cli.engine import ProgramRun, Resource, _stable_number, contains_secret, is_secret
from infra.aws.identity import (
    RDS_OWNER_CONDITION_KEY,
    DeployIdentity,
    DeployIdentityArgs,
    GitHubRole,
    HostedSlices,
    SliceHost,
)
from infra.aws.provisioner import HANDLER, PROVISIONER_USER, RUNTIME
from infra.config.pull_requests import CLEANUP_ACCESS_STRING
from stacks import StackConfigError
from stacks.pr_base import PR_BASE_VERSION, AwsPrBase
from tests.harness import run_components, run_stack
from tests.infra.iam_policy import decide
from tests.infra.test_aws_fixtures import container, containers, policy, tier_run

ACCOUNT = "123456789012"
REGION = "eu-west-1"
MOCK_ARN_REGION = "us-east-1"  # where the mocks engine puts ARNs it makes up
LAMBDA = "aws:lambda/function:Function"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
USER = "aws:elasticache/user:User"
USER_GROUP = "aws:elasticache/userGroup:UserGroup"
GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
LISTENER = "aws:lb/listener:Listener"
RDS = "aws:rds/instance:Instance"
DOMAIN = "staging.example.com"
# The AWS-managed policy the `ephemeral` role also holds (for self-contained pr-<n> stacks):
# everything but IAM, Organizations and Account, as AWS defines it.
POWER_USER = {
    "Statement": [
        {
            "Effect": "Allow",
            "NotAction": ["iam:*", "organizations:*", "account:*"],
            "Resource": "*",
        }
    ]
}


@cache
def hosting() -> ProgramRun:
    return tier_run("staging")


@cache
def with_domain() -> ProgramRun:
    return run_stack("staging", {"app": {"domain": DOMAIN}})


@cache
def not_hosting(domain: bool = False) -> ProgramRun:
    override: dict[str, Any] = {"pullRequests": {"host": False}}
    if domain:
        override["app"] = {"domain": DOMAIN}
    return run_stack("staging", override)


def _mock_arn(resource: Resource) -> str:
    service = resource.type.split(":")[1].split("/")[0]
    if resource.type == LAMBDA:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{resource.plain['name']}"
    return f"arn:aws:{service}:{MOCK_ARN_REGION}:{ACCOUNT}:{resource.name}"


def _listener(run: ProgramRun, port: int) -> Resource:
    (listener,) = [r for r in run.of_type(LISTENER) if r.plain["port"] == port]
    return listener


# --------------------------------------------------------------------------------------------
# prBase
# --------------------------------------------------------------------------------------------
def test_pr_base_has_exactly_the_contracts_fields_from_the_right_resources() -> None:
    run = hosting()
    base = run.outputs["prBase"]
    assert set(base) == set(AwsPrBase.__annotations__)
    service = run.one("aws:ecs/service:Service").plain
    network = service["networkConfiguration"]
    load_balancer = run.one("aws:lb/loadBalancer:LoadBalancer")
    cluster = run.one("aws:ecs/cluster:Cluster")
    database = run.one(RDS)
    expected = {
        "target": "aws",
        "version": PR_BASE_VERSION,
        "region": REGION,
        "vpcId": "agent-staging-vpc-id",
        "vpcCidr": run.one("aws:ec2/vpc:Vpc").plain["cidrBlock"],
        "clusterName": cluster.plain["name"],
        "clusterArn": _mock_arn(cluster),
        "taskSubnetIds": network["subnets"],
        "assignPublicIp": network["assignPublicIp"],
        "taskSecurityGroupId": network["securityGroups"][0],
        "albSecurityGroupId": load_balancer.plain["securityGroups"][0],
        "loadBalancerArn": _mock_arn(load_balancer),
        "loadBalancerDnsName": run.outputs["serviceUrl"].removeprefix("http://"),
        "loadBalancerZoneId": "Z32O12XQLNTSW2",
        # No domain on the shipped staging: slices get ports, rules go on the HTTP listener.
        "listenerArn": _mock_arn(_listener(run, 80)),
        "prDomain": None,
        "hostedZoneId": None,
        "databaseAddress": run.outputs["databaseEndpoint"],
        "databasePort": database.plain["port"],
        "provisionerFunctionName": run.one(LAMBDA).plain["name"],
        "cacheAddress": f"master.{run.one(GROUP).name}.mock.euw1.cache.amazonaws.com",
        "cachePort": run.one(GROUP).plain["port"],
        "cacheUserGroupId": run.one(USER_GROUP).plain["userGroupId"],
        "cacheEngine": run.one(GROUP).plain["engine"],
        "logRetentionDays": run.one("aws:cloudwatch/logGroup:LogGroup", "agent-staging-logs").plain[
            "retentionInDays"
        ],
    }
    assert base == expected
    # The values have the types the contract declares (what a slice's code relies on).
    for key, hint in get_type_hints(AwsPrBase).items():
        origin = getattr(hint, "__origin__", None)
        if key == "target":
            continue
        allowed = tuple(getattr(hint, "__args__", ())) if origin is None else (origin,)
        allowed = allowed or (hint,)
        assert isinstance(base[key], allowed if origin is not list else list), key
    assert "prBase" not in run.secret_outputs


def test_with_a_domain_slices_are_named_under_the_hosts_hostname_and_its_certificate() -> None:
    run = with_domain()
    base = run.outputs["prBase"]
    assert base["prDomain"] == DOMAIN
    assert (
        base["hostedZoneId"]
        == run.one("aws:route53/record:Record", "agent-staging-domain-validation").plain["zoneId"]
    )
    assert base["listenerArn"] == _mock_arn(_listener(run, 443))
    certificate = run.one("aws:acm/certificate:Certificate").plain
    assert certificate["domainName"] == DOMAIN
    assert certificate["subjectAlternativeNames"] == [f"*.{DOMAIN}"]
    # One validation record serves both names (ACM gives a wildcard its base name's).
    validation = run.one("aws:acm/certificateValidation:CertificateValidation").plain
    assert len(validation["validationRecordFqdns"]) == 1
    # Host rules, not ports: nothing beyond 80 and 443 is open.
    open_ports = {
        (r.plain["fromPort"], r.plain["toPort"])
        for r in run.of_type(INGRESS)
        if r.plain.get("cidrIpv4") == "0.0.0.0/0"
    }
    assert open_ports == {(80, 80), (443, 443)}


def test_without_a_domain_the_load_balancer_admits_the_slice_ports_like_port_80() -> None:
    run = hosting()
    rule = run.one(INGRESS, "agent-staging-alb-in-slices").plain
    http = run.one(INGRESS, "agent-staging-alb-in-80").plain
    assert (rule["fromPort"], rule["toPort"]) == (10000, 65535)
    assert rule["ipProtocol"] == "tcp"
    assert rule["cidrIpv4"] == http["cidrIpv4"]
    assert rule["securityGroupId"] == http["securityGroupId"]


# --------------------------------------------------------------------------------------------
# The provisioner
# --------------------------------------------------------------------------------------------
def test_the_provisioner_runs_in_the_vpc_reaching_only_the_database_and_cache() -> None:
    run = hosting()
    function = run.one(LAMBDA)
    plain = function.plain
    assert plain["runtime"] == RUNTIME and plain["handler"] == HANDLER
    assert plain["timeout"] == 60
    assert 1 <= plain["reservedConcurrentExecutions"] <= 5
    service = run.one("aws:ecs/service:Service").plain
    assert plain["vpcConfig"]["subnetIds"] == service["networkConfiguration"]["subnets"]
    (group,) = plain["vpcConfig"]["securityGroupIds"]
    assert group == "agent-staging-pr-host-provisioner-id"
    # Out: PostgreSQL to the database's group and Redis to the cache's, only; in: nothing.
    out = [r.plain for r in run.of_type(EGRESS) if r.plain["securityGroupId"] == group]
    assert sorted((r["referencedSecurityGroupId"], r["fromPort"], r["toPort"]) for r in out) == [
        ("agent-staging-cache-sg-id", 6379, 6379),
        ("agent-staging-db-sg-id", 5432, 5432),
    ]
    assert not [r for r in out if "cidrIpv4" in r or "cidrIpv6" in r]
    assert not [r for r in run.of_type(INGRESS) if r.plain["securityGroupId"] == group]
    for target, port in (("agent-staging-db-sg-id", 5432), ("agent-staging-cache-sg-id", 6379)):
        admitted = [
            r.plain
            for r in run.of_type(INGRESS)
            if r.plain["securityGroupId"] == target
            and r.plain["referencedSecurityGroupId"] == group
        ]
        assert [(r["fromPort"], r["toPort"]) for r in admitted] == [(port, port)], target
    rules = [
        r.urn for r in run.of_type(INGRESS) if r.plain.get("referencedSecurityGroupId") == group
    ]
    assert set(rules) <= set(function.depends_on)  # reachable from its first invocation
    cache = run.one(GROUP)
    assert plain["environment"]["variables"] == {
        "DATABASE_HOST": run.outputs["databaseEndpoint"],
        "DATABASE_PORT": "5432",
        "DATABASE_NAME": "agent",
        "DATABASE_USER": PROVISIONER_USER,
        "CACHE_HOST": f"master.{cache.name}.mock.euw1.cache.amazonaws.com",
        "CACHE_PORT": "6379",
        "CACHE_NAME": f"{cache.name}-id",  # the replication group's id
        "CACHE_USER": "agent-staging-cache-cleanup",
    }
    assert "code" in function.inputs


def test_the_cleanup_cache_user_signs_in_with_iam_and_reaches_only_slice_keys() -> None:
    run = hosting()
    cleanup = run.one(USER, "agent-staging-cache-cleanup-user").plain
    # ElastiCache's IAM auth: type iam, no password, user name equal to the id.
    assert cleanup["authenticationMode"] == {"type": "iam"}
    assert "passwords" not in cleanup
    assert cleanup["userName"] == cleanup["userId"] == "agent-staging-cache-cleanup"
    assert cleanup["accessString"] == CLEANUP_ACCESS_STRING
    members = [
        r.plain["userId"]
        for r in run.of_type("aws:elasticache/userGroupAssociation:UserGroupAssociation")
    ]
    assert "agent-staging-cache-cleanup" in members
    # Only the provisioner may connect as it, to this cache only.
    document = policy(run.one(ROLE_POLICY, "agent-staging-pr-host-provisioner"))
    cache_arn = f"arn:aws:elasticache:{MOCK_ARN_REGION}:{ACCOUNT}:agent-staging-cache"
    user = f"arn:aws:elasticache:{REGION}:{ACCOUNT}:user:agent-staging-cache-cleanup"
    assert decide([document], "elasticache:Connect", cache_arn) == "Allow"
    assert decide([document], "elasticache:Connect", user) == "Allow"
    for other in ("agent-staging-cache-app", "agent-staging-cache-default", "agent-pr-7"):
        arn = f"arn:aws:elasticache:{REGION}:{ACCOUNT}:user:{other}"
        assert decide([document], "elasticache:Connect", arn) == "ImplicitDeny", other
    # Staging's boundary names the group the cache really has (both derive its id by name).
    group_id = run.one(GROUP).plain["replicationGroupId"]
    (boundary,) = [
        policy(p) for p in run.of_type("aws:iam/policy:Policy")
        if p.plain["name"] == "agent-staging-boundary"
    ]  # fmt: skip
    real = f"arn:aws:elasticache:{REGION}:{ACCOUNT}:replicationgroup:{group_id}"
    assert decide([boundary], "elasticache:Connect", real) == "Allow"
    assert decide([boundary], "elasticache:Connect", f"{real}-other") == "ImplicitDeny"
    # The ephemeral role may not modify or delete it (the host's users are denied to slices).
    guard = run.one("aws:iam/policy:Policy", "agent-staging-identity-ephemeral-host-guard")
    for action in ("elasticache:ModifyUser", "elasticache:DeleteUser"):
        assert decide([POWER_USER, policy(guard)], action, user) == "Deny", action


def test_a_host_cache_needs_engine_7_for_its_iam_user() -> None:
    with pytest.raises(StackConfigError) as refused:
        run_stack("staging", {"cache": {"engine": "redis", "engineVersion": "6.2"}})
    message = str(refused.value)
    assert "agent-deploy:cache.engineVersion = 6.2" in message and "7.0 or later" in message
    # Without hosting, both stay allowed.
    run_stack("staging", {"cache": {"engine": "redis", "engineVersion": "6.2"},
                          "pullRequests": {"host": False}})  # fmt: skip


def test_the_provisioner_signs_in_with_iam_as_its_user_only() -> None:
    run = hosting()
    database = run.one(RDS)
    assert database.plain["iamDatabaseAuthenticationEnabled"] is True
    role = run.one("aws:iam/role:Role", "agent-staging-pr-host-provisioner")
    assert role.plain["permissionsBoundary"] == (
        f"arn:aws:iam::{ACCOUNT}:policy/agent-staging-boundary"
    )
    (trust,) = policy(role, "assumeRolePolicy")["Statement"]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    document = policy(run.one(ROLE_POLICY, "agent-staging-pr-host-provisioner"))
    resource_id = f"db-{_stable_number(database.name, 26)}"  # the mocks' DbiResourceId
    own = f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:{resource_id}/{PROVISIONER_USER}"
    assert decide([document], "rds-db:connect", own) == "Allow"
    for other in (f"{resource_id}/postgres", f"{resource_id}/app", f"db-OTHER/{PROVISIONER_USER}"):
        arn = f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:{other}"
        assert decide([document], "rds-db:connect", arn) == "ImplicitDeny", other
    # Logs only into its own group, which exists (with a retention) before the function.
    log_group = run.one("aws:cloudwatch/logGroup:LogGroup", "agent-staging-pr-host-provisioner")
    assert log_group.plain["name"] == f"/aws/lambda/{run.one(LAMBDA).plain['name']}"
    assert log_group.plain["retentionInDays"] == 30
    assert log_group.urn in run.one(LAMBDA).depends_on
    stream = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{log_group.plain['name']}:log-stream:x"
    assert decide([document], "logs:PutLogEvents", stream) == "Allow"
    other_stream = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/ecs/agent-staging:log-stream:x"
    assert decide([document], "logs:PutLogEvents", other_stream) == "ImplicitDeny"
    assert decide([document], "secretsmanager:GetSecretValue", "*") == "ImplicitDeny"


def test_db_init_creates_the_provisioner_role() -> None:
    assert container(hosting(), "db-init")["environment"] == sorted(
        [
            *container(not_hosting(), "db-init")["environment"],
            {"name": "DATABASE_PROVISIONER_USER", "value": PROVISIONER_USER},
        ],
        key=lambda v: v["name"],
    )
    # Only db-init: neither the app nor the migration gets it.
    for name, definition in containers(hosting()).items():
        if name != "db-init":
            assert "DATABASE_PROVISIONER_USER" not in str(definition["environment"]), name


# --------------------------------------------------------------------------------------------
# Cache RBAC
# --------------------------------------------------------------------------------------------
def test_the_cache_authenticates_users_of_a_group_with_a_disabled_default() -> None:
    run = hosting()
    group = run.one(GROUP)
    assert "authToken" not in group.inputs
    # An existing staging switches from its token in place: the token goes in that request.
    assert group.plain["authTokenUpdateStrategy"] == "DELETE"
    user_group = run.one(USER_GROUP)
    assert group.plain["userGroupIds"] == [user_group.plain["userGroupId"]]
    users = {u.plain["userName"]: u for u in run.of_type(USER)}
    assert set(users) == {"default", "agent-staging-cache-app", "agent-staging-cache-cleanup"}
    assert users["default"].plain["accessString"].startswith("off ")
    # Members join through associations, which the group's own list ignores (a refresh of
    # staging never drops a live slice's user).
    assert user_group.plain["userIds"] == [users["default"].plain["userId"]]
    assert "userIds" in user_group.ignore_changes
    association = run.one(
        "aws:elasticache/userGroupAssociation:UserGroupAssociation", "agent-staging-cache-app-user"
    ).plain
    assert association["userId"] == users["agent-staging-cache-app"].plain["userId"]
    assert association["userGroupId"] == user_group.plain["userGroupId"]
    for user in users.values():
        if user.plain.get("authenticationMode") == {"type": "iam"}:
            continue  # the cleanup user: no password
        (password,) = user.plain["passwords"]
        assert contains_secret(user.inputs["passwords"])
        assert 16 <= len(password) <= 128
        assert user.plain["engine"] == "valkey"
    for identifier in [*(u.plain["userId"] for u in users.values()), user_group.name]:
        assert re.fullmatch(r"[a-z][a-z0-9-]{0,39}", identifier), identifier
    assert run.outputs["prBase"]["cacheUserGroupId"] == user_group.plain["userGroupId"]


def test_the_apps_redis_url_carries_its_user_and_password() -> None:
    run = hosting()
    app = run.one(USER, "agent-staging-cache-app-user").plain
    version = run.one(
        "aws:secretsmanager/secretVersion:SecretVersion", "agent-staging-secrets-redis-url"
    )
    assert version.is_secret("secretString")
    assert version.plain["secretString"] == (
        f"rediss://{app['userName']}:{app['passwords'][0]}@"
        "master.agent-staging-cache.mock.euw1.cache.amazonaws.com:6379/0"
    )
    assert app["passwords"][0] not in json.dumps(containers(run))


# --------------------------------------------------------------------------------------------
# The `ephemeral` role against the host
# --------------------------------------------------------------------------------------------
GUARD = "agent-staging-identity-ephemeral-host-guard"


def _ephemeral_documents(run: ProgramRun) -> list[dict[str, Any]]:
    """PowerUserAccess, the host guard (managed, attached), then the inline policies."""
    return [
        POWER_USER,
        policy(run.one("aws:iam/policy:Policy", GUARD)),
        policy(run.one(ROLE_POLICY, "agent-staging-identity-ephemeral-iam")),
        policy(run.one(ROLE_POLICY, "agent-staging-identity-ephemeral-slices")),
    ]


def _ecs(path: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:{path}"


def _elasticache(path: str) -> str:
    return f"arn:aws:elasticache:{REGION}:{ACCOUNT}:{path}"


def test_the_ephemeral_role_deploys_a_slice_on_the_host() -> None:
    run = hosting()
    documents = _ephemeral_documents(run)
    slices = policy(run.one(ROLE_POLICY, "agent-staging-identity-ephemeral-slices"))
    function = _mock_arn(run.one(LAMBDA))
    group = _elasticache(f"usergroup:{run.one(USER_GROUP).plain['userGroupId']}")
    http = _mock_arn(_listener(run, 80))
    allowed = [
        ("lambda:InvokeFunction", function),
        ("elasticache:CreateUser", _elasticache("user:agent-pr-42")),
        ("elasticache:DeleteUser", _elasticache("user:agent-pr-42")),
        ("elasticache:ModifyUserGroup", group),
        ("ecs:CreateService", _ecs("service/agent-staging/agent-pr-42")),
        ("ecs:UpdateService", _ecs("service/agent-staging/agent-pr-42")),
        ("ecs:DeleteService", _ecs("service/agent-staging/agent-pr-42")),
        ("ecs:RegisterTaskDefinition", "*"),
        ("elasticloadbalancing:CreateRule", http),
        (
            "elasticloadbalancing:CreateListener",
            _mock_arn(run.one("aws:lb/loadBalancer:LoadBalancer")),
        ),
        (
            "elasticloadbalancing:CreateTargetGroup",
            f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/agent-pr-42-tg/abc",
        ),
        (
            "secretsmanager:CreateSecret",
            f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:agent-pr-42-x",
        ),
        ("logs:CreateLogGroup", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/ecs/agent-pr-42"),
    ]
    for action, resource in allowed:
        assert decide(documents, action, resource) == "Allow", (action, resource)
        # Granted by the slices policy itself, not only by PowerUserAccess.
        assert decide([slices], action, resource) == "Allow", (action, resource)
    # Self-contained pr-<n> stacks still run their own tasks (through PowerUserAccess).
    assert decide(documents, "ecs:RunTask", _ecs("task-definition/agent-pr-42:3")) == "Allow"
    # Its own policies together stay within IAM's 10,240 characters per role, with room for
    # real ARNs (a listener's is about 70 characters longer than the mocks'), domain or not.
    for each in (run, with_domain()):
        documents = _ephemeral_documents(each)
        size = sum(len("".join(json.dumps(d).split())) for d in documents[2:])
        assert size <= 10_240 - 800, size
        # ...and the guard within a managed policy's 6,144.
        assert len("".join(json.dumps(documents[1]).split())) <= 6_144 - 600


def test_the_ephemeral_role_cannot_modify_the_hosts_own_resources() -> None:
    run = hosting()
    documents = _ephemeral_documents(run)
    users = {u.plain["userName"]: u.plain["userId"] for u in run.of_type(USER)}
    database = _mock_arn(run.one(RDS))
    master = run.one(RDS)  # the RDS-managed secret's ARN, as the mocks give it
    master_secret = next(
        s
        for s in policy(run.one("aws:iam/policy:Policy", GUARD))["Statement"]
        if s["Sid"] == "DenyHostSecrets"
    )["Resource"]
    denied = [
        # The host's service, in its cluster, and any other service not named for a pr stack.
        ("ecs:UpdateService", _ecs("service/agent-staging/agent-staging")),
        ("ecs:DeleteService", _ecs("service/agent-staging/agent-staging")),
        ("ecs:UpdateService", _ecs("service/agent-production/agent-production")),
        ("ecs:CreateService", _ecs("service/agent-staging/agent-staging-2")),
        ("ecs:DeleteCluster", _mock_arn(run.one("aws:ecs/cluster:Cluster"))),
        ("ecs:PutClusterCapacityProviders", _mock_arn(run.one("aws:ecs/cluster:Cluster"))),
        # A task of the host's definition (db-init holds the master password).
        ("ecs:RunTask", _ecs("task-definition/agent-staging:7")),
        # The listener's default action, the listener, the load balancer, its target group.
        ("elasticloadbalancing:ModifyListener", _mock_arn(_listener(run, 80))),
        ("elasticloadbalancing:DeleteListener", _mock_arn(_listener(run, 80))),
        (
            "elasticloadbalancing:DeleteLoadBalancer",
            _mock_arn(run.one("aws:lb/loadBalancer:LoadBalancer")),
        ),
        (
            "elasticloadbalancing:SetSecurityGroups",
            _mock_arn(run.one("aws:lb/loadBalancer:LoadBalancer")),
        ),
        (
            "elasticloadbalancing:DeregisterTargets",
            _mock_arn(run.one("aws:lb/targetGroup:TargetGroup")),
        ),
        # The database.
        ("rds:ModifyDBInstance", database),
        ("rds:DeleteDBInstance", database),
        ("rds:RebootDBInstance", database),
        # The cache, its group and its own users (membership changes name the users).
        ("elasticache:ModifyReplicationGroup", _mock_arn(run.one(GROUP))),
        ("elasticache:ModifyUser", _elasticache(f"user:{users['agent-staging-cache-app']}")),
        ("elasticache:DeleteUser", _elasticache(f"user:{users['default']}")),
        ("elasticache:ModifyUserGroup", _elasticache(f"user:{users['agent-staging-cache-app']}")),
        (
            "elasticache:DeleteUserGroup",
            _elasticache(f"usergroup:{run.one(USER_GROUP).plain['userGroupId']}"),
        ),
        # The provisioner's code and configuration.
        ("lambda:UpdateFunctionCode", _mock_arn(run.one(LAMBDA))),
        ("lambda:UpdateFunctionConfiguration", _mock_arn(run.one(LAMBDA))),
        ("lambda:DeleteFunction", _mock_arn(run.one(LAMBDA))),
        # The host's security groups.
        (
            "ec2:AuthorizeSecurityGroupIngress",
            f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/agent-staging-db-sg-id",
        ),
        (
            "ec2:RevokeSecurityGroupEgress",
            f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/agent-staging-pr-host-provisioner-id",
        ),
        # Its secrets.
        (
            "secretsmanager:GetSecretValue",
            f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:agent-staging-secrets-database-url-1234567-AbCdEf",
        ),
    ]
    assert master.name == "agent-staging-db"
    denied += [("secretsmanager:GetSecretValue", arn) for arn in master_secret if "rds!db" in arn]
    assert any("rds!db" in arn for arn in master_secret)
    for action, resource in denied:
        assert decide(documents, action, resource) == "Deny", (action, resource)


def test_the_ephemeral_role_writes_only_pr_records_in_the_hosts_zone() -> None:
    run = with_domain()
    documents = _ephemeral_documents(run)
    zone = "arn:aws:route53:::hostedzone/" + run.outputs["prBase"]["hostedZoneId"]
    key = "route53:ChangeResourceRecordSetsNormalizedRecordNames"

    def change(name: str) -> str:
        return decide(documents, "route53:ChangeResourceRecordSets", zone, {key: name})

    assert change(f"pr-42.{DOMAIN}") == "Allow"
    assert change(DOMAIN) == "Deny"
    assert change(f"api.{DOMAIN}") == "Deny"
    assert change("example.com") == "Deny"


def test_roles_of_pr_stacks_cannot_read_the_hosts_secrets() -> None:
    run = hosting()
    (boundary,) = [
        policy(p)
        for p in run.of_type("aws:iam/policy:Policy")
        if p.plain["name"] == "agent-pr-boundary"
    ]
    own = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:agent-pr-42-secrets-x-AbCdEf"
    host = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:agent-staging-secrets-x-AbCdEf"
    master = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rds!db-1234-AbCdEf"
    read = "secretsmanager:GetSecretValue"
    assert decide([boundary], read, own) == "Allow"
    assert decide([boundary], read, host) == "Deny"
    host_db = f"arn:aws:rds:{REGION}:{ACCOUNT}:db:agent-staging-db"
    pr_db = f"arn:aws:rds:{REGION}:{ACCOUNT}:db:agent-pr-42-db"
    assert decide([boundary], read, master, {RDS_OWNER_CONDITION_KEY: host_db}) == "Deny"
    # A self-contained pr-<n> stack still reads its own RDS-managed secret.
    assert decide([boundary], read, master, {RDS_OWNER_CONDITION_KEY: pr_db}) == "Allow"
    assert decide([boundary], "lambda:InvokeFunction", _mock_arn(run.one(LAMBDA))) == (
        "ImplicitDeny"
    )


# --------------------------------------------------------------------------------------------
# Without `host`
# --------------------------------------------------------------------------------------------
HOST_ONLY = {
    ("aws:lambda/function:Function", "agent-staging-pr-host-provisioner"),
    ("aws:cloudwatch/logGroup:LogGroup", "agent-staging-pr-host-provisioner"),
    ("aws:iam/role:Role", "agent-staging-pr-host-provisioner"),
    ("aws:iam/rolePolicy:RolePolicy", "agent-staging-pr-host-provisioner"),
    ("aws:ec2/securityGroup:SecurityGroup", "agent-staging-pr-host-provisioner"),
    (EGRESS, "agent-staging-pr-host-provisioner-to-db"),
    (INGRESS, "agent-staging-pr-host-db-from-provisioner"),
    (EGRESS, "agent-staging-pr-host-provisioner-to-cache"),
    (INGRESS, "agent-staging-pr-host-cache-from-provisioner"),
    (USER, "agent-staging-cache-cleanup-user"),
    (
        "aws:elasticache/userGroupAssociation:UserGroupAssociation",
        "agent-staging-cache-cleanup-user",
    ),
    ("agent-deploy:aws:PrHost", "agent-staging-pr-host"),
    (INGRESS, "agent-staging-alb-in-slices"),
    (USER, "agent-staging-cache-default-user"),
    (USER, "agent-staging-cache-app-user"),
    ("random:index/randomPassword:RandomPassword", "agent-staging-cache-default-user"),
    ("random:index/randomPassword:RandomPassword", "agent-staging-cache-app-user"),
    (USER_GROUP, "agent-staging-cache-users"),
    ("aws:elasticache/userGroupAssociation:UserGroupAssociation", "agent-staging-cache-app-user"),
    (ROLE_POLICY, "agent-staging-identity-ephemeral-slices"),
    ("aws:iam/policy:Policy", GUARD),
    ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", GUARD),
}


def _keys(run: ProgramRun) -> set[tuple[str, str]]:
    return {(r.type, r.name) for r in run.resources}


def test_staging_without_host_is_unchanged() -> None:
    plain = run_stack("staging", {"pullRequests": {"host": False}}, secrets={})
    host = run_stack("staging", secrets={})
    # The same resources but the host's, and the auth token instead of RBAC users.
    assert _keys(host) - _keys(plain) == HOST_ONLY
    assert _keys(plain) - _keys(host) == {
        ("random:index/randomPassword:RandomPassword", "agent-staging-cache-auth-token")
    }
    assert "prBase" not in plain.outputs
    group = plain.one(GROUP)
    assert is_secret(group.inputs["authToken"])
    assert "userGroupIds" not in group.plain
    assert plain.one(RDS).plain.get("iamDatabaseAuthenticationEnabled") is False
    assert "DATABASE_PROVISIONER_USER" not in str(container(plain, "db-init"))
    for label in ("staging", "pr"):
        (boundary,) = [
            policy(p)
            for p in plain.of_type("aws:iam/policy:Policy")
            if p.plain["name"] == f"agent-{label}-boundary"
        ]
        assert not [s for s in boundary["Statement"] if "rds-db:connect" in s.get("Action", [])]
        assert not [s for s in boundary["Statement"] if s["Effect"] == "Deny"]
    # Every resource both runs register is registered with the same inputs, except where the
    # host's own pieces are wired in.
    changed = {
        r.name
        for r in plain.resources
        if (r.type, r.name) in _keys(host) and r.plain != host.one(r.type, r.name).plain
    }
    assert changed <= {
        "agent-staging-cache",  # token -> user group
        "agent-staging-db",  # IAM authentication
        "agent-staging-task",  # db-init's DATABASE_PROVISIONER_USER
        "agent-staging-secrets-redis-url",  # the app's user in REDIS_URL
        "agent-staging-identity-deploy-boundary",  # the provisioner's rights
        "agent-staging-identity-ephemeral-boundary",  # no host secrets for pr roles
        "agent-staging-identity-deploy-iam",  # roles passed to Lambda
        "agent-staging-service",  # waits for what changed above
        "agent-staging",  # the stack
    }, changed


def test_without_host_a_domains_certificate_covers_only_the_hostname() -> None:
    certificate = not_hosting(domain=True).one("aws:acm/certificate:Certificate").plain
    assert certificate["domainName"] == DOMAIN
    assert not certificate.get("subjectAlternativeNames")


def test_rules_and_listeners_of_slices_are_matched_on_real_shaped_arns() -> None:
    """The mocks' ARNs lack the `app/<name>/<id>` of a real load balancer, which the patterns
    for slices' rules and listeners are derived from."""
    elb = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}"
    lb = f"{elb}:loadbalancer/app/agent-staging-alb-1a2b3c4/50dc6c495c0c9188"
    https = f"{elb}:listener/app/agent-staging-alb-1a2b3c4/50dc6c495c0c9188/f2f7dc8efc522ab2"

    def program() -> None:
        identity = DeployIdentity(
            "agent-staging-identity",
            DeployIdentityArgs(
                repository="example-org/agent-deploy",
                roles=[GitHubRole("ephemeral", "ephemeral", role_prefix="agent-pr-")],
                create_provider=True,
                resource_prefix="agent-staging-",
                hosted_slices=HostedSlices("agent-pr-", "agent-staging-db", PROVISIONER_USER),
            ),
        )
        identity.allow_slices(
            SliceHost(
                region=REGION,
                cluster_name="agent-staging",
                cluster_arn=_ecs("cluster/agent-staging"),
                load_balancer_arn=lb,
                listener_arns=[https],
                target_group_arn=f"{elb}:targetgroup/agent-staging-tg-1a2b3c4/943f017f100becff",
                security_group_ids=["sg-0123456789abcdef0"],
                database_arn=f"arn:aws:rds:{REGION}:{ACCOUNT}:db:agent-staging-db",
                cache_arn=_elasticache("replicationgroup:agent-staging-cache"),
                user_group_id="agent-staging-cache-users",
                cache_user_ids=["agent-staging-cache-default", "agent-staging-cache-app"],
                provisioner_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:p",
                secret_arns=[],
            )
        )

    run = run_components(program)
    documents = [
        POWER_USER,
        policy(run.one(ROLE_POLICY, "agent-staging-identity-ephemeral-slices")),
        policy(run.one("aws:iam/policy:Policy", GUARD)),
    ]
    slices = documents[1]
    rule = (
        f"{elb}:listener-rule/app/agent-staging-alb-1a2b3c4/50dc6c495c0c9188/"
        "f2f7dc8efc522ab2/9683b2d02a6cabee"
    )
    slice_listener = f"{elb}:listener/app/agent-staging-alb-1a2b3c4/50dc6c495c0c9188/0123abcd"
    for action, resource in [
        ("elasticloadbalancing:CreateRule", https),
        ("elasticloadbalancing:ModifyRule", rule),
        ("elasticloadbalancing:DeleteRule", rule),
        ("elasticloadbalancing:CreateListener", lb),
        ("elasticloadbalancing:DeleteListener", slice_listener),
    ]:
        assert decide([slices], action, resource) == "Allow", (action, resource)
        assert decide(documents, action, resource) == "Allow", (action, resource)
    other_lb = f"{elb}:listener-rule/app/agent-production-alb-9/1/2/3"
    assert decide([slices], "elasticloadbalancing:DeleteRule", other_lb) == "ImplicitDeny"
    for action in ("elasticloadbalancing:ModifyListener", "elasticloadbalancing:DeleteListener"):
        assert decide(documents, action, https) == "Deny", action
    assert decide(documents, "elasticloadbalancing:DeleteLoadBalancer", lb) == "Deny"


def test_the_ephemeral_role_cannot_delete_the_hosts_images_or_logs() -> None:
    """PowerUserAccess (for self-contained pr stacks) would let a pull request's deploy delete
    staging's repository or log groups; the guard denies it, and slices keep their own."""
    run = hosting()
    documents = _ephemeral_documents(run)
    repository = _mock_arn(run.one("aws:ecr/repository:Repository"))
    logs = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:"
    for action, resource in [
        ("ecr:DeleteRepository", repository),
        ("ecr:BatchDeleteImage", repository),
        ("ecr:PutLifecyclePolicy", repository),
        ("ecr:SetRepositoryPolicy", repository),
        ("logs:DeleteLogGroup", f"{logs}/ecs/agent-staging"),
        ("logs:PutRetentionPolicy", f"{logs}/ecs/agent-staging:*"),
        ("logs:DeleteLogGroup", f"{logs}/aws/lambda/{run.one(LAMBDA).plain['name']}"),
    ]:
        assert decide(documents, action, resource) == "Deny", (action, resource)
    slice_logs = f"{logs}/ecs/agent-pr-42"
    assert decide(documents, "logs:DeleteLogGroup", slice_logs) == "Allow"

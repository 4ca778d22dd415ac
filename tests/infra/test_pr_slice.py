"""A pr-<n> stack with `pullRequests.base` (the shipped Pulumi.pr.yaml) builds only its slice.

The base's outputs are never written here: the engine runs staging's own program and stack file
first and hands its outputs (staging's `prBase`) to the slice's StackReference (`_base_outputs`).
"""

from __future__ import annotations

import io
import json
from functools import cache
from typing import Any

import pytest

import cli.engine as engine
from cli.engine import ProgramRun, StackOutputs, unwrap
from cli.engine import _base_outputs as engine_base_outputs
from cli.main import check
from infra.aws.slice import MAX_PORT, MAX_RULE_PRIORITY, slice_address
from infra.config.pull_requests import PR_BASE_OUTPUT, PR_PORT_OFFSET, redis_access_string
from infra.naming import IAM_PREFIX_MAX
from stacks import StackConfigError
from tests.harness import PROJECT_DIR, SELF_CONTAINED, run_stack, stack_inputs
from tests.infra.test_names import APP_NAME_MAX

BASE = "organization/agent-deploy/staging"
SERVICE = "aws:ecs/service:Service"
TASK = "aws:ecs/taskDefinition:TaskDefinition"
INVOCATION = "aws:lambda/invocation:Invocation"
CACHE_USER = "aws:elasticache/user:User"
MEMBERSHIP = "aws:elasticache/userGroupAssociation:UserGroupAssociation"
LISTENER = "aws:lb/listener:Listener"
RULE = "aws:lb/listenerRule:ListenerRule"
RECORD = "aws:route53/record:Record"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"

#: What a slice may create, and nothing else.
SLICE_TYPES = {
    "pulumi:providers:aws",
    "aws:ecr/repository:Repository",
    "aws:ecr/lifecyclePolicy:LifecyclePolicy",
    "docker-build:index:Image",
    "random:index/randomPassword:RandomPassword",
    INVOCATION,
    CACHE_USER,
    MEMBERSHIP,
    "aws:secretsmanager/secret:Secret",
    SECRET_VERSION,
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:iam/role:Role",
    "aws:iam/rolePolicy:RolePolicy",
    TASK,
    TARGET_GROUP,
    SERVICE,
}
#: The shared pieces a slice must never re-create.
SHARED = {
    "aws:ec2/vpc:Vpc",
    "aws:ec2/natGateway:NatGateway",
    "aws:ec2/subnet:Subnet",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:lb/loadBalancer:LoadBalancer",
    "aws:rds/instance:Instance",
    "aws:elasticache/replicationGroup:ReplicationGroup",
    "aws:cloudwatch/metricAlarm:MetricAlarm",
    "aws:ecs/cluster:Cluster",
    "aws:acm/certificate:Certificate",
}


@cache
def base_outputs() -> dict[str, Any]:
    """Staging's outputs exactly as the engine gives them to a slice."""
    config, _ = stack_inputs("pr-7")
    return dict(engine_base_outputs(config, PROJECT_DIR)["staging"])


def pr_base() -> dict[str, Any]:
    return dict(base_outputs()[PR_BASE_OUTPUT])


def with_base(**changes: Any) -> StackOutputs:
    """The engine's base outputs with `prBase` changed (a base with a domain, say)."""
    return {BASE: {**base_outputs(), PR_BASE_OUTPUT: {**pr_base(), **changes}}}


DOMAIN = {"prDomain": "pr.example.com", "hostedZoneId": "Z0PRMOCK"}


@cache
def slice_run(stack: str = "pr-7", domain: bool = False) -> ProgramRun:
    return run_stack(stack, stack_references=with_base(**DOMAIN) if domain else None)


def containers(run: ProgramRun) -> dict[str, dict[str, Any]]:
    task = run.one(TASK)
    return {c["name"]: c for c in json.loads(task.plain["containerDefinitions"])}


def secret_document(run: ProgramRun) -> dict[str, str]:
    (version,) = run.of_type(SECRET_VERSION)
    assert version.is_secret("secretString")
    document: dict[str, str] = json.loads(version.plain["secretString"])
    return document


# --- exactly the slice ----------------------------------------------------------------------


@pytest.mark.parametrize("domain", [False, True], ids=["port", "host-rule"])
def test_a_slice_registers_only_its_own_pieces(domain: bool) -> None:
    run = slice_run(domain=domain)
    custom = {r.type for r in run.resources if r.custom}
    address = {RULE, RECORD} if domain else {LISTENER}
    assert custom == SLICE_TYPES | address
    assert not custom & SHARED


def test_the_base_outputs_are_the_base_programs_own() -> None:
    staging = run_stack("staging")
    assert base_outputs()["clusterName"] == staging.outputs["clusterName"]
    base = pr_base()
    assert base["clusterName"] == staging.outputs["clusterName"]
    service = slice_run().one(SERVICE).plain
    assert service["cluster"] == base["clusterArn"]
    network = service["networkConfiguration"]
    assert network["subnets"] == base["taskSubnetIds"]
    assert network["securityGroups"] == [base["taskSecurityGroupId"]]
    assert network["assignPublicIp"] == base["assignPublicIp"]
    assert service["capacityProviderStrategies"] == [
        {"capacityProvider": "FARGATE_SPOT", "weight": 1}
    ]
    assert slice_run().one(TARGET_GROUP).plain["vpcId"] == base["vpcId"]
    logs = slice_run().one("aws:cloudwatch/logGroup:LogGroup").plain
    assert (logs["name"], logs["retentionInDays"]) == ("/ecs/agent-pr-7", base["logRetentionDays"])


def test_check_lists_the_slice_offline() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert check("pr-7", as_json_output=False, project_dir=PROJECT_DIR, out=out, err=err) == 0
    text = out.getvalue()
    assert "agent-deploy:aws:ServiceSlice  agent-pr-7" in text
    assert f"base: {BASE}" in text and "aws:rds/instance" not in text


# --- addresses ------------------------------------------------------------------------------


def test_without_a_domain_the_slice_listens_on_offset_plus_n() -> None:
    run, base = slice_run(), pr_base()
    listener = run.one(LISTENER).plain
    assert listener["port"] == PR_PORT_OFFSET + 7
    assert listener["loadBalancerArn"] == base["loadBalancerArn"]
    assert listener["protocol"] == "HTTP"
    target_group = run.one(TARGET_GROUP)
    assert listener["defaultActions"][0]["targetGroupArn"].startswith("arn:")
    assert target_group.urn in run.one(LISTENER).property_dependencies["defaultActions"]
    assert run.outputs["serviceUrl"] == f"http://{base['loadBalancerDnsName']}:10007"
    assert run.outputs["tls"].startswith("disabled: plain HTTP")


def test_with_a_domain_a_host_rule_at_priority_n_and_an_alias() -> None:
    run, base = slice_run("pr-7", domain=True), pr_base()
    rule = run.one(RULE).plain
    assert rule["priority"] == 7
    assert rule["listenerArn"] == base["listenerArn"]
    assert rule["conditions"] == [{"hostHeader": {"values": ["pr-7.pr.example.com"]}}]
    assert rule["actions"][0]["type"] == "forward"
    record = run.one(RECORD).plain
    assert (record["name"], record["type"], record["zoneId"]) == (
        "pr-7.pr.example.com",
        "A",
        "Z0PRMOCK",
    )
    assert record["aliases"][0]["name"] == base["loadBalancerDnsName"]
    assert run.outputs["serviceUrl"] == "https://pr-7.pr.example.com"
    assert run.outputs["healthUrl"] == "https://pr-7.pr.example.com/health"
    assert run.outputs["tls"] == "enabled"


def test_two_pull_requests_never_share_a_priority_or_a_port() -> None:
    by_host = [slice_address(n, "pr.example.com") for n in range(1, MAX_RULE_PRIORITY + 1)]
    assert len({a.priority for a in by_host}) == len(by_host)
    assert len({a.host for a in by_host}) == len(by_host)
    by_port = [slice_address(n, None) for n in range(1, MAX_PORT - PR_PORT_OFFSET + 1)]
    assert len({a.port for a in by_port}) == len(by_port)
    assert all(1 <= a.priority <= MAX_RULE_PRIORITY for a in by_host)
    assert all(PR_PORT_OFFSET < (a.port or 0) <= MAX_PORT for a in by_port)


@pytest.mark.parametrize(
    ("stack", "domain", "words"),
    [
        ("pr-50001", True, "above 50000, the highest listener rule priority"),
        ("pr-55536", False, "numbered up to 55535"),
        ("pr-0", False, "numbered from 1"),
    ],
)
def test_numbers_without_an_address_are_refused_before_any_resource(
    stack: str, domain: bool, words: str
) -> None:
    with pytest.raises(StackConfigError) as caught:
        run_stack(stack, stack_references=with_base(**DOMAIN) if domain else None)
    (problem,) = caught.value.problems
    assert problem.key == "agent-deploy:pullRequests.base" and words in str(problem)
    assert getattr(caught.value, "registered", None) == []


def test_an_address_of_its_own_is_refused_on_a_slice() -> None:
    with pytest.raises(StackConfigError) as caught:
        run_stack("pr-7", {"app": {"domain": "preview.example.com"}})
    (problem,) = caught.value.problems
    assert problem.key == "agent-deploy:app.domain" and "prDomain" in str(problem)
    assert getattr(caught.value, "registered", None) == []


def test_the_template_name_itself_is_no_slice() -> None:
    with pytest.raises(StackConfigError, match="a slice's stack is named pr-<n>"):
        run_stack("pr")


# --- the base must host slices --------------------------------------------------------------


def test_a_base_that_hosts_nothing_is_named_with_the_switch() -> None:
    outputs = {k: v for k, v in base_outputs().items() if k != PR_BASE_OUTPUT}
    with pytest.raises(StackConfigError) as caught:
        run_stack("pr-7", stack_references={BASE: outputs})
    (problem,) = caught.value.problems
    assert f"'{BASE}' exports no 'prBase'" in str(problem)
    assert "pullRequests.host: true" in str(problem)
    assert getattr(caught.value, "registered", None) == []


@pytest.mark.parametrize("change", [{"version": 99}, {"target": "gcp"}])
def test_a_base_of_another_version_or_target_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(StackConfigError) as caught:
        run_stack("pr-7", stack_references=with_base(**change))
    assert BASE in str(caught.value) and "same commit" in str(caught.value)


def test_a_full_base_name_is_used_as_given() -> None:
    full = "acme/agent-deploy/staging"
    run = run_stack(
        "pr-7", {"pullRequests": {"base": full}}, stack_references={full: base_outputs()}
    )
    assert run.outputs["base"] == full


# --- database, cache, secrets ---------------------------------------------------------------


def test_the_database_comes_from_the_provisioner_and_the_service_waits_for_it() -> None:
    run = slice_run()
    invocation = run.one(INVOCATION)
    assert invocation.plain["functionName"] == pr_base()["provisionerFunctionName"]
    assert invocation.plain["lifecycleScope"] == "CRUD"  # delete drops database and role
    # Replaced, it drops first: created first, the old delete would drop the new slice.
    assert invocation.delete_before_replace is True
    assert invocation.is_secret("input")
    event = json.loads(invocation.plain["input"])
    assert set(event) == {"database", "password"} and event["database"] == "pr_7"
    assert secret_document(run)["DATABASE_APP_PASSWORD"] == event["password"]
    assert invocation.urn in run.one(SERVICE).depends_on


def test_the_app_connects_as_its_own_role_with_tls_verified() -> None:
    run, base = slice_run(), pr_base()
    url = secret_document(run)["DATABASE_URL"]
    assert url.startswith(f"postgresql://pr_7@{base['databaseAddress']}:5432/")
    assert url.endswith(
        "/pr_7?sslmode=verify-full&sslrootcert=/etc/ssl/certs/rds-global-bundle.pem"
    )
    names = {c for c in containers(run)}
    assert names == {"migrate", "app"}  # no db-init: the provisioner made the role
    migrate = containers(run)["migrate"]
    assert {s["name"] for s in migrate["secrets"]} == {"DATABASE_URL", "PGPASSWORD"}
    assert containers(run)["app"]["dependsOn"] == [
        {"containerName": "migrate", "condition": "SUCCESS"}
    ]


def test_the_cache_user_is_confined_to_the_slice_prefix_and_joins_the_base_group() -> None:
    run, base = slice_run(), pr_base()
    user = run.one(CACHE_USER)
    assert user.plain["accessString"] == redis_access_string("pr-7:")
    assert user.plain["userId"] == user.plain["userName"] == "agent-pr-7"
    assert user.plain["authenticationMode"]["type"] == "password"
    assert engine.contains_secret(user.inputs["authenticationMode"])
    membership = run.one(MEMBERSHIP)
    assert membership.plain["userGroupId"] == base["cacheUserGroupId"]
    assert membership.plain["userId"] == "agent-pr-7"
    assert user.urn in membership.property_dependencies["userId"]
    assert membership.urn in run.one(SERVICE).depends_on
    redis = secret_document(run)["REDIS_URL"]
    assert redis.startswith("rediss://agent-pr-7:")
    assert redis.endswith(f"@{base['cacheAddress']}:{int(base['cachePort'])}/0")


def test_the_app_writes_only_under_its_key_prefix_and_trusts_only_the_base_balancer() -> None:
    env = {e["name"]: e["value"] for e in containers(slice_run())["app"]["environment"]}
    assert env["REDIS_KEY_PREFIX"] == "pr-7:"
    assert env["FORWARDED_ALLOW_IPS"] == engine.MOCK_VPC_CIDR
    assert slice_run().outputs["redisKeyPrefix"] == "pr-7:"


def test_every_credential_is_in_one_secret_read_by_reference() -> None:
    run = slice_run()
    assert set(secret_document(run)) == {
        "AUTH_TOKENS",
        "DATABASE_APP_PASSWORD",
        "DATABASE_URL",
        "REDIS_URL",
    }
    app = containers(run)["app"]
    by_name = {s["name"]: s["valueFrom"] for s in app["secrets"]}
    assert by_name["PGPASSWORD"].endswith(":DATABASE_APP_PASSWORD::")
    assert by_name["REDIS_URL"].endswith(":REDIS_URL::")
    assert "DATABASE_APP_PASSWORD" not in by_name
    policy = json.loads(run.one("aws:iam/rolePolicy:RolePolicy").plain["policy"])
    (read,) = [s for s in policy["Statement"] if "secretsmanager:GetSecretValue" in s["Action"]]
    (secret_arn,) = read["Resource"]
    assert all(v.startswith(secret_arn + ":") for v in by_name.values() if "secretsmanager" in v)


def test_roles_carry_the_pull_request_boundary() -> None:
    roles = slice_run().of_type("aws:iam/role:Role")
    assert len(roles) == 2
    for role in roles:
        assert role.plain["permissionsBoundary"].endswith(":policy/agent-pr-boundary")
        assert role.name.startswith("agent-pr-7-")  # the boundary's role-name scope


# --- outputs --------------------------------------------------------------------------------


def test_outputs_give_the_workflows_what_they_read() -> None:
    run = slice_run()
    outputs = run.outputs
    for key in ("serviceUrl", "healthUrl", "tls", "image", "imageDigest", "imageHistory"):
        assert outputs[key], key
    assert "apiToken" in run.secret_outputs
    assert outputs["imageDigest"].startswith("sha256:")
    assert outputs["image"].endswith("@" + outputs["imageDigest"])
    assert "/agent-pr-7-registry" in outputs["image"]  # its own repository, removed with it
    assert outputs["base"] == BASE and outputs["database"] == "pr_7"
    assert outputs["clusterName"] == pr_base()["clusterName"]
    assert outputs["natGateways"] == 0


def test_the_image_history_still_reads_the_slices_own_earlier_outputs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    earlier = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/agent-pr-7-registry-repo@sha256:" + (
        "0" * 64
    )
    monkeypatch.setattr(engine, "PREVIOUS_OUTPUTS", {"imageHistory": [earlier]})
    run = run_stack("pr-7")
    assert run.outputs["imageHistory"] == [run.outputs["image"], earlier]


# --- the switch -----------------------------------------------------------------------------


def test_without_the_section_a_pr_stack_is_self_contained_again() -> None:
    run = run_stack("pr-7", SELF_CONTAINED)
    custom = {r.type for r in run.resources if r.custom}
    assert {
        "aws:ec2/vpc:Vpc",
        "aws:lb/loadBalancer:LoadBalancer",
        "aws:rds/instance:Instance",
        "aws:elasticache/replicationGroup:ReplicationGroup",
    } <= custom
    assert INVOCATION not in custom and CACHE_USER not in custom
    assert "base" not in run.outputs
    assert unwrap(run.outputs["serviceUrl"]).startswith("http://agent-pr-7-alb")


def test_the_longest_app_name_with_the_highest_pr_number_fits_every_name() -> None:
    """The engine refuses any physical name the cloud would (infra/naming.py): running is the
    assertion; the roles stay under the pr boundary's `<app>-pr-` prefix."""
    # `<app>-pr-50000` is the slice's ElastiCache user id: 40 characters at most.
    longest = min(APP_NAME_MAX, IAM_PREFIX_MAX - 2 - len("pr-50000"), 40 - len("-pr-50000"))
    app = ("a" + "b" * 40)[: longest - 1] + "z"
    run = run_stack(
        "pr-50000", {"app": {"name": app}}, stack_references=with_base(**DOMAIN), preview=True
    )
    assert run.one(RULE).plain["priority"] == MAX_RULE_PRIORITY
    assert all(r.name.startswith(f"{app}-pr-50000-") for r in run.of_type("aws:iam/role:Role"))


def test_an_app_name_too_long_for_the_slices_cache_user_is_refused_naming_it() -> None:
    app = "a" * 32
    with pytest.raises(StackConfigError) as error:
        run_stack("pr-50000", {"app": {"name": app}}, stack_references=with_base(**DOMAIN))
    message = str(error.value)
    assert "agent-deploy:app.name" in message and f"'{app}-pr-50000'" in message
    assert "at most 31 characters" in message

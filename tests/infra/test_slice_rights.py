"""The `ephemeral` role staging creates can make, change and remove everything a pr-<n> slice
registers, and the roles the slice creates can do what its task needs and no more.

Both programs run under the mocks with real-shaped ARNs (`REAL_ARNS`: the engine's own mocks
make up `arn:aws:<service>:us-east-1:<account>:<logical name>`, which no policy pattern is
written for). For every resource the slice registers, `CALLS` names the API actions the AWS
provider calls to create, update, read and delete it and the ARN each is authorized on, built
from the names the slice registered; each is decided against the role's policies as staging
registers them (the managed policies it attaches, its inline policies, its boundary if any).

ARN formats, from the Service Authorization Reference
(https://docs.aws.amazon.com/service-authorization/latest/reference/, "Resource types defined
by ..." of each service):
  ecs        cluster/<cluster>, service/<cluster>/<service>, task-definition/<family>:<revision>
  elasticloadbalancing  loadbalancer/app/<lb>/<lb-id>, listener/app/<lb>/<lb-id>/<id>,
             listener-rule/app/<lb>/<lb-id>/<listener-id>/<id>, targetgroup/<name>/<id>
  elasticache  user:<user-id>, usergroup:<group-id>, replicationgroup:<id>
  secretsmanager  secret:<name>-<6 random characters>
  logs       log-group:<name>, log-group:<name>:log-stream:<stream>
  ecr        repository/<name>
  lambda     function:<name>
  iam        role/<path><name>, policy/<name> (no region)
  route53    hostedzone/<zone-id> (no region, no account)
  rds        db:<identifier>
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from pulumi.runtime import mocks as pulumi_mocks

from cli.engine import MOCK_ACCOUNT, RESOURCE_MOCKS, ProgramRun, Resource, ResourceMock
from infra.aws.identity import RDS_OWNER_CONDITION_KEY
from infra.aws.slice import MAX_PORT, slice_target_group, slice_target_group_prefix
from infra.config.pull_requests import PR_PORT_OFFSET
from infra.naming import NAME_RULES, autoname, physical_name
from tests.harness import run_stack, stack_inputs
from tests.infra.iam_policy import decide, decide_bounded

ACCOUNT = MOCK_ACCOUNT
REGION: str = json.loads(stack_inputs("staging")[0]["agent-deploy:aws"])["region"]
HOST_DOMAIN = "staging.example.com"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
MANAGED_POLICY = "aws:iam/policy:Policy"
SECRET = "aws:secretsmanager/secret:Secret"
# AWS-managed PowerUserAccess as AWS publishes it (version 5): everything but IAM,
# Organizations and Account, and a few reads and service-linked roles of those.
MANAGED = {
    "arn:aws:iam::aws:policy/PowerUserAccess": {
        "Statement": [
            {
                "Effect": "Allow",
                "NotAction": ["iam:*", "organizations:*", "account:*"],
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Action": [
                    "iam:CreateServiceLinkedRole",
                    "iam:DeleteServiceLinkedRole",
                    "iam:ListRoles",
                    "organizations:DescribeOrganization",
                    "account:ListRegions",
                    "account:GetAccountInformation",
                ],
                "Resource": "*",
            },
        ]
    }
}


# --- real-shaped ARNs -------------------------------------------------------------------------


def _name(a: pulumi_mocks.MockResourceArgs, key: str = "name") -> str:
    if a.typ in NAME_RULES:
        return str(physical_name(a.typ, a.name, a.inputs))
    value = a.inputs.get(key)
    return value if isinstance(value, str) else autoname(a.name)


def _id(a: pulumi_mocks.MockResourceArgs) -> str:
    return hashlib.sha256(a.name.encode()).hexdigest()[:16]


def _arn(service: str, path: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:{service}:{region}:{account}:{path}"


def _real(
    type_: str, arn: Callable[[pulumi_mocks.MockResourceArgs], str], **extra: Any
) -> ResourceMock:
    engine = RESOURCE_MOCKS.get(type_)

    def mock(a: pulumi_mocks.MockResourceArgs) -> dict[str, Any]:
        own = {k: f(a) for k, f in extra.items()}
        return {**(engine(a) if engine else {}), "arn": arn(a), **own}

    return mock


def _lb(a: pulumi_mocks.MockResourceArgs) -> str:
    return _arn("elasticloadbalancing", f"loadbalancer/app/{_name(a)}/{_id(a)}")


def _target_group(a: pulumi_mocks.MockResourceArgs) -> str:
    return _arn("elasticloadbalancing", f"targetgroup/{_name(a)}/{_id(a)}")


REAL_ARNS: dict[str, ResourceMock] = {
    "aws:lb/loadBalancer:LoadBalancer": _real(
        "aws:lb/loadBalancer:LoadBalancer",
        _lb,
        arnSuffix=lambda a: _lb(a).split(":loadbalancer/")[1],
    ),
    "aws:lb/listener:Listener": _real(
        "aws:lb/listener:Listener",
        lambda a: (
            a.inputs["loadBalancerArn"].replace(":loadbalancer/", ":listener/") + f"/{_id(a)}"
        ),
    ),
    "aws:lb/listenerRule:ListenerRule": _real(
        "aws:lb/listenerRule:ListenerRule",
        lambda a: a.inputs["listenerArn"].replace(":listener/", ":listener-rule/") + f"/{_id(a)}",
    ),
    "aws:lb/targetGroup:TargetGroup": _real(
        "aws:lb/targetGroup:TargetGroup",
        _target_group,
        arnSuffix=lambda a: _target_group(a).split(":", 5)[5],
    ),
    "aws:ecs/cluster:Cluster": _real(
        "aws:ecs/cluster:Cluster", lambda a: _arn("ecs", f"cluster/{_name(a)}")
    ),
    "aws:ecs/service:Service": _real(
        "aws:ecs/service:Service",
        lambda a: _arn("ecs", f"service/{a.inputs['cluster'].split('/')[-1]}/{_name(a)}"),
    ),
    "aws:ecs/taskDefinition:TaskDefinition": _real(
        "aws:ecs/taskDefinition:TaskDefinition",
        lambda a: _arn("ecs", f"task-definition/{a.inputs['family']}:1"),
        revision=lambda a: 1,
    ),
    "aws:ecr/repository:Repository": _real(
        "aws:ecr/repository:Repository",
        lambda a: _arn("ecr", f"repository/{_name(a)}"),
        repositoryUrl=lambda a: f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{_name(a)}",
    ),
    "aws:elasticache/user:User": _real(
        "aws:elasticache/user:User", lambda a: _arn("elasticache", f"user:{a.inputs['userId']}")
    ),
    "aws:elasticache/userGroup:UserGroup": _real(
        "aws:elasticache/userGroup:UserGroup",
        lambda a: _arn("elasticache", f"usergroup:{a.inputs['userGroupId']}"),
    ),
    "aws:elasticache/replicationGroup:ReplicationGroup": _real(
        "aws:elasticache/replicationGroup:ReplicationGroup",
        lambda a: _arn("elasticache", f"replicationgroup:{_name(a)}"),
    ),
    "aws:rds/instance:Instance": _real(
        "aws:rds/instance:Instance", lambda a: _arn("rds", f"db:{_name(a)}")
    ),
    SECRET: _real(SECRET, lambda a: _arn("secretsmanager", f"secret:{_name(a)}-AbCdEf")),
    ROLE: _real(
        ROLE,
        lambda a: _arn("iam", f"role{a.inputs.get('path', '/')}{_name(a)}", region=""),
        name=_name,
    ),
    MANAGED_POLICY: _real(
        MANAGED_POLICY, lambda a: _arn("iam", f"policy/{_name(a)}", region=""), name=_name
    ),
}


def outputs(resource: Resource) -> dict[str, Any]:
    """What the mocks gave `resource` (the engine records inputs only)."""
    mock = REAL_ARNS.get(resource.type, RESOURCE_MOCKS.get(resource.type))
    args = pulumi_mocks.MockResourceArgs(
        resource.type, resource.name, resource.plain, resource.provider, "", True
    )
    return mock(args) if mock else {}


#: The longest app name a slice allows (its ElastiCache user id `<app>-pr-50000` has 40
#: characters at most), with the highest number both addresses allow.
LONG_APP = "a" + "b" * 29 + "z"
LONG_STACK = "pr-50000"


@cache
def staging(domain: bool, app: str = "agent") -> ProgramRun:
    override: dict[str, Any] = {"app": {"name": app}}
    if domain:
        override["app"]["domain"] = HOST_DOMAIN
    return run_stack("staging", override, resource_mocks=REAL_ARNS)


@cache
def pr_slice(domain: bool, app: str = "agent") -> ProgramRun:
    return run_stack(
        "pr-42" if app == "agent" else LONG_STACK,
        {"app": {"name": app}},
        stack_references={"staging": staging(domain, app).outputs},
        resource_mocks=REAL_ARNS,
    )


# --- what the provider calls, per resource type ------------------------------------------------

# type -> (actions, ARN template) for create, tag-on-create (provider default_tags), read,
# update and delete. Fields: {arn} the resource's own, {inputs[...]} its registered inputs,
# {ref[...]} the ARN of the registered resource an input points at (the mocks' ids are
# `<logical>-id`), {repository} of an image, {region} and {account}.
_ELB = "elasticloadbalancing"
CALLS: dict[str, list[tuple[tuple[str, ...], str]]] = {
    "aws:ecr/repository:Repository": [
        (
            (
                "ecr:CreateRepository",
                "ecr:TagResource",
                "ecr:PutImageScanningConfiguration",
                "ecr:PutImageTagMutability",
                "ecr:DescribeRepositories",
                "ecr:DeleteRepository",
            ),
            "{arn}",
        )
    ],
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": [
        (
            ("ecr:PutLifecyclePolicy", "ecr:GetLifecyclePolicy", "ecr:DeleteLifecyclePolicy"),
            "arn:aws:ecr:{region}:{account}:repository/{inputs[repository]}",
        )
    ],
    "docker-build:index:Image": [
        (("ecr:GetAuthorizationToken",), "*"),
        (
            (
                "ecr:BatchCheckLayerAvailability",
                "ecr:InitiateLayerUpload",
                "ecr:UploadLayerPart",
                "ecr:CompleteLayerUpload",
                "ecr:PutImage",
                "ecr:BatchGetImage",
            ),
            "arn:aws:ecr:{region}:{account}:repository/{repository}",
        ),
    ],
    # Create and update invoke it; with lifecycle_scope CRUD, so does destroy.
    "aws:lambda/invocation:Invocation": [
        (
            ("lambda:InvokeFunction",),
            "arn:aws:lambda:{region}:{account}:function:{inputs[functionName]}",
        )
    ],
    "aws:elasticache/user:User": [
        (
            (
                "elasticache:CreateUser",
                "elasticache:AddTagsToResource",
                "elasticache:ModifyUser",
                "elasticache:DeleteUser",
            ),
            "{arn}",
        )
    ],
    # ModifyUserGroup is authorized on the group and on each user added or removed.
    "aws:elasticache/userGroupAssociation:UserGroupAssociation": [
        (
            ("elasticache:ModifyUserGroup",),
            "arn:aws:elasticache:{region}:{account}:usergroup:{inputs[userGroupId]}",
        ),
        (
            ("elasticache:ModifyUserGroup",),
            "arn:aws:elasticache:{region}:{account}:user:{inputs[userId]}",
        ),
    ],
    SECRET: [
        (
            (
                "secretsmanager:CreateSecret",
                "secretsmanager:TagResource",
                "secretsmanager:DescribeSecret",
                "secretsmanager:UpdateSecret",
                "secretsmanager:DeleteSecret",
            ),
            "{arn}",
        )
    ],
    "aws:secretsmanager/secretVersion:SecretVersion": [
        (("secretsmanager:PutSecretValue", "secretsmanager:GetSecretValue"), "{ref[secretId]}")
    ],
    "aws:cloudwatch/logGroup:LogGroup": [
        (
            (
                "logs:CreateLogGroup",
                "logs:TagResource",
                "logs:PutRetentionPolicy",
                "logs:DeleteLogGroup",
            ),
            "{arn}",
        )
    ],
    ROLE: [
        (
            (
                "iam:CreateRole",
                "iam:TagRole",
                "iam:GetRole",
                "iam:UpdateAssumeRolePolicy",
                "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies",
                "iam:ListInstanceProfilesForRole",
                "iam:DeleteRole",
            ),
            "{arn}",
        )
    ],
    ROLE_POLICY: [
        (("iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"), "{ref[role]}")
    ],
    "aws:ecs/taskDefinition:TaskDefinition": [
        # Neither has a resource type: authorized on "*".
        (("ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition"), "*"),
        (("ecs:TagResource",), "{arn}"),
        (("iam:PassRole",), "{inputs[executionRoleArn]}"),
        (("iam:PassRole",), "{inputs[taskRoleArn]}"),
    ],
    "aws:lb/targetGroup:TargetGroup": [
        (
            (
                f"{_ELB}:CreateTargetGroup",
                f"{_ELB}:AddTags",
                f"{_ELB}:ModifyTargetGroup",
                f"{_ELB}:ModifyTargetGroupAttributes",
                f"{_ELB}:DeleteTargetGroup",
            ),
            "{arn}",
        )
    ],
    "aws:lb/listener:Listener": [
        ((f"{_ELB}:CreateListener",), "{inputs[loadBalancerArn]}"),
        ((f"{_ELB}:AddTags", f"{_ELB}:ModifyListener", f"{_ELB}:DeleteListener"), "{arn}"),
    ],
    "aws:lb/listenerRule:ListenerRule": [
        ((f"{_ELB}:CreateRule",), "{inputs[listenerArn]}"),
        (
            (
                f"{_ELB}:AddTags",
                f"{_ELB}:ModifyRule",
                f"{_ELB}:SetRulePriorities",
                f"{_ELB}:DeleteRule",
            ),
            "{arn}",
        ),
    ],
    "aws:route53/record:Record": [
        (("route53:ChangeResourceRecordSets",), "arn:aws:route53:::hostedzone/{inputs[zoneId]}")
    ],
    "aws:ecs/service:Service": [
        (
            ("ecs:CreateService", "ecs:TagResource", "ecs:UpdateService", "ecs:DeleteService"),
            "{arn}",
        )
    ],
}
# Data sources the slice reads: (action, resource) each needs; STS, region and partition
# need none.
INVOKES: dict[str, tuple[tuple[str, str], ...]] = {
    "aws:ecr/getAuthorizationToken:getAuthorizationToken": (("ecr:GetAuthorizationToken", "*"),),
    "aws:index/getCallerIdentity:getCallerIdentity": (),
    "aws:index/getPartition:getPartition": (),
    "aws:index/getRegion:getRegion": (),
}
# Registered without any call needing a permission (the provider only asks
# sts:GetCallerIdentity, which no policy can deny).
NO_CALLS = {"pulumi:providers:aws", "random:index/randomPassword:RandomPassword"}


def _ref(run: ProgramRun, value: object) -> str | None:
    for resource in run.resources:
        if value == f"{resource.name}-id":
            arn = outputs(resource).get("arn")
            return str(arn) if arn else None
    return None


def _context(run: ProgramRun, resource: Resource, action: str) -> dict[str, str]:
    """The condition keys the policies test, as AWS puts them in the request."""
    inputs = resource.plain
    if action == "iam:PassRole":
        return {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    if action.startswith("iam:"):
        role = resource
        if resource.type == ROLE_POLICY:
            (role,) = [r for r in run.of_type(ROLE) if f"{r.name}-id" == inputs["role"]]
        boundary = role.plain.get("permissionsBoundary")
        return {"iam:PermissionsBoundary": boundary} if boundary else {}
    if action == "route53:ChangeResourceRecordSets":
        return {
            "route53:ChangeResourceRecordSetsNormalizedRecordNames": inputs["name"]
            .lower()
            .rstrip("."),
            "route53:ChangeResourceRecordSetsRecordTypes": inputs["type"],
        }
    return {}


def calls(run: ProgramRun) -> list[tuple[Resource, str, str, dict[str, str]]]:
    found = []
    for resource in run.resources:
        if not resource.custom or resource.type in NO_CALLS:
            continue
        assert resource.type in CALLS, f"no calls modelled for {resource.type}"
        inputs = resource.plain
        fields = {
            "arn": outputs(resource).get("arn"),
            "inputs": inputs,
            "ref": {k: _ref(run, v) for k, v in inputs.items() if isinstance(v, str)},
            "region": REGION,
            "account": ACCOUNT,
            "repository": re.sub(r"^[^/]+/|[:@].*$", "", (inputs.get("tags") or ["/"])[0]),
        }
        for actions, template in CALLS[resource.type]:
            arn = template.format(**fields)
            assert "None" not in arn, (resource.type, template)
            for action in actions:
                found.append((resource, action, arn, _context(run, resource, action)))
    for token, _ in run.invokes:
        assert token in INVOKES, f"no calls modelled for the data source {token}"
        found += [(run.resources[0], action, arn, {}) for action, arn in INVOKES[token]]
    return found


# --- the role's policies ----------------------------------------------------------------------


def _of_role(run: ProgramRun, role: Resource, key: str) -> list[Resource]:
    """Policies registered on `role` (by its id, inline, or its name, attached)."""
    ids = {f"{role.name}-id", outputs(role)["name"]}
    return [
        r
        for r in run.of_type(ROLE_POLICY if key == "inline" else ATTACHMENT)
        if r.plain["role"] in ids
    ]


def role_documents(
    run: ProgramRun, role: Resource
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Identity policies (inline and attached managed ones) and the boundary of `role`."""
    documents = [json.loads(p.plain["policy"]) for p in _of_role(run, role, "inline")]
    # AWS-managed policies as published, the stack's own as it registers them.
    own = {outputs(p)["arn"]: json.loads(p.plain["policy"]) for p in run.of_type(MANAGED_POLICY)}
    for attachment in _of_role(run, role, "attached"):
        arn = attachment.plain["policyArn"]
        assert arn in MANAGED or arn in own, arn
        documents.append(MANAGED[arn] if arn in MANAGED else own[arn])
    boundary_arn = role.plain.get("permissionsBoundary")
    if boundary_arn is None:
        return documents, None
    (boundary,) = [
        p for p in staging(False).of_type(MANAGED_POLICY) if outputs(p)["arn"] == boundary_arn
    ]
    return documents, json.loads(boundary.plain["policy"])


def ephemeral_role(host: ProgramRun) -> Resource:
    """The role the `-ephemeral-slices` policy is on (its name is shortened for long apps)."""
    (policy,) = [p for p in host.of_type(ROLE_POLICY) if p.name.endswith("-ephemeral-slices")]
    (role,) = [r for r in host.of_type(ROLE) if f"{r.name}-id" == policy.plain["role"]]
    return role


@pytest.mark.parametrize("app", ["agent", LONG_APP], ids=["shipped", "longest-app"])
@pytest.mark.parametrize("domain", [False, True], ids=["port", "host-rule"])
def test_the_ephemeral_role_can_deploy_update_and_destroy_every_piece_of_a_slice(
    domain: bool, app: str
) -> None:
    host, run = staging(domain, app), pr_slice(domain, app)
    identity, boundary = role_documents(host, ephemeral_role(host))
    (slices,) = [
        json.loads(p.plain["policy"])
        for p in _of_role(host, ephemeral_role(host), "inline")
        if p.name.endswith("-slices")
    ]
    granted = {
        a for s in slices["Statement"] if s["Effect"] == "Allow" for a in s.get("Action", [])
    }
    refused = []
    for resource, action, arn, context in calls(run):
        decision = decide_bounded(identity, boundary, action, arn, context)
        if decision != "Allow":
            refused.append((resource.name, action, arn, decision))
        # Where the slices policy names the action, its own pattern must cover the slice's
        # name: it is the documented scheme, whatever PowerUserAccess adds.
        elif action in granted and decide([slices], action, arn, context) != "Allow":
            refused.append((resource.name, action, arn, "outside the slices scheme"))
    assert not refused, "\n".join(map(str, refused))


# --- the slice's own roles --------------------------------------------------------------------


def _pr_boundary() -> Resource:
    (boundary,) = [
        p for p in staging(False).of_type(MANAGED_POLICY) if p.plain["name"] == "agent-pr-boundary"
    ]
    return boundary


def _host_secrets() -> list[tuple[str, dict[str, str]]]:
    """The host's secrets by ARN, and its RDS-managed master secret with the tag RDS sets."""
    host = staging(False)
    database = outputs(host.one("aws:rds/instance:Instance"))
    master = database["masterUserSecrets"][0]["secretArn"]
    return [(outputs(s)["arn"], {}) for s in host.of_type(SECRET)] + [
        (master, {RDS_OWNER_CONDITION_KEY: database["arn"]})
    ]


def test_the_slices_roles_carry_the_boundary_the_ephemeral_role_must_give_them() -> None:
    host, run = staging(False), pr_slice(False)
    boundary = outputs(_pr_boundary())["arn"]
    (iam,) = [
        json.loads(p.plain["policy"])
        for p in _of_role(host, ephemeral_role(host), "inline")
        if p.name.endswith("-iam")
    ]
    (create,) = [s for s in iam["Statement"] if s.get("Sid") == "ManageRolesWithBoundary"]
    assert create["Condition"]["StringEquals"]["iam:PermissionsBoundary"] == boundary
    task = run.one("aws:ecs/taskDefinition:TaskDefinition").plain
    roles = {outputs(r)["arn"]: r for r in run.of_type(ROLE)}
    assert set(roles) == {task["executionRoleArn"], task["taskRoleArn"]}
    assert all(r.plain["permissionsBoundary"] == boundary for r in roles.values())


def test_the_execution_role_pulls_its_image_logs_and_reads_its_secret_only() -> None:
    run = pr_slice(False)
    task = run.one("aws:ecs/taskDefinition:TaskDefinition").plain
    role = next(r for r in run.of_type(ROLE) if outputs(r)["arn"] == task["executionRoleArn"])
    identity, boundary = role_documents(run, role)
    assert boundary is not None
    needs: list[tuple[str, str]] = [("ecr:GetAuthorizationToken", "*")]
    secret = outputs(run.one(SECRET))["arn"]
    for container in json.loads(task["containerDefinitions"]):
        repository = container["image"].split("/", 1)[1].split("@")[0].split(":")[0]
        image = _arn("ecr", f"repository/{repository}")
        needs += [("ecr:BatchGetImage", image), ("ecr:GetDownloadUrlForLayer", image)]
        group = container["logConfiguration"]["options"]["awslogs-group"]
        stream = _arn("logs", f"log-group:{group}:log-stream:app/{container['name']}/0a1b2c")
        needs += [("logs:CreateLogStream", stream), ("logs:PutLogEvents", stream)]
        for reference in container.get("secrets", []):
            # valueFrom is `<secret ARN>:<json key>::`; IAM authorizes the secret's ARN.
            arn = ":".join(reference["valueFrom"].split(":")[:7])
            assert arn == secret, reference
            needs.append(("secretsmanager:GetSecretValue", arn))
    refused = [n for n in needs if decide_bounded(identity, boundary, *n) != "Allow"]
    assert not refused
    for arn, context in _host_secrets():
        read = "secretsmanager:GetSecretValue"
        assert decide_bounded(identity, boundary, read, arn, context) != "Allow", arn
        # The boundary itself denies them: no inline policy a pr deploy writes can grant them.
        assert decide([boundary], read, arn, context) == "Deny", arn


def test_the_task_role_is_given_nothing() -> None:
    """The app calls no AWS API (app/src imports no AWS SDK; its logs go through the execution
    role's log driver): the task role has no policy, and the pr boundary still caps it."""
    run = pr_slice(False)
    task = run.one("aws:ecs/taskDefinition:TaskDefinition").plain
    role = next(r for r in run.of_type(ROLE) if outputs(r)["arn"] == task["taskRoleArn"])
    identity, boundary = role_documents(run, role)
    assert identity == []
    assert boundary == json.loads(_pr_boundary().plain["policy"])


def test_every_slices_target_group_name_fits_and_keeps_its_apps_prefix() -> None:
    """What the slices policy's `targetgroup/<prefix>*` relies on, for every app name length
    and the lowest and highest number: ELB's 32 characters with Pulumi's 8-character suffix."""
    prefixes = set()
    for length in range(1, 32):
        app = ("a" + "b" * 40)[: length - 1] + "z" if length > 1 else "a"
        prefix = slice_target_group_prefix(app)
        prefixes.add(prefix)
        assert prefix == f"{app}-pr-" or length > 12, app
        for number in (1, MAX_PORT - PR_PORT_OFFSET):
            name = slice_target_group(app, number)
            assert name.startswith(prefix) and len(name) + 8 <= 32, name
    assert len(prefixes) == 31  # one app's slices never match another's prefix

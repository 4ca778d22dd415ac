"""The preview role: what `pulumi preview` (and `--refresh`) of a stack reads, and no data.

Any branch reaches the `<stack>-preview` environment, so every decision here is what a pull
request's code gets in the account.
"""

from __future__ import annotations

from functools import cache

import pytest

from cli.engine import ProgramRun
from tests.harness import run_stack
from tests.infra.iam_policy import decide
from tests.infra.test_aws_fixtures import policy, tier_run

KEY = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-0000-4000-8000-123456789abc"
BUCKET = "acme-pulumi-state"
# What the stack file says when the backend is s3://acme-pulumi-state with awskms:// secrets.
BACKEND = {"aws": {"stateBucket": BUCKET, "secretsProviderKeyArn": KEY}}
# Each AWS module the stacks register resources of, and the IAM prefix its reads use.
IAM_PREFIX = {
    "ec2": ["ec2"],
    "lambda": ["lambda"],
    "vpc": ["ec2"],
    "lb": ["elasticloadbalancing"],
    "ecs": ["ecs"],
    "ecr": ["ecr"],
    "rds": ["rds"],
    "elasticache": ["elasticache"],
    "cloudwatch": ["cloudwatch"],
    "sns": ["sns"],
    "appautoscaling": ["application-autoscaling"],
    "secretsmanager": ["secretsmanager"],
    "iam": ["iam"],
    "kms": ["kms"],
    "s3": ["s3"],
    "acm": ["acm"],
    "route53": ["route53"],
}
# Types whose module is not the IAM service that reads them.
TYPE_PREFIX = {
    "aws:cloudwatch/logGroup:LogGroup": ["logs"],
    "aws:cloudwatch/eventRule:EventRule": ["events"],
    "aws:cloudwatch/eventTarget:EventTarget": ["events"],
}


@cache
def backend_run(stack: str) -> ProgramRun:
    return run_stack(stack, BACKEND)


def _preview_policy(run: ProgramRun) -> dict:
    return policy(
        run.one("aws:iam/rolePolicy:RolePolicy", f"agent-{run.stack}-identity-preview-read")
    )


def _decide(run: ProgramRun, action: str, resource: str = "*") -> str:
    return decide([_preview_policy(run)], action, resource)


def _secret(stack: str, name: str = "openai-api-key") -> str:
    return f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:agent-{stack}-secrets-{name}-AbCd"


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_the_preview_role_decrypts_state_and_reads_the_state_bucket(stack: str) -> None:
    run = backend_run(stack)
    assert _decide(run, "kms:Decrypt", KEY) == "Allow"
    other_key = "arn:aws:kms:eu-west-1:123456789012:key/ffffffff-0000-4000-8000-000000000000"
    assert _decide(run, "kms:Decrypt", other_key) == "ImplicitDeny"
    checkpoint = f"arn:aws:s3:::{BUCKET}/.pulumi/stacks/agent-deploy/{stack}.json"
    assert _decide(run, "s3:GetObject", checkpoint) == "Allow"
    assert _decide(run, "s3:ListBucket", f"arn:aws:s3:::{BUCKET}") == "Allow"
    # A self-managed backend's preview takes no lock: nothing is written.
    for write in ("s3:PutObject", "s3:DeleteObject"):
        assert _decide(run, write, checkpoint) == "ImplicitDeny"


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_the_preview_role_refreshes_only_this_stacks_secrets(stack: str) -> None:
    run = backend_run(stack)
    # Every secret the stack registers can be refreshed (SecretVersion reads the value).
    for secret in run.of_type("aws:secretsmanager/secret:Secret"):
        # The physical name when the stack sets one, else Pulumi's autoname (`<name>-<hex>`).
        name = secret.plain.get("name") or secret.plain.get("namePrefix") or secret.name
        arn = f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:{name}-AbCdEf"
        assert _decide(run, "secretsmanager:GetSecretValue", arn) == "Allow", name
    other = "production" if stack == "staging" else "staging"
    for foreign in (
        _secret(other),
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1234-AbCdEf",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:payroll-AbCdEf",
    ):
        assert _decide(run, "secretsmanager:GetSecretValue", foreign) == "Deny", foreign


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_the_preview_role_reads_no_data(stack: str) -> None:
    run = backend_run(stack)
    for action, resource in [
        ("s3:GetObject", "arn:aws:s3:::acme-customer-uploads/report.pdf"),
        ("s3:GetObjectVersion", "arn:aws:s3:::acme-customer-uploads/report.pdf"),
        ("ssm:GetParameter", "arn:aws:ssm:eu-west-1:123456789012:parameter/db/password"),
        ("ssm:GetParametersByPath", "arn:aws:ssm:eu-west-1:123456789012:parameter/db"),
        (
            "logs:GetLogEvents",
            "arn:aws:logs:eu-west-1:123456789012:log-group:/ecs/agent-production",
        ),
        ("logs:FilterLogEvents", "arn:aws:logs:eu-west-1:123456789012:log-group:/ecs/x"),
        ("logs:StartQuery", "arn:aws:logs:eu-west-1:123456789012:log-group:/ecs/x"),
        ("dynamodb:Scan", "arn:aws:dynamodb:eu-west-1:123456789012:table/users"),
        ("dynamodb:GetItem", "arn:aws:dynamodb:eu-west-1:123456789012:table/users"),
        ("sqs:ReceiveMessage", "arn:aws:sqs:eu-west-1:123456789012:jobs"),
    ]:
        # Explicit: no other policy in the account can hand it back.
        assert _decide(run, action, resource) == "Deny", action
    # And nothing it could change.
    for action in ("ec2:CreateVpc", "iam:CreateRole", "ecs:UpdateService", "rds:DeleteDBInstance"):
        assert _decide(run, action) == "ImplicitDeny", action


def test_without_backend_keys_nothing_of_s3_or_kms_is_granted() -> None:
    run = tier_run("staging")
    assert _decide(run, "kms:Decrypt", KEY) == "ImplicitDeny"
    assert _decide(run, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/x") == "Deny"


@pytest.mark.parametrize("tier", ["staging", "production"])
def test_the_preview_role_reads_every_resource_type_the_stack_registers(tier: str) -> None:
    run = tier_run(tier)
    # No AWS-managed policy any more: ReadOnlyAccess read objects, parameters and logs.
    attachments = run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert not [a for a in attachments if "-preview" in a.name]
    statements = _preview_policy(run)["Statement"]
    readable = {a.split(":")[0] for s in statements if s["Effect"] == "Allow" for a in s["Action"]}
    types = {r.type for r in run.resources if r.type.startswith("aws:")}
    types.discard("pulumi:providers:aws")
    modules = {t.split(":")[1].split("/")[0] for t in types if t not in TYPE_PREFIX}
    modules.discard("index")  # the provider itself
    unmapped = modules - set(IAM_PREFIX)
    assert not unmapped, f"add the preview reads of {unmapped} to identity.PREVIEW_READ_ACTIONS"
    for module in modules:
        assert set(IAM_PREFIX[module]) <= readable, module
    for type_ in types & set(TYPE_PREFIX):
        assert set(TYPE_PREFIX[type_]) <= readable, type_
    for action, resource in [
        ("ec2:DescribeVpcs", "*"),
        ("ecs:DescribeServices", "*"),
        ("ecs:DescribeTaskDefinition", "*"),
        ("elasticloadbalancing:DescribeLoadBalancers", "*"),
        ("rds:DescribeDBInstances", "*"),
        ("elasticache:DescribeReplicationGroups", "*"),
        ("application-autoscaling:DescribeScalableTargets", "*"),
        ("iam:GetRole", "arn:aws:iam::123456789012:role/agent-staging-web-task"),
        ("iam:ListOpenIDConnectProviders", "*"),
        ("ecr:GetAuthorizationToken", "*"),
        # The RDS storage events' rule and its target (module cloudwatch, service events).
        ("events:DescribeRule", "*"),
        ("events:ListTargetsByRule", "*"),
        # app.domain: the zone lookup, the validation and alias records, the certificate.
        ("route53:ListHostedZonesByName", "*"),
        ("route53:ListResourceRecordSets", "*"),
        ("acm:DescribeCertificate", "*"),
    ]:
        assert _decide(run, action, resource) == "Allow", action

"""The GitHub OIDC deploy role and the alarms."""

from __future__ import annotations

import pytest

from infra.aws.identity import subject
from tests.harness import run_stack
from tests.infra.test_aws_fixtures import policy, tier_run, variant_run

ROLE = "aws:iam/role:Role"
OIDC = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
PROVIDER_ARN = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"


def _trust(role) -> dict:
    (statement,) = policy(role, "assumeRolePolicy")["Statement"]
    return statement


# Roles each stack owns, by label, and the GitHub environment each trusts.
ROLES = {
    "staging": {"deploy": "staging", "preview": "staging-preview", "ephemeral": "ephemeral"},
    "production": {"deploy": "production", "preview": "production-preview"},
}


@pytest.mark.parametrize("tier", ["staging", "production"])
def test_each_role_trusts_one_repository_in_one_environment(tier: str) -> None:
    run = tier_run(tier)
    name = f"agent-{run.stack}-identity"
    roles = {
        r.name.removeprefix(f"{name}-"): r for r in run.of_type(ROLE) if r.name.startswith(name)
    }
    assert set(roles) == set(ROLES[tier])
    for label, environment in ROLES[tier].items():
        statement = _trust(roles[label])
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Principal"] == {"Federated": PROVIDER_ARN}
        # CKV_AWS_358: StringEquals (never StringLike) on both audience and subject.
        assert statement["Condition"] == {
            "StringEquals": {
                "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                "token.actions.githubusercontent.com:sub": (
                    f"repo:example-org/agent-deploy:environment:{environment}"
                ),
            }
        }
        assert "*" not in str(statement)


def test_pr_stacks_create_no_role_and_deploy_with_the_staging_ephemeral_role() -> None:
    run = tier_run("ephemeral")
    assert [r for r in run.of_type(ROLE) if "identity" in r.name] == []
    assert run.of_type(OIDC) == []
    assert "deployRoleArn" not in run.outputs
    staging = tier_run("staging")
    ephemeral = staging.one(ROLE, "agent-staging-identity-ephemeral")
    assert _trust(ephemeral)["Condition"]["StringEquals"][
        "token.actions.githubusercontent.com:sub"
    ] == ("repo:example-org/agent-deploy:environment:ephemeral")
    inline = policy(
        staging.one("aws:iam/rolePolicy:RolePolicy", "agent-staging-identity-ephemeral-iam")
    )
    # IAM only on the pr stacks' own roles.
    assert inline["Statement"][0]["Resource"] == ["arn:aws:iam::123456789012:role/agent-pr-*"]
    assert staging.outputs["ephemeralDeployRoleArn"] == (
        "arn:aws:iam::123456789012:role/agent-staging-identity-ephemeral"
    )


def test_a_stack_without_github_section_trusts_aws_github_repository() -> None:
    run = run_stack(
        "production",
        {"github": None, "aws": {"githubRepository": "acme/agents", "githubEnvironment": "prod"}},
    )
    (role,) = [r for r in run.of_type(ROLE) if "identity" in r.name]
    assert (
        _trust(role)["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
        == "repo:acme/agents:environment:prod"
    )


@pytest.mark.parametrize("tier", ["staging", "production"])
def test_oidc_provider_is_created_once_per_stack(tier: str) -> None:
    run = tier_run(tier)
    (provider,) = run.of_type(OIDC)
    assert provider.plain["url"] == "https://token.actions.githubusercontent.com"
    assert provider.plain["clientIdLists"] == ["sts.amazonaws.com"]


def test_an_existing_provider_from_config() -> None:
    run = variant_run("existing-oidc")
    assert run.of_type(OIDC) == []
    role = run.one(ROLE, "agent-staging-identity-deploy")
    assert _trust(role)["Principal"] == {"Federated": PROVIDER_ARN}


def test_an_existing_provider_is_looked_up_when_not_created() -> None:
    run = run_stack("staging", {"aws": {"createOidcProvider": False}})
    assert run.of_type(OIDC) == []
    assert (
        "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider",
        {"url": "https://token.actions.githubusercontent.com"},
    ) in run.invokes


@pytest.mark.parametrize("tier", ["staging", "production"])
def test_deploy_role_manages_only_this_stacks_roles(tier: str) -> None:
    run = tier_run(tier)
    name = f"agent-{run.stack}"
    inline = policy(run.one("aws:iam/rolePolicy:RolePolicy", f"{name}-identity-deploy-iam"))
    iam, oidc = inline["Statement"]
    # IAM.1/21: explicit actions; roles only under this stack's name prefix.
    assert iam["Resource"] == [f"arn:aws:iam::123456789012:role/{name}-*"]
    assert oidc["Resource"] == [PROVIDER_ARN]
    assert all("*" not in a for s in inline["Statement"] for a in s["Action"])
    attachments = {
        a.name: a.plain["policyArn"]
        for a in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    }
    assert attachments[f"{name}-identity-deploy-power-user"] == (
        "arn:aws:iam::aws:policy/PowerUserAccess"
    )
    # The preview role only reads.
    assert attachments[f"{name}-identity-preview-read-only"] == (
        "arn:aws:iam::aws:policy/ReadOnlyAccess"
    )
    assert not [p for p in run.of_type("aws:iam/rolePolicy:RolePolicy") if "preview" in p.name]


@pytest.mark.parametrize("tier", ["staging", "production"])
def test_github_environments_get_the_role_arns(tier: str) -> None:
    run = tier_run(tier)
    variables = {
        (v.plain["environment"], v.plain["variableName"]): v.plain["value"]
        for v in run.of_type("github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable")
    }
    stack = run.stack
    assert variables[(stack, "AWS_DEPLOY_ROLE_ARN")] == run.outputs["deployRoleArn"]
    assert variables[(stack, "AWS_REGION")] == "eu-west-1"
    assert variables[(stack, "SERVICE_URL")] == run.outputs["serviceUrl"]
    assert variables[(stack, "PULUMI_STACK")] == stack
    assert variables[(stack, "HEALTH_PATH")] == "/health"
    assert variables[(f"{stack}-preview", "AWS_PREVIEW_ROLE_ARN")] == run.outputs["previewRoleArn"]
    if tier == "staging":
        assert (
            variables[("ephemeral", "AWS_DEPLOY_ROLE_ARN")] == run.outputs["ephemeralDeployRoleArn"]
        )


def test_wildcard_subjects_are_refused() -> None:
    with pytest.raises(ValueError, match="wildcard"):
        subject("example-org/*", "staging")
    with pytest.raises(ValueError, match="wildcard"):
        subject("example-org/agent", "*")


@pytest.mark.parametrize(
    ("tier", "cache_nodes"), [("ephemeral", 1), ("staging", 1), ("production", 2)]
)
def test_alarms_cover_alb_service_database_and_cache(tier: str, cache_nodes: int) -> None:
    run = tier_run(tier)
    alarms = run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    metrics = sorted((a.plain["namespace"], a.plain["metricName"]) for a in alarms)
    assert metrics == sorted(
        [
            ("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count"),
            ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"),
            ("AWS/ApplicationELB", "UnHealthyHostCount"),
            ("AWS/ApplicationELB", "HealthyHostCount"),
            ("AWS/ECS", "CPUUtilization"),
            ("AWS/ECS", "MemoryUtilization"),
            ("AWS/RDS", "CPUUtilization"),
            ("AWS/RDS", "FreeStorageSpace"),
            *[("AWS/ElastiCache", "DatabaseMemoryUsagePercentage")] * cache_nodes,
        ]
    )
    topic = run.one("aws:sns/topic:Topic")
    topic_arn = f"arn:aws:sns:us-east-1:123456789012:{topic.name}"
    for alarm in alarms:
        assert alarm.plain["alarmActions"] == alarm.plain["okActions"] == [topic_arn]
    cache = [a for a in alarms if a.plain["namespace"] == "AWS/ElastiCache"]
    assert sorted(a.plain["dimensions"]["CacheClusterId"] for a in cache) == [
        f"agent-{run.stack}-cache-{i:03d}" for i in range(1, cache_nodes + 1)
    ]
    # Production requires a recipient (its stack file sets one); the others have none.
    subscriptions = run.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert len(subscriptions) == (1 if tier == "production" else 0)


def test_alarm_email_subscription_from_config() -> None:
    (subscription,) = variant_run("tls").of_type("aws:sns/topicSubscription:TopicSubscription")
    assert subscription.plain["protocol"] == "email"
    assert subscription.plain["endpoint"] == "oncall@example.com"

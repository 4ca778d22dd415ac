"""The GitHub OIDC roles (trust, what each may do in IAM, session length) and the alarms."""

from __future__ import annotations

import json

import pytest
import yaml

from infra.aws.identity import MAX_SESSION_SECONDS, subject
from tests.harness import PROJECT_DIR, run_stack
from tests.infra.iam_policy import decide
from tests.infra.test_aws_fixtures import policy, tier_run, variant_run

ROLE = "aws:iam/role:Role"
OIDC = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
POLICY = "aws:iam/policy:Policy"
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
        "staging",
        {"github": None, "aws": {"githubRepository": "acme/agents", "githubEnvironment": "qa"}},
    )
    (role,) = [r for r in run.of_type(ROLE) if "identity" in r.name]
    assert (
        _trust(role)["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
        == "repo:acme/agents:environment:qa"
    )


def test_staging_owns_the_accounts_oidc_provider_and_production_looks_it_up() -> None:
    staging, production = tier_run("staging"), tier_run("production")
    (provider,) = staging.of_type(OIDC)
    assert provider.plain["url"] == "https://token.actions.githubusercontent.com"
    assert provider.plain["clientIdLists"] == ["sts.amazonaws.com"]
    # Destroying staging leaves the provider production's roles trust.
    assert provider.retain_on_delete
    assert production.of_type(OIDC) == []
    assert (
        "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider",
        {"url": "https://token.actions.githubusercontent.com"},
    ) in production.invokes
    role = production.one(ROLE, "agent-production-identity-deploy")
    assert _trust(role)["Principal"] == {"Federated": PROVIDER_ARN}


def test_an_existing_provider_from_config() -> None:
    run = variant_run("existing-oidc")
    assert run.of_type(OIDC) == []
    assert not [i for i in run.invokes if "OpenIdConnectProvider" in i[0]]
    role = run.one(ROLE, "agent-staging-identity-deploy")
    assert _trust(role)["Principal"] == {"Federated": PROVIDER_ARN}


def test_an_existing_provider_is_looked_up_when_not_created() -> None:
    run = run_stack("staging", {"aws": {"createOidcProvider": False}})
    assert run.of_type(OIDC) == []
    assert (
        "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider",
        {"url": "https://token.actions.githubusercontent.com"},
    ) in run.invokes


# --------------------------------------------------------------------------------------------
# What each deploy role can do in IAM, decided against its registered policy (PowerUserAccess,
# its only other policy, grants no IAM beyond service-linked roles).
# --------------------------------------------------------------------------------------------
ACCOUNT = "arn:aws:iam::123456789012"
# (tier, role label, prefix of the roles it manages, its boundary)
DEPLOY_ROLES = [
    ("staging", "deploy", "agent-staging-", f"{ACCOUNT}:policy/agent-staging-boundary"),
    ("staging", "ephemeral", "agent-pr-", f"{ACCOUNT}:policy/agent-pr-boundary"),
    ("production", "deploy", "agent-production-", f"{ACCOUNT}:policy/agent-production-boundary"),
]
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
ATTACHABLE = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"


def _deploy_policy(tier: str, label: str) -> dict:
    run = tier_run(tier)
    return policy(
        run.one("aws:iam/rolePolicy:RolePolicy", f"agent-{run.stack}-identity-{label}-iam")
    )


def _can(tier: str, label: str, action: str, resource: str, **context: str) -> bool:
    keys = {f"iam:{k}": v for k, v in context.items()}
    return decide([_deploy_policy(tier, label)], action, resource, keys) == "Allow"


@pytest.mark.parametrize(("tier", "label", "prefix", "boundary"), DEPLOY_ROLES)
def test_deploy_roles_create_and_edit_roles_only_with_their_boundary(
    tier: str, label: str, prefix: str, boundary: str
) -> None:
    # IAM.1/21: every Allow names its actions.
    allowed = [s for s in _deploy_policy(tier, label)["Statement"] if s["Effect"] == "Allow"]
    assert all("*" not in a for s in allowed for a in s["Action"])
    role = f"{ACCOUNT}:role/{prefix}web-task"
    for action in (
        "iam:CreateRole",
        "iam:PutRolePolicy",
        "iam:PutRolePermissionsBoundary",
    ):
        assert _can(tier, label, action, role, PermissionsBoundary=boundary), action
        assert not _can(tier, label, action, role), f"{action} without a boundary"
        assert not _can(tier, label, action, role, PermissionsBoundary=ADMIN), action
    # Another stack's boundary does not do either.
    other = next(b for _, _, _, b in DEPLOY_ROLES if b != boundary)
    assert not _can(tier, label, "iam:CreateRole", role, PermissionsBoundary=other)
    # Outside its prefix nothing, boundary or not.
    outside = f"{ACCOUNT}:role/agent-other-web-task"
    assert not _can(tier, label, "iam:CreateRole", outside, PermissionsBoundary=boundary)
    assert not _can(tier, label, "iam:UpdateAssumeRolePolicy", outside)


@pytest.mark.parametrize(("tier", "label", "prefix", "boundary"), DEPLOY_ROLES)
def test_the_boundary_is_neither_removable_nor_editable(
    tier: str, label: str, prefix: str, boundary: str
) -> None:
    role = f"{ACCOUNT}:role/{prefix}web-task"
    assert not _can(tier, label, "iam:DeleteRolePermissionsBoundary", role)
    assert not _can(
        tier, label, "iam:DeleteRolePermissionsBoundary", role, PermissionsBoundary=boundary
    )
    for _, _, _, any_boundary in DEPLOY_ROLES:
        for action in (
            "iam:CreatePolicyVersion",
            "iam:SetDefaultPolicyVersion",
            "iam:DeletePolicy",
            "iam:DeletePolicyVersion",
        ):
            assert not _can(tier, label, action, any_boundary), (action, any_boundary)
    decisions = {
        decide([_deploy_policy(tier, label)], "iam:CreatePolicyVersion", boundary),
        decide([_deploy_policy(tier, label)], "iam:DeletePolicy", boundary),
    }
    assert decisions == {"Deny"}  # explicit: whatever else the account grants


@pytest.mark.parametrize(("tier", "label", "prefix", "boundary"), DEPLOY_ROLES)
def test_only_allowlisted_managed_policies_can_be_attached(
    tier: str, label: str, prefix: str, boundary: str
) -> None:
    role = f"{ACCOUNT}:role/{prefix}web-task"
    attach = "iam:AttachRolePolicy"
    assert _can(tier, label, attach, role, PermissionsBoundary=boundary, PolicyARN=ATTACHABLE)
    assert not _can(tier, label, attach, role, PermissionsBoundary=boundary, PolicyARN=ADMIN)
    assert not _can(tier, label, attach, role, PolicyARN=ATTACHABLE)  # no boundary
    assert (
        decide(
            [_deploy_policy(tier, label)],
            attach,
            role,
            {"iam:PermissionsBoundary": boundary, "iam:PolicyARN": f"{ACCOUNT}:policy/mine"},
        )
        == "Deny"
    )


@pytest.mark.parametrize(("tier", "label", "prefix", "boundary"), DEPLOY_ROLES)
def test_no_deploy_role_can_change_itself_or_the_other_github_roles(
    tier: str, label: str, prefix: str, boundary: str
) -> None:
    run = tier_run(tier)
    github_roles = [r for r in run.of_type(ROLE) if "-identity-" in r.name]
    assert {r.plain["path"] for r in github_roles} == {"/github-actions/"}
    # Its own and its siblings (autonamed `<name>-<7 hex>`, under the path), and those of a
    # stack whose name its prefix also matches (`staging-eu` for `agent-staging-`).
    targets = [f"{ACCOUNT}:role/github-actions/{r.name}-1a2b3c4" for r in github_roles] + [
        f"{ACCOUNT}:role/github-actions/{prefix}eu-identity-deploy-1a2b3c4"
    ]
    # The role's own ARN as IAM reports it.
    own = run.one(ROLE, f"agent-{run.stack}-identity-{label}")
    targets.append(f"{ACCOUNT}:role/{own.name}")
    for arn in targets:
        for action in (
            "iam:AttachRolePolicy",
            "iam:PutRolePolicy",
            "iam:UpdateAssumeRolePolicy",
            "iam:DeleteRolePermissionsBoundary",
            "iam:DeleteRole",
            "iam:PassRole",
        ):
            decision = decide(
                [_deploy_policy(tier, label)],
                action,
                arn,
                {
                    "iam:PermissionsBoundary": boundary,
                    "iam:PolicyARN": ATTACHABLE,
                    "iam:PassedToService": "ecs-tasks.amazonaws.com",
                },
            )
            assert decision == "Deny", (label, action, arn)


@pytest.mark.parametrize(("tier", "label", "prefix", "boundary"), DEPLOY_ROLES)
def test_no_role_has_rights_on_the_oidc_provider(
    tier: str, label: str, prefix: str, boundary: str
) -> None:
    for action in (
        "iam:DeleteOpenIDConnectProvider",
        "iam:CreateOpenIDConnectProvider",
        "iam:UpdateOpenIDConnectProviderThumbprint",
        "iam:AddClientIDToOpenIDConnectProvider",
        "iam:RemoveClientIDFromOpenIDConnectProvider",
        "iam:TagOpenIDConnectProvider",
    ):
        assert decide([_deploy_policy(tier, label)], action, PROVIDER_ARN) == "Deny", action
    if label == "ephemeral":  # pr stacks never even look it up
        assert not _can(tier, label, "iam:GetOpenIDConnectProvider", PROVIDER_ARN)


@pytest.mark.parametrize(("tier", "label", "prefix", "boundary"), DEPLOY_ROLES)
def test_roles_are_passed_only_to_ecs_tasks_and_flow_logs(
    tier: str, label: str, prefix: str, boundary: str
) -> None:
    role = f"{ACCOUNT}:role/{prefix}web-task"
    assert _can(tier, label, "iam:PassRole", role, PassedToService="ecs-tasks.amazonaws.com")
    assert _can(tier, label, "iam:PassRole", role, PassedToService="vpc-flow-logs.amazonaws.com")
    # Only the deploy role of the stack hosting pr-<n> slices: to their provisioner function.
    hosting = tier == "staging" and label == "deploy"
    assert _can(tier, label, "iam:PassRole", role, PassedToService="lambda.amazonaws.com") is (
        hosting
    )
    assert not _can(tier, label, "iam:PassRole", role)


@pytest.mark.parametrize(
    ("tier", "boundary"),
    [
        ("staging", "agent-staging-boundary"),
        ("production", "agent-production-boundary"),
        ("ephemeral", "agent-pr-boundary"),
    ],
)
def test_every_role_the_stack_creates_carries_its_deploy_roles_boundary(
    tier: str, boundary: str
) -> None:
    run = tier_run(tier)
    created = [r for r in run.of_type(ROLE) if "-identity-" not in r.name]
    # ECS execution and task roles, and the flow-logs role where flow logs are on.
    assert len(created) >= 2
    for role in created:
        assert role.plain["permissionsBoundary"] == f"{ACCOUNT}:policy/{boundary}", role.name
    # The one staging creates for the pr stacks has the very name they compute.
    names = {p.plain["name"] for p in tier_run("staging").of_type(POLICY)}
    assert {"agent-staging-boundary", "agent-pr-boundary"} <= names


def _boundary_document(run_tier: str, name: str) -> dict:
    (document,) = [policy(p) for p in tier_run(run_tier).of_type(POLICY) if p.plain["name"] == name]
    return document


@pytest.mark.parametrize(
    ("tier", "name"),
    [
        ("staging", "agent-staging-boundary"),
        ("staging", "agent-pr-boundary"),
        ("production", "agent-production-boundary"),
    ],
)
def test_the_boundary_grants_no_iam_and_covers_what_the_stacks_roles_do(
    tier: str, name: str
) -> None:
    boundary = _boundary_document(tier, name)
    for action in ("iam:CreateRole", "iam:AttachRolePolicy", "iam:PassRole", "sts:AssumeRole"):
        assert decide([boundary], action, f"{ACCOUNT}:role/anything") == "ImplicitDeny"
    # Every action the stacks' own roles are granted stays possible under it.
    for run_tier in ("staging", "production", "ephemeral"):
        run = tier_run(run_tier)
        for inline in run.of_type("aws:iam/rolePolicy:RolePolicy"):
            if "-identity-" in inline.name:
                continue
            # The slice provisioner of the hosting stack: under that stack's boundary only.
            if "-pr-host-" in inline.name and name != "agent-staging-boundary":
                continue
            for statement in policy(inline)["Statement"]:
                for action in statement["Action"]:
                    assert any(
                        action in s["Action"] and s["Effect"] == "Allow"
                        for s in boundary["Statement"]
                    ), (inline.name, action)
    secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-123-AbCdEf"
    assert decide([boundary], "secretsmanager:GetSecretValue", secret) == "Allow"
    log_stream = "arn:aws:logs:eu-west-1:123456789012:log-group:/ecs/agent-pr-7:log-stream:x"
    assert decide([boundary], "logs:PutLogEvents", log_stream) == "Allow"
    # Signing in to Postgres as the slice provisioner: the hosting stack's own roles only.
    provisioner = "arn:aws:rds-db:eu-west-1:123456789012:dbuser:db-ABC/agent_provisioner"
    assert (decide([boundary], "rds-db:connect", provisioner) == "Allow") is (
        name == "agent-staging-boundary"
    )
    master = "arn:aws:rds-db:eu-west-1:123456789012:dbuser:db-ABC/postgres"
    assert decide([boundary], "rds-db:connect", master) == "ImplicitDeny"
    # And to the cache as its cleanup user: the hosting stack's own roles only, no other user.
    cache = "arn:aws:elasticache:eu-west-1:123456789012:"
    for resource in ("replicationgroup:agent-staging-cache", "user:agent-staging-cache-cleanup"):
        assert (decide([boundary], "elasticache:Connect", cache + resource) == "Allow") is (
            name == "agent-staging-boundary"
        ), resource
    app_user = cache + "user:agent-staging-cache-app"
    assert decide([boundary], "elasticache:Connect", app_user) == "ImplicitDeny"


def test_roles_last_as_long_as_the_longest_job() -> None:
    run = tier_run("staging")
    github_roles = [r for r in run.of_type(ROLE) if "-identity-" in r.name]
    assert {r.plain["maxSessionDuration"] for r in github_roles} == {MAX_SESSION_SECONDS}
    # Every workflow job holding AWS credentials ends before they expire.
    for path in sorted((PROJECT_DIR / ".github" / "workflows").glob("*.yml")):
        workflow = yaml.safe_load(path.read_text())
        for job_id, job in workflow.get("jobs", {}).items():
            steps = job.get("steps", [])
            aws_steps = [s for s in steps if "configure-aws-credentials" in str(s.get("uses", ""))]
            if not aws_steps:
                continue
            # GitHub's default job timeout is 6 hours.
            minutes = job.get("timeout-minutes", 360)
            assert minutes * 60 <= MAX_SESSION_SECONDS, f"{path.name} {job_id}: {minutes} min"
            for step in aws_steps:
                duration = str(step.get("with", {}).get("role-duration-seconds", 3600))
                if duration.isdigit():
                    assert int(duration) <= MAX_SESSION_SECONDS, (path.name, job_id, duration)


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
    assert (stack, "HEALTH_PATH") not in variables  # no workflow reads it
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


@pytest.mark.parametrize("tier", ["staging", "production", "ephemeral"])
def test_policies_are_documents_iam_accepts(tier: str) -> None:
    # IAM counts characters without whitespace: 10,240 for a role's inline policies (one per
    # role here), 6,144 for a managed policy such as the boundary.
    run = tier_run(tier)
    for resource, limit in [
        *((p, 10_240) for p in run.of_type("aws:iam/rolePolicy:RolePolicy")),
        *((p, 6_144) for p in run.of_type(POLICY)),
    ]:
        size = len("".join(json.dumps(policy(resource)).split()))
        assert size <= limit, (resource.name, size)
        # IAM refuses a policy whose statement ids repeat or are not alphanumeric.
        sids = [s["Sid"] for s in policy(resource)["Statement"] if "Sid" in s]
        assert len(sids) == len(set(sids)) and all(sid.isalnum() for sid in sids), sids

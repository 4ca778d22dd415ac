"""GitHubDelivery per tier, through `github_delivery` under the mocks engine.

Each test builds a real StackConfig (presets and validation included) by varying `tier`, then
runs `github_delivery` as a whole program and asserts what would be managed on GitHub.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from cli.engine import ProgramRun, Resource, _stable_number, contains_secret, is_secret
from infra.config import StackConfig, load_stack_config
from infra.github import EnvironmentArgs, GitHubDelivery, GitHubDeliveryArgs
from stacks.delivery import github_delivery
from tests.harness import run_components

ENVIRONMENT = "github:index/repositoryEnvironment:RepositoryEnvironment"
POLICY = "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy"
ENV_SECRET = "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret"
ENV_VARIABLE = "github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable"
REPO_SECRET = "github:index/actionsSecret:ActionsSecret"
REPO_VARIABLE = "github:index/actionsVariable:ActionsVariable"
PROTECTION = "github:index/branchProtection:BranchProtection"
PROVIDER = "pulumi:providers:github"
COMPONENT = "agent-deploy:github:Delivery"

ROLE_ARN = "arn:aws:iam::123456789012:role/agent-staging-deploy"
PREVIEW_ROLE_ARN = "arn:aws:iam::123456789012:role/agent-staging-preview"
EPHEMERAL_ROLE_ARN = "arn:aws:iam::123456789012:role/agent-ephemeral-deploy"
SERVICE_URL = "http://agent-staging-123.eu-west-1.elb.amazonaws.com"
SECRET = "sk-live-very-secret-value"


def stack_config(
    tier: str,
    stack: str | None = None,
    pulumi_secrets: dict[str, str] | None = None,
    **github: Any,
) -> StackConfig:
    raw = {
        "agent-deploy:target": "aws",
        "agent-deploy:tier": tier,
        "agent-deploy:aws": json.dumps({"region": "eu-west-1", "alarmEmail": "ops@acme.test"}),
        # Production serves HTTPS only (issue 10).
        "agent-deploy:app": json.dumps({"domain": "agent.acme.test"}),
        "agent-deploy:github": json.dumps(
            {"owner": "acme", "repository": "agent", "plan": "enterprise", **github}
        ),
    }
    raw |= {f"agent-deploy:{k}": v for k, v in (pulumi_secrets or {}).items()}
    secret_keys = {f"agent-deploy:{k}" for k in pulumi_secrets or {}}
    return load_stack_config(stack or tier, raw, secret_keys)


def deliver(
    config: StackConfig,
    variables: dict[str, pulumi.Input[str]] | None = None,
    secrets: dict[str, str] | None = None,
) -> ProgramRun:
    if variables is None:
        variables = {
            "AWS_DEPLOY_ROLE_ARN": ROLE_ARN,
            "AWS_REGION": "eu-west-1",
            # an Output, as the AWS stack passes its load balancer's URL
            "SERVICE_URL": pulumi.Output.from_input(SERVICE_URL),
        }
    return run_components(
        lambda: github_delivery(config, variables), stack=config.stack, secrets=secrets
    )


def environment(run: ProgramRun, name: str) -> dict[str, Any]:
    found = [r.plain for r in run.of_type(ENVIRONMENT) if r.plain["environment"] == name]
    assert len(found) == 1, [r.plain["environment"] for r in run.of_type(ENVIRONMENT)]
    return found[0]


def variables_of(run: ProgramRun, environment_name: str) -> dict[str, Any]:
    return {
        r.plain["variableName"]: r.plain["value"]
        for r in run.of_type(ENV_VARIABLE)
        if r.plain["environment"] == environment_name
    }


def secrets_of(run: ProgramRun, environment_name: str) -> dict[str, Resource]:
    return {
        r.plain["secretName"]: r
        for r in run.of_type(ENV_SECRET)
        if r.plain["environment"] == environment_name
    }


@pytest.fixture(scope="module")
def production() -> ProgramRun:
    github = {
        "reviewers": ["octocat", "acme/platform-leads"],
        "waitTimerMinutes": 15,
        "secrets": ["SENTRY_DSN"],
    }
    config = stack_config("production", pulumi_secrets={"SENTRY_DSN": SECRET}, **github)
    return deliver(config, secrets={"SENTRY_DSN": SECRET})


def test_production_environment_requires_resolved_reviewers(production: ProgramRun) -> None:
    env = environment(production, "production")
    # Numeric ids from the getUser/getTeam lookups, never the logins themselves.
    assert env["reviewers"] == [
        {"users": [_stable_number("octocat")], "teams": [_stable_number("platform-leads")]}
    ]
    invoked = {
        (token.rsplit(":", 1)[1], json.dumps(args, sort_keys=True))
        for token, args in production.invokes
    }
    assert ("getUser", json.dumps({"username": "octocat"})) in invoked
    assert (
        "getTeam",
        json.dumps({"slug": "platform-leads", "summaryOnly": True}, sort_keys=True),
    ) in invoked
    assert env["preventSelfReview"] is True
    assert env["canAdminsBypass"] is False
    assert env["waitTimer"] == 15


def test_production_deploys_from_protected_branches_only(production: ProgramRun) -> None:
    policy = environment(production, "production")["deploymentBranchPolicy"]
    assert policy == {"protectedBranches": True, "customBranchPolicies": False}
    assert not production.of_type(POLICY)


def test_staging_deploys_from_the_default_branch_only() -> None:
    run = deliver(stack_config("staging", defaultBranch="trunk"))
    env = environment(run, "staging")
    assert env["deploymentBranchPolicy"] == {
        "protectedBranches": False,
        "customBranchPolicies": True,
    }
    policy = run.one(POLICY).plain
    assert policy == {"repository": "agent", "environment": "staging", "branchPattern": "trunk"}
    assert env["preventSelfReview"] is False and env["reviewers"] == []
    assert "waitTimer" not in env


def test_ephemeral_tier_has_no_branch_policy_reviewers_or_preview() -> None:
    run = deliver(stack_config("ephemeral", stack="dev-alice"))
    assert [r.plain["environment"] for r in run.of_type(ENVIRONMENT)] == ["dev-alice"]
    env = environment(run, "dev-alice")
    assert "deploymentBranchPolicy" not in env
    assert env["reviewers"] == []
    assert not run.of_type(POLICY)


def test_environment_name_can_be_configured() -> None:
    run = deliver(stack_config("staging", environment="stage-eu"))
    assert sorted(r.plain["environment"] for r in run.of_type(ENVIRONMENT)) == [
        "stage-eu",
        "stage-eu-preview",
    ]
    assert variables_of(run, "stage-eu")["PULUMI_STACK"] == "staging"


def test_variables_carry_the_stack_outputs_for_the_workflows(production: ProgramRun) -> None:
    assert variables_of(production, "production") == {
        "AWS_DEPLOY_ROLE_ARN": ROLE_ARN,
        "AWS_REGION": "eu-west-1",
        "SERVICE_URL": SERVICE_URL,
        "PULUMI_STACK": "production",
        "READY_PATH": "/ready",
    }
    for variable in production.of_type(ENV_VARIABLE):
        assert not contains_secret(variable.inputs), variable.name


def test_config_variables_are_added_and_may_not_shadow_stack_outputs() -> None:
    run = deliver(stack_config("staging", variables={"LOG_LEVEL": "debug"}))
    assert variables_of(run, "staging")["LOG_LEVEL"] == "debug"
    clash = stack_config("staging", variables={"ECR_REPOSITORY": "mine"})
    with pytest.raises(Exception, match=r"ECR_REPOSITORY.*also written by the stack"):
        deliver(clash, variables={"ECR_REPOSITORY": "the stack's"})


def test_variables_the_aws_stack_also_passes_are_accepted() -> None:
    run = deliver(
        stack_config("staging"),
        variables={"PULUMI_STACK": "staging", "HEALTH_PATH": "/health", "AWS_REGION": "eu-west-1"},
    )
    assert variables_of(run, "staging") == {
        "PULUMI_STACK": "staging",
        "HEALTH_PATH": "/health",
        "READY_PATH": "/ready",
        "AWS_REGION": "eu-west-1",
    }


def test_preview_and_ephemeral_environments_get_only_their_own_role() -> None:
    config = stack_config("staging", ephemeralEnvironment="ephemeral")
    run = deliver(
        config,
        variables={
            "AWS_DEPLOY_ROLE_ARN": ROLE_ARN,
            "AWS_REGION": "eu-west-1",
            "SERVICE_URL": SERVICE_URL,
            "AWS_PREVIEW_ROLE_ARN": PREVIEW_ROLE_ARN,
            "ephemeral/AWS_DEPLOY_ROLE_ARN": EPHEMERAL_ROLE_ARN,
        },
    )
    assert variables_of(run, "staging-preview") == {
        "AWS_PREVIEW_ROLE_ARN": PREVIEW_ROLE_ARN,
        "AWS_REGION": "eu-west-1",
        "PULUMI_STACK": "staging",
    }
    assert variables_of(run, "ephemeral") == {
        "AWS_DEPLOY_ROLE_ARN": EPHEMERAL_ROLE_ARN,
        "AWS_REGION": "eu-west-1",
        "READY_PATH": "/ready",
    }
    own = variables_of(run, "staging")
    assert own["AWS_DEPLOY_ROLE_ARN"] == ROLE_ARN and "AWS_PREVIEW_ROLE_ARN" not in own
    # Pull requests deploy from the preview and ephemeral environments: no gate there.
    for name in ("staging-preview", "ephemeral"):
        env = environment(run, name)
        assert env["reviewers"] == [] and "deploymentBranchPolicy" not in env


def test_scoped_variables_for_an_unmanaged_environment_are_dropped() -> None:
    run = deliver(
        stack_config("ephemeral", stack="dev-alice"),
        variables={
            "AWS_PREVIEW_ROLE_ARN": PREVIEW_ROLE_ARN,
            "ephemeral/AWS_DEPLOY_ROLE_ARN": ROLE_ARN,
        },
    )
    assert {r.plain["environment"] for r in run.of_type(ENV_VARIABLE)} == {"dev-alice"}
    with pytest.raises(Exception, match="unknown scope 'prod/'"):
        deliver(stack_config("staging"), variables={"prod/X": "1"})


def test_environment_secrets_are_secret_values_in_their_environment(
    production: ProgramRun,
) -> None:
    secrets = secrets_of(production, "production")
    assert list(secrets) == ["SENTRY_DSN"]
    secret = secrets["SENTRY_DSN"]
    assert secret.is_secret("value") and secret.plain["value"] == SECRET
    # The deprecated plaintext fields are never used.
    assert not {"plaintextValue", "encryptedValue"} & set(secret.inputs)
    assert not production.of_type(REPO_SECRET)  # production does not own the repository
    for resource in production.resources:
        for key, value in resource.inputs.items():
            if not is_secret(value):
                assert SECRET not in json.dumps(value), (resource.name, key)


def test_secrets_and_variables_delete_before_replace(production: ProgramRun) -> None:
    # pulumi-github #111/#223: a create-before-delete replacement of a secret with the same
    # name deletes the one just written.
    keyed = production.of_type(ENV_SECRET) + production.of_type(ENV_VARIABLE)
    assert keyed and all(r.delete_before_replace for r in keyed)
    assert not any(r.ignore_changes for r in keyed)


def test_repository_scope_only_from_the_owning_stack() -> None:
    owner = stack_config(
        "staging",
        pulumi_secrets={"DEPLOY_KEY": SECRET},
        ownsRepository=True,
        repositorySecrets=["DEPLOY_KEY"],
        repositoryVariables={"PULUMI_BACKEND_URL": "s3://b"},
        protectDefaultBranch=True,
        requiredChecks=["lint", "test"],
    )
    run = deliver(owner, secrets={"DEPLOY_KEY": SECRET})
    secret = run.one(REPO_SECRET)
    assert secret.plain["secretName"] == "DEPLOY_KEY" and secret.is_secret("value")
    assert secret.delete_before_replace
    assert "environment" not in secret.plain
    variable = run.one(REPO_VARIABLE).plain
    assert (variable["variableName"], variable["value"]) == ("PULUMI_BACKEND_URL", "s3://b")
    # The repository secret is not copied into an environment.
    assert "DEPLOY_KEY" not in secrets_of(run, "staging")
    protection = run.one(PROTECTION).plain
    assert protection["repositoryId"] == "agent" and protection["pattern"] == "main"
    assert protection["enforceAdmins"] is True
    assert protection["allowsDeletions"] is False and protection["allowsForcePushes"] is False
    (checks,) = protection["requiredStatusChecks"]
    assert checks == {"strict": True, "contexts": ["lint", "test"]}
    # main deploys: merges need an approval by someone other than the last pusher, and a
    # code owner's for what deploys.
    assert protection["requiredPullRequestReviews"] == [
        {
            "requiredApprovingReviewCount": 1,
            "dismissStaleReviews": True,
            "requireCodeOwnerReviews": True,
            "requireLastPushApproval": True,
        }
    ]

    others = deliver(stack_config("staging"))
    assert (
        not others.of_type(REPO_SECRET) + others.of_type(REPO_VARIABLE) + others.of_type(PROTECTION)
    )


def test_component_refuses_repository_scope_without_ownership() -> None:
    args = GitHubDeliveryArgs(
        repository="agent",
        environments=[EnvironmentArgs("staging")],
        repository_variables={"X": "1"},
    )
    with pytest.raises(ValueError, match="only by the stack that owns the repository"):
        run_components(lambda: GitHubDelivery("d", args))


@pytest.mark.parametrize(
    ("environments", "message"),
    [
        ([EnvironmentArgs("prod env")], "letters, digits"),
        ([EnvironmentArgs("a"), EnvironmentArgs("A")], "repeat"),
        ([EnvironmentArgs("a", reviewers=["@octocat"])], "neither a login"),
        ([EnvironmentArgs("a", reviewers=[f"user{i}" for i in range(7)])], "at most 6"),
        ([EnvironmentArgs("a", variables={"GITHUB_X": "1"})], "invalid secret/variable"),
    ],
)
def test_component_refuses_what_github_would(
    environments: list[EnvironmentArgs],
    message: str,
) -> None:
    args = GitHubDeliveryArgs(repository="agent", environments=environments)
    with pytest.raises(ValueError, match=message):
        run_components(lambda: GitHubDelivery("d", args))


def test_explicit_provider_with_owner_and_no_token(production: ProgramRun) -> None:
    provider = production.one(PROVIDER)
    assert provider.plain.get("owner") == "acme"
    assert "token" not in provider.plain  # read by the provider from GITHUB_TOKEN
    github = [r for r in production.resources if r.type.startswith("github:")]
    assert github and all(r.provider.startswith(provider.urn) for r in github)


def test_components_parent_their_children(production: ProgramRun) -> None:
    component = production.one(COMPONENT)
    assert component.name == "agent-production-github"
    children = {r.urn for r in production.descendants(component)}
    for resource in production.resources:
        if resource.type.startswith("github:"):
            assert resource.urn in children, resource.name


def test_nothing_is_created_without_a_github_section() -> None:
    raw = {
        "agent-deploy:target": "aws",
        "agent-deploy:tier": "staging",
        "agent-deploy:aws": json.dumps({"region": "eu-west-1", "githubRepository": "acme/agent"}),
    }
    config = load_stack_config("staging", raw)
    results: list[object] = []
    run = run_components(lambda: results.append(github_delivery(config, {"X": "1"})))
    assert results == [None]
    assert run.resources == [] and run.invokes == []


def test_a_secret_output_never_becomes_a_plain_variable() -> None:
    leaked = pulumi.Output.secret("postgresql://admin:hunter2@db/agent")
    with pytest.raises(Exception, match="staging/DATABASE_URL would publish a secret value"):
        deliver(stack_config("staging"), variables={"DATABASE_URL": leaked})

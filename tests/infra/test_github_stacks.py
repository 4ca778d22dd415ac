"""GitHub delivery of the real stack files, through the whole program under mocks."""

from __future__ import annotations

import pytest

from cli.engine import ProgramRun, _stable_number
from tests.harness import run_stack

ENVIRONMENT = "github:index/repositoryEnvironment:RepositoryEnvironment"
ENV_SECRET = "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret"
ENV_VARIABLE = "github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable"
PROTECTION = "github:index/branchProtection:BranchProtection"
POLICY = "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy"
REPOSITORY_SCOPE = (
    "github:index/actionsSecret:ActionsSecret",
    "github:index/actionsVariable:ActionsVariable",
    PROTECTION,
)
# What .github/workflows/deploy.yml reads from the environment it runs in.
WORKFLOW_VARIABLES = {
    "AWS_DEPLOY_ROLE_ARN",
    "AWS_REGION",
    "SERVICE_URL",
    "PULUMI_STACK",
    "READY_PATH",
}


@pytest.fixture(scope="module")
def staging() -> ProgramRun:
    return run_stack("staging")


@pytest.fixture(scope="module")
def production() -> ProgramRun:
    return run_stack("production")


def environments(run: ProgramRun) -> dict[str, dict]:
    return {r.plain["environment"]: r.plain for r in run.of_type(ENVIRONMENT)}


def variables(run: ProgramRun, environment: str) -> dict[str, str]:
    return {
        r.plain["variableName"]: r.plain["value"]
        for r in run.of_type(ENV_VARIABLE)
        if r.plain["environment"] == environment
    }


def test_staging_environments_and_the_variables_the_workflows_read(staging: ProgramRun) -> None:
    assert sorted(environments(staging)) == ["ephemeral", "staging", "staging-preview"]
    own = variables(staging, "staging")
    assert set(own) >= WORKFLOW_VARIABLES
    assert own["SERVICE_URL"] == staging.outputs["serviceUrl"]
    assert own["AWS_DEPLOY_ROLE_ARN"] == staging.outputs["deployRoleArn"]
    assert own["AWS_REGION"] == staging.outputs["region"] == "eu-west-1"
    assert own["PULUMI_STACK"] == "staging"
    assert own["READY_PATH"] == "/ready", "the path the smoke tests probe"
    # Each environment gets the role trusted for it alone: pull requests never see the
    # staging deploy role.
    assert variables(staging, "staging-preview") == {
        "AWS_PREVIEW_ROLE_ARN": staging.outputs["previewRoleArn"],
        "AWS_REGION": "eu-west-1",
        "PULUMI_STACK": "staging",
    }
    assert variables(staging, "ephemeral") == {
        "AWS_DEPLOY_ROLE_ARN": staging.outputs["ephemeralDeployRoleArn"],
        "AWS_REGION": "eu-west-1",
        "READY_PATH": "/ready",
    }
    assert (
        len(
            {
                staging.outputs[k]
                for k in ("deployRoleArn", "previewRoleArn", "ephemeralDeployRoleArn")
            }
        )
        == 3
    )


def test_staging_deploys_from_main_and_protects_it(staging: ProgramRun) -> None:
    env = environments(staging)["staging"]
    assert env["deploymentBranchPolicy"] == {
        "protectedBranches": False,
        "customBranchPolicies": True,
    }
    assert staging.one(POLICY).plain["branchPattern"] == "main"
    protection = staging.one(PROTECTION).plain
    assert protection["repositoryId"] == "agent-deploy" and protection["pattern"] == "main"
    assert protection["requiredStatusChecks"][0]["contexts"] == [
        "Lint, types, workflow lint",
        "Tests",
        "agent-deploy check (every Pulumi.*.yaml)",
    ]


def test_production_is_gated_and_owns_nothing_repository_wide(production: ProgramRun) -> None:
    env = environments(production)
    assert sorted(env) == ["production", "production-preview"]
    gate = env["production"]
    assert gate["reviewers"] == [{"users": [], "teams": [_stable_number("release-managers")]}]
    assert gate["preventSelfReview"] is True and gate["canAdminsBypass"] is False
    assert gate["deploymentBranchPolicy"] == {
        "protectedBranches": True,
        "customBranchPolicies": False,
    }
    assert env["production-preview"]["reviewers"] == []
    for token in REPOSITORY_SCOPE:
        assert not production.of_type(token), token
    own = variables(production, "production")
    assert own["SERVICE_URL"] == production.outputs["serviceUrl"]
    assert own["PULUMI_STACK"] == "production"


def test_environment_secret_from_pulumi_secret_config() -> None:
    run = run_stack(
        "production",
        override={"github": {"secrets": ["SENTRY_DSN"]}},
        secrets={"SENTRY_DSN": "https://key@sentry.example/1"},
    )
    (secret,) = run.of_type(ENV_SECRET)
    assert secret.plain["environment"] == "production"
    assert secret.is_secret("value") and "plaintextValue" not in secret.inputs


@pytest.mark.parametrize("stack", ["pr-42", "local"])
def test_stacks_without_a_github_section_create_nothing_on_github(stack: str) -> None:
    run = run_stack(stack)
    assert not [r for r in run.resources if "github" in r.type]
    assert not [token for token, _ in run.invokes if token.startswith("github:")]

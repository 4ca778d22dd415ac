"""Bad `github` sections: each is refused before anything is registered, named by its key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import ConfigError, GitHubConfig, StackConfig, load_stack_config
from stacks import StackConfigError
from tests.harness import run_stack

GOOD: dict[str, Any] = {"owner": "acme", "repository": "agent", "plan": "enterprise"}


def load(
    tier: str = "staging",
    stack: str | None = None,
    target: str = "aws",
    pulumi_secrets: dict[str, str] | None = None,
    **github: Any,
) -> StackConfig:
    raw = {
        "agent-deploy:target": target,
        "agent-deploy:tier": tier,
        "agent-deploy:aws": json.dumps({"region": "eu-west-1", "alarmEmail": "ops@acme.test"}),
        # Production serves HTTPS only (issue 10).
        "agent-deploy:app": json.dumps({"domain": "agent.acme.test"}),
        "agent-deploy:github": json.dumps({**GOOD, **github}),
    }
    for name, value in (pulumi_secrets or {}).items():
        raw[f"agent-deploy:{name}"] = value
    secret_keys = {f"agent-deploy:{k}" for k in pulumi_secrets or {}}
    return load_stack_config(stack or tier, raw, secret_keys)


def problems(**kwargs: Any) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load(**kwargs)
    return {p.key: p.message for p in caught.value.problems}


def test_a_good_section_loads_with_tier_presets() -> None:
    production = load("production", reviewers=["octocat", "hubot"]).github
    assert production is not None
    assert production.branch_policy == "protected" and production.prevent_self_review
    assert production.preview_environment and not production.can_admins_bypass
    staging = load("staging").github
    assert staging is not None and staging.branch_policy == "default"
    ephemeral = load("ephemeral", stack="dev-alice").github
    assert ephemeral is not None and ephemeral.branch_policy == "none"
    assert not ephemeral.preview_environment
    assert ephemeral.environment_names("dev-alice") == ["dev-alice"]


@pytest.mark.parametrize("reviewer", ["@octocat", "octo cat", "acme/team/x", "-octocat", ""])
def test_unknown_reviewer_format(reviewer: str) -> None:
    found = problems(reviewers=["octocat", reviewer])
    assert (
        "a GitHub login ('octocat') or a team as 'org/team-slug'"
        in found["agent-deploy:github.reviewers"]
    )


def test_reviewer_limits() -> None:
    found = problems(reviewers=[f"user{i}" for i in range(7)])
    assert "at most 6" in found["agent-deploy:github.reviewers"]
    found = problems(reviewers=["octocat", "octocat"])
    assert "listed more than once: octocat" in found["agent-deploy:github.reviewers"]


def test_team_of_another_organisation() -> None:
    found = problems(reviewers=["other-org/admins"])
    assert "not in the organisation 'acme'" in found["agent-deploy:github"]


def test_secret_named_but_not_set_as_a_pulumi_secret() -> None:
    found = problems(secrets=["DEPLOY_KEY"])
    assert "referenced but not set" in found["agent-deploy:DEPLOY_KEY"]
    assert "pulumi config set --secret DEPLOY_KEY" in found["agent-deploy:DEPLOY_KEY"]


def test_secret_set_in_plain_text() -> None:
    raw = {
        "agent-deploy:target": "aws",
        "agent-deploy:tier": "staging",
        "agent-deploy:aws": json.dumps({"region": "eu-west-1", "alarmEmail": "ops@acme.test"}),
        # Production serves HTTPS only (issue 10).
        "agent-deploy:app": json.dumps({"domain": "agent.acme.test"}),
        "agent-deploy:github": json.dumps({**GOOD, "secrets": ["DEPLOY_KEY"]}),
        "agent-deploy:DEPLOY_KEY": "plain-value",
    }
    with pytest.raises(ConfigError) as caught:
        load_stack_config("staging", raw, set())
    (problem,) = caught.value.problems
    assert problem.key == "agent-deploy:DEPLOY_KEY" and "plain text" in problem.message
    assert "plain-value" not in str(caught.value)


def test_repository_secret_must_be_a_pulumi_secret_too() -> None:
    found = problems(ownsRepository=True, repositorySecrets=["NPM_TOKEN"])
    assert "referenced but not set" in found["agent-deploy:NPM_TOKEN"]


@pytest.mark.parametrize("name", ["prod env", "prod/eu", "x" * 256, ""])
def test_invalid_environment_names(name: str) -> None:
    found = problems(environment=name)
    assert "letters, digits" in found["agent-deploy:github.environment"]
    found = problems(ephemeralEnvironment=name)
    assert "letters, digits" in found["agent-deploy:github.ephemeralEnvironment"]


def test_ephemeral_environment_must_not_be_the_stacks_own() -> None:
    found = problems(ephemeralEnvironment="staging-preview")
    assert "must differ" in found["agent-deploy:github.ephemeralEnvironment"]
    found = problems(ephemeralEnvironment="STAGING")
    assert "must differ" in found["agent-deploy:github.ephemeralEnvironment"]


@pytest.mark.parametrize("branch", ["-main", "a..b", "main/", "with space", "x.lock"])
def test_invalid_default_branch(branch: str) -> None:
    assert "git branch name" in problems(defaultBranch=branch)["agent-deploy:github.defaultBranch"]


def test_names_github_refuses_or_the_stack_writes() -> None:
    assert "GITHUB_" in problems(variables={"GITHUB_SHA": "x"})["agent-deploy:github.variables"]
    found = problems(variables={"SERVICE_URL": "http://x"})
    assert "written by the stack" in found["agent-deploy:github.variables"]
    found = problems(secrets=["PULUMI_GITHUB_TOKEN"])
    assert "never from a stack" in found["agent-deploy:github.secrets"]
    found = problems(secrets=["GITHUB_TOKEN"])
    assert "GITHUB_" in found["agent-deploy:github.secrets"]


def test_repository_scope_needs_ownership() -> None:
    found = problems(repositoryVariables={"PULUMI_BACKEND_URL": "s3://x"})
    assert "ownsRepository: true" in found["agent-deploy:github.ownsRepository"]
    found = problems(protectDefaultBranch=True)
    assert "only the stack with ownsRepository" in found["agent-deploy:github"]
    found = problems(ownsRepository=True, requiredChecks=["test"])
    assert "requiredChecks needs protectDefaultBranch" in found["agent-deploy:github"]


def test_production_cannot_relax_the_deploy_gate() -> None:
    found = problems(tier="production", branchPolicy="none", preventSelfReview=False)
    assert "protected branches" in found["agent-deploy:github.branchPolicy"]
    assert "at least one required reviewer" in found["agent-deploy:github.reviewers"]
    assert "approve it" in found["agent-deploy:github.preventSelfReview"]
    # Staging may.
    assert load("staging", branchPolicy="none").github is not None


def test_unknown_key_is_named_with_a_suggestion() -> None:
    found = problems(reviewer=["octocat"])
    assert "did you mean 'reviewers'" in found["agent-deploy:github.reviewer"]


def test_pr_stacks_may_not_manage_github() -> None:
    for stack in ("pr", "pr-42"):
        found = problems(tier="ephemeral", stack=stack)
        assert "Pulumi.pr.yaml" in found["agent-deploy:github"]


def test_local_stack_with_a_github_section_is_an_error() -> None:
    # Decision: local has no deploy environment, so a github section there is a mistake.
    with pytest.raises(StackConfigError) as caught:
        run_stack("local", override={"github": GOOD})
    (problem,) = caught.value.problems
    assert problem.key == "agent-deploy:github"
    assert "cloud stacks only" in problem.message


def test_environment_names_lists_every_managed_environment() -> None:
    config = GitHubConfig.model_validate(
        {
            **GOOD,
            "preventSelfReview": True,
            "canAdminsBypass": False,
            "branchPolicy": "default",
            "previewEnvironment": True,
            "ephemeralEnvironment": "ephemeral",
        }
    )
    assert config.environment_names("staging") == ["staging", "staging-preview", "ephemeral"]

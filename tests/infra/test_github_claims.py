"""Across stack files: one owner per repository scope and per GitHub environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from stacks import StackConfigError
from stacks.delivery import github_claim_problems
from tests.harness import PROJECT_DIR, run_stack

REPO = {"owner": "acme", "repository": "agent"}
OWNER = {**REPO, "ownsRepository": True, "protectDefaultBranch": True}


def project(tmp_path: Path, stacks: dict[str, dict[str, Any] | None]) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: agent-deploy\nruntime: python\n")
    for stack, github in stacks.items():
        tier = stack if stack in ("staging", "production") else "ephemeral"
        config: dict[str, Any] = {"agent-deploy:target": "aws", "agent-deploy:tier": tier}
        if github is not None:
            config["agent-deploy:github"] = github
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))
    return tmp_path


def test_two_stacks_owning_the_repository(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        {
            "staging": OWNER,
            "production": {"owner": "Acme", "repository": "Agent", "ownsRepository": True},
            "qa": {**REPO, "environment": "qa"},
        },
    )
    (problem,) = github_claim_problems(root)
    assert problem.key == "agent-deploy:github.ownsRepository"
    assert "Pulumi.production.yaml and Pulumi.staging.yaml" in problem.message
    assert "acme/agent" in problem.message
    assert github_claim_problems(root, "staging") == [problem]
    assert github_claim_problems(root, "qa") == []  # not involved


def test_one_owner_per_repository_is_fine(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        {
            "staging": OWNER,
            "production": {**REPO, "ownsRepository": False},
            "other": {"owner": "acme", "repository": "other-repo", "ownsRepository": True},
            "local": None,
        },
    )
    assert github_claim_problems(root) == []


@pytest.mark.parametrize(
    ("second", "clash"),
    [
        ({**REPO, "environment": "staging"}, "staging"),
        ({**REPO, "environment": "STAGING"}, "staging"),
        ({**REPO, "environment": "staging-preview"}, "staging-preview"),
        ({**REPO, "environment": "qa", "ephemeralEnvironment": "ephemeral"}, "ephemeral"),
    ],
)
def test_two_stacks_managing_one_environment(
    tmp_path: Path,
    second: dict[str, Any],
    clash: str,
) -> None:
    root = project(
        tmp_path,
        {
            "staging": {**REPO, "ephemeralEnvironment": "ephemeral"},
            "qa": second,
        },
    )
    (problem,) = github_claim_problems(root, "qa")
    assert problem.key == "agent-deploy:github.environment"
    assert f"'{clash}'" in problem.message
    assert "Pulumi.qa.yaml and Pulumi.staging.yaml" in problem.message


def test_protected_branch_policy_needs_a_protected_default_branch(tmp_path: Path) -> None:
    root = project(tmp_path, {"staging": {**REPO, "ownsRepository": True}, "production": REPO})
    (problem,) = github_claim_problems(root, "production")
    assert problem.key == "agent-deploy:github.branchPolicy"
    assert "Pulumi.production.yaml" in problem.message and "every branch" in problem.message
    assert github_claim_problems(root, "staging") == []
    # Either protect the default branch from the owning stack, or allow only that branch.
    assert github_claim_problems(project(tmp_path, {"staging": OWNER, "production": REPO})) == []
    default = {**REPO, "branchPolicy": "default"}
    assert github_claim_problems(project(tmp_path, {"staging": REPO, "production": default})) == []


def test_an_unreadable_stack_file_does_not_block_the_others(tmp_path: Path) -> None:
    root = project(tmp_path, {"staging": OWNER, "qa": {**REPO, "environment": "staging"}})
    (root / "Pulumi.broken.yaml").write_text("config: [unclosed\n")
    (problem,) = github_claim_problems(root, "staging")
    assert "Pulumi.qa.yaml and Pulumi.staging.yaml" in problem.message


def test_pr_stack_files_are_left_to_their_own_rule(tmp_path: Path) -> None:
    # Pulumi.pr.yaml and CI's copies of it are refused a github section by config itself.
    root = project(tmp_path, {"staging": REPO, "pr": REPO, "pr-7": REPO})
    assert github_claim_problems(root) == []


def test_a_conflict_is_refused_before_any_resource_is_registered() -> None:
    # This stack's claims come from the config it runs with, the others' from their files.
    with pytest.raises(StackConfigError) as caught:
        run_stack("production", {"github": {"environment": "staging"}})
    assert caught.value.registered == []  # type: ignore[attr-defined]
    assert caught.value.problems[0].key == "agent-deploy:github.environment"
    assert "Pulumi.production.yaml and Pulumi.staging.yaml" in str(caught.value)


def test_conflicts_and_the_stacks_own_problems_are_reported_together() -> None:
    with pytest.raises(StackConfigError) as caught:
        run_stack(
            "production", {"github": {"environment": "staging"}, "database": {"bakupDays": 9}}
        )
    keys = {p.key for p in caught.value.problems}
    assert {"agent-deploy:github.environment", "agent-deploy:database.bakupDays"} <= keys


def test_this_projects_stack_files_agree() -> None:
    assert github_claim_problems(PROJECT_DIR) == []

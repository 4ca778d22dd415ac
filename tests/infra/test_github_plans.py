"""What GitHub allows depends on the plan and the repository's visibility: `check` refuses
what GitHub would refuse mid-deploy, and the default branch's protection is a real review."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import pytest

from infra.config import ConfigError, StackConfig, load_stack_config
from tests.harness import PROJECT_DIR, run_stack

KEY = "agent-deploy:github"
PROTECTION = "github:index/branchProtection:BranchProtection"


def load(tier: str = "production", **github: Any) -> StackConfig:
    raw = {
        "agent-deploy:target": "aws",
        "agent-deploy:tier": tier,
        "agent-deploy:aws": json.dumps({"region": "eu-west-1", "alarmEmail": "ops@acme.test"}),
        # Production serves HTTPS only (issue 10).
        "agent-deploy:app": json.dumps({"domain": "agent.acme.test"}),
        "agent-deploy:github": json.dumps({"owner": "acme", "repository": "agent", **github}),
    }
    return load_stack_config(tier, raw, set())


def problems(tier: str = "production", **github: Any) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load(tier, **github)
    return {p.key: p.message for p in caught.value.problems}


TEAM_GATE = ["acme/release-managers"]


def test_the_plan_is_required_and_named_with_its_values() -> None:
    found = problems("staging")
    assert "free, pro, team, enterprise" in found[f"{KEY}.plan"]
    found = problems("staging", plan="business")
    assert f"{KEY}.plan" in found


@pytest.mark.parametrize("visibility", ["public", "private"])
def test_reviewers_work_on_public_repositories_and_enterprise(visibility: str) -> None:
    plan = "team" if visibility == "public" else "enterprise"
    github = load(plan=plan, visibility=visibility, reviewers=TEAM_GATE).github
    assert github is not None and github.reviewers == TEAM_GATE


@pytest.mark.parametrize("plan", ["pro", "team"])
def test_private_repository_without_enterprise_gets_no_reviewers_or_wait_timer(
    plan: str,
) -> None:
    found = problems(plan=plan, reviewers=TEAM_GATE, waitTimerMinutes=5)
    assert "Enterprise Cloud only" in found[f"{KEY}.reviewers"]
    assert "wait timer" in found[f"{KEY}.waitTimerMinutes"]
    # Every problem at once: GitHub refuses preventSelfReview without reviewers too.
    found = problems(plan=plan)
    assert "without required reviewers" in found[f"{KEY}.preventSelfReview"]


def test_team_private_production_is_gated_by_reviewed_merges() -> None:
    github = load(plan="team", preventSelfReview=False).github
    assert github is not None and github.reviewers == [] and github.branch_policy == "protected"
    found = problems(plan="team", preventSelfReview=False, branchPolicy="default")
    assert "gated by reviewed merges" in found[f"{KEY}.branchPolicy"]


def test_private_repository_on_free_has_no_environments() -> None:
    found = problems("staging", plan="free")
    assert "no environments" in found[f"{KEY}.plan"]
    github = load("staging", plan="free", visibility="public").github
    assert github is not None


def test_internal_repositories_are_enterprise_only() -> None:
    found = problems("staging", plan="team", visibility="internal")
    assert "Enterprise Cloud" in found[f"{KEY}.visibility"]
    assert load("staging", plan="enterprise", visibility="internal").github is not None


def test_prevent_self_review_needs_two_reviewers_or_a_team() -> None:
    found = problems(plan="enterprise", reviewers=["octocat"])
    assert "two reviewers or a team" in found[f"{KEY}.reviewers"]
    for reviewers in (["octocat", "hubot"], TEAM_GATE):
        assert load(plan="enterprise", reviewers=reviewers).github is not None
    # A single reviewer is fine where nobody is stopped from approving their own deploy.
    assert load("staging", plan="enterprise", reviewers=["octocat"]).github is not None


def test_prevent_self_review_without_reviewers_is_refused_on_any_tier() -> None:
    found = problems("staging", plan="enterprise", preventSelfReview=True)
    assert f"{KEY}.preventSelfReview" in found


@pytest.mark.parametrize("name", ["PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE"])
def test_pulumi_credentials_are_never_repository_secrets(name: str) -> None:
    found = problems("staging", plan="team", ownsRepository=True, repositorySecrets=[name])
    assert "must be an environment secret" in found[f"{KEY}.repositorySecrets"]


@pytest.mark.parametrize("approvals", [0, -1, 7])
def test_required_approvals_between_one_and_six(approvals: int) -> None:
    found = problems("staging", plan="team", requiredApprovals=approvals)
    assert f"{KEY}.requiredApprovals" in found


def test_the_default_branch_needs_reviewed_merges_from_code_owners() -> None:
    protection = run_stack("staging").one(PROTECTION).plain
    (reviews,) = protection["requiredPullRequestReviews"]
    assert reviews["requiredApprovingReviewCount"] >= 1
    assert reviews["requireCodeOwnerReviews"] is True
    assert reviews["requireLastPushApproval"] is True
    more = run_stack("staging", {"github": {"requiredApprovals": 2, "codeOwnerReviews": False}})
    (reviews,) = more.one(PROTECTION).plain["requiredPullRequestReviews"]
    assert reviews["requiredApprovingReviewCount"] == 2
    assert reviews["requireCodeOwnerReviews"] is False


def _owners(path: str, rules: list[tuple[str, list[str]]]) -> list[str]:
    """The owners of `path`: the last matching CODEOWNERS rule wins (GitHub's rule)."""
    owners: list[str] = []
    for pattern, who in rules:
        anchored = pattern.lstrip("/")
        if anchored.endswith("/"):
            matched = path.startswith(anchored)
        else:
            matched = fnmatch.fnmatch(path, anchored)
        if matched:
            owners = who
    return owners


@pytest.mark.parametrize(
    "path",
    [
        ".github/workflows/deploy.yml",
        ".github/CODEOWNERS",
        "infra/github.py",
        "stacks/aws.py",
        "Pulumi.production.yaml",
        "Pulumi.staging.yaml",
        "scripts/check-bootstrap.sh",
    ],
)
def test_code_owners_cover_what_deploys(path: str) -> None:
    text = (PROJECT_DIR / ".github" / "CODEOWNERS").read_text()
    rules = [
        (parts[0], parts[1:])
        for line in text.splitlines()
        if (parts := line.split()) and not parts[0].startswith("#")
    ]
    assert (PROJECT_DIR / path).exists(), path
    owners = _owners(path, rules)
    assert owners and all(o.startswith("@") for o in owners), f"{path} has no code owner"


def test_the_example_stacks_state_their_plan() -> None:
    for stack in ("staging", "production"):
        text = Path(PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text()
        assert "plan: " in text and "visibility: " in text, stack


def test_code_owner_reviews_need_a_codeowners_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stacks import StackConfigError
    from stacks.claims import codeowners_problems
    from tests.harness import run_stack

    owner = {"plan": "team", "ownsRepository": True, "protectDefaultBranch": True}
    config = load("staging", **owner)
    assert codeowners_problems(tmp_path, config)[0].key == f"{KEY}.codeOwnerReviews"
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "CODEOWNERS").write_text("/infra/ @acme/platform\n")
    assert codeowners_problems(tmp_path, config) == []
    (tmp_path / ".github" / "CODEOWNERS").unlink()
    assert codeowners_problems(tmp_path, load("staging", **owner, codeOwnerReviews=False)) == []
    # The shipped staging stack owns the repository: without the file it registers nothing.
    monkeypatch.setattr("stacks.claims.CODEOWNERS_PATHS", ("no/such/CODEOWNERS",))
    with pytest.raises(StackConfigError) as caught:
        run_stack("staging")
    assert caught.value.registered == []  # type: ignore[attr-defined]
    assert [p.key for p in caught.value.problems] == [f"{KEY}.codeOwnerReviews"]
